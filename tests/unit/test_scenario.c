/* test_scenario.c - src/scenario/engine.c: the rule matcher. Its filters are
 * written for speed (filters compiled to a bitmask at load, operation codes,
 * shared header lookups, a hand-written case-insensitive substring search,
 * a quick test of the path prefix's last byte); here every filter is checked
 * against the plain reading of the scenario documentation (strcmp, strcasestr,
 * fnmatch), over every combination of a set of rules and requests. */
#include <criterion/criterion.h>

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ndesmock/scenario.h"

struct hdrs {
    const char *host, *agent;
};

static const char *lookup(void *arg, const char *name)
{
    const struct hdrs *h = arg;

    if (strcasecmp(name, "Host") == 0)
        return h->host;
    if (strcasecmp(name, "User-Agent") == 0)
        return h->agent;
    return NULL;
}

/* One rule's filters read the obvious way. */
static int reference_pass(const struct sc_match *m, const struct sc_request *q,
                          const char *contains)
{
    if (m->path[0] && fnmatch(m->path, q->path, FNM_CASEFOLD) != 0)
        return 0;
    if (m->methods && !(m->methods & q->method))
        return 0;
    if (strcmp(m->operation, "-") == 0) {
        if (q->operation && q->operation[0])
            return 0;
    } else if (m->operation[0] && (q->operation == NULL || strcmp(m->operation, q->operation))) {
        return 0;
    }
    if (m->min_uri >= 0 && (long)q->uri_len < m->min_uri)
        return 0;
    if (m->max_uri >= 0 && (long)q->uri_len > m->max_uri)
        return 0;
    if (m->header[0]) {
        const char *v = lookup(q->header_arg, m->header);
        if (v == NULL || (contains[0] && strcasestr(v, contains) == NULL))
            return 0;
    }
    return 1;
}

/* rule text, and its header_contains as written (the loader lower-cases it) */
static const char *const rules[][2] = {
    {"path = \"/certsrv/mscep/never-1*\";", ""},
    {"path = \"/CERTSRV/MSCEP/mscep.dll\";", ""},
    {"path = \"/certsrv/mscep/mscep.dl?\"; method = \"POST\";", ""},
    {"path = \"/certsrv/mscep/mscep.dll/*\"; operation = \"GetCACert\";", ""},
    {"path = \"/cgi-bin/*\";", ""},
    {"path = \"*\"; operation = \"-\";", ""},
    {"operation = \"GetCACaps\"; header = \"X-Never\";", ""},
    {"operation = \"GetCACaps\"; header = \"host\"; header_contains = \"Lab.Example\";",
     "Lab.Example"},
    {"header = \"Host\"; header_contains = \"127.0.0.1:80\";", "127.0.0.1:80"},
    {"header = \"HOST\"; header_contains = \"no-such-host-1\";", "no-such-host-1"},
    {"header = \"User-Agent\"; header_contains = \"SCEP\";", "SCEP"},
    {"header = \"user-agent\";", ""},
    {"operation = \"GetNextCACert\";", ""},
    {"operation = \"getcacaps\";", ""},
    {"operation = \"PKIOperation\"; method = [\"GET\", \"HEAD\"];", ""},
    {"min_uri_length = 40; max_uri_length = 60;", ""},
    {"max_uri_length = 30;", ""},
};
#define NRULES (sizeof(rules) / sizeof(rules[0]))

Test(scenario, matcher_agrees_with_the_plain_reading_of_every_filter)
{
    static const char *const paths[] = {"/certsrv/mscep/mscep.dll",
                                        "/certsrv/mscep/MSCEP.DLL/pkiclient.exe",
                                        "/certsrv/mscep/mscep.dlx", "/cgi-bin/pkiclient.exe",
                                        "/certsrv/mscep/never-1x", "/", ""};
    static const char *const ops[] = {NULL, "", "GetCACaps", "GetCACert", "PKIOperation",
                                      "GetNextCACert", "getcacaps"};
    static const unsigned methods[] = {SC_M_GET, SC_M_POST, SC_M_HEAD};
    static const struct hdrs hdrs[] = {{NULL, NULL},
                                       {"127.0.0.1:8080", "curl/7.88"},
                                       {"LAB.example.org", "AppleSCEP/1"},
                                       {"x-no-such-host-1-y", NULL}};
    static const size_t uri_lens[] = {10, 30, 31, 40, 60, 61};
    size_t r, pi, oi, mi, hi, ui;
    long checked = 0;

    for (r = 0; r < NRULES; r++) {
        /* each rule alone (its own filters), then behind a rule that never
         * matches so that header lookups are shared between rules */
        char text[1024];
        struct sc_errors errs;
        struct scenario *sc;
        struct scenario_engine *e;

        snprintf(text, sizeof(text),
                 "rules = ( { name = \"first\"; match = { header = \"Host\"; "
                 "header_contains = \"zzz-never\"; }; action = { type = \"iis\"; status = 500; }; },"
                 " { name = \"r\"; match = { %s }; action = { type = \"iis\"; status = 500; }; } );",
                 rules[r][0]);
        memset(&errs, 0, sizeof(errs));
        sc = scenario_load_text(text, "test.cfg", ".", ".", &errs);
        cr_assert_not_null(sc, "rule %zu does not load: %s", r, errs.n ? errs.e[0].message : "");
        cr_assert_eq(sc->nrules, 2);
        e = scenario_engine_new(sc, 1.0, 1);
        cr_assert_not_null(e);
        for (pi = 0; pi < sizeof(paths) / sizeof(paths[0]); pi++)
            for (oi = 0; oi < sizeof(ops) / sizeof(ops[0]); oi++)
                for (mi = 0; mi < sizeof(methods) / sizeof(methods[0]); mi++)
                    for (hi = 0; hi < sizeof(hdrs) / sizeof(hdrs[0]); hi++)
                        for (ui = 0; ui < sizeof(uri_lens) / sizeof(uri_lens[0]); ui++) {
                            struct sc_request q;
                            const struct sc_rule *got;
                            int want;

                            memset(&q, 0, sizeof(q));
                            q.path = paths[pi];
                            q.path_len = strlen(paths[pi]);
                            q.operation = ops[oi];
                            q.method = methods[mi];
                            q.uri_len = uri_lens[ui];
                            q.header = lookup;
                            q.header_arg = (void *)&hdrs[hi];
                            want = reference_pass(&sc->rules[1].m, &q, rules[r][1]);
                            got = scenario_match(e, sc, &q);
                            cr_assert(got == NULL || got == &sc->rules[1],
                                      "rule %zu: the never-matching rule matched", r);
                            cr_assert_eq(got != NULL, want,
                                         "rule %zu (%s), path '%s' op '%s' method %u host '%s' "
                                         "agent '%s' uri %zu: matcher %d, reference %d",
                                         r, rules[r][0], q.path, q.operation ? q.operation : "(null)",
                                         q.method, hdrs[hi].host ? hdrs[hi].host : "(none)",
                                         hdrs[hi].agent ? hdrs[hi].agent : "(none)", q.uri_len,
                                         got != NULL, want);
                            checked++;
                        }
        scenario_engine_free(e); /* releases sc */
    }
    cr_assert_gt(checked, 10000);
}
