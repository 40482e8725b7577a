/* scep_th.h - building SCEP requests for the scep/certrep suites (on top of th.h). */
#ifndef SCEP_TH_H
#define SCEP_TH_H

#include "th.h"

#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#define TH_TID "9CB1CB998B7FCC0142297B492988AFB4"

/* registered by scep_ctx_init() (src/scep/decode.c) */
extern int scep_nid_message_type, scep_nid_pki_status, scep_nid_fail_info,
    scep_nid_sender_nonce, scep_nid_recipient_nonce, scep_nid_transaction_id;

/* One request to build; th_req_defaults() fills a PKCSReq from env. */
struct th_req {
    int msg_type;
    const char *cipher;          /* OpenSSL name */
    const char *md;              /* OpenSSL name */
    X509 *signer;
    EVP_PKEY *signer_key;
    X509 *recipients[3];
    int nrecipients;
    const uint8_t *content;      /* NULL: a CSR from the fields below */
    size_t content_len;
    const char *tid;
    uint8_t nonce[16];
    const char *cn;              /* CSR subject CN */
    const char *challenge;       /* NULL: none */
    const char *san;             /* NULL: none */
};

static TH_UNUSED void th_req_defaults(struct th_req *r, struct th_env *e)
{
    int i;

    memset(r, 0, sizeof(*r));
    r->msg_type = SCEP_MSG_PKCSREQ;
    r->cipher = "DES-EDE3-CBC";
    r->md = "SHA256";
    r->signer = e->client_cert;
    r->signer_key = e->client_key;
    r->recipients[0] = e->pki.ra_enc_cert;
    r->nrecipients = 1;
    r->tid = TH_TID;
    for (i = 0; i < 16; i++)
        r->nonce[i] = (uint8_t)(0xA0 + i);
    r->cn = "device.example";
    r->challenge = TH_CHALLENGE;
    r->san = "DNS:device.example,DNS:www.device.example";
}

/* DER of the CSR described by r (malloc'd). */
static TH_UNUSED uint8_t *th_csr_der(const struct th_req *r, size_t *len)
{
    X509_REQ *csr = scep_build_csr(r->signer_key, r->cn, r->challenge, r->san, EVP_sha256());
    unsigned char *der = NULL;
    int l;

    cr_assert_not_null(csr);
    l = i2d_X509_REQ(csr, &der);
    cr_assert_gt(l, 0);
    X509_REQ_free(csr);
    *len = (size_t)l;
    return der;
}

/* DER IssuerAndSerialNumber (malloc'd). */
static TH_UNUSED uint8_t *th_ias_der(X509_NAME *issuer, const ASN1_INTEGER *serial, size_t *len)
{
    PKCS7_ISSUER_AND_SERIAL ias;
    unsigned char *der = NULL;
    int l;

    ias.issuer = issuer;
    ias.serial = (ASN1_INTEGER *)serial;
    l = i2d_PKCS7_ISSUER_AND_SERIAL(&ias, &der);
    cr_assert_gt(l, 0);
    *len = (size_t)l;
    return der;
}

/* Encodes the pkiMessage into out (appended). */
static TH_UNUSED void th_build(const struct th_req *r, struct util_buf *out)
{
    struct scep_build b;
    EVP_MD *md = EVP_MD_fetch(NULL, r->md, NULL);
    EVP_CIPHER *ci = EVP_CIPHER_fetch(NULL, r->cipher, NULL);
    uint8_t *csr = NULL;
    size_t csrlen = 0;

    cr_assert_not_null(md, "digest %s unavailable", r->md);
    cr_assert_not_null(ci, "cipher %s unavailable", r->cipher);
    memset(&b, 0, sizeof(b));
    b.msg_type = r->msg_type;
    b.signer = r->signer;
    b.signer_key = r->signer_key;
    b.md = md;
    b.cipher = ci;
    b.recipients = r->recipients;
    b.nrecipients = r->nrecipients;
    if (r->content) {
        b.content = r->content;
        b.content_len = r->content_len;
    } else {
        csr = th_csr_der(r, &csrlen);
        b.content = csr;
        b.content_len = csrlen;
    }
    b.tid = r->tid;
    memcpy(b.nonce, r->nonce, 16);
    cr_assert_eq(scep_build_request(&b, out), 0, "scep_build_request failed");
    cr_assert_gt(out->len, 0);
    OPENSSL_free(csr);
    EVP_MD_free(md);
    EVP_CIPHER_free(ci);
}

/* Runs a PKIOperation and parses its CertRep as the requester would. */
static TH_UNUSED void th_run(struct th_env *e, const struct util_buf *msg, struct scep_outcome *out,
                             struct scep_reply *rep, X509 *req_cert, EVP_PKEY *req_key)
{
    scep_pkioperation(&e->ctx, msg->data, msg->len, out);
    cr_assert_eq(out->kind, SCEP_OUT_CERTREP, "no CertRep: %s", out->reason);
    cr_assert_gt(out->body.len, 0);
    cr_assert_eq(scep_parse_reply(out->body.data, out->body.len, e->pki.ra_sign_cert,
                                  req_cert ? req_cert : e->client_cert,
                                  req_key ? req_key : e->client_key, rep),
                 0, "CertRep does not parse");
    cr_assert_eq(rep->signature_ok, 1, "CertRep signature does not verify with the RA cert");
    cr_assert_eq(rep->msg_type, SCEP_MSG_CERTREP);
}

#endif
