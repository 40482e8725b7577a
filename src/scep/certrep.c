/* certrep.c - CertRep SignedData written by hand in NDES's shape: DER-sorted
 * signed attributes, no signingTime, digest with NULL parameters, signature
 * algorithm rsaEncryption, content one zero byte unless SUCCESS. */
#include "ndesmock/scep.h"
#include "fast.h"
#include "oids.h"

#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ATTRS 10

static int digest_oid(int nid, const uint8_t **oid, size_t *len)
{
    switch (nid) {
    case NID_sha1: *oid = OID_SHA1; *len = sizeof(OID_SHA1); return 0;
    case NID_sha256: *oid = OID_SHA256; *len = sizeof(OID_SHA256); return 0;
    case NID_sha384: *oid = OID_SHA384; *len = sizeof(OID_SHA384); return 0;
    case NID_sha512: *oid = OID_SHA512; *len = sizeof(OID_SHA512); return 0;
    }
    return -1;
}

static void alg_id(struct util_buf *b, const uint8_t *oid, size_t len)
{
    size_t at = b->len;

    der_oid(b, oid, len);
    der_null(b);
    der_wrap(b, at, 0x30);
}

/* SEQUENCE { OID, SET { value TLV } } */
static void attribute(struct util_buf *b, const uint8_t *oid, size_t olen, uint8_t vtag,
                      const void *val, size_t vlen)
{
    size_t at = b->len, set;

    der_oid(b, oid, olen);
    set = b->len;
    der_tlv(b, vtag, val, vlen);
    der_wrap(b, set, 0x31);
    der_wrap(b, at, 0x30);
}

struct span {
    size_t off, len;
    const uint8_t *base;
};

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->base + x->off, y->base + y->off, n);

    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static const EVP_CIPHER *reply_cipher(const struct scep_ctx *ctx, int nid, int force_des3)
{
    if (force_des3)
        return ctx->algs.des3;
    switch (nid) {
    case NID_aes_128_cbc: return ctx->algs.aes128;
    case NID_aes_192_cbc: return ctx->algs.aes192;
    case NID_aes_256_cbc: return ctx->algs.aes256;
    default: return ctx->algs.des3; /* never single DES in a reply */
    }
}

/* EnvelopedData, to the requester's certificate, holding a certs-only PKCS#7. */
static int envelope(const struct scep_ctx *ctx, const struct scep_request *req, X509 *issued,
                    int force_des3, struct util_buf *out)
{
    X509 *certs[3];
    int n = 0, rc;
    uint8_t *co = NULL;
    size_t colen;

    certs[n++] = issued;
    if (ctx->cfg->reply.include_ca_in_reply) {
        certs[n++] = ctx->pki->ca_cert;
        if (ctx->pki->has_intermediate)
            certs[n++] = ctx->pki->root_cert;
    }
    if (pki_certs_only_der(certs, n, &co, &colen) != 0)
        return -1;
    rc = scep_envelope_to_signer(req, reply_cipher(ctx, req->cipher_nid, force_des3), co, colen,
                                 out);
    free(co);
    return rc;
}

int scep_certrep_build(const struct scep_ctx *ctx, const struct scep_request *req, int status,
                       int fail_info, long hresult, X509 *issued, struct util_buf *out)
{
    return scep_certrep_build_ex(ctx, req, status, fail_info, hresult, issued, NULL, out);
}

