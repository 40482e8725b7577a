/* test_scep.c - src/scep: request decoding (every cipher x digest, bad
 * signature, bad algorithm, wrong recipient, garbage, BER) and the
 * PKIOperation service outcomes. CertRep bytes: test_certrep.c. */
#include "scep_th.h"

#include <criterion/parameterized.h>

TH_FIXTURE_PRE_HOOK
TH_FIXTURE_POST_HOOK

static struct th_env env;

static void setup(void)
{
    th_env_init(&env);
}

static void teardown(void)
{
    th_env_fini(&env);
}

TestSuite(decode, .init = setup, .fini = teardown);
TestSuite(pkiop, .init = setup, .fini = teardown);

static enum scep_decode decode(const struct util_buf *b, struct scep_request *req)
{
    char why[200];

    return scep_request_decode(&env.ctx, b->data, b->len, req, why, sizeof(why));
}

/* ---- every cipher x digest ------------------------------------------------------ */

struct alg_case {
    char cipher[16]; /* arrays, not pointers: the parameter is copied into */
    int cipher_nid;  /* another process, where addresses differ (ASLR) */
    char md[8];
    int md_nid;
};

/* Initialised at compile time: Criterion runs each parameter in a fresh
 * process that does not see values computed at run time. */
static struct alg_case alg_cases[] = {
#define DIGESTS(c, n) {c, n, "SHA1", NID_sha1}, {c, n, "SHA256", NID_sha256}, {c, n, "SHA512", NID_sha512}
    DIGESTS("DES-CBC", NID_des_cbc),         DIGESTS("DES-EDE3-CBC", NID_des_ede3_cbc),
    DIGESTS("AES-128-CBC", NID_aes_128_cbc), DIGESTS("AES-192-CBC", NID_aes_192_cbc),
    DIGESTS("AES-256-CBC", NID_aes_256_cbc),
#undef DIGESTS
};

ParameterizedTestParameters(decode, cipher_x_digest)
{
    return cr_make_param_array(struct alg_case, alg_cases, sizeof(alg_cases) / sizeof(alg_cases[0]));
}

ParameterizedTest(struct alg_case *c, decode, cipher_x_digest)
{
    struct th_req r;
    struct util_buf b;
    struct scep_request req;
    char why[200], cn[64];
    enum scep_decode d;

    th_req_defaults(&r, &env);
    r.cipher = c->cipher;
    r.md = c->md;
    r.nonce[0] = (uint8_t)c->cipher_nid; /* a different nonce per case */
    util_buf_init(&b);
    th_build(&r, &b);
    d = scep_request_decode(&env.ctx, b.data, b.len, &req, why, sizeof(why));
    cr_assert_eq(d, SCEP_DECODE_OK, "%s/%s: %s (%s)", c->cipher, c->md, scep_decode_str(d), why);
    cr_assert_eq(req.msg_type, SCEP_MSG_PKCSREQ);
    cr_assert_eq(req.tid_len, strlen(TH_TID));
    cr_assert_arr_eq(req.tid, TH_TID, req.tid_len);
    cr_assert_str_eq(req.tid_print, TH_TID);
    cr_assert_eq(req.tid_type, V_ASN1_PRINTABLESTRING);
    cr_assert_eq(req.sender_nonce_len, 16);
    cr_assert_arr_eq(req.sender_nonce, r.nonce, 16);
    cr_assert_eq(req.cipher_nid, c->cipher_nid, "cipher %s", OBJ_nid2sn(req.cipher_nid));
    cr_assert_eq(req.digest_nid, c->md_nid, "digest %s", OBJ_nid2sn(req.digest_nid));
    cr_assert_eq(req.sig_alg_nid, NID_rsaEncryption);
    cr_assert_eq(req.has_challenge, 1);
    cr_assert_str_eq(req.challenge, TH_CHALLENGE);
    cr_assert_eq(req.fast, 1, "DER with an RSA signer takes the fast path");
    cr_assert_null(req.signer, "the fast path does not parse the signer as an X509");
    cr_assert_not_null(req.signer_key);
    cr_assert_not_null(scep_request_signer(&req));
    cr_assert_eq(X509_cmp(req.signer, env.client_cert), 0);
    cr_assert_eq(EVP_PKEY_eq(req.signer_key, X509_get0_pubkey(env.client_cert)), 1);
    cr_assert_not_null(req.csr);
    cr_assert_gt(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req.csr), NID_commonName, cn,
                                           sizeof(cn)), 0);
    cr_assert_str_eq(cn, "device.example");
    cr_assert_not_null(req.inner);
    cr_assert_gt(req.inner_len, 100);
    scep_request_clear(&req);
    cr_assert_null(req.csr);
    util_buf_free(&b);
}

Test(decode, no_challenge_and_long_challenge)
{
    struct th_req r;
    struct util_buf b;
    struct scep_request req;
    char longc[201];

    th_req_defaults(&r, &env);
    r.challenge = NULL;
    util_buf_init(&b);
    th_build(&r, &b);
    cr_assert_eq(decode(&b, &req), SCEP_DECODE_OK);
    cr_assert_eq(req.has_challenge, 0);
    cr_assert_str_eq(req.challenge, "");
    scep_request_clear(&req);

    memset(longc, 'c', 200);
    longc[200] = '\0';
    r.challenge = longc;
    util_buf_reset(&b);
    th_build(&r, &b);
    cr_assert_eq(decode(&b, &req), SCEP_DECODE_OK);
    cr_assert_eq(req.has_challenge, 1);
    cr_assert_str_eq(req.challenge, longc);
    scep_request_clear(&req);
    util_buf_free(&b);
}

Test(decode, several_recipients_incl_ours)
{
    /* micromdm encrypts to every certificate GetCACert returned */
    struct th_req r;
    struct util_buf b;
    struct scep_request req;

    th_req_defaults(&r, &env);
    r.recipients[0] = env.pki.ra_sign_cert;
    r.recipients[1] = env.pki.ca_cert;
    r.recipients[2] = env.pki.ra_enc_cert;
    r.nrecipients = 3;
    util_buf_init(&b);
    th_build(&r, &b);
    cr_assert_eq(decode(&b, &req), SCEP_DECODE_OK);
    cr_assert_str_eq(req.challenge, TH_CHALLENGE);
    scep_request_clear(&req);
    util_buf_free(&b);
}

Test(decode, tampered_signature)
{
    struct th_req r;
    struct util_buf b;
    struct scep_request req;

    th_req_defaults(&r, &env);
    util_buf_init(&b);
    th_build(&r, &b);
    /* the RSA signature is the last TLV of the message */
    b.data[b.len - 1] ^= 0x01;
    cr_assert_eq(decode(&b, &req), SCEP_DECODE_BAD_SIGNATURE);
    /* fields needed for a FAILURE CertRep are there */
    cr_assert_str_eq(req.tid_print, TH_TID);
    cr_assert_eq(req.sender_nonce_len, 16);
    cr_assert_eq(req.msg_type, SCEP_MSG_PKCSREQ);
    scep_request_clear(&req);
    util_buf_free(&b);
}

