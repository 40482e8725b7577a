/* journal.c - bounded request ring and lock-free counters.
 *
 * A struct journal_entry is ~4.3 KB of fixed-size text fields that are mostly
 * empty, and the ring holds 256 of them by default: kept as they are, they
 * were half of the heap under load (docs/performance.md, "RSS breakdown").
 * So the ring keeps each entry packed: its bytes with every run of zero bytes
 * replaced by (0, run length), which the zeroed entry the server fills
 * shrinks to what its fields hold (~0.3 KB), without a table of fields that
 * would have to follow the struct. journal_each unpacks one entry at a time
 * onto its own stack. The raw request is copied in after the packed entry
 * (the caller's buffer has grown by doubling: up to twice its length). */
#include "ndesmock/journal.h"

#include <stdlib.h>
#include <string.h>

/* One ring slot, one allocation: the packed entry, then the raw bytes. */
struct rec {
    uint64_t id;
    size_t raw_len;
    size_t packed_len;
    uint8_t packed[]; /* packed_len bytes of the entry (zero runs encoded), raw_len raw bytes */
};

struct journal {
    pthread_mutex_t mu;
    struct rec **ring;           /* capacity slots, NULL when empty */
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

static void entry_free(struct rec *r)
{
    free(r);
}

static const uint8_t *rec_raw(const struct rec *r)
{
    return r->packed + r->packed_len;
}

/* Number of zero bytes at p, at most max; 32 and then eight at a time
 * where it can (most of an entry is zero runs of the 255-byte maximum). */
static size_t zero_run(const uint8_t *p, size_t max)
{
    size_t k = 0;
    uint64_t w, v[4];

    while (k + sizeof(v) <= max) {
        memcpy(v, p + k, sizeof(v));
        if ((v[0] | v[1] | v[2] | v[3]) != 0)
            break;
        k += sizeof(v);
    }
    while (k + sizeof(w) <= max) {
        memcpy(&w, p + k, sizeof(w));
        if (w != 0)
            break;
        k += sizeof(w);
    }
    while (k < max && p[k] == 0)
        k++;
    return k;
}

/* Encodes n bytes: a non-zero byte stands for itself, (0, k) for k zero bytes
 * (1 <= k <= 255). out holds at least 2 * n bytes. Returns the length.
 * Literal runs are found with memchr and copied whole: byte by byte, packing
 * the 4.3 KB entry cost more than the rest of a GetCACaps answer. */
static size_t zero_runs_pack(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t i = 0, o = 0, k;

    while (i < n) {
        const uint8_t *z = memchr(in + i, 0, n - i);
        size_t lit = z ? (size_t)(z - (in + i)) : n - i;

        memcpy(out + o, in + i, lit);
        o += lit;
        i += lit;
        if (i == n)
            break;
        k = zero_run(in + i, n - i < 255 ? n - i : 255);
        out[o++] = 0;
        out[o++] = (uint8_t)k;
        i += k;
    }
    return o;
}

/* Decodes into exactly n bytes. Returns 0, or -1 if in does not decode to n bytes. */
static int zero_runs_unpack(const uint8_t *in, size_t len, uint8_t *out, size_t n)
{
    size_t i = 0, o = 0;

    while (i < len) {
        if (in[i] != 0) {
            const uint8_t *z = memchr(in + i, 0, len - i);
            size_t lit = z ? (size_t)(z - (in + i)) : len - i;

            if (lit > n - o)
                return -1;
            memcpy(out + o, in + i, lit);
            o += lit;
            i += lit;
            continue;
        }
        if (i + 1 >= len || in[i + 1] == 0 || in[i + 1] > n - o)
            return -1;
        memset(out + o, 0, in[i + 1]);
        o += in[i + 1];
        i += 2;
    }
    return o == n ? 0 : -1;
}

/* Unpacks r into *e (raw borrowed from r). Returns 0 or -1. */
static int rec_unpack(const struct rec *r, struct journal_entry *e)
{
    if (zero_runs_unpack(r->packed, r->packed_len, (uint8_t *)e, sizeof(*e)) != 0)
        return -1;
    e->id = r->id;
    e->raw = (uint8_t *)rec_raw(r); /* the callback gets a const entry */
    e->raw_len = r->raw_len;
    return 0;
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
    uint8_t packed[2 * sizeof(struct journal_entry)], *raw;
    struct rec *r, *old;
    size_t n, raw_len;

    if (!j->keep_secrets) {
        memset(e->challenge, 0, sizeof(e->challenge));
        e->has_challenge = 0;
    }
    raw = e->raw; /* packed without the pointer: it is restored on unpack */
    raw_len = raw ? e->raw_len : 0;
    e->raw = NULL;
    n = zero_runs_pack((const uint8_t *)e, sizeof(*e), packed);
    r = malloc(sizeof(*r) + n + raw_len);
    if (r != NULL) {
        r->raw_len = raw_len;
        r->packed_len = n;
        memcpy(r->packed, packed, n);
        if (raw_len)
            memcpy(r->packed + n, raw, raw_len);
    }
    free(raw);
    if (r == NULL)
        return;
    pthread_mutex_lock(&j->mu);
    r->id = j->next_id++;
    old = j->ring[j->head];
    j->ring[j->head] = r;
    j->head = (j->head + 1) % j->cap;
    if (j->count < j->cap)
        j->count++;
    pthread_mutex_unlock(&j->mu);
    entry_free(old);
}

void journal_each(struct journal *j, void (*fn)(const struct journal_entry *e, void *arg),
                  void *arg)
{
    struct journal_entry e;
    size_t i, start;

    pthread_mutex_lock(&j->mu);
    start = (j->head + j->cap - j->count) % j->cap;
    for (i = 0; i < j->count; i++) {
        const struct rec *r = j->ring[(start + i) % j->cap];
        if (r && rec_unpack(r, &e) == 0)
            fn(&e, arg);
    }
    pthread_mutex_unlock(&j->mu);
}

int journal_raw(struct journal *j, uint64_t id, uint8_t **out, size_t *len)
{
    size_t i;
    int rc = -1;

    pthread_mutex_lock(&j->mu);
    for (i = 0; i < j->cap; i++) {
        const struct rec *r = j->ring[i];
        if (r && r->id == id) {
            *out = malloc(r->raw_len ? r->raw_len : 1);
            if (*out) {
                if (r->raw_len)
                    memcpy(*out, rec_raw(r), r->raw_len);
                *len = r->raw_len;
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
