/* decode.c - pkiMessage decoding: SignedData -> EnvelopedData -> content. */
#include "ndesmock/scep.h"
#include "fast.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/core_names.h>
#include <openssl/pkcs7.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <string.h>

/* NIDs of the SCEP attributes, registered once by scep_ctx_init(). */
int scep_nid_message_type, scep_nid_pki_status, scep_nid_fail_info, scep_nid_sender_nonce,
    scep_nid_recipient_nonce, scep_nid_transaction_id;

const char *scep_decode_str(enum scep_decode d)
{
    switch (d) {
    case SCEP_DECODE_OK: return "ok";
    case SCEP_DECODE_MALFORMED: return "malformed";
    case SCEP_DECODE_BAD_SIGNATURE: return "bad-signature";
    case SCEP_DECODE_BAD_ALG: return "bad-alg";
    case SCEP_DECODE_UNDECRYPTABLE: return "undecryptable";
    case SCEP_DECODE_BAD_CONTENT: return "bad-content";
    }
    return "?";
}

void scep_request_clear(struct scep_request *req)
{
    if (req == NULL)
        return;
    X509_free(req->signer);
    OPENSSL_free(req->signer_cert);
    X509_NAME_free(req->signer_subject);
    EVP_PKEY_free(req->signer_key);
    OPENSSL_free(req->signer_ias);
    X509_REQ_free(req->csr);
    OPENSSL_free(req->inner);
    memset(req, 0, sizeof(*req));
}

static int digest_allowed(int nid)
{
    return nid == NID_sha1 || nid == NID_sha224 || nid == NID_sha256 || nid == NID_sha384 ||
           nid == NID_sha512;
}

static int cipher_allowed(int nid)
{
    return nid == NID_des_cbc || nid == NID_des_ede3_cbc || nid == NID_aes_128_cbc ||
           nid == NID_aes_192_cbc || nid == NID_aes_256_cbc;
}

static const ASN1_STRING *attr_string(PKCS7_SIGNER_INFO *si, int nid, int *type)
{
    ASN1_TYPE *t = PKCS7_get_signed_attribute(si, nid);

    if (t == NULL)
        return NULL;
    switch (t->type) {
    case V_ASN1_PRINTABLESTRING: case V_ASN1_UTF8STRING: case V_ASN1_IA5STRING:
    case V_ASN1_OCTET_STRING: case V_ASN1_T61STRING: case V_ASN1_BMPSTRING:
    case V_ASN1_VISIBLESTRING: case V_ASN1_UNIVERSALSTRING:
        if (type)
            *type = t->type;
        return t->value.asn1_string;
    default:
        return NULL;
    }
}

static void printable_copy(const uint8_t *in, size_t n, char *out, size_t cap)
{
    size_t i, o = 0;

    for (i = 0; i < n && o + 1 < cap; i++)
        out[o++] = (in[i] >= 0x20 && in[i] < 0x7f) ? (char)in[i] : '?';
    out[o] = '\0';
}

static void get_challenge(struct scep_request *req)
{
    int loc = X509_REQ_get_attr_by_NID(req->csr, NID_pkcs9_challengePassword, -1);
    X509_ATTRIBUTE *a;
    ASN1_TYPE *t;
    int n;

    if (loc < 0)
        return;
    a = X509_REQ_get_attr(req->csr, loc);
    t = a ? X509_ATTRIBUTE_get0_type(a, 0) : NULL;
    if (t == NULL || t->type == V_ASN1_BOOLEAN || t->type == V_ASN1_NULL ||
        t->type == V_ASN1_OBJECT || (t->type >= V_ASN1_SEQUENCE && t->type <= V_ASN1_SET))
        return;
    n = ASN1_STRING_length(t->value.asn1_string);
    if (n < 0 || (size_t)n >= sizeof(req->challenge))
        n = (int)sizeof(req->challenge) - 1;
    memcpy(req->challenge, ASN1_STRING_get0_data(t->value.asn1_string), (size_t)n);
    req->challenge[n] = '\0';
    req->has_challenge = 1;
}