Test(decode, tampered_content)
{
    struct th_req r;
    struct util_buf b;
    struct scep_request req;
    size_t i;

    th_req_defaults(&r, &env);
    util_buf_init(&b);
    th_build(&r, &b);
    /* flip one byte inside the encapsulated content (the EnvelopedData):
     * the messageDigest attribute no longer matches */
    {
        struct th_tlv sd = th_signed_data(b.data, b.len), eci, ex, os;
        eci = th_der_child(&sd, 2);
        ex = th_der_child(&eci, 1);
        os = th_der_child(&ex, 0);
        cr_assert_eq(os.tag, 0x04);
        i = (size_t)(os.content - b.data) + os.len / 2;
        b.data[i] ^= 0x80;
    }
    cr_assert_eq(decode(&b, &req), SCEP_DECODE_BAD_SIGNATURE);
    scep_request_clear(&req);
    util_buf_free(&b);
}

Test(decode, tampered_signed_attribute)
{
    struct th_req r;
    struct util_buf b;
    struct scep_request req;
    uint8_t *p;

    th_req_defaults(&r, &env);
    util_buf_init(&b);
    th_build(&r, &b);
    p = memmem(b.data, b.len, TH_TID, strlen(TH_TID));
    cr_assert_not_null(p);
    p[0] = 'X';
    cr_assert_eq(decode(&b, &req), SCEP_DECODE_BAD_SIGNATURE);
    cr_assert_eq(req.tid[0], 'X', "the tampered transactionID is what gets echoed");
    scep_request_clear(&req);
    util_buf_free(&b);
}

Test(decode, md5_is_bad_alg)
{
    struct th_req r;
    struct util_buf b;
    struct scep_request req;

    th_req_defaults(&r, &env);
    r.md = "MD5";
    util_buf_init(&b);
    th_build(&r, &b);
    cr_assert_eq(decode(&b, &req), SCEP_DECODE_BAD_ALG);
    cr_assert_eq(req.digest_nid, NID_md5);
    cr_assert_str_eq(req.tid_print, TH_TID);
    scep_request_clear(&req);
    util_buf_free(&b);
}

Test(decode, unsupported_cipher_is_bad_alg)
{
    struct th_req r;
    struct util_buf b;
    struct scep_request req;

    th_req_defaults(&r, &env);
    r.cipher = "AES-128-OFB";
    util_buf_init(&b);
    th_build(&r, &b);
    cr_assert_eq(decode(&b, &req), SCEP_DECODE_BAD_ALG);
    scep_request_clear(&req);
    util_buf_free(&b);
}

Test(decode, encrypted_to_another_cert_is_undecryptable)
{
    struct th_req r;
    struct util_buf b;
    struct scep_request req;

    th_req_defaults(&r, &env);
    r.recipients[0] = env.pki.tls_cert;
    util_buf_init(&b);
    th_build(&r, &b);
    cr_assert_eq(decode(&b, &req), SCEP_DECODE_UNDECRYPTABLE);
    scep_request_clear(&req);

    /* the RA signing certificate (same subject as the encryption one) is not ours either */
    r.recipients[0] = env.pki.ra_sign_cert;
    util_buf_reset(&b);
    th_build(&r, &b);
    cr_assert_eq(decode(&b, &req), SCEP_DECODE_UNDECRYPTABLE);
    scep_request_clear(&req);
    util_buf_free(&b);
}

/* A SignedData PKCSReq (the fixture's client) around env_der: lets a test
 * hand the decoder an EnvelopedData of its own making. */
static void sign_envelope(const uint8_t *env_der, int env_len, struct util_buf *out)
{
    PKCS7 *p7 = PKCS7_new();
    PKCS7_SIGNER_INFO *si;
    ASN1_PRINTABLESTRING *mt = ASN1_PRINTABLESTRING_new(), *tid = ASN1_PRINTABLESTRING_new();
    ASN1_OCTET_STRING *nonce = ASN1_OCTET_STRING_new();
    unsigned char *der = NULL;
    BIO *bio;
    int l;

    cr_assert(p7 && mt && tid && nonce);
    cr_assert(PKCS7_set_type(p7, NID_pkcs7_signed) && PKCS7_content_new(p7, NID_pkcs7_data));
    si = PKCS7_add_signature(p7, env.client_cert, env.client_key, EVP_sha256());
    cr_assert(si && PKCS7_add_certificate(p7, env.client_cert));
    cr_assert(ASN1_STRING_set(mt, "19", 2) && ASN1_STRING_set(tid, TH_TID, -1) &&
              ASN1_STRING_set(nonce, "0123456789abcdef", 16));
    cr_assert(PKCS7_add_signed_attribute(si, NID_pkcs9_contentType, V_ASN1_OBJECT,
                                         OBJ_nid2obj(NID_pkcs7_data)));
    cr_assert(PKCS7_add_signed_attribute(si, scep_nid_message_type, V_ASN1_PRINTABLESTRING, mt));
    cr_assert(PKCS7_add_signed_attribute(si, scep_nid_transaction_id, V_ASN1_PRINTABLESTRING, tid));
    cr_assert(PKCS7_add_signed_attribute(si, scep_nid_sender_nonce, V_ASN1_OCTET_STRING, nonce));
    bio = PKCS7_dataInit(p7, NULL);
    cr_assert(bio && BIO_write(bio, env_der, env_len) == env_len && PKCS7_dataFinal(p7, bio));
    BIO_free_all(bio);
    l = i2d_PKCS7(p7, &der);
    cr_assert_gt(l, 0);
    util_buf_reset(out);
    cr_assert_eq(util_buf_append(out, der, (size_t)l), 0);
    OPENSSL_free(der);
    PKCS7_free(p7);
}

/* PKCS7_decrypt() carries on with a random key when the content-encryption
 * key does not decrypt (or has the wrong length), so such a request used to
 * be answered "Bad Data" or "not a PKCS#10 request" at random (a valid final
 * padding under the random key: about 1 in 256 for DES). It must be
 * UNDECRYPTABLE every time, on both decoding paths. With the old code the
 * 2 x 500 rounds miss the random answer with a chance of about 2 %. */
