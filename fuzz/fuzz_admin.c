/* fuzz_admin.c - the admin API below the HTTP layer: admin_handle() (every
 * route of docs/admin-api.md) with the method, request-URI, Authorization
 * header and body taken from the input, run against a scenario engine, a
 * journal, counters, a password cache and a PENDING table set up here.
 *
 * Input: up to FZ_MAX_REQS requests, separated by "\n==\n", each
 *     METHOD REQUEST-URI\n
 *     Authorization: VALUE\n     optional: the server then has token "fuzz-token"
 *     Authorization\n            optional: token configured, header absent
 *     \n
 *     BODY                       (to the separator or the end; may hold NULs)
 * e.g. "PUT /scenario\n\n{\"name\":\"healthy\"}" (fuzz/seeds.sh writes one per route).
 *
 * Files: a scenarios folder (copies of six shipped scenarios, from
 * NDESMOCK_FUZZ_SCENARIOS or ./scenarios, plus an invalid one) and a state
 * directory (the lab PKI's certificates copied from NDESMOCK_FUZZ_STATE/pki,
 * when set, so that "state:pki/..." material loads; an index.txt and one issued
 * certificate), both in one temporary directory made once and removed at exit
 * (a crash leaves it: 100 KB). The admin API only reads files, so disk use does
 * not grow however long the fuzzer runs.
 *
 * Every input starts from the same state (journal with fixed entries, three
 * PENDING requests, empty password cache, counters, built-in healthy scenario):
 * what an input changed (a 200 from a route that changes state) is put back
 * at its end, so an input's allocations are freed by the input.
 *
 * Oracles: a status of docs/admin-api.md and its Content-Type; 401 exactly when
 * the token is configured and not sent; every JSON reply non-empty, one line,
 * parseable, an object, {"error": "..."} when not 200 (or {"errors": [...]} for a
 * refused scenario); the fields each route documents (counts that match their
 * arrays, every journal entry's fields, certs limit/offset bounds); a scenario
 * switched by name only to a file inside the scenarios folder (or the built-in
 * healthy), also when the file is refused with errors. */
#include "ndesmock/admin.h"
#include "ndesmock/util.h"

#include "../src/scep/pending.h" /* pending_add(): PENDING entries to approve and reject */

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FZ_MAX_INPUT (64 * 1024)
#define FZ_MAX_REQS 8
#define FZ_TOKEN "fuzz-token"
#define FZ_SEP "\n==\n"
#define FZ_PENDING_N 3 /* entries fz_pending_make() adds */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct config fz_cfg;
static struct scenario_engine *fz_engine;
static struct scenario_slot fz_slot;
static struct journal *fz_journal;
static struct stats fz_stats;
static struct otp_cache *fz_otp;
static struct scep_pending *fz_pending;
static struct admin_deps fz_deps;
static char fz_tmp[64], fz_scen[96], fz_state[96], fz_certs[128];

static void fz_die(const char *what, const char *why)
{
    fprintf(stderr, "fuzz init: %s: %s\n", what, why);
    abort();
}

static void fz_oracle(const char *what, const char *method, const char *uri, int status)
{
    fprintf(stderr, "fuzz oracle: %s (%s %.200s -> %d)\n", what, method, uri, status);
    abort();
}

/* ---- set-up ---- */

static int fz_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void fz_cleanup(void)
{
    if (fz_tmp[0])
        nftw(fz_tmp, fz_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void fz_write(const char *dir, const char *name, const char *text)
{
    char path[600];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
        fz_die(path, strerror(errno));
}

/* Copies from/name into to/name when it is a regular file of at most 64 KiB. */
static void fz_copy(const char *from, const char *to, const char *name)
{
    static char buf[64 * 1024];
    char src[1200], dst[600];
    struct stat st;
    FILE *in, *out;
    size_t n;

    snprintf(src, sizeof(src), "%s/%s", from, name);
    snprintf(dst, sizeof(dst), "%s/%s", to, name);
    if (stat(src, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)sizeof(buf))
        return;
    in = fopen(src, "r");
    if (in == NULL)
        return;
    n = fread(buf, 1, sizeof(buf), in);
    fclose(in);
    out = fopen(dst, "w");
    if (out == NULL || fwrite(buf, 1, n, out) != n || fclose(out) != 0)
        fz_die(dst, "cannot copy");
}

/* Copies the files of from ending in suffix into to. */
static void fz_copy_dir(const char *from, const char *to, const char *suffix)
{
    DIR *d = opendir(from);
    struct dirent *e;

    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), sl = strlen(suffix);
        if (e->d_name[0] != '.' && l > sl && strcmp(e->d_name + l - sl, suffix) == 0)
            fz_copy(from, to, e->d_name);
    }
    if (d)
        closedir(d);
}

