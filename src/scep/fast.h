/* fast.h - DER fast path for the two layers of a pkiMessage that carry a
 * public key (private to src/scep).
 *
 * OpenSSL 3.0 decodes every SubjectPublicKeyInfo that d2i meets through a
 * freshly built OSSL_DECODER_CTX, which enumerates every decoder and key
 * manager under a global lock: for one enrollment (the signer certificate in
 * the SignedData and the key in the PKCS#10) that costs about as much CPU as
 * half an RSA-2048 signature. The functions here read the usual DER shapes
 * with the reader of util.h, take RSA keys as legacy keys (d2i_RSAPublicKey,
 * no decoder) and check RSA PKCS#1 v1.5 signatures directly.
 *
 * Contract: each returns "handled" only for an input it has fully checked,
 * with the same result the OpenSSL path would give. For anything else (BER,
 * EC keys, several signers, a signature that does not verify, a missing
 * attribute, ...) it returns "not handled" having changed nothing, and the
 * caller runs the OpenSSL path, which gives the definitive answer and reason. */
#ifndef SCEP_FAST_H
#define SCEP_FAST_H

#include "ndesmock/scep.h"

#include <openssl/pkcs7.h>

/* SignedData layer, in three steps for decode.c:
 * scep_fast_split: a copy of a DER ContentInfo/SignedData without its
 *   certificates field, into rest (d2i_PKCS7 then parses everything else with
 *   OpenSSL's rules and no public key), and the certificates' contents.
 *   Returns 0, or -1 for any other shape.
 * scep_fast_signer: the one certificate (several: declined), parsed with
 *   d2i_X509's ASN.1 rules but the key left encoded, must be the signer
 *   (issuer, serial); when its key
 *   is RSA, sets req's signer_cert, signer_subject, signer_key (legacy key),
 *   signer_ias, signer_keyhash and signer_issuer_is_ca. Returns 1, or 0 (caller falls back).
 * scep_fast_verify: PKCS7_verify's signature check for one SignerInfo with
 *   key (PKCS7_dataInit + PKCS7_signatureVerify). Returns 1 if it verifies. */
int scep_fast_split(const uint8_t *der, size_t len, struct util_buf *rest, const uint8_t **certs,
                    size_t *certs_len);
int scep_fast_signer(const struct scep_ctx *ctx, const uint8_t *certs, size_t len,
                     const X509_NAME *issuer, const ASN1_INTEGER *serial,
                     struct scep_request *req);
int scep_fast_verify(PKCS7 *p7, PKCS7_SIGNER_INFO *si, EVP_PKEY *key);

/* DER IssuerAndSerialNumber (*der OPENSSL_malloc'd). Returns 0 or -1. */
int scep_ias_der(const X509_NAME *issuer, const ASN1_INTEGER *serial, uint8_t **der, size_t *len);

/* PKCS#10 layer: an X509_REQ whose self-signature has been verified, holding
 * the request's subject, attributes, signature and its RSA key as a legacy
 * key; NULL when the OpenSSL path must decide. Caller frees. */
X509_REQ *scep_fast_csr(const struct scep_ctx *ctx, const uint8_t *der, size_t len);

/* The reply's EnvelopedData to the requester (RSA key transport with
 * signer_key to signer_ias), holding plain, appended to out. Returns 0 or -1
 * (not an RSA key, malfunction). */
int scep_envelope_to_signer(const struct scep_request *req, const EVP_CIPHER *cipher,
                            const uint8_t *plain, size_t plen, struct util_buf *out);

#endif