Test(decode, bad_content_key_is_undecryptable_every_time)
{
    EVP_CIPHER *des = EVP_CIPHER_fetch(NULL, "DES-CBC", NULL);
    X509_REQ *csr = scep_build_csr(env.client_key, "device.example", TH_CHALLENGE, NULL,
                                   EVP_sha256());
    STACK_OF(X509) *rc = sk_X509_new_null();
    unsigned char *csr_der = NULL, *env_der = NULL, key16[16] = {0}, *ek = NULL;
    BIO *in;
    PKCS7 *p7env;
    PKCS7_RECIP_INFO *ri;
    EVP_PKEY_CTX *pc;
    struct util_buf b;
    struct scep_request req;
    size_t eklen = 0;
    int csr_len, env_len, round, kind;

    cr_assert(des && csr && rc && sk_X509_push(rc, env.pki.ra_enc_cert));
    csr_len = i2d_X509_REQ(csr, &csr_der);
    in = BIO_new_mem_buf(csr_der, csr_len);
    p7env = PKCS7_encrypt(rc, in, des, PKCS7_BINARY);
    cr_assert_not_null(p7env);
    ri = sk_PKCS7_RECIP_INFO_value(p7env->d.enveloped->recipientinfo, 0);
    /* a 16-byte key, correctly RSA-encrypted to us, for an 8-byte-key cipher */
    pc = EVP_PKEY_CTX_new_from_pkey(NULL, X509_get0_pubkey(env.pki.ra_enc_cert), NULL);
    cr_assert(pc && EVP_PKEY_encrypt_init(pc) > 0 &&
              EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) > 0 &&
              EVP_PKEY_encrypt(pc, NULL, &eklen, key16, sizeof(key16)) > 0);
    ek = OPENSSL_malloc(eklen);
    cr_assert(ek && EVP_PKEY_encrypt(pc, ek, &eklen, key16, sizeof(key16)) > 0);
    util_buf_init(&b);
    for (kind = 0; kind < 2; kind++) {
        if (kind == 0) {
            /* garbage where the RSA-encrypted key is */
            memset(ri->enc_key->data, 0x5A, (size_t)ri->enc_key->length);
        } else {
            cr_assert(ASN1_STRING_set(ri->enc_key, ek, (int)eklen));
        }
        env_der = NULL;
        env_len = i2d_PKCS7(p7env, &env_der);
        cr_assert_gt(env_len, 0);
        sign_envelope(env_der, env_len, &b);
        for (round = 0; round < 500; round++) {
            enum scep_decode d;

            env.ctx.no_fast = round & 1;
            d = decode(&b, &req);
            scep_request_clear(&req);
            cr_assert_eq(d, SCEP_DECODE_UNDECRYPTABLE, "case %d, round %d: %s", kind, round,
                         scep_decode_str(d));
        }
        env.ctx.no_fast = 0;
        OPENSSL_free(env_der);
    }
    util_buf_free(&b);
    OPENSSL_free(ek);
    EVP_PKEY_CTX_free(pc);
    PKCS7_free(p7env);
    BIO_free(in);
    OPENSSL_free(csr_der);
    sk_X509_free(rc);
    X509_REQ_free(csr);
    EVP_CIPHER_free(des);
}

