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
    atomic_uint_fast64_t draws;
    atomic_uint_fast64_t requests;
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
    struct scenario_engine *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return NULL;
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

static int filters_pass(const struct sc_match *m, const struct sc_request *q)
{
    /* the literal prefix first: most rules fail there, without fnmatch */
    if (m->path[0] && (strncasecmp(m->path, q->path, m->path_prefix) != 0 ||
                       fnmatch(m->path, q->path, FNM_CASEFOLD) != 0))
        return 0;
    if (m->methods && !(m->methods & q->method))
        return 0;
    if (m->operation[0]) {
        if (strcmp(m->operation, "-") == 0) {
            if (q->operation && q->operation[0])
                return 0;
        } else if (q->operation == NULL || strcmp(m->operation, q->operation) != 0) {
            return 0;
        }
    }
    if (m->message_type && m->message_type != q->message_type)
        return 0;
    if (m->signer_key_type && m->signer_key_type != q->signer_key_type)
        return 0;
    if (m->min_uri >= 0 && (long)q->uri_len < m->min_uri)
        return 0;
    if (m->max_uri >= 0 && (long)q->uri_len > m->max_uri)
        return 0;
    if (m->header[0]) {
        const char *v = q->header ? q->header(q->header_arg, m->header) : NULL;
        if (v == NULL)
            return 0;
        if (m->header_contains[0] && strcasestr(v, m->header_contains) == NULL)
            return 0;
    }
    return 1;
}

const struct sc_rule *scenario_match(struct scenario_engine *e, const struct scenario *sc,
                                     const struct sc_request *q)
{
    uint64_t nreq = atomic_fetch_add(&e->requests, 1) + 1;
    double t = (double)(util_now_ns() - e->start_ns) / 1e9;
    int i;

    for (i = 0; i < sc->nrules; i++) {
        const struct sc_rule *r = &sc->rules[i];
        const struct sc_match *m = &r->m;
        long hit;

        if (!filters_pass(m, q))
            continue;
        if (m->request_nth && (uint64_t)m->request_nth != nreq)
            continue;
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
