/* fast.c - DER fast path for the SignedData and PKCS#10 layers (see fast.h).
 * Uses OpenSSL's low-level RSA calls (d2i_RSAPublicKey, RSA_verify,
 * EVP_PKEY_assign_RSA), deprecated in 3.0 but the only way to use a public
 * key without the decoder framework. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "fast.h"
#include "oids.h"

#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#define IS(t, oid) der_is((t), (oid), sizeof(oid))

/* SubjectPublicKeyInfo: algorithm OID and the BIT STRING (no unused bits). */
static int spki_view(const struct der_tlv *spki, struct der_tlv *alg_oid, struct der_tlv *bits)
{
    struct der_span s = der_inner(spki), a;
    struct der_tlv alg;

    if (der_read_tag(&s, 0x30, &alg) != 0 || der_read_tag(&s, 0x03, bits) != 0 || s.len != 0)
        return -1;
    a = der_inner(&alg);
    if (der_read_tag(&a, 0x06, alg_oid) != 0 || bits->len < 2 || bits->val[0] != 0)
        return -1;
    return 0;
}

/* An RSA public key as a legacy EVP_PKEY (no decoder); NULL if not RSA. */
static EVP_PKEY *rsa_key(const struct der_tlv *alg_oid, const struct der_tlv *bits)
{
    const unsigned char *p = bits->val + 1;
    RSA *r;
    EVP_PKEY *k = NULL;

    if (!IS(alg_oid, OID_RSA_ENCRYPTION))
        return NULL;
    r = d2i_RSAPublicKey(NULL, &p, (long)(bits->len - 1));
    if (r == NULL || p != bits->val + bits->len || (k = EVP_PKEY_new()) == NULL ||
        EVP_PKEY_assign_RSA(k, r) != 1) {
        RSA_free(r);
        EVP_PKEY_free(k);
        return NULL;
    }
    return k; /* owns r */
}

/* AlgorithmIdentifier of an RSA PKCS#1 v1.5 signature -> its NID and, for the
 * sha*WithRSAEncryption forms, the digest NID (NID_undef for rsaEncryption). */
static int rsa_sig_alg(const struct der_tlv *algid, int *digest_nid)
{
    struct der_span s = der_inner(algid);
    struct der_tlv oid;

    *digest_nid = NID_undef;
    if (der_read_tag(&s, 0x06, &oid) != 0)
        return NID_undef;
    if (IS(&oid, OID_RSA_ENCRYPTION)) return NID_rsaEncryption;
    if (IS(&oid, OID_SHA1_RSA)) { *digest_nid = NID_sha1; return NID_sha1WithRSAEncryption; }
    if (IS(&oid, OID_SHA256_RSA)) { *digest_nid = NID_sha256; return NID_sha256WithRSAEncryption; }
    if (IS(&oid, OID_SHA384_RSA)) { *digest_nid = NID_sha384; return NID_sha384WithRSAEncryption; }
    if (IS(&oid, OID_SHA512_RSA)) { *digest_nid = NID_sha512; return NID_sha512WithRSAEncryption; }
    if (IS(&oid, OID_SHA224_RSA)) { *digest_nid = NID_sha224; return NID_sha224WithRSAEncryption; }
    return NID_undef;
}

/* RSA PKCS#1 v1.5 check of sig over the digest md of (tag || rest of tlv):
 * tag replaces the first byte (signed attributes are signed as a SET). */
static int rsa_check(EVP_PKEY *key, const EVP_MD *md, int md_nid, uint8_t tag,
                     const uint8_t *tlv, size_t tlv_len, const struct der_tlv *sig)
{
    uint8_t h[EVP_MAX_MD_SIZE];
    unsigned int hl = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    const RSA *r = EVP_PKEY_get0_RSA(key);
    int ok = c != NULL && r != NULL && sig->len > 0 && sig->len <= 2048 &&
             EVP_DigestInit_ex(c, md, NULL) == 1 && EVP_DigestUpdate(c, &tag, 1) == 1 &&
             EVP_DigestUpdate(c, tlv + 1, tlv_len - 1) == 1 && EVP_DigestFinal_ex(c, h, &hl) == 1 &&
             RSA_verify(md_nid, h, hl, sig->val, (unsigned int)sig->len, (RSA *)r) == 1;

    EVP_MD_CTX_free(c);
    return ok;
}