static void fz_mkdir(const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        fz_die(path, strerror(errno));
}

/* ---- per-input state ---- */

static void fz_entry(const char *method, const char *path, const char *query, const char *ua,
                     int status, int pki, int msg_type, const char *tid, int pki_status)
{
    struct journal_entry e;
    static const char raw[] = "GET /certsrv/mscep/mscep.dll?operation=GetCACaps HTTP/1.1\r\n"
                              "Host: ndes\r\n\r\n";

    memset(&e, 0, sizeof(e));
    e.time = 1.7e9;
    util_strlcpy(e.method, method, sizeof(e.method));
    util_strlcpy(e.path, path, sizeof(e.path));
    util_strlcpy(e.query, query, sizeof(e.query));
    util_strlcpy(e.operation, strstr(query, "PKIOperation") ? "PKIOperation" : "GetCACaps",
                 sizeof(e.operation));
    util_strlcpy(e.peer, "127.0.0.1", sizeof(e.peer));
    util_strlcpy(e.user_agent, ua, sizeof(e.user_agent));
    util_strlcpy(e.scenario, "healthy", sizeof(e.scenario));
    e.status = status;
    e.bytes = 10;
    e.pki_status = e.fail_info = -1;
    if (pki) {
        e.has_pki = 1;
        e.message_type = msg_type;
        util_strlcpy(e.transaction_id, tid, sizeof(e.transaction_id));
        util_strlcpy(e.cipher, "DES-EDE3-CBC", sizeof(e.cipher));
        util_strlcpy(e.csr_subject, "/CN=device", sizeof(e.csr_subject));
        e.key_bits = 2048;
        e.pki_status = pki_status;
        e.fail_info = pki_status == SCEP_STATUS_FAILURE ? SCEP_FAIL_BADREQUEST : -1;
        util_strlcpy(e.challenge, "secret", sizeof(e.challenge));
        e.has_challenge = 1;
    }
    e.raw = malloc(sizeof(raw) - 1); /* taken by journal_add */
    if (e.raw) {
        memcpy(e.raw, raw, sizeof(raw) - 1);
        e.raw_len = sizeof(raw) - 1;
    }
    journal_add(fz_journal, &e);
}

/* What an input changed, to be put back. */
enum { FZ_JOURNAL = 1, FZ_PENDING = 2, FZ_OTP = 4, FZ_STATS = 8, FZ_SCENARIO = 16 };

static void fz_journal_make(void)
{
    fz_journal = journal_new(6, 4096, 1);
    if (fz_journal == NULL)
        fz_die("journal", "out of memory");
    fz_deps.journal = fz_journal;
    /* ids 1..7 in a ring of 6: id 1 is gone */
    fz_entry("GET", "/certsrv/mscep/mscep.dll", "operation=GetCACaps&message=ca", "curl/7.88.1",
             200, 0, 0, "", -1);
    fz_entry("GET", "/CertSrv/mscep/mscep.dll", "operation=GetCACert", "Mozilla/5.0 \"x\" \\", 200,
             0, 0, "", -1);
    fz_entry("POST", "/certsrv/mscep/mscep.dll", "operation=PKIOperation", "micromdm", 200, 1,
             SCEP_MSG_PKCSREQ, "AB/CD+EF==", SCEP_STATUS_PENDING);
    fz_entry("POST", "/certsrv/mscep/mscep.dll", "operation=PKIOperation", "", 200, 1,
             SCEP_MSG_CERTPOLL, "AB/CD+EF==", SCEP_STATUS_SUCCESS);
    fz_entry("GET", "/cgi-bin/pkiclient.exe", "operation=PKIOperation&message=x", "sscep", 0, 1,
             SCEP_MSG_PKCSREQ, "T2", SCEP_STATUS_FAILURE);
    fz_entry("GET", "/certsrv/mscep/x", "operation=GetCACaps", "caf\xc3\xa9", 404, 0, 0, "", -1);
    /* a user agent cut inside a UTF-8 sequence (the journal keeps 255 bytes) */
    fz_entry("GET", "/certsrv/mscep/mscep.dll", "operation=GetCACaps", "Ubuntu/\xd0\xa3\xd0", 503,
             0, 0, "", -1);
}

