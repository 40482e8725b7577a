/* test_admin.c - src/admin below the HTTP layer: admin_handle() (routes in
 * docs/admin-api.md; tests/integration/t_admin.sh drives the same over HTTP). */
#include <criterion/criterion.h>

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ndesmock/admin.h"

static struct config cfg;
static struct scenario_slot slot;
static struct stats stats;
static struct admin_deps deps;
static char dir[64], certs[128];

static void write_file(const char *name, const char *text)
{
    char path[300];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/ndesmock-ut-admin-XXXXXX");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    snprintf(certs, sizeof(certs), "%s/certs", dir);
    config_defaults(&cfg);
    memset(&deps, 0, sizeof(deps));
    deps.cfg = &cfg;
    deps.engine = scenario_engine_new(scenario_healthy(), 1.0, 1);
    deps.slot = &slot;
    deps.journal = journal_new(4, 1024, 1);
    deps.stats = &stats;
    deps.otp = otp_new(1, 60.0, 8);
    deps.pending = scep_pending_new(4);
    deps.scenarios_dir = dir; /* scenarios and state in one private folder */
    deps.state_dir = dir;
    deps.certs_dir = certs;
    cr_assert(deps.engine && deps.journal && deps.otp && deps.pending);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p);
}

static void teardown(void)
{
    scenario_engine_free(deps.engine);
    journal_free(deps.journal);
    otp_free(deps.otp);
    scep_pending_free(deps.pending);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(admin, .init = setup, .fini = teardown);

/* Runs one request; returns the parsed JSON body (caller decrefs), NULL when
 * the reply is not JSON. *status gets the status. */
static json_t *call(const char *method, const char *uri, const char *auth, const char *body,
                    int *status)
{
    struct admin_reply rep;
    json_t *j = NULL;

    *status = admin_handle(&deps, method, uri, auth, (const uint8_t *)body,
                           body ? strlen(body) : 0, &rep);
    cr_assert_eq(*status, rep.status);
    cr_assert_not_null(rep.reason);
    cr_assert_not_null(rep.content_type);
    if (strcmp(rep.content_type, "application/json") == 0) {
        cr_assert(rep.body.len > 1 && rep.body.data[rep.body.len - 1] == '\n',
                  "%s %s: a JSON reply ends in a newline", method, uri);
        j = json_loadb((const char *)rep.body.data, rep.body.len - 1, 0, NULL);
        cr_assert_not_null(j, "%s %s: the reply parses", method, uri);
    }
    util_buf_free(&rep.body);
    return j;
}

static const char *str(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

Test(admin, healthz_and_errors)
{
    int st;
    json_t *j = call("GET", "/healthz", NULL, NULL, &st);

    cr_assert_eq(st, 200);
    cr_assert_str_eq(str(j, "status"), "ok");
    json_decref(j);
    j = call("POST", "/healthz", NULL, NULL, &st);
    cr_assert_eq(st, 405);
    cr_assert_str_eq(str(j, "error"), "method not allowed");
    json_decref(j);
    j = call("GET", "/nope?x=1", NULL, NULL, &st);
    cr_assert_eq(st, 404);
    json_decref(j);
    /* 405 on /pending used to leak the array it had made */
    j = call("POST", "/pending", NULL, NULL, &st);
    cr_assert_eq(st, 405);
    json_decref(j);
}

Test(admin, bearer_token)
{
    int st;
    json_t *j;

    snprintf(cfg.admin_token, sizeof(cfg.admin_token), "s3cret");
    j = call("GET", "/healthz", NULL, NULL, &st);
    cr_assert_eq(st, 401);
    cr_assert_str_eq(str(j, "error"), "unauthorized");
    json_decref(j);
    json_decref(call("GET", "/healthz", "Bearer s3cretx", NULL, &st));
    cr_assert_eq(st, 401);
    json_decref(call("GET", "/healthz", "Bearer s3cret", NULL, &st));
    cr_assert_eq(st, 200);
}

Test(admin, scenario_by_name_stays_in_the_folder)
{
    int st;
    json_t *j;

    write_file("lab.cfg", "summary = \"lab\";\n");
    j = call("PUT", "/scenario", NULL, "{\"name\": \"lab\"}", &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(str(j, "name"), "lab");
    json_decref(j);
    cr_assert_neq(strstr(slot.path, "/lab.cfg"), NULL);
    /* "NAME.cfg" is a path to scenario_resolve(): refused, never read */
    j = call("PUT", "/scenario", NULL, "{\"name\": \"lab.cfg\"}", &st);
    cr_assert_eq(st, 404);
    cr_assert_str_eq(str(j, "error"), "not a shipped scenario name");
    json_decref(j);
    json_decref(call("PUT", "/scenario", NULL, "{\"name\": \"../lab\"}", &st));
    cr_assert_eq(st, 404);
    json_decref(call("PUT", "/scenario", NULL, "{\"name\": \"healthy\"}", &st));
    cr_assert_eq(st, 200);
    cr_assert_str_eq(slot.path, "");
}

Test(admin, text_that_is_not_utf8_still_makes_json)
{
    int st;
    json_t *j;

    /* a scenario written in Latin-1: the summary comes back with U+FFFD */
    j = call("PUT", "/scenario", NULL, "summary = \"caf\xe9 au lait\";\n", &st);
    cr_assert_eq(st, 200);
    json_decref(j);
    j = call("GET", "/scenario", NULL, NULL, &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(str(j, "summary"), "caf\xef\xbf\xbd au lait");
    json_decref(j);
    /* valid UTF-8 passes through unchanged */
    json_decref(
        call("PUT", "/scenario", NULL, "{\"text\": \"summary = \\\"caf\\u00e9\\\";\"}", &st));
    cr_assert_eq(st, 200);
    j = call("GET", "/scenario", NULL, NULL, &st);
    cr_assert_str_eq(str(j, "summary"), "caf\xc3\xa9");
    json_decref(j);
}

Test(admin, challenges_and_reset)
{
    int st;
    json_t *j = call("POST", "/challenges", NULL, NULL, &st);

    cr_assert_eq(st, 200);
    cr_assert_eq(strlen(str(j, "password")), 16);
    json_decref(j);
    json_decref(call("POST", "/challenges", NULL, NULL, &st));
    cr_assert_eq(st, 409, "a cache of one is full");
    json_decref(call("POST", "/reset", NULL, NULL, &st));
    cr_assert_eq(st, 200);
    json_decref(call("POST", "/challenges", NULL, NULL, &st));
    cr_assert_eq(st, 200, "reset empties the cache");
}

Test(admin, metrics_is_text)
{
    struct admin_reply rep;

    cr_assert_eq(admin_handle(&deps, "GET", "/metrics", NULL, NULL, 0, &rep), 200);
    cr_assert_str_eq(rep.content_type, "text/plain; version=0.0.4");
    cr_assert_neq(memmem(rep.body.data, rep.body.len,
                         "ndesmock_scenario_info{name=\"healthy\"} 1\n", 41), NULL);
    util_buf_free(&rep.body);
}
