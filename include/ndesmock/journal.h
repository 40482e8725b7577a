/* journal.h - the request journal (a bounded ring of what clients sent and
 * what they got, with the decoded SCEP fields) and the counters behind
 * /metrics. Written by the worker threads, read by the admin API. */
#ifndef NDESMOCK_JOURNAL_H
#define NDESMOCK_JOURNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct journal_entry {
    uint64_t id;                 /* assigned by journal_add, from 1 */
    double time;                 /* Unix time, seconds */
    char method[8];
    char path[512];
    char query[512];             /* truncated copy for filtering and display */
    char operation[32];
    char peer[64];
    char user_agent[256];
    char scenario[64];
    char rule[64];
    char action[16];
    int status, substatus;       /* 0 = no HTTP reply (transport fault) */
    size_t bytes;
    double duration_ms;
    /* PKIOperation */
    int has_pki;
    int message_type;
    char transaction_id[129];
    char sender_nonce[129];      /* hex */
    char cipher[24], digest[16];
    char signer[256];            /* requester's signing certificate subject */
    char csr_subject[256];
    char sans[512];
    char key_type[8];
    int key_bits;
    char challenge[256];
    int has_challenge;
    int pki_status, fail_info;   /* -1 = none */
    long hresult;
    char serial[64];
    char reason[160];
    uint8_t *raw;                /* the request as received (request line, headers, body), capped */
    size_t raw_len;
};

struct journal;

/* capacity: ring size; raw_cap: bytes of each request kept; keep_secrets 0
 * drops challenge passwords from the journal. */
struct journal *journal_new(size_t capacity, size_t raw_cap, int keep_secrets);
void journal_free(struct journal *j);
size_t journal_raw_cap(const struct journal *j);

/* Copies e into the ring, packed (journal.c), taking e->raw: the caller must
 * not free it. Clears e->challenge first when secrets are not kept. Entries
 * cost what their fields hold: zero e before filling it. */
void journal_add(struct journal *j, struct journal_entry *e);

/* Calls fn for every stored entry, oldest first, under the journal lock; e is
 * an unpacked copy valid during the call only. */
void journal_each(struct journal *j, void (*fn)(const struct journal_entry *e, void *arg),
                  void *arg);
/* Copies the raw bytes of entry id into *out (malloc'd, caller frees).
 * Returns 0, or -1 if the entry is gone. */
int journal_raw(struct journal *j, uint64_t id, uint8_t **out, size_t *len);
void journal_clear(struct journal *j);

/* ---- counters (lock-free) ---- */

enum stat_op { STAT_OP_GETCACAPS, STAT_OP_GETCACERT, STAT_OP_PKIOPERATION, STAT_OP_OTHER, STAT_OPS };
#define STAT_CODES 12
#define STAT_BUCKETS 11
extern const int stat_codes[STAT_CODES];      /* 0 = no reply, 999 = other */
extern const double stat_buckets[STAT_BUCKETS]; /* seconds; last is +Inf */

struct stats {
    atomic_ulong requests[STAT_OPS][STAT_CODES];
    atomic_ulong enrollments[4];             /* SUCCESS, FAILURE, PENDING, error */
    atomic_ulong latency[STAT_BUCKETS];      /* cumulative-free counts per bucket */
    atomic_ulong latency_sum_us;
    atomic_ulong latency_count;
};
void stats_record(struct stats *s, const char *operation, int status, double seconds,
                  int pki_status, int had_pkioperation);
void stats_reset(struct stats *s);

#endif