/* ---- SignedData: the certificates apart ------------------------------------ */

/* A Certificate with OpenSSL's ASN.1 rules for every field (the X509_CINF
 * template of crypto/x509/x_x509.c, field for field) except that the
 * SubjectPublicKeyInfo stays an AlgorithmIdentifier and a BIT STRING: d2i_X509
 * would decode the key through the decoder framework. */
typedef struct {
    X509_ALGOR *algor;
    ASN1_BIT_STRING *public_key;
} FAST_SPKI;
ASN1_SEQUENCE(FAST_SPKI) = {
    ASN1_SIMPLE(FAST_SPKI, algor, X509_ALGOR),
    ASN1_SIMPLE(FAST_SPKI, public_key, ASN1_BIT_STRING)
} static_ASN1_SEQUENCE_END(FAST_SPKI)

typedef struct {
    ASN1_INTEGER *version;
    ASN1_INTEGER *serial;
    X509_ALGOR *signature;
    X509_NAME *issuer;
    X509_VAL *validity;
    X509_NAME *subject;
    FAST_SPKI *key;
    ASN1_BIT_STRING *issuer_uid;
    ASN1_BIT_STRING *subject_uid;
    STACK_OF(X509_EXTENSION) *extensions;
} FAST_TBS;
ASN1_SEQUENCE(FAST_TBS) = {
    ASN1_EXP_OPT(FAST_TBS, version, ASN1_INTEGER, 0),
    ASN1_SIMPLE(FAST_TBS, serial, ASN1_INTEGER),
    ASN1_SIMPLE(FAST_TBS, signature, X509_ALGOR),
    ASN1_SIMPLE(FAST_TBS, issuer, X509_NAME),
    ASN1_SIMPLE(FAST_TBS, validity, X509_VAL),
    ASN1_SIMPLE(FAST_TBS, subject, X509_NAME),
    ASN1_SIMPLE(FAST_TBS, key, FAST_SPKI),
    ASN1_IMP_OPT(FAST_TBS, issuer_uid, ASN1_BIT_STRING, 1),
    ASN1_IMP_OPT(FAST_TBS, subject_uid, ASN1_BIT_STRING, 2),
    ASN1_EXP_SEQUENCE_OF_OPT(FAST_TBS, extensions, X509_EXTENSION, 3)
} static_ASN1_SEQUENCE_END(FAST_TBS)

typedef struct {
    FAST_TBS *tbs;
    X509_ALGOR *sig_alg;
    ASN1_BIT_STRING *signature;
} FAST_CERT;
ASN1_SEQUENCE(FAST_CERT) = {
    ASN1_SIMPLE(FAST_CERT, tbs, FAST_TBS),
    ASN1_SIMPLE(FAST_CERT, sig_alg, X509_ALGOR),
    ASN1_SIMPLE(FAST_CERT, signature, ASN1_BIT_STRING)
} static_ASN1_SEQUENCE_END(FAST_CERT)

