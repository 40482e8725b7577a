/* engine.c - the active scenario, per-rule counters, seeded draws, time
 * windows and IIS rapid-fail protection, shared by every worker thread. */
#include "ndesmock/scenario.h"
#include "ndesmock/util.h"

#include <fnmatch.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RF_MAX 1000

struct scenario_engine {
    pthread_mutex_t mu;           /* active pointer, rapid-fail state */
    struct scenario *active;
    double time_scale;
    uint64_t seed;
    uint64_t start_ns;            /* activation time */
    /* on their own cache line: the mutex above is taken by every request */
    _Alignas(64) atomic_uint_fast64_t draws;
    atomic_uint_fast64_t requests;
    char pad_counters[64 - 2 * sizeof(atomic_uint_fast64_t)];
    struct {
        atomic_long v;
        char pad[64 - sizeof(atomic_long)]; /* one cache line each: no false sharing */
    } rule_hits[SC_MAX_RULES];
    /* rapid-fail */
    uint64_t crash_ns[RF_MAX];
    int ncrash, crash_head;
    atomic_int stopped;
    uint64_t stopped_ns;
};

static void reset_locked(struct scenario_engine *e)
{
    int i;

    e->start_ns = util_now_ns();
    atomic_store(&e->requests, 0);
    atomic_store(&e->draws, 0);
    for (i = 0; i < SC_MAX_RULES; i++)
        atomic_store(&e->rule_hits[i].v, 0);
    e->ncrash = e->crash_head = 0;
    atomic_store(&e->stopped, 0);
    e->stopped_ns = 0;
}

struct scenario_engine *scenario_engine_new(struct scenario *initial, double time_scale,
                                            uint64_t seed)
{
    /* aligned: the counters' cache line must not be the mutex's */
    struct scenario_engine *e = aligned_alloc(64, sizeof(*e));

    if (e == NULL)
        return NULL;
    memset(e, 0, sizeof(*e));
    pthread_mutex_init(&e->mu, NULL);
    e->active = initial;
    e->time_scale = time_scale > 0 ? time_scale : 1.0;
    e->seed = seed;
    reset_locked(e);
    return e;
}