int scep_certrep_build_ex(const struct scep_ctx *ctx, const struct scep_request *req, int status,
                          int fail_info, long hresult, X509 *issued,
                          const struct scep_opts *opts, struct util_buf *out)
{
    struct util_buf content, attrs, tbs, sig;
    struct span sp[MAX_ATTRS];
    int nsp = 0, i, rc = -1;
    const EVP_MD *md = opts && opts->md ? opts->md : ctx->algs.md_reply;
    const uint8_t *doid;
    size_t dlen, at, sd, si, siglen = 0;
    uint8_t mdv[EVP_MAX_MD_SIZE], nonce[16];
    unsigned int mdlen = 0;
    char sbuf[24];
    EVP_MD_CTX *mctx = NULL;

    util_buf_init(&content);
    util_buf_init(&attrs);
    util_buf_init(&tbs);
    util_buf_init(&sig);
    if (digest_oid(EVP_MD_get_type(md), &doid, &dlen) != 0)
        goto out;

    if (status == SCEP_STATUS_SUCCESS) {
        if (issued == NULL || envelope(ctx, req, issued, opts && opts->force_des3, &content) != 0)
            goto out;
    } else {
        static const uint8_t zero = 0;
        util_buf_append(&content, &zero, 1);
    }
    if (content.failed || !EVP_Digest(content.data, content.len, mdv, &mdlen, md, NULL))
        goto out;
    RAND_bytes(nonce, sizeof(nonce));

#define ADD(...)                                       \
    do {                                               \
        sp[nsp].off = attrs.len;                       \
        attribute(&attrs, __VA_ARGS__);                \
        sp[nsp].len = attrs.len - sp[nsp].off;         \
        nsp++;                                         \
    } while (0)
    ADD(OID_MESSAGE_TYPE, sizeof(OID_MESSAGE_TYPE), 0x13, "3", 1);
    snprintf(sbuf, sizeof(sbuf), "%d", status);
    ADD(OID_PKI_STATUS, sizeof(OID_PKI_STATUS), 0x13, sbuf, strlen(sbuf));
    if (status == SCEP_STATUS_FAILURE) {
        snprintf(sbuf, sizeof(sbuf), "%d", fail_info < 0 ? SCEP_FAIL_BADREQUEST : fail_info);
        ADD(OID_FAIL_INFO, sizeof(OID_FAIL_INFO), 0x13, sbuf, strlen(sbuf));
        if (hresult != 0) {
            snprintf(sbuf, sizeof(sbuf), "%ld", hresult);
            ADD(OID_MS_SCEP_ERROR, sizeof(OID_MS_SCEP_ERROR), 0x13, sbuf, strlen(sbuf));
        }
    }
    {
        size_t a0 = attrs.len, set;
        der_oid(&attrs, OID_CONTENT_TYPE, sizeof(OID_CONTENT_TYPE));
        set = attrs.len;
        der_oid(&attrs, OID_DATA, sizeof(OID_DATA));
        der_wrap(&attrs, set, 0x31);
        der_wrap(&attrs, a0, 0x30);
        sp[nsp].off = a0;
        sp[nsp].len = attrs.len - a0;
        nsp++;
    }
    ADD(OID_SENDER_NONCE, sizeof(OID_SENDER_NONCE), 0x04, nonce, sizeof(nonce));
    ADD(OID_RECIPIENT_NONCE, sizeof(OID_RECIPIENT_NONCE), 0x04, req->sender_nonce,
        req->sender_nonce_len);
    ADD(OID_MESSAGE_DIGEST, sizeof(OID_MESSAGE_DIGEST), 0x04, mdv, mdlen);
    ADD(OID_TRANSACTION_ID, sizeof(OID_TRANSACTION_ID),
        (uint8_t)(req->tid_type ? req->tid_type : 0x13), req->tid, req->tid_len);
#undef ADD
    if (attrs.failed)
        goto out;
    for (i = 0; i < nsp; i++)
        sp[i].base = attrs.data;
    qsort(sp, (size_t)nsp, sizeof(sp[0]), span_cmp);

    /* The signature covers the attributes encoded as a SET OF (tag 0x31). */
    der_header(&tbs, 0x31, attrs.len);
    for (i = 0; i < nsp; i++)
        util_buf_append(&tbs, attrs.data + sp[i].off, sp[i].len);
    if (tbs.failed)
        goto out;
    mctx = EVP_MD_CTX_new();
    if (mctx == NULL ||
        EVP_DigestSignInit(mctx, NULL, md, NULL, ctx->pki->ra_sign_key) != 1 ||
        EVP_DigestSign(mctx, NULL, &siglen, tbs.data, tbs.len) != 1 ||
        util_buf_grow(&sig, siglen) == NULL ||
        EVP_DigestSign(mctx, sig.data, &siglen, tbs.data, tbs.len) != 1)
        goto out;
    sig.len = siglen;

    /* ContentInfo { signedData, [0] SignedData } */
    at = out->len;
    der_oid(out, OID_SIGNED_DATA, sizeof(OID_SIGNED_DATA));
    sd = out->len;
    der_int_small(out, 1);
    {
        size_t set = out->len;
        alg_id(out, doid, dlen);
        der_wrap(out, set, 0x31);
    }
    {
        size_t eci = out->len, ex;
        der_oid(out, OID_DATA, sizeof(OID_DATA));
        ex = out->len;
        der_tlv(out, 0x04, content.data, content.len);
        der_wrap(out, ex, 0xa0);
        der_wrap(out, eci, 0x30);
    }
    if (status == SCEP_STATUS_SUCCESS ? ctx->cfg->reply.certs_in_success
                                      : ctx->cfg->reply.certs_in_failure)
        der_tlv(out, 0xa0, ctx->pki->ra_sign_der, ctx->pki->ra_sign_len);
    si = out->len;
    der_int_small(out, 1);
    util_buf_append(out, ctx->pki->ra_sign_ias, ctx->pki->ra_sign_ias_len);
    alg_id(out, doid, dlen);
    der_header(out, 0xa0, attrs.len); /* [0] IMPLICIT signedAttrs */
    util_buf_append(out, tbs.data + (tbs.len - attrs.len), attrs.len);
    alg_id(out, OID_RSA_ENCRYPTION, sizeof(OID_RSA_ENCRYPTION));
    der_tlv(out, 0x04, sig.data, sig.len);
    der_wrap(out, si, 0x30);
    der_wrap(out, si, 0x31);
    der_wrap(out, sd, 0x30);
    der_wrap(out, sd, 0xa0);
    der_wrap(out, at, 0x30);
    rc = out->failed ? -1 : 0;
out:
    ERR_clear_error();
    EVP_MD_CTX_free(mctx);
    util_buf_free(&content);
    util_buf_free(&attrs);
    util_buf_free(&tbs);
    util_buf_free(&sig);
    return rc;
}