Test(decode, garbage_is_malformed)
{
    static const uint8_t junk1[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    static const uint8_t junk2[] = {0x30, 0x80, 0x00, 0x00};
    static const uint8_t junk3[] = {0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x06};
    uint8_t zeros[64] = {0};
    const char *text = "GET / HTTP/1.1\r\n\r\n";
    struct scep_request req;
    char why[200];

    cr_assert_eq(scep_request_decode(&env.ctx, junk1, sizeof(junk1), &req, why, sizeof(why)),
                 SCEP_DECODE_MALFORMED);
    scep_request_clear(&req);
    cr_assert_eq(scep_request_decode(&env.ctx, junk2, sizeof(junk2), &req, why, sizeof(why)),
                 SCEP_DECODE_MALFORMED);
    scep_request_clear(&req);
    cr_assert_eq(scep_request_decode(&env.ctx, junk3, sizeof(junk3), &req, why, sizeof(why)),
                 SCEP_DECODE_MALFORMED);
    scep_request_clear(&req);
    cr_assert_eq(scep_request_decode(&env.ctx, zeros, sizeof(zeros), &req, why, sizeof(why)),
                 SCEP_DECODE_MALFORMED);
    scep_request_clear(&req);
    cr_assert_eq(scep_request_decode(&env.ctx, (const uint8_t *)text, strlen(text), &req, why,
                                     sizeof(why)),
                 SCEP_DECODE_MALFORMED);
    scep_request_clear(&req);
    cr_assert_eq(scep_request_decode(&env.ctx, zeros, 0, &req, why, sizeof(why)),
                 SCEP_DECODE_MALFORMED);
    cr_assert_eq(req.msg_type, SCEP_MSG_NONE);
    scep_request_clear(&req);
}

Test(decode, getcacert_body_is_malformed)
{
    /* a SignedData, but certs-only: no SignerInfo, so no CertRep is possible */
    struct scep_request req;
    char why[200];

    cr_assert_eq(scep_request_decode(&env.ctx, env.pki.getcacert_der, env.pki.getcacert_len, &req,
                                     why, sizeof(why)),
                 SCEP_DECODE_MALFORMED);
    cr_assert_not_null(strstr(why, "SignerInfo"), "%s", why);
    scep_request_clear(&req);
}

Test(decode, every_truncation_is_malformed)
{
    struct th_req r;
    struct util_buf b;
    struct scep_request req;
    char why[200];
    size_t n;

    th_req_defaults(&r, &env);
    util_buf_init(&b);
    th_build(&r, &b);
    for (n = 0; n < b.len; n++) {
        enum scep_decode d = scep_request_decode(&env.ctx, b.data, n, &req, why, sizeof(why));
        cr_assert_eq(d, SCEP_DECODE_MALFORMED, "prefix of %zu/%zu bytes gave %s", n, b.len,
                     scep_decode_str(d));
        scep_request_clear(&req);
    }
    util_buf_free(&b);
}

Test(decode, byte_flips_never_crash)
{
    struct th_req r;
    struct util_buf b;
    struct scep_request req;
    char why[200];
    size_t i;
    int ok = 0;

    th_req_defaults(&r, &env);
    util_buf_init(&b);
    th_build(&r, &b);
    /* every header byte of the outer layers, and a sample of the rest */
    for (i = 0; i < b.len; i += (i < 160 ? 1 : 37)) {
        static const uint8_t masks[] = {0x01, 0x80, 0xff};
        size_t m;
        for (m = 0; m < sizeof(masks); m++) {
            enum scep_decode d;
            b.data[i] ^= masks[m];
            d = scep_request_decode(&env.ctx, b.data, b.len, &req, why, sizeof(why));
            cr_assert(d >= SCEP_DECODE_OK && d <= SCEP_DECODE_BAD_CONTENT);
            if (d == SCEP_DECODE_OK)
                ok++;
            scep_request_clear(&req);
            b.data[i] ^= masks[m];
        }
    }
    cr_assert_eq(decode(&b, &req), SCEP_DECODE_OK, "restored message decodes");
    scep_request_clear(&req);
    cr_assert_lt(ok, 50, "most corruptions must be detected (%d decoded OK)", ok);
    util_buf_free(&b);
}

Test(decode, oversized_transaction_id_is_malformed)
{
    struct th_req r;
    struct util_buf b;
    struct scep_request req;
    char tid[200];

    memset(tid, 'A', sizeof(tid) - 1);
    tid[sizeof(tid) - 1] = '\0';
    th_req_defaults(&r, &env);
    r.tid = tid;
    util_buf_init(&b);
    th_build(&r, &b);
    cr_assert_eq(decode(&b, &req), SCEP_DECODE_MALFORMED);
    scep_request_clear(&req);
    /* 128 bytes is the largest accepted */
    tid[128] = '\0';
    util_buf_reset(&b);
    th_build(&r, &b);
    cr_assert_eq(decode(&b, &req), SCEP_DECODE_OK);
    cr_assert_eq(req.tid_len, 128);
    scep_request_clear(&req);
    util_buf_free(&b);
}

/* DER -> BER: every constructed definite length becomes 0x80 ... 00 00, as iOS sends. */
static void to_ber(const uint8_t *p, size_t len, struct util_buf *out)
{
    static const uint8_t eoc[2] = {0, 0};

    while (len > 0) {
        struct th_tlv t;
        cr_assert_eq(th_der_read(p, len, &t), 0, "to_ber: bad DER");
        cr_assert_eq(t.indefinite, 0);
        if (t.tag & 0x20) {
            uint8_t h[2] = {t.tag, 0x80};
            util_buf_append(out, h, 2);
            to_ber(t.content, t.len, out);
            util_buf_append(out, eoc, 2);
        } else {
            util_buf_append(out, p, t.hl + t.len);
        }
        p += t.hl + t.len;
        len -= t.hl + t.len;
    }
}

Test(decode, ber_indefinite_lengths)
{
    struct th_req r;
    struct util_buf der, ber;
    struct scep_request req;
    char why[200];
    enum scep_decode d;

    th_req_defaults(&r, &env);
    r.cipher = "AES-128-CBC";
    util_buf_init(&der);
    util_buf_init(&ber);
    th_build(&r, &der);
    to_ber(der.data, der.len, &ber);
    cr_assert_gt(ber.len, der.len, "the BER form is longer");
    cr_assert_eq(ber.data[1], 0x80);
    cr_assert_eq(ber.data[ber.len - 1], 0x00);
    d = scep_request_decode(&env.ctx, ber.data, ber.len, &req, why, sizeof(why));
    cr_assert_eq(d, SCEP_DECODE_OK, "BER request: %s (%s)", scep_decode_str(d), why);
    cr_assert_eq(req.fast, 0, "BER is left to OpenSSL's parser");
    cr_assert_not_null(req.signer);
    cr_assert_str_eq(req.tid_print, TH_TID);
    cr_assert_arr_eq(req.sender_nonce, r.nonce, 16);
    cr_assert_str_eq(req.challenge, TH_CHALLENGE);
    cr_assert_eq(req.cipher_nid, NID_aes_128_cbc);
    scep_request_clear(&req);
    util_buf_free(&der);
    util_buf_free(&ber);
}

Test(decode, ber_request_enrolls)
{
    struct th_req r;
    struct util_buf der, ber;
    struct scep_outcome out;
    struct scep_reply rep;

    th_req_defaults(&r, &env);
    util_buf_init(&der);
    util_buf_init(&ber);
    th_build(&r, &der);
    to_ber(der.data, der.len, &ber);
    th_run(&env, &ber, &out, &rep, NULL, NULL);
    cr_assert_eq(rep.status, SCEP_STATUS_SUCCESS, "%s", out.reason);
    cr_assert_arr_eq(rep.recipient_nonce, r.nonce, 16);
    scep_reply_clear(&rep);
    scep_outcome_clear(&out);
    util_buf_free(&der);
    util_buf_free(&ber);
}

/* ---- the DER fast path and the OpenSSL path agree -------------------------------- */

static void same_decoding(const struct util_buf *b, const char *what, int expect_fast)
{
    struct scep_request f, o;
    char wf[200], wo[200];
    enum scep_decode df, dof;

    df = scep_request_decode(&env.ctx, b->data, b->len, &f, wf, sizeof(wf));
    env.ctx.no_fast = 1;
    dof = scep_request_decode(&env.ctx, b->data, b->len, &o, wo, sizeof(wo));
    env.ctx.no_fast = 0;
    cr_assert_eq(df, dof, "%s: fast %s (%s), OpenSSL %s (%s)", what, scep_decode_str(df), wf,
                 scep_decode_str(dof), wo);
    cr_assert_eq(o.fast, 0);
    if (df == SCEP_DECODE_OK) {
        cr_assert_eq(f.fast, expect_fast, "%s: fast path %d, expected %d", what, f.fast,
                     expect_fast);
        cr_assert_eq(f.msg_type, o.msg_type);
        cr_assert_eq(f.tid_len, o.tid_len);
        cr_assert_arr_eq(f.tid, o.tid, f.tid_len);
        cr_assert_eq(f.sender_nonce_len, o.sender_nonce_len);
        cr_assert_arr_eq(f.sender_nonce, o.sender_nonce, f.sender_nonce_len);
        cr_assert_eq(f.digest_nid, o.digest_nid);
        cr_assert_eq(f.sig_alg_nid, o.sig_alg_nid);
        cr_assert_eq(f.cipher_nid, o.cipher_nid);
        cr_assert_arr_eq(f.signer_keyhash, o.signer_keyhash, 20);
        cr_assert_eq(f.signer_ias_len, o.signer_ias_len);
        cr_assert_arr_eq(f.signer_ias, o.signer_ias, f.signer_ias_len);
        cr_assert_eq(EVP_PKEY_eq(f.signer_key, o.signer_key), 1);
        cr_assert_eq(f.has_challenge, o.has_challenge);
        cr_assert_str_eq(f.challenge, o.challenge);
        cr_assert_eq(f.csr == NULL, o.csr == NULL);
        if (f.csr) {
            STACK_OF(X509_EXTENSION) *ef = X509_REQ_get_extensions(f.csr),
                                     *eo = X509_REQ_get_extensions(o.csr);
            cr_assert_eq(X509_NAME_cmp(X509_REQ_get_subject_name(f.csr),
                                       X509_REQ_get_subject_name(o.csr)), 0);
            cr_assert_eq(EVP_PKEY_eq(X509_REQ_get0_pubkey(f.csr), X509_REQ_get0_pubkey(o.csr)), 1);
            cr_assert_eq(sk_X509_EXTENSION_num(ef), sk_X509_EXTENSION_num(eo));
            sk_X509_EXTENSION_pop_free(ef, X509_EXTENSION_free);
            sk_X509_EXTENSION_pop_free(eo, X509_EXTENSION_free);
        }
        cr_assert_eq(X509_cmp(scep_request_signer(&f), o.signer), 0);
    }
    scep_request_clear(&f);
    scep_request_clear(&o);
}

Test(decode, fast_and_openssl_paths_agree)
{
    static const char *const ciphers[] = {"DES-CBC", "DES-EDE3-CBC", "AES-128-CBC", "AES-256-CBC"};
    static const char *const mds[] = {"SHA1", "SHA256", "SHA512"};
    struct th_req r;
    struct util_buf b;
    size_t i, j;

    util_buf_init(&b);
    for (i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]); i++)
        for (j = 0; j < sizeof(mds) / sizeof(mds[0]); j++) {
            th_req_defaults(&r, &env);
            r.cipher = ciphers[i];
            r.md = mds[j];
            r.san = j == 1 ? "DNS:device.example" : NULL;
            r.challenge = j == 2 ? NULL : r.challenge;
            util_buf_reset(&b);
            th_build(&r, &b);
            same_decoding(&b, ciphers[i], 1);
        }
    /* failures: tampered signature, another recipient, GetCertInitial-style content */
    th_req_defaults(&r, &env);
    util_buf_reset(&b);
    th_build(&r, &b);
    b.data[b.len - 5] ^= 0x40; /* inside the signature */
    same_decoding(&b, "tampered signature", 1);
    th_req_defaults(&r, &env);
    r.recipients[0] = env.pki.tls_cert;
    util_buf_reset(&b);
    th_build(&r, &b);
    same_decoding(&b, "wrong recipient", 1);
    th_req_defaults(&r, &env);
    r.msg_type = SCEP_MSG_GETCERT;
    r.content = (const uint8_t *)"\x30\x03\x02\x01\x01";
    r.content_len = 5;
    util_buf_reset(&b);
    th_build(&r, &b);
    same_decoding(&b, "GetCert", 1);
    util_buf_free(&b);
}