/* The RecipientInfo addressed to cert (issuer and serial), or NULL. */
static PKCS7_RECIP_INFO *match_recipient(PKCS7 *env, X509 *cert)
{
    STACK_OF(PKCS7_RECIP_INFO) *ris = env->d.enveloped->recipientinfo;
    int i;

    for (i = 0; i < sk_PKCS7_RECIP_INFO_num(ris); i++) {
        PKCS7_RECIP_INFO *ri = sk_PKCS7_RECIP_INFO_value(ris, i);
        if (ri->issuer_and_serial &&
            X509_NAME_cmp(ri->issuer_and_serial->issuer, X509_get_issuer_name(cert)) == 0 &&
            ASN1_INTEGER_cmp(ri->issuer_and_serial->serial, X509_get0_serialNumber(cert)) == 0)
            return ri;
    }
    return NULL;
}

static const EVP_CIPHER *content_cipher(const struct scep_ctx *ctx, int nid)
{
    switch (nid) {
    case NID_des_ede3_cbc: return ctx->algs.des3;
    case NID_aes_128_cbc: return ctx->algs.aes128;
    case NID_aes_192_cbc: return ctx->algs.aes192;
    case NID_aes_256_cbc: return ctx->algs.aes256;
    default: return NULL;
    }
}

/* Opens the EnvelopedData through the RecipientInfo ri (ours): the
 * content-encryption key with the RA encryption key (RSA PKCS#1 v1.5), then
 * the content. On success *inner is OPENSSL_malloc'd (caller frees) and 0 is
 * returned; -1 on any failure.
 * PKCS7_decrypt() is not used: when the key does not decrypt, or decrypts to
 * the wrong length, it goes on with a random key (its defence against padding
 * oracles), so one and the same request was answered "Bad Data" or "not a
 * PKCS#10 request" at random (found by fuzz_envelope's differential oracle).
 * NDES fails the decryption; so does this, every time. */