int scep_fast_split(const uint8_t *der, size_t len, struct util_buf *rest, const uint8_t **certs,
                    size_t *certs_len)
{
    struct der_span s = {der, len}, ci, x, sd;
    struct der_tlv t, oid, sdt, c;
    const uint8_t *sd_start;
    size_t before, inner, at;

    if (der_read_tag(&s, 0x30, &t) != 0)
        return -1;
    ci = der_inner(&t);
    if (der_read_tag(&ci, 0x06, &oid) != 0 || der_read_tag(&ci, 0xa0, &t) != 0 || ci.len != 0)
        return -1;
    x = der_inner(&t);
    if (der_read_tag(&x, 0x30, &sdt) != 0 || x.len != 0)
        return -1;
    sd = der_inner(&sdt);
    sd_start = sd.p;
    /* version, digestAlgorithms, encapContentInfo, then [0] certificates */
    if (der_read(&sd, &t) != 0 || der_read(&sd, &t) != 0 || der_read(&sd, &t) != 0 ||
        der_read_tag(&sd, 0xa0, &c) != 0)
        return -1;
    before = (size_t)(c.tlv - sd_start);
    inner = sdt.len - c.tlv_len;             /* SignedData contents without the certs */
    util_buf_reset(rest);
    util_buf_append(rest, oid.tlv, oid.tlv_len);
    at = rest->len;
    util_buf_append(rest, sd_start, before);
    util_buf_append(rest, c.tlv + c.tlv_len, inner - before);
    der_wrap(rest, at, 0x30);
    der_wrap(rest, at, 0xa0);
    der_wrap(rest, 0, 0x30);
    if (rest->failed)
        return -1;
    *certs = c.val;
    *certs_len = c.len;
    return 0;
}

int scep_ias_der(const X509_NAME *issuer, const ASN1_INTEGER *serial, uint8_t **der, size_t *len)
{
    PKCS7_ISSUER_AND_SERIAL *ias = PKCS7_ISSUER_AND_SERIAL_new();
    unsigned char *out = NULL;
    int l = -1;

    if (ias != NULL && X509_NAME_set(&ias->issuer, (X509_NAME *)issuer) == 1) {
        ASN1_INTEGER_free(ias->serial);
        ias->serial = ASN1_INTEGER_dup(serial);
        if (ias->serial != NULL)
            l = i2d_PKCS7_ISSUER_AND_SERIAL(ias, &out);
    }
    PKCS7_ISSUER_AND_SERIAL_free(ias);
    if (l <= 0) {
        OPENSSL_free(out);
        return -1;
    }
    *der = out;
    *len = (size_t)l;
    return 0;
}

int scep_fast_signer(const struct scep_ctx *ctx, const uint8_t *certs, size_t len,
                     const X509_NAME *issuer, const ASN1_INTEGER *serial,
                     struct scep_request *req)
{
    struct der_span s = {certs, len};
    struct der_tlv t, found = {0};
    const unsigned char *p;
    FAST_CERT *fc, *signer = NULL;
    EVP_PKEY *key = NULL;
    RSA *r = NULL;
    int ok = 0;

    /* Exactly one certificate, as every client sends: d2i_X509 also decodes the
     * keys of the others, and a key its decoder refuses (an over-long algorithm
     * OID) would fail the whole message on the OpenSSL path. It must parse, as
     * d2i_PKCS7 requires, and have the SignerInfo's issuer and serial
     * (X509_find_by_issuer_and_serial). */
    if (der_read_tag(&s, 0x30, &t) != 0 || s.len != 0)
        goto out;
    p = t.tlv;
    fc = (FAST_CERT *)ASN1_item_d2i(NULL, &p, (long)t.tlv_len, ASN1_ITEM_rptr(FAST_CERT));
    if (fc != NULL && p == t.tlv + t.tlv_len && ASN1_INTEGER_cmp(fc->tbs->serial, serial) == 0 &&
        X509_NAME_cmp(fc->tbs->issuer, issuer) == 0) {
        signer = fc;
        found = t;
    } else {
        ASN1_item_free((ASN1_VALUE *)fc, ASN1_ITEM_rptr(FAST_CERT));
    }
    if (signer == NULL || OBJ_obj2nid(signer->tbs->key->algor->algorithm) != NID_rsaEncryption)
        goto out;
    p = signer->tbs->key->public_key->data;
    r = d2i_RSAPublicKey(NULL, &p, signer->tbs->key->public_key->length);
    if (r == NULL || (key = EVP_PKEY_new()) == NULL || EVP_PKEY_assign_RSA(key, r) != 1)
        goto out;
    r = NULL; /* key owns it */
    if ((req->signer_cert = OPENSSL_memdup(found.tlv, found.tlv_len)) == NULL ||
        scep_ias_der(signer->tbs->issuer, signer->tbs->serial, &req->signer_ias,
                     &req->signer_ias_len) != 0 ||
        EVP_Digest(signer->tbs->key->public_key->data,
                   (size_t)signer->tbs->key->public_key->length, req->signer_keyhash, NULL,
                   ctx->algs.sha1, NULL) != 1)
        goto out;
    req->signer_cert_len = found.tlv_len;
    req->signer_subject = X509_NAME_dup(signer->tbs->subject); /* for the journal; NULL is fine */
    req->signer_issuer_is_ca = X509_NAME_cmp(signer->tbs->issuer, ctx->pki->issuer_name) == 0;
    req->signer_key = key;
    key = NULL;
    ok = 1;
out:
    RSA_free(r);
    EVP_PKEY_free(key);
    ASN1_item_free((ASN1_VALUE *)signer, ASN1_ITEM_rptr(FAST_CERT));
    ERR_clear_error();
    return ok;
}