/* Rebuilds message b into m with extra (a Certificate's DER) appended to its
 * certificates field, or, with twice, with the whole certificates field repeated. */
static void rebuild_certs(const struct util_buf *b, const uint8_t *extra, size_t elen, int twice,
                          struct util_buf *m)
{
    struct der_span s = {b->data, b->len}, ci, x, sd;
    struct der_tlv t, oid, sdt, c, v;
    size_t at, cs;
    int i;

    cr_assert_eq(der_read_tag(&s, 0x30, &t), 0);
    ci = der_inner(&t);
    cr_assert_eq(der_read_tag(&ci, 0x06, &oid), 0);
    cr_assert_eq(der_read_tag(&ci, 0xa0, &t), 0);
    x = der_inner(&t);
    cr_assert_eq(der_read_tag(&x, 0x30, &sdt), 0);
    sd = der_inner(&sdt);
    util_buf_append(m, oid.tlv, oid.tlv_len);
    at = m->len;
    for (i = 0; i < 3; i++) { /* version, digestAlgorithms, encapContentInfo */
        cr_assert_eq(der_read(&sd, &v), 0);
        util_buf_append(m, v.tlv, v.tlv_len);
    }
    cr_assert_eq(der_read_tag(&sd, 0xa0, &c), 0);
    cs = m->len;
    util_buf_append(m, c.val, c.len);
    util_buf_append(m, extra, elen);
    der_wrap(m, cs, 0xa0);
    if (twice)
        util_buf_append(m, c.tlv, c.tlv_len);
    util_buf_append(m, sd.p, sd.len);
    der_wrap(m, at, 0x30);
    der_wrap(m, at, 0xa0);
    der_wrap(m, 0, 0x30);
}

/* Clients send one certificate; with more, d2i_X509 would decode the others'
 * keys too (and could refuse one), so the OpenSSL path decides. */
Test(decode, several_certificates_take_the_openssl_path)
{
    struct th_req r;
    struct util_buf b, m;
    struct scep_request req;
    unsigned char *extra = NULL;
    char why[200];
    int elen;

    th_req_defaults(&r, &env);
    util_buf_init(&b);
    util_buf_init(&m);
    th_build(&r, &b);
    elen = i2d_X509(env.pki.tls_cert, &extra);
    cr_assert_gt(elen, 0);
    rebuild_certs(&b, extra, (size_t)elen, 0, &m);
    same_decoding(&m, "two certificates", 0);
    cr_assert_eq(scep_request_decode(&env.ctx, m.data, m.len, &req, why, sizeof(why)),
                 SCEP_DECODE_OK, "%s", why);
    cr_assert_eq(req.fast, 0);
    cr_assert_not_null(req.signer);
    scep_request_clear(&req);
    OPENSSL_free(extra);
    util_buf_free(&m);
    util_buf_free(&b);
}

/* A SignedData with its certificates field twice: OpenSSL refuses it, and so
 * must the fast path (with one [0] spliced out the other would pass). */
Test(decode, certificates_twice_is_refused_by_both_paths)
{
    struct th_req r;
    struct util_buf b, m;
    struct scep_request req;
    char why[200];

    th_req_defaults(&r, &env);
    util_buf_init(&b);
    util_buf_init(&m);
    th_build(&r, &b);
    rebuild_certs(&b, NULL, 0, 1, &m);
    same_decoding(&m, "certificates twice", 1);
    cr_assert_eq(scep_request_decode(&env.ctx, m.data, m.len, &req, why, sizeof(why)),
                 SCEP_DECODE_MALFORMED, "%s", why);
    scep_request_clear(&req);
    util_buf_free(&m);
    util_buf_free(&b);
}

/* ---- GET message decoding ------------------------------------------------------- */

Test(decode, get_message_forms)
{
    struct th_req r;
    struct util_buf der, esc;
    char *b64;
    size_t n, i;
    uint8_t *out;
    long got;

    th_req_defaults(&r, &env);
    util_buf_init(&der);
    util_buf_init(&esc);
    th_build(&r, &der);
    b64 = malloc(4 * ((der.len + 2) / 3) + 1);
    out = malloc(der.len + 16);
    n = util_base64_encode(der.data, der.len, b64);

    /* 1: raw '+' '/' '=' */
    got = scep_decode_get_message(b64, n, out, der.len + 16);
    cr_assert_eq(got, (long)der.len);
    cr_assert_arr_eq(out, der.data, der.len);

    /* 2: fully escaped, with %0A every 64 characters (sscep, Windows) */
    for (i = 0; i < n; i++) {
        if (i && i % 64 == 0)
            util_buf_appendf(&esc, "%%0A");
        if (b64[i] == '+' || b64[i] == '/' || b64[i] == '=')
            util_buf_appendf(&esc, "%%%02X", (unsigned char)b64[i]);
        else
            util_buf_append(&esc, &b64[i], 1);
    }
    got = scep_decode_get_message((const char *)esc.data, esc.len, out, der.len + 16);
    cr_assert_eq(got, (long)der.len);
    cr_assert_arr_eq(out, der.data, der.len);

    /* 3: base64url without padding (micromdm in GET mode) */
    util_buf_reset(&esc);
    for (i = 0; i < n && b64[i] != '='; i++) {
        char c = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
        util_buf_append(&esc, &c, 1);
    }
    got = scep_decode_get_message((const char *)esc.data, esc.len, out, der.len + 16);
    cr_assert_eq(got, (long)der.len);
    cr_assert_arr_eq(out, der.data, der.len);

    /* 4: output cap */
    cr_assert_eq(scep_decode_get_message(b64, n, out, der.len - 1), -1);
    /* 5: not base64 */
    cr_assert_eq(scep_decode_get_message("%%%", 3, out, der.len), -1);

    free(b64);
    free(out);
    util_buf_free(&der);
    util_buf_free(&esc);
}

