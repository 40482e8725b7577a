/* journal.c - bounded request ring and lock-free counters. */
#include "ndesmock/journal.h"

#include <stdlib.h>
#include <string.h>

struct journal {
    pthread_mutex_t mu;
    struct journal_entry **ring; /* capacity slots, NULL when empty */
    size_t cap, head, count;
    uint64_t next_id;
    size_t raw_cap;
    int keep_secrets;
};

struct journal *journal_new(size_t capacity, size_t raw_cap, int keep_secrets)
{
    struct journal *j = calloc(1, sizeof(*j));

    if (j == NULL)
        return NULL;
    if (capacity == 0)
        capacity = 1;
    j->ring = calloc(capacity, sizeof(*j->ring));
    if (j->ring == NULL) {
        free(j);
        return NULL;
    }
    pthread_mutex_init(&j->mu, NULL);
    j->cap = capacity;
    j->next_id = 1;
    j->raw_cap = raw_cap;
    j->keep_secrets = keep_secrets;
    return j;
}

static void entry_free(struct journal_entry *e)
{
    if (e) {
        free(e->raw);
        free(e);
    }
}

void journal_clear(struct journal *j)
{
    size_t i;

    pthread_mutex_lock(&j->mu);
    for (i = 0; i < j->cap; i++) {
        entry_free(j->ring[i]);
        j->ring[i] = NULL;
    }
    j->head = j->count = 0;
    pthread_mutex_unlock(&j->mu);
}

void journal_free(struct journal *j)
{
    if (j == NULL)
        return;
    journal_clear(j);
    pthread_mutex_destroy(&j->mu);
    free(j->ring);
    free(j);
}

size_t journal_raw_cap(const struct journal *j)
{
    return j->raw_cap;
}

void journal_add(struct journal *j, struct journal_entry *e)
{
    struct journal_entry *copy = malloc(sizeof(*copy)), *old;

    if (copy == NULL) {
        free(e->raw);
        e->raw = NULL;
        return;
    }
    *copy = *e;
    e->raw = NULL;
    if (!j->keep_secrets) {
        copy->challenge[0] = '\0';
        copy->has_challenge = 0;
    }
    pthread_mutex_lock(&j->mu);
    copy->id = j->next_id++;
    old = j->ring[j->head];
    j->ring[j->head] = copy;
    j->head = (j->head + 1) % j->cap;
    if (j->count < j->cap)
        j->count++;
    pthread_mutex_unlock(&j->mu);
    entry_free(old);
}

void journal_each(struct journal *j, void (*fn)(const struct journal_entry *e, void *arg),
                  void *arg)
{
    size_t i, start;

    pthread_mutex_lock(&j->mu);
    start = (j->head + j->cap - j->count) % j->cap;
    for (i = 0; i < j->count; i++) {
        const struct journal_entry *e = j->ring[(start + i) % j->cap];
        if (e)
            fn(e, arg);
    }
    pthread_mutex_unlock(&j->mu);
}

int journal_raw(struct journal *j, uint64_t id, uint8_t **out, size_t *len)
{
    size_t i;
    int rc = -1;

    pthread_mutex_lock(&j->mu);
    for (i = 0; i < j->cap; i++) {
        const struct journal_entry *e = j->ring[i];
        if (e && e->id == id) {
            *out = malloc(e->raw_len ? e->raw_len : 1);
            if (*out) {
                if (e->raw_len)
                    memcpy(*out, e->raw, e->raw_len);
                *len = e->raw_len;
                rc = 0;
            }
            break;
        }
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

/* ---- counters ---- */

const int stat_codes[STAT_CODES] = {0, 200, 301, 400, 401, 403, 404, 405, 414, 500, 503, 999};
const double stat_buckets[STAT_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                           0.1,   0.25,   0.5,   1.0,  1e300};

void stats_record(struct stats *s, const char *operation, int status, double seconds,
                  int pki_status, int had_pkioperation)
{
    int op = STAT_OP_OTHER, c, b;

    if (operation) {
        if (strcmp(operation, "GetCACaps") == 0)
            op = STAT_OP_GETCACAPS;
        else if (strcmp(operation, "GetCACert") == 0)
            op = STAT_OP_GETCACERT;
        else if (strcmp(operation, "PKIOperation") == 0)
            op = STAT_OP_PKIOPERATION;
    }
    for (c = 0; c < STAT_CODES - 1; c++)
        if (stat_codes[c] == status)
            break;
    atomic_fetch_add(&s->requests[op][c], 1);
    if (had_pkioperation) {
        int k = pki_status == 0 ? 0 : pki_status == 2 ? 1 : pki_status == 3 ? 2 : 3;
        atomic_fetch_add(&s->enrollments[k], 1);
    }
    for (b = 0; b < STAT_BUCKETS - 1; b++)
        if (seconds <= stat_buckets[b])
            break;
    atomic_fetch_add(&s->latency[b], 1);
    atomic_fetch_add(&s->latency_sum_us, (unsigned long)(seconds * 1e6));
    atomic_fetch_add(&s->latency_count, 1);
}

void stats_reset(struct stats *s)
{
    memset(s, 0, sizeof(*s));
}