static void fz_pending_make(void)
{
    static const uint8_t csr[4] = {0x30, 0x02, 0x05, 0x00};

    pending_add(fz_pending, "AB/CD+EF==", "/CN=device", csr, sizeof(csr), 0, 0.0);
    pending_add(fz_pending, "T2", "/CN=other/O=lab", csr, sizeof(csr), 0, 0.0);
    pending_add(fz_pending, "tid-\xff", "/CN=caf\xe9", csr, sizeof(csr), 2, 0.0); /* Latin-1 */
}

static void fz_stats_make(void)
{
    atomic_store(&fz_stats.requests[STAT_OP_GETCACAPS][1], 3);
    atomic_store(&fz_stats.enrollments[0], 1);
    atomic_store(&fz_stats.latency[2], 4);
    atomic_store(&fz_stats.latency_count, 4);
    atomic_store(&fz_stats.latency_sum_us, 12345);
}

/* Puts back what the input changed (dirty: FZ_* bits). */
static void fz_state_restore(int dirty)
{
    if (dirty & FZ_JOURNAL) { /* a new one, so that ids start at 1 again */
        journal_free(fz_journal);
        fz_journal_make();
    }
    if (dirty & FZ_PENDING) {
        scep_pending_clear(fz_pending);
        fz_pending_make();
    }
    if (dirty & FZ_OTP)
        otp_clear(fz_otp);
    if (dirty & FZ_STATS) {
        stats_reset(&fz_stats);
        fz_stats_make();
    }
    if (dirty & FZ_SCENARIO) {
        struct scenario *h = scenario_healthy();
        if (h == NULL)
            fz_die("scenario", "out of memory");
        scenario_engine_switch(fz_engine, h); /* frees the one the input put in */
    } else if (dirty & FZ_STATS) {
        scenario_engine_reset(fz_engine);
    }
    fz_slot.path[0] = '\0';
    fz_cfg.admin_token[0] = '\0';
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const shipped[] = {
        "healthy.cfg",           "pending-approval.cfg",    "apppool-crash-503.cfg",
        "policy-cert-expired-503.cfg", "uri-too-long-414.cfg", "ndes-2003-profile.cfg"};
    const char *scen = getenv("NDESMOCK_FUZZ_SCENARIOS"), *pki = getenv("NDESMOCK_FUZZ_STATE");
    char p[600], from[600];
    size_t i;

    (void)argc;
    (void)argv;
    snprintf(fz_tmp, sizeof(fz_tmp), "/tmp/ndesmock-fuzz-admin-XXXXXX");
    if (mkdtemp(fz_tmp) == NULL)
        fz_die("mkdtemp", strerror(errno));
    atexit(fz_cleanup);
    snprintf(fz_scen, sizeof(fz_scen), "%s/scenarios", fz_tmp);
    snprintf(fz_state, sizeof(fz_state), "%s/state", fz_tmp);
    fz_mkdir(fz_scen);
    fz_mkdir(fz_state);
    /* scenarios: a few shipped ones (GET /scenarios loads every file, 0.3-2.5 ms
     * each under ASan: all 22 would make it the whole run), one the loader refuses */
    for (i = 0; i < sizeof(shipped) / sizeof(shipped[0]); i++)
        fz_copy(scen && scen[0] ? scen : "scenarios", fz_scen, shipped[i]);
    fz_write(fz_scen, "zz-broken.cfg", "summary = 3;\nrules = ( { name = \"x\"; } );\n");
    fz_write(fz_scen, "not-a-scenario.txt", "summary = \"ignored: not .cfg\";\n");
    /* state: the lab PKI's certificates (material), index.txt, one issued cert */
    snprintf(p, sizeof(p), "%s/pki", fz_state);
    fz_mkdir(p);
    snprintf(p, sizeof(p), "%s/pki/faulty", fz_state);
    fz_mkdir(p);
    if (pki && pki[0]) {
        snprintf(from, sizeof(from), "%s/pki", pki);
        snprintf(p, sizeof(p), "%s/pki", fz_state);
        fz_copy_dir(from, p, ".pem");
        snprintf(from, sizeof(from), "%s/pki/faulty", pki);
        snprintf(p, sizeof(p), "%s/pki/faulty", fz_state);
        fz_copy_dir(from, p, ".pem");
    }
    fz_write(fz_state, "index.txt",
             "V\t270101000000Z\t\t0A1B2C\tunknown\t/CN=device-1/O=lab\n"
             "R\t270101000000Z\t260101000000Z\t0A1B2D\tunknown\t/CN=caf\xc3\xa9\n"
             "V\t270101000000Z\t\t0A1B2E\tunknown\n"
             "\n"
             "V\t270101000000Z\t\t0A1B2F\tunknown\t/CN=device-4\n");
    snprintf(fz_certs, sizeof(fz_certs), "%s/certs", fz_state);
    fz_mkdir(fz_certs);
    snprintf(p, sizeof(p), "%s/2C", fz_certs);
    fz_mkdir(p);
    fz_write(p, "0A1B2C.pem", "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n");

    config_defaults(&fz_cfg);
    fz_cfg.admin_token[0] = '\0';
    fz_engine = scenario_engine_new(scenario_healthy(), 1.0, 1);
    fz_otp = otp_new(3, 60.0, fz_cfg.otp_length_bytes); /* a small cache: 409 after 3 */
    fz_pending = scep_pending_new(16);
    if (fz_engine == NULL || fz_otp == NULL || fz_pending == NULL)
        fz_die("set-up", "out of memory");
    fz_deps.cfg = &fz_cfg;
    fz_deps.engine = fz_engine;
    fz_deps.slot = &fz_slot;
    fz_deps.journal = NULL; /* fz_journal_make() */
    fz_deps.stats = &fz_stats;
    fz_deps.otp = fz_otp;
    fz_deps.pending = fz_pending;
    fz_deps.scenarios_dir = fz_scen;
    fz_deps.state_dir = fz_state;
    fz_deps.certs_dir = fz_certs;
    fz_journal_make();
    fz_pending_make();
    fz_stats_make();
    return 0;
}