static int open_envelope(const struct scep_ctx *ctx, PKCS7 *env, PKCS7_RECIP_INFO *ri,
                         uint8_t **inner, size_t *inner_len)
{
    PKCS7_ENC_CONTENT *ec = env->d.enveloped->enc_data;
    int nid = OBJ_obj2nid(ec->algorithm->algorithm);
    /* single DES (micromdm's client, old devices) is decrypted by util: see oldcrypto.c */
    int des = nid == NID_des_cbc;
    const EVP_CIPHER *c = des ? NULL : content_cipher(ctx, nid);
    EVP_PKEY_CTX *pctx = NULL;
    EVP_CIPHER_CTX *cctx = NULL;
    unsigned char ek[1024];
    size_t eklen = sizeof(ek);
    uint8_t *buf = NULL;
    int n1 = 0, n2 = 0, rc = -1;

    *inner = NULL;
    *inner_len = 0;
    if ((c == NULL && !des) || ec->enc_data == NULL || ri->enc_key == NULL ||
        EVP_PKEY_get_size(ctx->pki->ra_enc_key) > (int)sizeof(ek))
        goto out;
    pctx = EVP_PKEY_CTX_new_from_pkey(NULL, ctx->pki->ra_enc_key, NULL);
    if (pctx == NULL || EVP_PKEY_decrypt_init(pctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)
        goto out;
#ifdef OSSL_ASYM_CIPHER_PARAM_IMPLICIT_REJECTION
    /* OpenSSL 3.2+ would return a synthetic key for bad padding: fail instead. */
    {
        unsigned int zero = 0;
        OSSL_PARAM prm[2] = {
            OSSL_PARAM_construct_uint(OSSL_ASYM_CIPHER_PARAM_IMPLICIT_REJECTION, &zero),
            OSSL_PARAM_END};
        if (EVP_PKEY_CTX_set_params(pctx, prm) <= 0)
            goto out;
    }
#endif
    if (EVP_PKEY_decrypt(pctx, ek, &eklen, ASN1_STRING_get0_data(ri->enc_key),
                         (size_t)ASN1_STRING_length(ri->enc_key)) <= 0 ||
        eklen != (des ? 8 : (size_t)EVP_CIPHER_get_key_length(c)))
        goto out;
    if (des) {
        /* the IV as EVP_CIPHER_asn1_to_param reads it: an OCTET STRING of 8 bytes */
        unsigned char iv[8];
        size_t len = (size_t)ASN1_STRING_length(ec->enc_data);
        long n;
        if (ec->algorithm->parameter == NULL ||
            ASN1_TYPE_get_octetstring(ec->algorithm->parameter, iv, sizeof(iv)) != 8 ||
            (buf = OPENSSL_malloc(len ? len : 1)) == NULL ||
            (n = util_des_cbc_decrypt(ek, iv, ASN1_STRING_get0_data(ec->enc_data), len, buf)) < 0)
            goto out;
        *inner = buf;
        *inner_len = (size_t)n;
        buf = NULL;
        rc = 0;
        goto out;
    }
    cctx = EVP_CIPHER_CTX_new();
    if (cctx == NULL || !EVP_DecryptInit_ex2(cctx, c, NULL, NULL, NULL) ||
        EVP_CIPHER_asn1_to_param(cctx, ec->algorithm->parameter) <= 0 ||
        !EVP_DecryptInit_ex2(cctx, NULL, ek, NULL, NULL))
        goto out;
    buf = OPENSSL_malloc((size_t)ASN1_STRING_length(ec->enc_data) + EVP_MAX_BLOCK_LENGTH);
    if (buf == NULL ||
        !EVP_DecryptUpdate(cctx, buf, &n1, ASN1_STRING_get0_data(ec->enc_data),
                           ASN1_STRING_length(ec->enc_data)) ||
        !EVP_DecryptFinal_ex(cctx, buf + n1, &n2))
        goto out;
    *inner = buf;
    *inner_len = (size_t)n1 + (size_t)n2;
    buf = NULL;
    rc = 0;
out:
    OPENSSL_cleanse(ek, sizeof(ek));
    OPENSSL_free(buf);
    EVP_CIPHER_CTX_free(cctx);
    EVP_PKEY_CTX_free(pctx);
    return rc;
}

#define WHY(...) snprintf(why, whylen, __VA_ARGS__)

X509 *scep_request_signer(struct scep_request *req)
{
    const unsigned char *p = req->signer_cert;

    if (req->signer == NULL && req->signer_cert != NULL) {
        req->signer = d2i_X509(NULL, &p, (long)req->signer_cert_len);
        ERR_clear_error();
    }
    return req->signer;
}

/* The signer fields both paths provide, from the signer's X509. */
static int signer_fields(struct scep_request *req)
{
    unsigned int hl = sizeof(req->signer_keyhash);

    if (scep_ias_der(X509_get_issuer_name(req->signer), X509_get0_serialNumber(req->signer),
                     &req->signer_ias, &req->signer_ias_len) != 0 ||
        (req->signer_key = X509_get_pubkey(req->signer)) == NULL ||
        X509_pubkey_digest(req->signer, EVP_sha1(), req->signer_keyhash, &hl) != 1)
        return -1;
    return 0;
}

/* The SCEP attributes of the SignerInfo into req. */
static enum scep_decode read_attrs(PKCS7_SIGNER_INFO *si, struct scep_request *req, char *why,
                                   size_t whylen)
{
    const ASN1_STRING *s;
    int type = 0;
    char num[8];

    s = attr_string(si, scep_nid_transaction_id, &type);
    if (s == NULL || ASN1_STRING_length(s) <= 0 ||
        (size_t)ASN1_STRING_length(s) > sizeof(req->tid)) {
        WHY("missing or oversized transactionID");
        return SCEP_DECODE_MALFORMED;
    }
    req->tid_len = (size_t)ASN1_STRING_length(s);
    memcpy(req->tid, ASN1_STRING_get0_data(s), req->tid_len);
    req->tid_type = type;
    printable_copy(req->tid, req->tid_len, req->tid_print, sizeof(req->tid_print));

    s = attr_string(si, scep_nid_sender_nonce, NULL);
    if (s == NULL || ASN1_STRING_length(s) <= 0 ||
        (size_t)ASN1_STRING_length(s) > sizeof(req->sender_nonce)) {
        WHY("missing or oversized senderNonce");
        return SCEP_DECODE_MALFORMED;
    }
    req->sender_nonce_len = (size_t)ASN1_STRING_length(s);
    memcpy(req->sender_nonce, ASN1_STRING_get0_data(s), req->sender_nonce_len);

    s = attr_string(si, scep_nid_message_type, NULL);
    if (s == NULL || ASN1_STRING_length(s) <= 0 || ASN1_STRING_length(s) >= (int)sizeof(num)) {
        WHY("missing messageType");
        return SCEP_DECODE_MALFORMED;
    }
    memcpy(num, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
    num[ASN1_STRING_length(s)] = '\0';
    req->msg_type = atoi(num);

    req->digest_nid = OBJ_obj2nid(si->digest_alg->algorithm);
    req->sig_alg_nid = OBJ_obj2nid(si->digest_enc_alg->algorithm);
    return SCEP_DECODE_OK;
}

static ASN1_OCTET_STRING *signed_content(PKCS7 *p7)
{
    return (p7->d.sign->contents && PKCS7_type_is_data(p7->d.sign->contents))
               ? p7->d.sign->contents->d.data
               : NULL;
}

/* The SignedData layer with the certificates kept away from d2i_X509 (see
 * fast.h). Returns 1 with req filled and the signature verified, *p7out
 * holding the message; 0 when the OpenSSL path must decide (req untouched
 * but for fields that path sets again). */
static int signed_layer_fast(const struct scep_ctx *ctx, const uint8_t *der, size_t len,
                             struct scep_request *req, PKCS7 **p7out, const uint8_t **cdata,
                             size_t *clen)
{
    struct util_buf rest;
    const uint8_t *certs;
    const unsigned char *p;
    size_t certs_len;
    PKCS7 *p7 = NULL;
    PKCS7_SIGNER_INFO *si;
    ASN1_OCTET_STRING *content;
    char why[8];
    int ok = 0;

    util_buf_init(&rest);
    if (scep_fast_split(der, len, &rest, &certs, &certs_len) != 0)
        goto out;
    p = rest.data;
    p7 = d2i_PKCS7(NULL, &p, (long)rest.len);
    /* With the certificates spliced out the copy must have none: a second [0]
     * would otherwise be read as the certificates of a message OpenSSL refuses. */
    if (p7 == NULL || !PKCS7_type_is_signed(p7) || p7->d.sign == NULL ||
        p7->d.sign->cert != NULL || sk_PKCS7_SIGNER_INFO_num(PKCS7_get_signer_info(p7)) != 1)
        goto out;
    si = sk_PKCS7_SIGNER_INFO_value(PKCS7_get_signer_info(p7), 0);
    if (read_attrs(si, req, why, sizeof(why)) != SCEP_DECODE_OK ||
        !digest_allowed(req->digest_nid) || (content = signed_content(p7)) == NULL ||
        content->length <= 0 ||
        !scep_fast_signer(ctx, certs, certs_len, si->issuer_and_serial->issuer,
                          si->issuer_and_serial->serial, req) ||
        !scep_fast_verify(p7, si, req->signer_key))
        goto out;
    req->fast = 1;
    *cdata = content->data;
    *clen = (size_t)content->length;
    *p7out = p7;
    p7 = NULL;
    ok = 1;
out:
    util_buf_free(&rest);
    PKCS7_free(p7);
    ERR_clear_error();
    return ok;
}

/* The SignedData layer through OpenSSL's BER parser: every shape the fast
 * path leaves, and the reasons for every failure. On OK, *p7 holds the
 * message and *content points into it. */
static enum scep_decode signed_layer(const uint8_t *der, size_t len, struct scep_request *req,
                                     PKCS7 **p7out, const uint8_t **cdata, size_t *clen,
                                     char *why, size_t whylen)
{
    const unsigned char *p = der;
    PKCS7 *p7;
    PKCS7_SIGNER_INFO *si;
    STACK_OF(PKCS7_SIGNER_INFO) *sis;
    ASN1_OCTET_STRING *content;
    BIO *out = NULL;
    enum scep_decode rc = SCEP_DECODE_MALFORMED;

    *p7out = p7 = d2i_PKCS7(NULL, &p, (long)len);
    if (p7 == NULL || !PKCS7_type_is_signed(p7)) {
        WHY("not a CMS SignedData");
        goto out;
    }
    sis = PKCS7_get_signer_info(p7);
    if (sk_PKCS7_SIGNER_INFO_num(sis) < 1) {
        WHY("SignedData without SignerInfo");
        goto out;
    }
    si = sk_PKCS7_SIGNER_INFO_value(sis, 0);
    if ((rc = read_attrs(si, req, why, whylen)) != SCEP_DECODE_OK)
        goto out;
    rc = SCEP_DECODE_MALFORMED;

    /* From here on a CertRep can be built: failures are SCEP FAILUREs. */
    req->signer = X509_find_by_issuer_and_serial(p7->d.sign->cert, si->issuer_and_serial->issuer,
                                                 si->issuer_and_serial->serial);
    if (req->signer == NULL) {
        rc = SCEP_DECODE_BAD_SIGNATURE;
        WHY("no signer certificate in the message");
        goto out;
    }
    X509_up_ref(req->signer);
    if (!digest_allowed(req->digest_nid)) {
        rc = SCEP_DECODE_BAD_ALG;
        WHY("digest %s not supported", OBJ_nid2sn(req->digest_nid));
        goto out;
    }
    content = signed_content(p7);
    if (content == NULL || content->length <= 0) {
        rc = SCEP_DECODE_BAD_CONTENT;
        WHY("SignedData has no content");
        goto out;
    }
    if (signer_fields(req) != 0) { /* a key PKCS7_verify could not use either */
        rc = SCEP_DECODE_BAD_SIGNATURE;
        WHY("unusable signer certificate");
        goto out;
    }
    /* Requesters sign with throw-away self-signed certificates: check the
     * signature against the certificate in the message, not a chain. */
    out = BIO_new(BIO_s_null());
    if (out == NULL || PKCS7_verify(p7, NULL, NULL, NULL, out,
                                    PKCS7_NOVERIFY | PKCS7_NOCHAIN | PKCS7_BINARY) != 1) {
        unsigned long e = ERR_peek_last_error();
        rc = SCEP_DECODE_BAD_SIGNATURE;
        WHY("signature check failed: %s", e ? ERR_reason_error_string(e) : "?");
        goto out;
    }
    *cdata = content->data;
    *clen = (size_t)content->length;
    rc = SCEP_DECODE_OK;
out:
    BIO_free(out);
    return rc;
}

enum scep_decode scep_request_decode(const struct scep_ctx *ctx, const uint8_t *der, size_t len,
                                     struct scep_request *req, char *why, size_t whylen)
{
    const unsigned char *p;
    PKCS7 *p7 = NULL, *env = NULL;
    PKCS7_RECIP_INFO *ri;
    enum scep_decode rc;
    const uint8_t *cdata = NULL;
    size_t clen = 0;

    memset(req, 0, sizeof(*req));
    req->msg_type = SCEP_MSG_NONE;
    if (len > 0x7fffffff)
        len = 0x7fffffff;
    if (ctx->no_fast || !signed_layer_fast(ctx, der, len, req, &p7, &cdata, &clen)) {
        scep_request_clear(req); /* what the fast attempt set, the OpenSSL path sets again */
        req->msg_type = SCEP_MSG_NONE;
        rc = signed_layer(der, len, req, &p7, &cdata, &clen, why, whylen);
        if (rc != SCEP_DECODE_OK)
            goto out;
    }

    p = cdata;
    env = d2i_PKCS7(NULL, &p, (long)clen);
    /* The [0] content of a ContentInfo is OPTIONAL in OpenSSL's template: an
     * envelopedData OID alone decodes with d.enveloped == NULL. */
    if (env == NULL || !PKCS7_type_is_enveloped(env) || env->d.enveloped == NULL) {
        rc = SCEP_DECODE_UNDECRYPTABLE;
        WHY("content is not an EnvelopedData");
        goto out;
    }
    req->cipher_nid = OBJ_obj2nid(env->d.enveloped->enc_data->algorithm->algorithm);
    if (!cipher_allowed(req->cipher_nid)) {
        rc = SCEP_DECODE_BAD_ALG;
        WHY("content cipher %s not supported", OBJ_nid2sn(req->cipher_nid));
        goto out;
    }
    ri = match_recipient(env, ctx->pki->ra_enc_cert);
    if (ri == NULL) {
        rc = SCEP_DECODE_UNDECRYPTABLE;
        WHY("no RecipientInfo for the RA encryption certificate (0x80090005 Bad Data)");
        goto out;
    }
    if (open_envelope(ctx, env, ri, &req->inner, &req->inner_len) != 0) {
        rc = SCEP_DECODE_UNDECRYPTABLE;
        WHY("cannot decrypt the client's PKCS7 message (0x80090005 Bad Data)");
        goto out;
    }
    if (req->inner_len == 0) {
        rc = SCEP_DECODE_BAD_CONTENT;
        WHY("empty messageData");
        goto out;
    }

    if (req->msg_type == SCEP_MSG_PKCSREQ || req->msg_type == SCEP_MSG_RENEWALREQ) {
        EVP_PKEY *pk;
        /* RSA requests in DER: checked without the decoder framework; the
         * rest, and every failure, through OpenSSL's parser. */
        req->csr = ctx->no_fast ? NULL : scep_fast_csr(ctx, req->inner, req->inner_len);
        if (req->csr == NULL) {
            p = req->inner;
            req->csr = d2i_X509_REQ(NULL, &p, (long)req->inner_len);
            if (req->csr == NULL) {
                rc = SCEP_DECODE_BAD_CONTENT;
                WHY("messageData is not a PKCS#10 request");
                goto out;
            }
            pk = X509_REQ_get0_pubkey(req->csr);
            if (pk == NULL || X509_REQ_verify(req->csr, pk) != 1) {
                rc = SCEP_DECODE_BAD_SIGNATURE;
                WHY("PKCS#10 self-signature does not verify");
                goto out;
            }
        }
        get_challenge(req);
    }
    rc = SCEP_DECODE_OK;
    WHY("ok");
out:
    ERR_clear_error();
    PKCS7_free(env);
    PKCS7_free(p7);
    return rc;
}

long scep_decode_get_message(const char *escaped, size_t len, uint8_t *out, size_t outcap)
{
    char *tmp;
    long n, r;

    tmp = OPENSSL_malloc(len + 1);
    if (tmp == NULL)
        return -1;
    n = util_percent_decode(escaped, len, tmp, len + 1);
    r = n < 0 ? -1 : util_base64_decode(tmp, (size_t)n, out, outcap);
    OPENSSL_free(tmp);
    return r;
}
