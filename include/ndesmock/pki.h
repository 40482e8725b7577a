/* pki.h - the lab PKI (CA, RA signing/encryption, TLS) and certificate issuance.
 * Everything here is loaded once at start-up and then shared read-only by
 * every worker thread. */
#ifndef NDESMOCK_PKI_H
#define NDESMOCK_PKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "ndesmock/config.h"

#define PKI_PATH 512

struct pki {
    X509 *root_cert;        /* self-signed root (== ca_cert's issuer) */
    X509 *ca_cert;          /* issuing CA: the root, or the intermediate */
    EVP_PKEY *ca_key;
    X509 *ra_sign_cert;     /* digitalSignature only: signs CertReps */
    EVP_PKEY *ra_sign_key;
    X509 *ra_enc_cert;      /* keyEncipherment only: requests are encrypted to it */
    EVP_PKEY *ra_enc_key;
    X509 *tls_cert;
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
};

/* Loads the PKI from STATE/pki, creating any missing part first (keys 0600).
 * Fills *pki; release with pki_free(). Returns 0, or -1 with a reason in err. */
int pki_load_or_create(struct pki *pki, const struct config *cfg, char *err, size_t errlen);
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