void scenario_engine_free(struct scenario_engine *e)
{
    if (e == NULL)
        return;
    scenario_release(e->active);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

void scenario_engine_switch(struct scenario_engine *e, struct scenario *sc)
{
    struct scenario *old;

    pthread_mutex_lock(&e->mu);
    old = e->active;
    e->active = sc;
    reset_locked(e);
    pthread_mutex_unlock(&e->mu);
    scenario_release(old);
}

void scenario_engine_reset(struct scenario_engine *e)
{
    pthread_mutex_lock(&e->mu);
    reset_locked(e);
    pthread_mutex_unlock(&e->mu);
}

struct scenario *scenario_engine_acquire(struct scenario_engine *e)
{
    struct scenario *sc;

    pthread_mutex_lock(&e->mu);
    sc = e->active;
    atomic_fetch_add(&sc->refs, 1);
    pthread_mutex_unlock(&e->mu);
    return sc;
}

double scenario_engine_time_scale(const struct scenario_engine *e)
{
    return e->time_scale;
}

uint64_t scenario_requests(struct scenario_engine *e)
{
    return atomic_load(&e->requests);
}

/* splitmix64 of (seed, draw number): the same seed and request order give the same run. */
static double draw(struct scenario_engine *e)
{
    uint64_t z = e->seed + 0x9E3779B97F4A7C15ULL * (atomic_fetch_add(&e->draws, 1) + 1);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

int scenario_op_code(const char *operation)
{
    if (operation == NULL || operation[0] == '\0')
        return SC_OP_ABSENT;
    if (strcmp(operation, "GetCACaps") == 0)
        return SC_OP_GETCACAPS;
    if (strcmp(operation, "GetCACert") == 0)
        return SC_OP_GETCACERT;
    if (strcmp(operation, "PKIOperation") == 0)
        return SC_OP_PKIOPERATION;
    return SC_OP_OTHER;
}

/* What one scenario_match works out once for all its rules: the request's
 * operation code, and header values shared by the rules that test the same
 * header (sc_match.header_first). */
struct match_memo {
    int op_code;     /* 0 until needed */
    uint64_t looked; /* bit i: val[i] holds rule i's lookup */
    const char *val[SC_MAX_RULES];
};

/* The request filters of one rule, only those it sets (m->tests), cheapest
 * first where the order does not matter to the outcome. */
static int filters_pass(const struct sc_match *m, const struct sc_request *q,
                        struct match_memo *memo)
{
    unsigned t = m->tests;

    if (t & SC_T_OPERATION) {
        if (memo->op_code == 0)
            memo->op_code = scenario_op_code(q->operation);
        if (m->op_code != memo->op_code ||
            (m->op_code == SC_OP_OTHER && strcmp(m->operation, q->operation) != 0))
            return 0;
    }
    if ((t & SC_T_METHODS) && !(m->methods & q->method))
        return 0;
    if ((t & SC_T_MESSAGE_TYPE) && m->message_type != q->message_type)
        return 0;
    if ((t & SC_T_KEY_TYPE) && m->signer_key_type != q->signer_key_type)
        return 0;
    if ((t & SC_T_URI_LEN) && ((m->min_uri >= 0 && (long)q->uri_len < m->min_uri) ||
                               (m->max_uri >= 0 && (long)q->uri_len > m->max_uri)))
        return 0;
    /* the literal prefix before fnmatch: most rules fail there; its last
     * byte first, since globs share their leading folders */
    if (t & SC_T_PATH) {
        size_t p = m->path_prefix;
        if (p && (q->path_len < p || (m->path[p - 1] | 0x20) != (q->path[p - 1] | 0x20)))
            return 0;
        if (strncasecmp(m->path, q->path, p) != 0 || fnmatch(m->path, q->path, FNM_CASEFOLD) != 0)
            return 0;
    }
    if (t & SC_T_HEADER) {
        int slot = m->header_first;
        const char *v;

        if (!(memo->looked & (1ULL << slot))) {
            memo->val[slot] = q->header ? q->header(q->header_arg, m->header) : NULL;
            memo->looked |= 1ULL << slot;
        }
        v = memo->val[slot];
        if (v == NULL)
            return 0;
        if (m->header_contains_len &&
            util_ascii_casestr(v, m->header_contains, m->header_contains_len) == NULL)
            return 0;
    }
    return 1;
}

const struct sc_rule *scenario_match(struct scenario_engine *e, const struct scenario *sc,
                                     const struct sc_request *q)
{
    uint64_t nreq = atomic_fetch_add(&e->requests, 1) + 1;
    double t = -1.0; /* seconds since the scenario started, read once a rule needs it */
    struct match_memo memo;
    int i;

    memo.op_code = 0;
    memo.looked = 0;
    for (i = 0; i < sc->nrules; i++) {
        const struct sc_rule *r = &sc->rules[i];
        const struct sc_match *m = &r->m;
        long hit;

        if (!filters_pass(m, q, &memo))
            continue;
        if (m->request_nth && (uint64_t)m->request_nth != nreq)
            continue;
        if ((m->after_s >= 0 || m->before_s >= 0) && t < 0)
            t = (double)(util_now_ns() - e->start_ns) / 1e9;
        if (m->after_s >= 0 && t < m->after_s * e->time_scale)
            continue;
        if (m->before_s >= 0 && t >= m->before_s * e->time_scale)
            continue;
        if (m->probability <= 0.0)
            continue; /* never fires: no counter, no draw */
        hit = atomic_fetch_add(&e->rule_hits[i].v, 1) + 1;
        if (m->first && hit > m->first)
            continue;
        if (m->nth && hit != m->nth)
            continue;
        if (m->every && hit % m->every != 0)
            continue;
        if (m->probability < 1.0 && draw(e) >= m->probability)
            continue;
        return r;
    }
    return NULL;
}

int scenario_pool_stopped(struct scenario_engine *e)
{
    int stopped;
    struct scenario *sc;

    if (!atomic_load(&e->stopped))
        return 0;
    pthread_mutex_lock(&e->mu);
    sc = e->active;
    stopped = atomic_load(&e->stopped);
    if (stopped && sc->rf_recovery_s > 0 &&
        (double)(util_now_ns() - e->stopped_ns) / 1e9 >= sc->rf_recovery_s * e->time_scale) {
        /* WAS starts the pool again after the configured recovery time */
        atomic_store(&e->stopped, 0);
        e->ncrash = e->crash_head = 0;
        stopped = 0;
    }
    pthread_mutex_unlock(&e->mu);
    return stopped;
}

int scenario_record_crash(struct scenario_engine *e)
{
    struct scenario *sc;
    uint64_t now = util_now_ns(), window;
    int i, n = 0, stopped = 0, max;

    pthread_mutex_lock(&e->mu);
    sc = e->active;
    max = sc->rf_max_crashes;
    if (max > 0 && max <= RF_MAX) {
        e->crash_ns[e->crash_head] = now;
        e->crash_head = (e->crash_head + 1) % max;
        if (e->ncrash < max)
            e->ncrash++;
        window = (uint64_t)(sc->rf_interval_s * e->time_scale * 1e9);
        for (i = 0; i < e->ncrash; i++)
            if (now - e->crash_ns[i] <= window)
                n++;
        if (n >= max && !atomic_load(&e->stopped)) {
            atomic_store(&e->stopped, 1);
            e->stopped_ns = now;
            stopped = 1;
        }
    }
    pthread_mutex_unlock(&e->mu);
    return stopped;
}