/* ---- PKIOperation outcomes ------------------------------------------------------- */

static int has_dns(X509 *c, const char *name)
{
    GENERAL_NAMES *g = X509_get_ext_d2i(c, NID_subject_alt_name, NULL, NULL);
    int i, found = 0;

    for (i = 0; g && i < sk_GENERAL_NAME_num(g); i++) {
        GENERAL_NAME *n = sk_GENERAL_NAME_value(g, i);
        if (n->type == GEN_DNS &&
            strcmp((const char *)ASN1_STRING_get0_data(n->d.dNSName), name) == 0)
            found = 1;
    }
    GENERAL_NAMES_free(g);
    return found;
}

/* Enrolls with r; returns the issued certificate (caller frees). */
static X509 *enroll(struct th_req *r, struct scep_outcome *out)
{
    struct util_buf b;
    struct scep_reply rep;
    X509 *c;

    util_buf_init(&b);
    th_build(r, &b);
    th_run(&env, &b, out, &rep, r->signer, r->signer_key);
    cr_assert_eq(rep.status, SCEP_STATUS_SUCCESS, "enrollment refused: %s", out->reason);
    cr_assert_eq(out->status, SCEP_STATUS_SUCCESS);
    cr_assert_not_null(rep.certs);
    cr_assert_eq(sk_X509_num(rep.certs), 1, "the issued certificate alone (include_ca false)");
    c = sk_X509_value(rep.certs, 0);
    X509_up_ref(c);
    scep_reply_clear(&rep);
    util_buf_free(&b);
    return c;
}

Test(pkiop, pkcsreq_success)
{
    struct th_req r;
    struct scep_outcome out;
    X509 *c;
    char cn[64], serial[64], path[PATH_MAX];

    th_req_defaults(&r, &env);
    c = enroll(&r, &out);
    cr_assert_eq(X509_verify(c, X509_get0_pubkey(env.pki.ca_cert)), 1, "not signed by the CA");
    cr_assert_eq(X509_check_issued(env.pki.ca_cert, c), X509_V_OK);
    cr_assert_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, cn,
                                           sizeof(cn)), 0);
    cr_assert_str_eq(cn, "device.example", "subject copied from the CSR");
    cr_assert(has_dns(c, "device.example"));
    cr_assert(has_dns(c, "www.device.example"));
    cr_assert_eq(EVP_PKEY_eq(X509_get0_pubkey(c), env.client_key), 1);
    pki_serial_hex(c, serial, sizeof(serial));
    cr_assert_str_eq(out.serial, serial);
    cr_assert_eq(out.msg_type, SCEP_MSG_PKCSREQ);
    cr_assert_str_eq(out.tid, TH_TID);
    cr_assert_eq(out.fail_info, SCEP_FAIL_NONE);
    snprintf(path, sizeof(path), "%s/certs/%s/%s.pem", env.dir, serial + strlen(serial) - 2,
             serial);
    cr_assert_eq(access(path, R_OK), 0, "issued cert not stored");
    X509_free(c);
    scep_outcome_clear(&out);
}

static void expect_failure(struct th_req *r, int fail_info, long hresult)
{
    struct util_buf b;
    struct scep_outcome out;
    struct scep_reply rep;

    util_buf_init(&b);
    th_build(r, &b);
    th_run(&env, &b, &out, &rep, r->signer, r->signer_key);
    cr_assert_eq(rep.status, SCEP_STATUS_FAILURE, "status %d (%s)", rep.status, out.reason);
    cr_assert_eq(rep.fail_info, fail_info, "failInfo %d, want %d (%s)", rep.fail_info, fail_info,
                 out.reason);
    cr_assert_eq(rep.has_hresult, 1);
    cr_assert_eq(rep.hresult, hresult, "hresult %ld, want %ld", rep.hresult, hresult);
    cr_assert_eq(out.status, SCEP_STATUS_FAILURE);
    cr_assert_eq(out.fail_info, fail_info);
    cr_assert_eq(out.hresult, hresult);
    cr_assert_str_eq(rep.tid, r->tid);
    cr_assert_eq(rep.recipient_nonce_len, 16);
    cr_assert_arr_eq(rep.recipient_nonce, r->nonce, 16);
    cr_assert_eq(rep.content_len, 1);
    cr_assert_null(rep.certs);
    cr_assert_str_eq(out.serial, "");
    scep_reply_clear(&rep);
    scep_outcome_clear(&out);
    util_buf_free(&b);
}

Test(pkiop, wrong_challenge)
{
    struct th_req r;

    th_req_defaults(&r, &env);
    r.challenge = "not-the-password";
    expect_failure(&r, SCEP_FAIL_BADMESSAGECHECK, SCEP_HR_E_ACCESSDENIED);
    /* a prefix of the right one is not the right one */
    r.challenge = "lab-secret";
    expect_failure(&r, SCEP_FAIL_BADMESSAGECHECK, SCEP_HR_E_ACCESSDENIED);
}

Test(pkiop, missing_challenge)
{
    struct th_req r;

    th_req_defaults(&r, &env);
    r.challenge = NULL;
    expect_failure(&r, SCEP_FAIL_BADMESSAGECHECK, SCEP_HR_E_ACCESSDENIED);
}

Test(pkiop, generated_challenge_when_config_has_none)
{
    struct th_req r;
    struct scep_outcome out;
    X509 *c;

    env.cfg.challenge[0] = '\0'; /* use STATE/pki/challenge */
    th_req_defaults(&r, &env);
    expect_failure(&r, SCEP_FAIL_BADMESSAGECHECK, SCEP_HR_E_ACCESSDENIED);
    r.challenge = env.pki.challenge;
    c = enroll(&r, &out);
    X509_free(c);
    scep_outcome_clear(&out);
}

