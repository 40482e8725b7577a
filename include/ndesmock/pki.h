/* pki.h - the lab PKI (CA, RA signing/encryption, TLS) and certificate issuance.
 * Everything here is loaded once at start-up and then shared read-only by
 * every worker thread. */
#ifndef NDESMOCK_PKI_H
#define NDESMOCK_PKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ndesmock/config.h"

#define PKI_PATH 512

/* Where a struct pki stands (pki_start, pki_ready). */
enum pki_state { PKI_EMPTY = 0, PKI_LOADING, PKI_READY, PKI_FAILED };

/* pki_start() flags */
#define PKI_LOAD_TLS 1u        /* also load tls.pem (tls_cert, tls_key) */
#define PKI_LOAD_LATER 2u      /* make certificate objects and keys at first use */

struct pki_loader; /* pki.c: what pki_start() leaves for pki_ready() */

struct pki {
    X509 *root_cert;        /* self-signed root (== ca_cert's issuer) */
    X509 *ca_cert;          /* issuing CA: the root, or the intermediate */
    EVP_PKEY *ca_key;       /* ca_cert's (with an intermediate the root key is not loaded) */
    X509 *ra_sign_cert;     /* digitalSignature only: signs CertReps */
    EVP_PKEY *ra_sign_key;
    X509 *ra_enc_cert;      /* keyEncipherment only: requests are encrypted to it */
    EVP_PKEY *ra_enc_key;
    X509 *tls_cert;         /* NULL unless PKI_LOAD_TLS (or generated on this start) */
    EVP_PKEY *tls_key;
    int has_intermediate;
    EVP_PKEY *ca_key_for_faulty; /* borrowed root key during generation only */

    uint8_t *getcacert_der; /* GetCACert body: degenerate PKCS#7 */
    size_t getcacert_len;
    uint8_t *ra_sign_der;   /* DER of ra_sign_cert, for CertRep certificates */
    size_t ra_sign_len;
    uint8_t *ra_sign_ias;   /* DER IssuerAndSerialNumber of ra_sign_cert */
    size_t ra_sign_ias_len;
    uint8_t *ca_chain_der;  /* DER of ca_cert (+ root when intermediate), concatenated */
    size_t ca_chain_len;

    char ca_md5[40];        /* MD5 of the root cert: "XXXXXXXX XXXXXXXX XXXXXXXX XXXXXXXX" */
    char dir[PKI_PATH];     /* STATE/pki */
    char ca_cert_path[PKI_PATH + 16];
    char challenge[64];     /* per-state-dir generated static challenge */

    /* issuance */
    X509_NAME *issuer_name; /* borrowed from ca_cert */
    uint8_t serial_prefix[8];
    const EVP_MD *cert_md;  /* fetched once */
    X509_EXTENSION *ext_ku, *ext_eku, *ext_bc;
    X509_EXTENSION *ext_aki;    /* the CA's key identifier: the same for every issued cert */

    atomic_int state;           /* enum pki_state: read with pki_ready() */
    struct pki_loader *loader;  /* owned: what pki_start() left for pki_ready() */
};

/* Loads the PKI from STATE/pki, creating any missing part first (keys 0600),
 * TLS pair included, all before returning. Fills *pki; release with
 * pki_free(). Returns 0, or -1 with a reason in err. */
int pki_load_or_create(struct pki *pki, const struct config *cfg, char *err, size_t errlen);

/* The server's start: like pki_load_or_create(), but tls_cert/tls_key only
 * with PKI_LOAD_TLS, and when every file is already there and PKI_LOAD_LATER
 * is given, only this is done before it returns: the PEM files are read, the
 * keys checked (RSA keys decode in microseconds without OpenSSL's decoders),
 * and getcacert_*, ra_sign_der/_ias, ca_chain_*, ca_md5, challenge, dir,
 * ca_cert_path and has_intermediate are set. The certificate objects, the
 * provider keys and the issuance fields are made by the first pki_ready()
 * call: read them only after pki_ready() returned 0. cfg is borrowed until
 * pki_free(). Returns 0, or -1 with a reason in err (release with pki_free()
 * either way). */
int pki_start(struct pki *pki, const struct config *cfg, unsigned flags, char *err,
              size_t errlen);

/* Makes sure every field is usable; any thread. After pki_start(PKI_LOAD_LATER)
 * the first call does the decoding left (about 2 ms) while other callers wait
 * on a mutex; afterwards a call is one atomic load. Returns 0, or -1 when
 * loading failed or nothing was loaded, with the reason in err when err is not
 * NULL (e.g. "DIR/ra-enc.pem: cannot read certificate and key (delete it to
 * regenerate)"); a failure is final. */
int pki_ready(struct pki *pki, char *err, size_t errlen);

/* Frees everything (a pending decoding is dropped); no pki_ready() may run.
 * NULL is a no-op. */
void pki_free(struct pki *pki);

/* Issues a certificate for req signed by the CA, subject and SANs from the
 * CSR, key usage / EKU from the configured template. Thread-safe.
 * Returns a new X509 the caller owns, or NULL with a reason in err. */
X509 *pki_issue(struct pki *pki, const struct config *cfg, X509_REQ *req, char *err,
                size_t errlen);

/* Encodes a degenerate (certs-only) PKCS#7 SignedData holding certs.
 * *out is malloc'd and owned by the caller. Returns 0 or -1. */
int pki_certs_only_der(X509 *const *certs, int n, uint8_t **out, size_t *len);

/* Upper-case hex serial of cert into out (at least 2*20+1 bytes). */
void pki_serial_hex(const X509 *cert, char *out, size_t outcap);

#endif
