/* store.h - the issued-certificate store: STATE/certs/SERIAL.pem plus an
 * append-only OpenSSL-style STATE/index.txt. O(1) per issuance: no scan of
 * the store, no rewrite of the index, at start-up or later. */
#ifndef NDESMOCK_STORE_H
#define NDESMOCK_STORE_H

#include <openssl/x509.h>
#include <pthread.h>
#include <stddef.h>

struct store {
    char certs_dir[512];
    int index_fd; /* O_APPEND */
};

/* Opens (creating) the store under state_dir. Returns 0 or -1 with err set. */
int store_open(struct store *st, const char *state_dir, char *err, size_t errlen);
void store_close(struct store *st);

/* Writes cert as SERIAL.pem (temporary name, then rename: a kill never leaves
 * a torn file) and appends one index line. Thread-safe. The cert stays the
 * caller's. Returns 0 or -1 with err set. */
int store_put(struct store *st, X509 *cert, char *err, size_t errlen);

#endif