/* ---- oracles ---- */

static int has_keys(json_t *o, const char *const *keys)
{
    for (; *keys; keys++)
        if (json_object_get(o, *keys) == NULL)
            return 0;
    return 1;
}

/* The array under key, whose length equals the integer under "count". */
static json_t *counted(json_t *o, const char *key)
{
    json_t *a = json_object_get(o, key), *c = json_object_get(o, "count");

    if (!json_is_array(a) || !json_is_integer(c) ||
        (size_t)json_integer_value(c) != json_array_size(a))
        return NULL;
    return a;
}

/* First path segment, decoded as admin_handle decodes it (for route-specific checks). */
static void route_of(const char *uri, char *seg0, size_t cap, int *nseg)
{
    char raw[1024], *p, *save = NULL;
    size_t plen = strcspn(uri, "?");

    seg0[0] = '\0';
    *nseg = 0;
    if (plen >= sizeof(raw))
        return;
    memcpy(raw, uri, plen);
    raw[plen] = '\0';
    for (p = strtok_r(raw, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
        if (*nseg == 0 && util_percent_decode(p, strlen(p), seg0, cap) < 0)
            seg0[0] = '\0';
        (*nseg)++;
    }
}

static void check_json(const char *method, const char *uri, const uint8_t *body, size_t body_len,
                       const struct admin_reply *rep)
{
    static const char *const entry_keys[] = {
        "id", "time", "method", "path", "query", "operation", "client", "user_agent", "scenario",
        "rule", "action", "status", "substatus", "bytes", "duration_ms", "request_bytes", NULL};
    static const char *const pki_keys[] = {
        "message_type", "transaction_id", "sender_nonce", "content_cipher", "digest", "signer",
        "csr_subject", "sans", "key_type", "key_bits", "challenge", "pki_status", "fail_info",
        "hresult", "serial", "reason", NULL};
    static const char *const scen_keys[] = {"name", "summary", "source", "rules", "pool_stopped",
                                            "requests", NULL};
    static const char *const pend_keys[] = {"transaction_id", "csr_subject", "age_s", "polls",
                                            "state", NULL};
    static const char *const list_keys[] = {"name", "summary", "valid", NULL};
    static const char *const certs_keys[] = {"total", "offset", "limit", "certs", NULL};
    static const char *const cert_keys[] = {"serial", "subject", "not_after", "status", NULL};
    const char *b = (const char *)rep->body.data;
    size_t n = rep->body.len, i;
    json_t *j, *a, *x;
    char seg0[512];
    int nseg, st = rep->status;

    if (n < 3 || b[n - 1] != '\n' || memchr(b, '\n', n - 1) != NULL)
        fz_oracle("a JSON reply that is empty or not one line", method, uri, st);
    j = json_loadb(b, n - 1, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(j))
        fz_oracle("a JSON reply that does not parse as an object", method, uri, st);
    route_of(uri, seg0, sizeof(seg0), &nseg);
    if (st != 200) {
        if (!json_is_string(json_object_get(j, "error")) &&
            !(st == 400 && json_is_array(json_object_get(j, "errors"))))
            fz_oracle("an error reply without \"error\"", method, uri, st);
    } else if (nseg == 1 && strcmp(seg0, "scenario") == 0 && strcmp(method, "GET") == 0) {
        if (!has_keys(j, scen_keys))
            fz_oracle("GET /scenario without its fields", method, uri, st);
    } else if (nseg == 1 && strcmp(seg0, "requests") == 0 && strcmp(method, "GET") == 0) {
        if ((a = counted(j, "requests")) == NULL)
            fz_oracle("/requests count does not match", method, uri, st);
        json_array_foreach (a, i, x)
            if (!has_keys(x, entry_keys) ||
                (json_object_get(x, "message_type") && !has_keys(x, pki_keys)))
                fz_oracle("a journal entry without its fields", method, uri, st);
    } else if (nseg == 1 && strcmp(seg0, "pending") == 0) {
        /* deciding changes the state; only a poll (never made here) removes one */
        if ((a = counted(j, "pending")) == NULL || json_array_size(a) != FZ_PENDING_N)
            fz_oracle("/pending does not list every PENDING request", method, uri, st);
        json_array_foreach (a, i, x)
            if (!has_keys(x, pend_keys))
                fz_oracle("a PENDING entry without its fields", method, uri, st);
    } else if (nseg == 1 && strcmp(seg0, "scenarios") == 0) {
        if ((a = counted(j, "scenarios")) == NULL || json_array_size(a) == 0)
            fz_oracle("/scenarios count does not match", method, uri, st);
        json_array_foreach (a, i, x)
            if (!has_keys(x, list_keys))
                fz_oracle("a /scenarios entry without its fields", method, uri, st);
    } else if (nseg == 1 && strcmp(seg0, "certs") == 0) {
        json_int_t lim = json_integer_value(json_object_get(j, "limit"));
        json_int_t off = json_integer_value(json_object_get(j, "offset"));
        a = json_object_get(j, "certs");
        if (!has_keys(j, certs_keys) || !json_is_array(a) || lim < 1 || lim > 1000 || off < 0 ||
            json_array_size(a) > (size_t)lim)
            fz_oracle("/certs fields or bounds", method, uri, st);
        json_array_foreach (a, i, x)
            if (!has_keys(x, cert_keys))
                fz_oracle("a /certs entry without its fields", method, uri, st);
    }
    /* a scenario by name: only files inside the scenarios folder (or the built-in healthy) */
    if (strcmp(method, "PUT") == 0 && nseg == 1 && strcmp(seg0, "scenario") == 0 &&
        (st == 200 || st == 400)) {
        json_t *req = json_loadb((const char *)body, body_len, JSON_REJECT_DUPLICATES, NULL);
        json_t *name = json_object_get(req, "name");
        if (json_is_object(req) && json_is_string(name) && body != NULL &&
            memchr(body, '\0', body_len) == NULL) {
            char path[1200];
            const char *nm = json_string_value(name);
            snprintf(path, sizeof(path), "%s/%s.cfg", fz_scen, nm);
            if (strcmp(nm, "healthy") != 0 && (strlen(nm) > 64 || access(path, F_OK) != 0))
                fz_oracle("a scenario name resolved outside the scenarios folder", method, uri,
                          st);
        }
        json_decref(req);
    }
    json_decref(j);
}

static void check_reply(const char *method, const char *uri, int token, const char *auth,
                        const uint8_t *body, size_t body_len, const struct admin_reply *rep)
{
    int st = rep->status;
    int auth_ok = !token || (auth && strcmp(auth, "Bearer " FZ_TOKEN) == 0);
    size_t sl = strlen(fz_scen);
    const char *ct = rep->content_type;

    if (st != 200 && st != 400 && st != 401 && st != 404 && st != 405 && st != 409)
        fz_oracle("a status the API does not document", method, uri, st);
    if (rep->reason == NULL || ct == NULL)
        fz_oracle("no reason phrase or Content-Type", method, uri, st);
    if ((st == 401) != !auth_ok)
        fz_oracle("401 and the token disagree", method, uri, st);
    if (fz_slot.path[0] && (strncmp(fz_slot.path, fz_scen, sl) != 0 || fz_slot.path[sl] != '/'))
        fz_oracle("the scenario slot names a file outside the scenarios folder", method, uri, st);
    if (strcmp(ct, "application/json") == 0) {
        check_json(method, uri, body, body_len, rep);
    } else if (strcmp(ct, "text/plain; version=0.0.4") == 0) {
        if (st != 200 || rep->body.len == 0 || rep->body.data[rep->body.len - 1] != '\n' ||
            memmem(rep->body.data, rep->body.len, "\nndesmock_app_pool_stopped ", 27) == NULL)
            fz_oracle("a /metrics reply that is cut short", method, uri, st);
    } else if (strcmp(ct, "application/octet-stream") != 0 &&
               strcmp(ct, "application/x-pem-file") != 0) {
        fz_oracle("an unknown Content-Type", method, uri, st);
    } else if (st != 200) {
        fz_oracle("a non-JSON error reply", method, uri, st);
    }
}

/* ---- one input ---- */

/* What a request answered 200 changed (FZ_* bits). */
static int fz_changes(const char *method, const char *uri)
{
    char seg0[512];
    int nseg;

    route_of(uri, seg0, sizeof(seg0), &nseg);
    if (strcmp(method, "PUT") == 0 && strcmp(seg0, "scenario") == 0)
        return FZ_SCENARIO;
    if (strcmp(method, "DELETE") == 0 && strcmp(seg0, "requests") == 0)
        return FZ_JOURNAL;
    if (strcmp(method, "POST") == 0 && strcmp(seg0, "pending") == 0)
        return FZ_PENDING;
    if (strcmp(method, "POST") == 0 && strcmp(seg0, "challenges") == 0)
        return FZ_OTP;
    if (strcmp(method, "POST") == 0 && strcmp(seg0, "reset") == 0)
        return FZ_OTP | FZ_STATS;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    int nreq = 0, dirty = 0;

    if (size > FZ_MAX_INPUT)
        return -1;
    while (p < end && nreq < FZ_MAX_REQS) {
        const uint8_t *next = memmem(p, (size_t)(end - p), FZ_SEP, 4), *rend = next ? next : end;
        const uint8_t *nl = memchr(p, '\n', (size_t)(rend - p)), *body = NULL;
        char line[8192], method[16], auth[512], *uri, *sp;
        const char *authp = NULL;
        size_t llen, body_len = 0;
        int token = 0;
        struct admin_reply rep;

        nreq++;
        llen = nl ? (size_t)(nl - p) : (size_t)(rend - p);
        if (llen >= sizeof(line) || memchr(p, '\0', llen) != NULL)
            goto next;
        memcpy(line, p, llen);
        line[llen] = '\0';
        sp = strchr(line, ' ');
        if (sp == NULL || (size_t)(sp - line) >= sizeof(method))
            goto next;
        memcpy(method, line, (size_t)(sp - line));
        method[sp - line] = '\0';
        uri = sp + 1;
        /* header lines up to an empty line; the rest is the body */
        if (nl) {
            const uint8_t *h = nl + 1;
            while (h < rend && *h != '\n') {
                const uint8_t *he = memchr(h, '\n', (size_t)(rend - h));
                size_t hl = he ? (size_t)(he - h) : (size_t)(rend - h);
                if (hl == 13 && memcmp(h, "Authorization", 13) == 0) {
                    token = 1;
                    authp = NULL;
                } else if (hl >= 15 && hl - 15 < sizeof(auth) &&
                           memcmp(h, "Authorization: ", 15) == 0 &&
                           memchr(h, '\0', hl) == NULL) {
                    token = 1;
                    memcpy(auth, h + 15, hl - 15);
                    auth[hl - 15] = '\0';
                    authp = auth;
                }
                h = he ? he + 1 : rend;
            }
            if (h < rend) { /* the empty line */
                body = h + 1;
                body_len = (size_t)(rend - body);
                if (body_len == 0)
                    body = NULL;
            }
        }
        snprintf(fz_cfg.admin_token, sizeof(fz_cfg.admin_token), "%s", token ? FZ_TOKEN : "");
        admin_handle(&fz_deps, method, uri, authp, body, body_len, &rep);
        check_reply(method, uri, token, authp, body, body_len, &rep);
        if (rep.status == 200)
            dirty |= fz_changes(method, uri);
        util_buf_free(&rep.body);
    next:
        p = next ? next + 4 : end;
    }
    fz_state_restore(dirty);
    return 0;
}
