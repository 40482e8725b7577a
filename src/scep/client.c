/* client.c - the client side of SCEP (request building, reply parsing) for
 * tests, benchmarks and fuzz seeds. Uses OpenSSL's PKCS#7 code throughout. */
#include "ndesmock/scep.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int scep_nid_message_type, scep_nid_pki_status, scep_nid_fail_info,
    scep_nid_sender_nonce, scep_nid_recipient_nonce, scep_nid_transaction_id;

static int add_printable(PKCS7_SIGNER_INFO *si, int nid, const char *s)
{
    ASN1_STRING *v = ASN1_STRING_type_new(V_ASN1_PRINTABLESTRING);

    if (v == NULL || !ASN1_STRING_set(v, s, (int)strlen(s)) ||
        !PKCS7_add_signed_attribute(si, nid, V_ASN1_PRINTABLESTRING, v)) {
        ASN1_STRING_free(v);
        return 0;
    }
    return 1;
}

static int add_octets(PKCS7_SIGNER_INFO *si, int nid, const uint8_t *d, size_t n)
{
    ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();

    if (v == NULL || !ASN1_OCTET_STRING_set(v, d, (int)n) ||
        !PKCS7_add_signed_attribute(si, nid, V_ASN1_OCTET_STRING, v)) {
        ASN1_OCTET_STRING_free(v);
        return 0;
    }
    return 1;
}

int scep_build_request(const struct scep_build *b, struct util_buf *out)
{
    STACK_OF(X509) *rc = sk_X509_new_null();
    BIO *in = NULL, *bio = NULL;
    PKCS7 *env = NULL, *p7 = NULL;
    PKCS7_SIGNER_INFO *si;
    unsigned char *envder = NULL, *p;
    int envlen, l, i, ok = -1;
    char mt[8];

    if (rc == NULL)
        goto out;
    for (i = 0; i < b->nrecipients; i++)
        sk_X509_push(rc, b->recipients[i]);
    in = BIO_new_mem_buf(b->content, (int)b->content_len);
    env = PKCS7_encrypt(rc, in, b->cipher, PKCS7_BINARY);
    if (env == NULL || (envlen = i2d_PKCS7(env, &envder)) <= 0)
        goto out;

    p7 = PKCS7_new();
    if (p7 == NULL || !PKCS7_set_type(p7, NID_pkcs7_signed) ||
        !PKCS7_content_new(p7, NID_pkcs7_data))
        goto out;
    si = PKCS7_add_signature(p7, b->signer, b->signer_key, b->md);
    if (si == NULL || !PKCS7_add_certificate(p7, b->signer))
        goto out;
    snprintf(mt, sizeof(mt), "%d", b->msg_type);
    if (!PKCS7_add_signed_attribute(si, NID_pkcs9_contentType, V_ASN1_OBJECT,
                                    OBJ_nid2obj(NID_pkcs7_data)) ||
        !add_printable(si, scep_nid_message_type, mt) ||
        !add_printable(si, scep_nid_transaction_id, b->tid) ||
        !add_octets(si, scep_nid_sender_nonce, b->nonce, sizeof(b->nonce)))
        goto out;
    bio = PKCS7_dataInit(p7, NULL);
    if (bio == NULL || BIO_write(bio, envder, envlen) != envlen || !PKCS7_dataFinal(p7, bio))
        goto out;
    l = i2d_PKCS7(p7, NULL);
    if (l <= 0 || (p = util_buf_grow(out, (size_t)l)) == NULL)
        goto out;
    i2d_PKCS7(p7, &p);
    ok = 0;
out:
    ERR_clear_error();
    BIO_free_all(bio);
    BIO_free(in);
    PKCS7_free(env);
    PKCS7_free(p7);
    OPENSSL_free(envder);
    sk_X509_free(rc);
    return ok;
}

X509_REQ *scep_build_csr(EVP_PKEY *key, const char *cn, const char *challenge, const char *san,
                         const EVP_MD *md)
{
    X509_REQ *r = X509_REQ_new();
    X509_NAME *n = X509_NAME_new();

    if (r == NULL || n == NULL)
        goto fail;
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    if (!X509_REQ_set_subject_name(r, n) || !X509_REQ_set_pubkey(r, key))
        goto fail;
    if (challenge && !X509_REQ_add1_attr_by_NID(r, NID_pkcs9_challengePassword,
                                                MBSTRING_ASC, (const unsigned char *)challenge, -1))
        goto fail;
    if (san) {
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
        int ok = exts && ex && sk_X509_EXTENSION_push(exts, ex) && X509_REQ_add_extensions(r, exts);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        if (!ok)
            goto fail;
    }
    if (!X509_REQ_sign(r, key, md))
        goto fail;
    X509_NAME_free(n);
    return r;
fail:
    X509_NAME_free(n);
    X509_REQ_free(r);
    return NULL;
}

X509 *scep_build_selfsigned(EVP_PKEY *key, const char *cn)
{
    X509 *c = X509_new();
    X509_NAME *n = X509_NAME_new();

    if (c == NULL || n == NULL)
        goto fail;
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(c, n);
    X509_set_issuer_name(c, n);
    X509_gmtime_adj(X509_getm_notBefore(c), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c), 86400);
    if (!X509_set_pubkey(c, key) || !X509_sign(c, key, EVP_sha256()))
        goto fail;
    X509_NAME_free(n);
    return c;
fail:
    X509_NAME_free(n);
    X509_free(c);
    return NULL;
}