Test(pkiop, fail_info_for_bad_challenge_is_configurable)
{
    struct th_req r;

    env.cfg.reply.fail_info_bad_challenge = SCEP_FAIL_BADREQUEST;
    th_req_defaults(&r, &env);
    r.challenge = "nope";
    expect_failure(&r, SCEP_FAIL_BADREQUEST, SCEP_HR_E_ACCESSDENIED);
}

Test(pkiop, accept_any_and_none_policies)
{
    struct th_req r;
    struct scep_outcome out;
    X509 *c;

    th_req_defaults(&r, &env);
    r.challenge = "whatever";
    env.cfg.challenge_policy = CHALLENGE_ACCEPT_ANY;
    c = enroll(&r, &out);
    X509_free(c);
    scep_outcome_clear(&out);
    env.cfg.challenge_policy = CHALLENGE_NONE;
    r.challenge = NULL;
    c = enroll(&r, &out);
    X509_free(c);
    scep_outcome_clear(&out);
}

Test(pkiop, getcrl_is_bad_request)
{
    struct th_req r;
    uint8_t *ias;
    size_t len;

    ias = th_ias_der(X509_get_issuer_name(env.pki.ca_cert), X509_get0_serialNumber(env.pki.ca_cert),
                     &len);
    th_req_defaults(&r, &env);
    r.msg_type = SCEP_MSG_GETCRL;
    r.content = ias;
    r.content_len = len;
    expect_failure(&r, SCEP_FAIL_BADREQUEST, -2147024809L);
    OPENSSL_free(ias);
}

Test(pkiop, getcert_issued_and_unknown)
{
    struct th_req r, g;
    struct scep_outcome out;
    struct scep_reply rep;
    struct util_buf b;
    X509 *c;
    uint8_t *ias;
    size_t len;
    ASN1_INTEGER *bogus;

    th_req_defaults(&r, &env);
    c = enroll(&r, &out);
    scep_outcome_clear(&out);

    ias = th_ias_der(X509_get_subject_name(env.pki.ca_cert), X509_get0_serialNumber(c), &len);
    th_req_defaults(&g, &env);
    g.msg_type = SCEP_MSG_GETCERT;
    g.content = ias;
    g.content_len = len;
    g.nonce[15] = 0x55;
    util_buf_init(&b);
    th_build(&g, &b);
    th_run(&env, &b, &out, &rep, NULL, NULL);
    cr_assert_eq(rep.status, SCEP_STATUS_SUCCESS, "%s", out.reason);
    cr_assert_not_null(rep.certs);
    cr_assert_eq(sk_X509_num(rep.certs), 1);
    cr_assert_eq(X509_cmp(sk_X509_value(rep.certs, 0), c), 0, "GetCert returned another cert");
    cr_assert_arr_eq(rep.recipient_nonce, g.nonce, 16);
    scep_reply_clear(&rep);
    scep_outcome_clear(&out);
    OPENSSL_free(ias);

    bogus = ASN1_INTEGER_new();
    ASN1_INTEGER_set(bogus, 0x12345678);
    ias = th_ias_der(X509_get_subject_name(env.pki.ca_cert), bogus, &len);
    g.content = ias;
    g.content_len = len;
    expect_failure(&g, SCEP_FAIL_BADCERTID, SCEP_HR_E_INVALIDARG);
    OPENSSL_free(ias);

    /* the right serial with the wrong issuer is unknown too */
    ias = th_ias_der(X509_get_subject_name(c), X509_get0_serialNumber(c), &len);
    g.content = ias;
    g.content_len = len;
    expect_failure(&g, SCEP_FAIL_BADCERTID, SCEP_HR_E_INVALIDARG);
    OPENSSL_free(ias);
    ASN1_INTEGER_free(bogus);
    X509_free(c);
    util_buf_free(&b);
}

Test(pkiop, certpoll_without_pending_is_bad_cert_id)
{
    struct th_req r;
    uint8_t *ias;
    size_t len;

    ias = th_ias_der(X509_get_subject_name(env.pki.ca_cert),
                     X509_get0_serialNumber(env.client_cert), &len);
    th_req_defaults(&r, &env);
    r.msg_type = SCEP_MSG_CERTPOLL;
    r.content = ias;
    r.content_len = len;
    expect_failure(&r, SCEP_FAIL_BADCERTID, SCEP_HR_E_INVALIDARG);
    OPENSSL_free(ias);
}

Test(pkiop, unknown_message_type_is_bad_request)
{
    struct th_req r;

    th_req_defaults(&r, &env);
    r.msg_type = 99;
    expect_failure(&r, SCEP_FAIL_BADREQUEST, SCEP_HR_E_INVALIDARG);
}

Test(pkiop, bad_signature_is_bad_message_check)
{
    struct th_req r;
    struct util_buf b;
    struct scep_outcome out;
    struct scep_reply rep;

    th_req_defaults(&r, &env);
    util_buf_init(&b);
    th_build(&r, &b);
    b.data[b.len - 1] ^= 0x01;
    th_run(&env, &b, &out, &rep, NULL, NULL);
    cr_assert_eq(rep.status, SCEP_STATUS_FAILURE);
    cr_assert_eq(rep.fail_info, SCEP_FAIL_BADMESSAGECHECK);
    cr_assert_eq(rep.hresult, SCEP_HR_NTE_BAD_SIGNATURE);
    cr_assert_arr_eq(rep.recipient_nonce, r.nonce, 16);
    scep_reply_clear(&rep);
    scep_outcome_clear(&out);
    util_buf_free(&b);
}

Test(pkiop, md5_is_bad_alg)
{
    struct th_req r;

    th_req_defaults(&r, &env);
    r.md = "MD5";
    expect_failure(&r, SCEP_FAIL_BADALG, SCEP_HR_NTE_BAD_ALGID);
}

Test(pkiop, non_rsa_requester_is_bad_alg)
{
    struct th_req r;
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    X509 *self;

    cr_assert_not_null(ec);
    self = scep_build_selfsigned(ec, "ec-device");
    cr_assert_not_null(self);
    th_req_defaults(&r, &env);
    r.signer = self;
    r.signer_key = ec;
    expect_failure(&r, SCEP_FAIL_BADALG, SCEP_HR_NTE_BAD_ALGID);
    X509_free(self);
    EVP_PKEY_free(ec);
}

Test(pkiop, malformed_and_undecryptable_are_iis_500)
{
    static const uint8_t junk[] = "not a pkiMessage";
    struct th_req r;
    struct util_buf b;
    struct scep_outcome out;

    scep_pkioperation(&env.ctx, junk, sizeof(junk), &out);
    cr_assert_eq(out.kind, SCEP_OUT_IIS_500);
    cr_assert_eq(out.body.len, 0);
    cr_assert_eq(out.status, SCEP_STATUS_NONE);
    scep_outcome_clear(&out);

    th_req_defaults(&r, &env);
    r.recipients[0] = env.pki.tls_cert;
    util_buf_init(&b);
    th_build(&r, &b);
    scep_pkioperation(&env.ctx, b.data, b.len, &out);
    cr_assert_eq(out.kind, SCEP_OUT_IIS_500, "NDES answers 0x80090005 Bad Data with IIS 500");
    cr_assert_eq(out.body.len, 0);
    cr_assert_str_eq(out.tid, TH_TID, "the log still gets the transaction ID");
    scep_outcome_clear(&out);
    util_buf_free(&b);
}

