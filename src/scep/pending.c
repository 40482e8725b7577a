/* pending.c - requests the CA left pending, until approved or rejected. */
#include "ndesmock/scep.h"
#include "pending.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct scep_pending {
    pthread_mutex_t mu;
    struct pending_entry *e;
    size_t n, max;
};

struct scep_pending *scep_pending_new(size_t max)
{
    struct scep_pending *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    p->max = max ? max : 1;
    p->e = calloc(p->max, sizeof(*p->e));
    if (p->e == NULL) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

static void entry_clear(struct pending_entry *e)
{
    free(e->csr);
    memset(e, 0, sizeof(*e));
}

void scep_pending_clear(struct scep_pending *p)
{
    size_t i;

    pthread_mutex_lock(&p->mu);
    for (i = 0; i < p->n; i++)
        entry_clear(&p->e[i]);
    p->n = 0;
    pthread_mutex_unlock(&p->mu);
}

void scep_pending_free(struct scep_pending *p)
{
    if (p == NULL)
        return;
    scep_pending_clear(p);
    pthread_mutex_destroy(&p->mu);
    free(p->e);
    free(p);
}

static struct pending_entry *find_locked(struct scep_pending *p, const char *tid)
{
    size_t i;

    for (i = 0; i < p->n; i++)
        if (strcmp(p->e[i].tid, tid) == 0)
            return &p->e[i];
    return NULL;
}

int pending_add(struct scep_pending *p, const char *tid, const char *subject,
                const uint8_t *csr, size_t csr_len, int after_polls, double after_s)
{
    struct pending_entry *e;
    int rc = -1;

    pthread_mutex_lock(&p->mu);
    e = find_locked(p, tid);
    if (e == NULL && p->n < p->max) {
        e = &p->e[p->n++];
        memset(e, 0, sizeof(*e)); /* a removed entry's data may sit in this slot */
    } else if (e) {
        entry_clear(e);
    }
    if (e) {
        e->csr = malloc(csr_len);
        if (e->csr) {
            memcpy(e->csr, csr, csr_len);
            e->csr_len = csr_len;
            snprintf(e->tid, sizeof(e->tid), "%s", tid);
            snprintf(e->subject, sizeof(e->subject), "%s", subject);
            e->created_ns = util_now_ns();
            e->after_polls = after_polls;
            e->after_ns = (uint64_t)(after_s * 1e9);
            e->state = PENDING_WAITING;
            rc = 0;
        } else {
            *e = p->e[--p->n];
        }
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int pending_poll(struct scep_pending *p, const char *tid, uint8_t **csr, size_t *csr_len)
{
    struct pending_entry *e;
    int st = -1;

    pthread_mutex_lock(&p->mu);
    e = find_locked(p, tid);
    if (e) {
        e->polls++;
        if (e->state == PENDING_WAITING &&
            ((e->after_polls && e->polls >= e->after_polls) ||
             (e->after_ns && util_now_ns() - e->created_ns >= e->after_ns)))
            e->state = PENDING_APPROVED;
        st = e->state;
        if (st != PENDING_WAITING) {
            *csr = e->csr;
            *csr_len = e->csr_len;
            e->csr = NULL;
            *e = p->e[--p->n];
        }
    }
    pthread_mutex_unlock(&p->mu);
    return st;
}

int scep_pending_decide(struct scep_pending *p, const char *tid, int approve)
{
    struct pending_entry *e;
    int rc = -1;

    pthread_mutex_lock(&p->mu);
    e = find_locked(p, tid);
    if (e && e->state == PENDING_WAITING) {
        e->state = approve ? PENDING_APPROVED : PENDING_REJECTED;
        rc = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void scep_pending_each(struct scep_pending *p,
                       void (*fn)(const struct scep_pending_info *i, void *arg), void *arg)
{
    size_t i;
    uint64_t now = util_now_ns();

    pthread_mutex_lock(&p->mu);
    for (i = 0; i < p->n; i++) {
        struct scep_pending_info info;
        const struct pending_entry *e = &p->e[i];
        snprintf(info.tid, sizeof(info.tid), "%s", e->tid);
        snprintf(info.subject, sizeof(info.subject), "%s", e->subject);
        info.age_s = (double)(now - e->created_ns) / 1e9;
        info.polls = e->polls;
        info.state = e->state == PENDING_WAITING    ? "pending"
                     : e->state == PENDING_APPROVED ? "approved"
                                                    : "rejected";
        fn(&info, arg);
    }
    pthread_mutex_unlock(&p->mu);
}

/* ---- transactionID replay table ----
 * A direct-mapped cache (slot = hash of the transactionID): O(1) per request;
 * a colliding newer transaction evicts an older one, so replay detection is
 * best effort over the most recent few thousand transactions. A slot keeps the
 * transactionID's SHA-1, not its text (up to 128 characters): 41 bytes a slot
 * instead of 149, so the table's 4,096 slots touch 164 KB, not 600 KB. */

struct tid_slot {
    unsigned char tid[20]; /* SHA-1 of the transactionID */
    unsigned char key[20]; /* SHA-1 of the requester's public key */
    unsigned char used;
};

struct scep_tids {
    pthread_mutex_t mu;
    struct tid_slot *slots;
    size_t cap;
};

struct scep_tids *scep_tids_new(size_t capacity)
{
    struct scep_tids *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->cap = capacity ? capacity : 1;
    t->slots = calloc(t->cap, sizeof(*t->slots));
    if (t->slots == NULL) {
        free(t);
        return NULL;
    }
    pthread_mutex_init(&t->mu, NULL);
    return t;
}

void scep_tids_free(struct scep_tids *t)
{
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t->slots);
    free(t);
}

int tids_check(struct scep_tids *t, const EVP_MD *sha1, const char *tid,
               const unsigned char key[20])
{
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int hlen = 0;
    struct tid_slot *sl;
    size_t slot;
    int rc = 0;

    if (!EVP_Digest(tid, strlen(tid), h, &hlen, sha1, NULL) || hlen != sizeof(sl->tid))
        return 0; /* cannot tell: let it through, as a table miss would */
    memcpy(&slot, h, sizeof(slot)); /* SHA-1 bits are as good a slot hash as any */
    sl = &t->slots[slot % t->cap];
    pthread_mutex_lock(&t->mu);
    if (sl->used && memcmp(sl->tid, h, sizeof(sl->tid)) == 0) {
        rc = memcmp(sl->key, key, 20) == 0 ? 0 : -1;
    } else {
        memcpy(sl->tid, h, sizeof(sl->tid));
        memcpy(sl->key, key, 20);
        sl->used = 1;
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}
