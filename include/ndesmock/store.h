/* store.h - the issued-certificate store: STATE/certs/XX/SERIAL.pem (XX = the
 * serial's last two hex digits: 256 directories, so creating a file stays
 * cheap with 100,000 certificates stored) plus an append-only OpenSSL-style
 * STATE/index.txt. O(1) per issuance: no scan of the store, no rewrite of the
 * index, at start-up or later. */
#ifndef NDESMOCK_STORE_H
#define NDESMOCK_STORE_H

#include <openssl/x509.h>
#include <pthread.h>
#include <stddef.h>

struct store {
    char certs_dir[512];
    int index_fd; /* O_APPEND */
    unsigned char made[256]; /* shard directories known to exist (benign races: mkdir is idempotent) */
};

/* Path of the certificate with upper-case hex serial hex (its shard). Returns
 * 0, or -1 when hex is not 2..64 upper-case hex digits. */
int store_cert_path(const char *certs_dir, const char *hex, char *out, size_t outcap);

/* Opens (creating) the store under state_dir. Returns 0 or -1 with err set. */
int store_open(struct store *st, const char *state_dir, char *err, size_t errlen);
void store_close(struct store *st);

/* Writes cert as SERIAL.pem (temporary name, then rename: a kill never leaves
 * a torn file) and appends one index line. Thread-safe. The cert stays the
 * caller's. Returns 0 or -1 with err set. */
int store_put(struct store *st, X509 *cert, char *err, size_t errlen);

#endif