void scep_reply_clear(struct scep_reply *r)
{
    if (r == NULL)
        return;
    sk_X509_pop_free(r->certs, X509_free);
    memset(r, 0, sizeof(*r));
}

static int attr_int(PKCS7_SIGNER_INFO *si, int nid, long *v)
{
    ASN1_TYPE *t = PKCS7_get_signed_attribute(si, nid);
    char buf[32];
    int n;

    if (t == NULL || t->type != V_ASN1_PRINTABLESTRING)
        return 0;
    n = ASN1_STRING_length(t->value.asn1_string);
    if (n <= 0 || n >= (int)sizeof(buf))
        return 0;
    memcpy(buf, ASN1_STRING_get0_data(t->value.asn1_string), (size_t)n);
    buf[n] = '\0';
    *v = strtol(buf, NULL, 10);
    return 1;
}

int scep_parse_reply(const uint8_t *der, size_t len, X509 *ra_sign, X509 *req_cert,
                     EVP_PKEY *req_key, struct scep_reply *r)
{
    const unsigned char *p = der;
    PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len), *env = NULL, *inner = NULL;
    PKCS7_SIGNER_INFO *si;
    ASN1_TYPE *t;
    ASN1_OCTET_STRING *content;
    STACK_OF(X509) *certs = NULL;
    BIO *out = NULL;
    long v;
    int rc = -1, nid_scep_error = OBJ_txt2nid("1.3.6.1.4.1.311.21.33");

    memset(r, 0, sizeof(*r));
    r->status = r->fail_info = -1;
    if (p7 == NULL || !PKCS7_type_is_signed(p7) ||
        sk_PKCS7_SIGNER_INFO_num(PKCS7_get_signer_info(p7)) != 1)
        goto out;
    si = sk_PKCS7_SIGNER_INFO_value(PKCS7_get_signer_info(p7), 0);
    if (attr_int(si, scep_nid_message_type, &v))
        r->msg_type = (int)v;
    if (attr_int(si, scep_nid_pki_status, &v))
        r->status = (int)v;
    if (attr_int(si, scep_nid_fail_info, &v))
        r->fail_info = (int)v;
    if (nid_scep_error == NID_undef)
        nid_scep_error = OBJ_create("1.3.6.1.4.1.311.21.33", "scepError", "scepError");
    if (attr_int(si, nid_scep_error, &v)) {
        r->hresult = v;
        r->has_hresult = 1;
    }
    t = PKCS7_get_signed_attribute(si, scep_nid_transaction_id);
    if (t && t->type == V_ASN1_PRINTABLESTRING) {
        int n = ASN1_STRING_length(t->value.asn1_string);
        if (n > 128)
            n = 128;
        memcpy(r->tid, ASN1_STRING_get0_data(t->value.asn1_string), (size_t)n);
    }
    t = PKCS7_get_signed_attribute(si, scep_nid_recipient_nonce);
    if (t && t->type == V_ASN1_OCTET_STRING && t->value.octet_string->length <= 64) {
        r->recipient_nonce_len = (size_t)t->value.octet_string->length;
        memcpy(r->recipient_nonce, t->value.octet_string->data, r->recipient_nonce_len);
    }
    r->has_signing_time = PKCS7_get_signed_attribute(si, NID_pkcs9_signingTime) != NULL;
    r->sig_alg_nid = OBJ_obj2nid(si->digest_enc_alg->algorithm);
    r->digest_nid = OBJ_obj2nid(si->digest_alg->algorithm);
    content = (p7->d.sign->contents && PKCS7_type_is_data(p7->d.sign->contents))
                  ? p7->d.sign->contents->d.data : NULL;
    r->content_len = content ? (size_t)content->length : 0;

    certs = sk_X509_new_null();
    out = BIO_new(BIO_s_null());
    if (certs && out && sk_X509_push(certs, ra_sign))
        r->signature_ok = PKCS7_verify(p7, certs, NULL, NULL, out,
                                       PKCS7_NOVERIFY | PKCS7_NOCHAIN | PKCS7_BINARY |
                                           PKCS7_NOINTERN) == 1;
    BIO_free(out);
    out = NULL;
    rc = 0;
    if (r->status == 0 && content && req_key) {
        BUF_MEM *bm;
        p = content->data;
        env = d2i_PKCS7(NULL, &p, content->length);
        if (env == NULL || !PKCS7_type_is_enveloped(env) || env->d.enveloped == NULL)
            goto out;
        r->cipher_nid = OBJ_obj2nid(env->d.enveloped->enc_data->algorithm->algorithm);
        out = BIO_new(BIO_s_mem());
        if (out == NULL || PKCS7_decrypt(env, req_key, req_cert, out, PKCS7_BINARY) != 1)
            goto out;
        BIO_get_mem_ptr(out, &bm);
        p = (const unsigned char *)bm->data;
        inner = d2i_PKCS7(NULL, &p, (long)bm->length);
        if (inner && PKCS7_type_is_signed(inner) && inner->d.sign && inner->d.sign->cert) {
            int i;
            r->certs = sk_X509_new_null();
            for (i = 0; r->certs && i < sk_X509_num(inner->d.sign->cert); i++) {
                X509 *c = sk_X509_value(inner->d.sign->cert, i);
                X509_up_ref(c);
                sk_X509_push(r->certs, c);
            }
        }
    }
out:
    ERR_clear_error();
    sk_X509_free(certs);
    BIO_free(out);
    PKCS7_free(inner);
    PKCS7_free(env);
    PKCS7_free(p7);
    return rc;
}