int scep_fast_verify(PKCS7 *p7, PKCS7_SIGNER_INFO *si, EVP_PKEY *key)
{
    X509 *x = X509_new();
    BIO *p7bio = NULL;
    char buf[4096];
    int ok = 0;

    /* An X509 that only carries the key (the legacy key is set without the
     * encoder framework): PKCS7_signatureVerify() reads nothing else of it. */
    if (x == NULL || X509_set_pubkey(x, key) != 1 || (p7bio = PKCS7_dataInit(p7, NULL)) == NULL)
        goto out;
    while (BIO_read(p7bio, buf, sizeof(buf)) > 0)
        ;
    ok = PKCS7_signatureVerify(p7bio, p7, si, x) > 0;
out:
    BIO_free_all(p7bio);
    X509_free(x);
    ERR_clear_error();
    return ok;
}

X509_REQ *scep_fast_csr(const struct scep_ctx *ctx, const uint8_t *der, size_t len)
{
    struct der_span s = {der, len}, r, ri, at;
    struct der_tlv t, cri, ver, subject, spki, attrs, sig_alg, sig, a, key_alg, key_bits;
    const EVP_MD *md;
    const unsigned char *p;
    EVP_PKEY *key = NULL;
    X509_NAME *name = NULL;
    X509_ATTRIBUTE *xa = NULL;
    X509_ALGOR *alg = NULL;
    ASN1_BIT_STRING *bs = NULL;
    X509_REQ *req = NULL, *ret = NULL;
    int digest_nid;

    if (der_read_tag(&s, 0x30, &t) != 0 || s.len != 0)
        return NULL;
    r = der_inner(&t);
    if (der_read_tag(&r, 0x30, &cri) != 0 || der_read_tag(&r, 0x30, &sig_alg) != 0 ||
        der_read_tag(&r, 0x03, &sig) != 0 || r.len != 0 || sig.len < 2 || sig.val[0] != 0)
        return NULL;
    ri = der_inner(&cri);
    if (der_read_tag(&ri, 0x02, &ver) != 0 || ver.len != 1 || ver.val[0] != 0 ||
        der_read_tag(&ri, 0x30, &subject) != 0 || der_read_tag(&ri, 0x30, &spki) != 0 ||
        der_read_tag(&ri, 0xa0, &attrs) != 0 || ri.len != 0 ||
        spki_view(&spki, &key_alg, &key_bits) != 0)
        return NULL;
    rsa_sig_alg(&sig_alg, &digest_nid);
    switch (digest_nid) {
    case NID_sha1: md = ctx->algs.sha1; break;
    case NID_sha224: md = ctx->algs.sha224; break;
    case NID_sha256: md = ctx->algs.sha256; break;
    case NID_sha384: md = ctx->algs.sha384; break;
    case NID_sha512: md = ctx->algs.sha512; break;
    default: return NULL;
    }
    {
        /* the key's AlgorithmIdentifier under OpenSSL's rules (parameters included) */
        struct der_span ks = der_inner(&spki);
        struct der_tlv ka;
        X509_ALGOR *xa_alg;
        if (der_read_tag(&ks, 0x30, &ka) != 0)
            return NULL;
        p = ka.tlv;
        xa_alg = d2i_X509_ALGOR(NULL, &p, (long)ka.tlv_len);
        X509_ALGOR_free(xa_alg);
        if (xa_alg == NULL)
            return NULL;
    }
    if (md == NULL || (key = rsa_key(&key_alg, &key_bits)) == NULL)
        return NULL;
    {
        /* the signature is over the CertificationRequestInfo TLV as sent */
        struct der_tlv sv = sig;
        sv.val = sig.val + 1;
        sv.len = sig.len - 1;
        if (!rsa_check(key, md, digest_nid, cri.tlv[0], cri.tlv, cri.tlv_len, &sv))
            goto out;
    }
    p = subject.tlv;
    if ((req = X509_REQ_new()) == NULL || X509_REQ_set_version(req, 0) != 1 ||
        (name = d2i_X509_NAME(NULL, &p, (long)subject.tlv_len)) == NULL ||
        X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, key) != 1)
        goto out;
    at = der_inner(&attrs);
    while (at.len > 0) {
        if (der_read_tag(&at, 0x30, &a) != 0)
            goto out;
        p = a.tlv;
        if ((xa = d2i_X509_ATTRIBUTE(NULL, &p, (long)a.tlv_len)) == NULL ||
            p != a.tlv + a.tlv_len || X509_REQ_add1_attr(req, xa) != 1)
            goto out;
        X509_ATTRIBUTE_free(xa);
        xa = NULL;
    }
    /* Signature and its algorithm, so that i2d_X509_REQ (PENDING) is complete. */
    p = sig_alg.tlv;
    if ((alg = d2i_X509_ALGOR(NULL, &p, (long)sig_alg.tlv_len)) == NULL ||
        X509_REQ_set1_signature_algo(req, alg) != 1)
        goto out;
    p = sig.tlv;
    if ((bs = d2i_ASN1_BIT_STRING(NULL, &p, (long)sig.tlv_len)) == NULL)
        goto out;
    X509_REQ_set0_signature(req, bs); /* takes bs */
    bs = NULL;
    ret = req;
    req = NULL;
