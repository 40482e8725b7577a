/* pending.h - private to src/scep: the pending table's entries and the
 * calls the PKIOperation service makes. */
#ifndef SCEP_PENDING_H
#define SCEP_PENDING_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

enum { PENDING_WAITING = 0, PENDING_APPROVED = 1, PENDING_REJECTED = 2 };

struct pending_entry {
    char tid[129];
    char subject[256];
    uint8_t *csr;        /* DER PKCS#10, owned */
    size_t csr_len;
    uint64_t created_ns;
    int polls;
    int after_polls;
    uint64_t after_ns;
    int state;
};

struct scep_pending;

/* Adds (or replaces) tid. Returns 0, or -1 when the table is full. */
int pending_add(struct scep_pending *p, const char *tid, const char *subject,
                const uint8_t *csr, size_t csr_len, int after_polls, double after_s);
/* Counts a poll. Returns -1 (unknown tid), PENDING_WAITING, or APPROVED /
 * REJECTED, in which case the entry is removed and *csr (malloc'd, caller
 * frees) holds the request. */
int pending_poll(struct scep_pending *p, const char *tid, uint8_t **csr, size_t *csr_len);

struct scep_tids;
/* 0 if tid is new (now remembered) or was used with the same key; -1 if it
 * was used with a different key. sha1: the fetched SHA-1 (ctx->algs.sha1). */
int tids_check(struct scep_tids *t, const EVP_MD *sha1, const char *tid,
               const unsigned char key[20]);

#endif