Test(pkiop, renewal_signed_by_issued_cert_needs_no_challenge)
{
    struct th_req r;
    struct scep_outcome out;
    X509 *first, *second;

    th_req_defaults(&r, &env);
    first = enroll(&r, &out);
    scep_outcome_clear(&out);

    /* RenewalReq signed with the issued certificate, no challenge */
    th_req_defaults(&r, &env);
    r.msg_type = SCEP_MSG_RENEWALREQ;
    r.signer = first;
    r.challenge = NULL;
    r.nonce[0] = 0x01;
    second = enroll(&r, &out);
    cr_assert_neq(ASN1_INTEGER_cmp(X509_get0_serialNumber(first), X509_get0_serialNumber(second)),
                  0, "a renewal gets a new serial");
    X509_free(second);
    scep_outcome_clear(&out);

    /* a PKCSReq re-enrollment signed with it works as well */
    r.msg_type = SCEP_MSG_PKCSREQ;
    second = enroll(&r, &out);
    X509_free(second);
    scep_outcome_clear(&out);

    /* but the same without challenge from a self-signed cert fails */
    r.signer = env.client_cert;
    expect_failure(&r, SCEP_FAIL_BADMESSAGECHECK, SCEP_HR_E_ACCESSDENIED);
    X509_free(first);
}

Test(pkiop, outcome_strings)
{
    cr_assert_str_eq(scep_msg_type_str(SCEP_MSG_PKCSREQ), "PKCSReq");
    cr_assert_str_eq(scep_msg_type_str(SCEP_MSG_GETCRL), "GetCRL");
    cr_assert_str_eq(scep_msg_type_str(77), "Unknown");
    cr_assert_str_eq(scep_pki_status_str(SCEP_STATUS_FAILURE), "FAILURE");
    cr_assert_str_eq(scep_pki_status_str(SCEP_STATUS_NONE), "-");
    cr_assert_str_eq(scep_fail_info_str(SCEP_FAIL_BADCERTID), "badCertId");
    cr_assert_str_eq(scep_fail_info_str(SCEP_FAIL_BADALG), "badAlg");
    cr_assert_str_eq(scep_decode_str(SCEP_DECODE_UNDECRYPTABLE), "undecryptable");
}

/* ---- transactionID replay table (src/scep/pending.c) ---- */
#include "../../src/scep/pending.h"

Test(tids, replay_with_other_key_refused_same_key_allowed)
{
    struct scep_tids *t = scep_tids_new(64);
    EVP_MD *sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    unsigned char k1[20], k2[20];
    char tid[40];
    int i;

    cr_assert(t && sha1);
    memset(k1, 1, sizeof(k1));
    memset(k2, 2, sizeof(k2));
    cr_assert_eq(tids_check(t, sha1, "tid-A", k1), 0, "new transactionID");
    cr_assert_eq(tids_check(t, sha1, "tid-A", k1), 0, "same key again (a client's retry)");
    cr_assert_eq(tids_check(t, sha1, "tid-A", k2), -1, "same transactionID, other key");
    cr_assert_eq(tids_check(t, sha1, "tid-B", k2), 0, "other transactionID");
    /* an empty transactionID is remembered like any other (an all-zero slot is not a match) */
    cr_assert_eq(tids_check(t, sha1, "", k2), 0);
    cr_assert_eq(tids_check(t, sha1, "", k1), -1);
    /* the table is bounded: many new transactions evict old ones, never refuse new ones */
    for (i = 0; i < 1000; i++) {
        snprintf(tid, sizeof(tid), "fill-%d", i);
        cr_assert_eq(tids_check(t, sha1, tid, i % 2 ? k1 : k2), 0, "%s is new", tid);
    }
    EVP_MD_free(sha1);
    scep_tids_free(t);
}

/* ---- the crypto gate (scep_ctx_init_ex(SCEP_CTX_CRYPTO_LATER), scep_ctx_ready) ---- */

static void *ready_thread(void *arg)
{
    char err[160];

    return (void *)(intptr_t)scep_ctx_ready(arg, err, sizeof(err));
}

Test(pkiop, crypto_later_answers_500_until_ready_then_enrolls)
{
    struct scep_ctx late;
    struct th_req r;
    struct util_buf b;
    struct scep_outcome out;
    pthread_t th[4];
    char err[256];
    int i;

    cr_assert_eq(scep_ctx_init_ex(&late, &env.cfg, &env.pki, &env.store, SCEP_CTX_CRYPTO_LATER,
                                  err, sizeof(err)),
                 0, "%s", err);
    cr_assert_null(late.algs.sha256, "nothing fetched before scep_ctx_ready");
    th_req_defaults(&r, &env);
    util_buf_init(&b);
    th_build(&r, &b);
    scep_pkioperation(&late, b.data, b.len, &out);
    cr_assert_eq(out.kind, SCEP_OUT_IIS_500, "no algorithms yet: IIS 500");
    cr_assert(strstr(out.reason, "not loaded") != NULL, "reason: %s", out.reason);
    scep_outcome_clear(&out);
    /* several threads open the gate at once: one loads, the others wait, all succeed */
    for (i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, ready_thread, &late), 0);
    for (i = 0; i < 4; i++) {
        void *rc;
        pthread_join(th[i], &rc);
        cr_assert_eq((intptr_t)rc, 0, "scep_ctx_ready failed in thread %d", i);
    }
    cr_assert_not_null(late.algs.sha256);
    scep_pkioperation(&late, b.data, b.len, &out);
    cr_assert_eq(out.kind, SCEP_OUT_CERTREP, "after the gate: %s", out.reason);
    cr_assert_eq(out.status, SCEP_STATUS_SUCCESS, "status %d: %s", out.status, out.reason);
    scep_outcome_clear(&out);
    util_buf_free(&b);
    /* single DES (decrypted by util, not by a provider) after the gate as well */
    th_req_defaults(&r, &env);
    r.cipher = "DES-CBC";
    util_buf_init(&b);
    th_build(&r, &b);
    scep_pkioperation(&late, b.data, b.len, &out);
    cr_assert_eq(out.status, SCEP_STATUS_SUCCESS, "single DES: %d: %s", out.status, out.reason);
    scep_outcome_clear(&out);
    util_buf_free(&b);
    scep_ctx_free(&late);
    scep_ctx_free(&late); /* idempotent */
}