out:
    ERR_clear_error();
    X509_ATTRIBUTE_free(xa);
    X509_ALGOR_free(alg);
    ASN1_BIT_STRING_free(bs);
    X509_NAME_free(name);
    EVP_PKEY_free(key);
    X509_REQ_free(req);
    return ret;
}

static int cipher_oid(const EVP_CIPHER *c, const uint8_t **oid, size_t *len)
{
    switch (EVP_CIPHER_get_nid(c)) {
    case NID_des_ede3_cbc: *oid = OID_DES_EDE3_CBC; *len = sizeof(OID_DES_EDE3_CBC); return 0;
    case NID_aes_128_cbc: *oid = OID_AES128_CBC; *len = sizeof(OID_AES128_CBC); return 0;
    case NID_aes_192_cbc: *oid = OID_AES192_CBC; *len = sizeof(OID_AES192_CBC); return 0;
    case NID_aes_256_cbc: *oid = OID_AES256_CBC; *len = sizeof(OID_AES256_CBC); return 0;
    }
    return -1;
}

/* ContentInfo { envelopedData, [0] EnvelopedData { 0, SET { KeyTransRecipientInfo {
 *   0, IssuerAndSerialNumber, rsaEncryption, encryptedKey } },
 *   EncryptedContentInfo { data, cipher + IV, [0] IMPLICIT ciphertext } } }
 * as PKCS7_encrypt() writes it, without its per-call algorithm fetches and
 * with the requester's key as the message gave it. */
int scep_envelope_to_signer(const struct scep_request *req, const EVP_CIPHER *cipher,
                            const uint8_t *plain, size_t plen, struct util_buf *out)
{
    /* plain RSA only (get0_RSA also answers for RSA-PSS, which PKCS7_encrypt refuses) */
    const RSA *rsa = req->signer_key && EVP_PKEY_get_base_id(req->signer_key) == EVP_PKEY_RSA
                         ? EVP_PKEY_get0_RSA(req->signer_key)
                         : NULL;
    EVP_CIPHER_CTX *cc = NULL;
    uint8_t cek[EVP_MAX_KEY_LENGTH], iv[EVP_MAX_IV_LENGTH], *ek = NULL, *ct = NULL;
    const uint8_t *coid;
    size_t colen, at, env, ri, eci, alg;
    int klen, ivlen, eklen, n1 = 0, n2 = 0, rc = -1;

    if (rsa == NULL || req->signer_ias == NULL || cipher_oid(cipher, &coid, &colen) != 0 ||
        plen > 64 * 1024 * 1024)
        goto out;
    klen = EVP_CIPHER_get_key_length(cipher);
    ivlen = EVP_CIPHER_get_iv_length(cipher);
    if ((cc = EVP_CIPHER_CTX_new()) == NULL || klen <= 0 || klen > (int)sizeof(cek) ||
        ivlen <= 0 || ivlen > (int)sizeof(iv) ||
        EVP_EncryptInit_ex(cc, cipher, NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_rand_key(cc, cek) != 1 || /* DES keys get their parity bits */
        RAND_bytes(iv, ivlen) != 1 || EVP_EncryptInit_ex(cc, NULL, NULL, cek, iv) != 1 ||
        (ct = OPENSSL_malloc(plen + (size_t)EVP_CIPHER_get_block_size(cipher))) == NULL ||
        EVP_EncryptUpdate(cc, ct, &n1, plain, (int)plen) != 1 ||
        EVP_EncryptFinal_ex(cc, ct + n1, &n2) != 1)
        goto out;
    if ((ek = OPENSSL_malloc((size_t)RSA_size(rsa))) == NULL ||
        (eklen = RSA_public_encrypt(klen, cek, ek, (RSA *)rsa, RSA_PKCS1_PADDING)) <= 0)
        goto out;

    at = out->len;
    der_oid(out, OID_ENVELOPED_DATA, sizeof(OID_ENVELOPED_DATA));
    env = out->len;
    der_int_small(out, 0);
    ri = out->len;
    der_int_small(out, 0);
    util_buf_append(out, req->signer_ias, req->signer_ias_len);
    alg = out->len;
    der_oid(out, OID_RSA_ENCRYPTION, sizeof(OID_RSA_ENCRYPTION));
    der_null(out);
    der_wrap(out, alg, 0x30);
    der_tlv(out, 0x04, ek, (size_t)eklen);
    der_wrap(out, ri, 0x30);
    der_wrap(out, ri, 0x31);
    eci = out->len;
    der_oid(out, OID_DATA, sizeof(OID_DATA));
    alg = out->len;
    der_oid(out, coid, colen);
    der_tlv(out, 0x04, iv, (size_t)ivlen);
    der_wrap(out, alg, 0x30);
    der_tlv(out, 0x80, ct, (size_t)(n1 + n2));
    der_wrap(out, eci, 0x30);
    der_wrap(out, env, 0x30);
    der_wrap(out, env, 0xa0);
    der_wrap(out, at, 0x30);
    rc = out->failed ? -1 : 0;
out:
    OPENSSL_cleanse(cek, sizeof(cek));
    EVP_CIPHER_CTX_free(cc);
    OPENSSL_free(ek);
    OPENSSL_free(ct);
    ERR_clear_error();
    return rc;
}
