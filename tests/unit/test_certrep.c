/* test_certrep.c - src/scep/certrep.c: the CertRep bytes NDES-style clients
 * check, and a known-answer comparison with the real NDES FAILURE reply
 * captured in NDES-REFERENCE.md section 4.2 (sscep issue #59, public). */
#include "scep_th.h"

#include <openssl/sha.h>

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

TestSuite(certrep, .init = setup, .fini = teardown);
TestSuite(ndes_capture, .init = setup, .fini = teardown);

/* Real NDES (CN=SRV2012-CA) reply to a GetCRL: FAILURE / badRequest /
 * SCEP_ERROR -2147024809, 670 bytes. Verbatim from sscep#59. */
static const char NDES_CAPTURE_B64[] =
    "MIICmgYJKoZIhvcNAQcCoIICizCCAocCAQExCzAJBgUrDgMCGgUAMBAGCSqGSIb3\n"
    "DQEHAaADBAEAMYICYTCCAl0CAQEwLDAVMRMwEQYDVQQDEwpTUlYyMDEyLUNBAhN5\n"
    "AAAAAkiYSS6I+v76AAAAAAACMAkGBSsOAwIaBQCgggEKMBEGCmCGSAGG+EUBCQIx\n"
    "AxMBMzARBgpghkgBhvhFAQkDMQMTATIwEQYKYIZIAYb4RQEJBDEDEwEyMBgGCSqG\n"
    "SIb3DQEJAzELBgkqhkiG9w0BBwEwGgYJKwYBBAGCNxUhMQ0TCy0yMTQ3MDI0ODA5\n"
    "MCAGCmCGSAGG+EUBCQUxEgQQg7fzGwMI9kqNGhc8L3193zAgBgpghkgBhvhFAQkG\n"
    "MRIEEBNvNvSjjsDJdO8QB6mrsiswIwYJKoZIhvcNAQkEMRYEFFupPJ2wz/k/UrUh\n"
    "10IOQ/btonhPMDAGCmCGSAGG+EUBCQcxIhMgOUNCMUNCOTk4QjdGQ0MwMTQyMjk3\n"
    "QjQ5Mjk4OEFGQjQwDQYJKoZIhvcNAQEBBQAEggEAgocQOi8YTdY1GAfwbpQyahOa\n"
    "uCiPbY6f4rbDPGVxXo/rSh5LCVBrqjOV7FPfdUOvAHq6NUtHWttpCduVLt4ZfqHF\n"
    "tGRlcavzrYMf3mii413zTwMSoNZCwSNWDY4QSzWXus5QiKxfnVTAIK/AqxIyD5do\n"
    "GNJGO4JSHMUdGrJW9TCLUu/x9sLNMsCpYpmSYwzKUZJ8DXQL2Ma4WGOjp54Sy6cV\n"
    "JI9O4XPh8cTgi5uqfW2BGQZxXXS02IC6Gb+3Qy9Ylz/A0JQPF+ASnJsurABewcH5\n"
    "V1DgvGwsRNesN+YHR8+OMUnk1bOZ0DjW9BH9yxttN23bOs/EClD+GkoLfCGGxQ==\n";

static const uint8_t CAPTURE_RECIPIENT_NONCE[16] = {0x13, 0x6F, 0x36, 0xF4, 0xA3, 0x8E, 0xC0, 0xC9,
                                                    0x74, 0xEF, 0x10, 0x07, 0xA9, 0xAB, 0xB2, 0x2B};
static const uint8_t CAPTURE_SENDER_NONCE[16] = {0x83, 0xB7, 0xF3, 0x1B, 0x03, 0x08, 0xF6, 0x4A,
                                                 0x8D, 0x1A, 0x17, 0x3C, 0x2F, 0x7D, 0x7D, 0xDF};
/* SHA-1 of the one-byte content 00 */
static const uint8_t SHA1_OF_ZERO[20] = {0x5B, 0xA9, 0x3C, 0x9D, 0xB0, 0xCF, 0xF9, 0x3F, 0x52, 0xB5,
                                         0x21, 0xD7, 0x42, 0x0E, 0x43, 0xF6, 0xED, 0xA2, 0x78, 0x4F};

static const uint8_t ALG_SHA1[] = {0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00};
static const uint8_t ALG_RSA[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                  0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
static const uint8_t OID_SIGNING_TIME[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05};
static const uint8_t OID_MSG_DIGEST[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04};
static const uint8_t OID_SENDER_NONCE[] = {0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x45, 0x01, 0x09, 0x05};

static size_t capture(uint8_t *out, size_t cap)
{
    long n = util_base64_decode(NDES_CAPTURE_B64, strlen(NDES_CAPTURE_B64), out, cap);

    cr_assert_eq(n, 670, "capture decodes to %ld bytes", n);
    return (size_t)n;
}

/* A decoded request as the service would have it, without building one. */
static void fake_request(struct scep_request *req, const char *tid, const uint8_t *nonce)
{
    memset(req, 0, sizeof(*req));
    req->msg_type = SCEP_MSG_GETCRL;
    req->tid_len = strlen(tid);
    memcpy(req->tid, tid, req->tid_len);
    req->tid_type = V_ASN1_PRINTABLESTRING;
    snprintf(req->tid_print, sizeof(req->tid_print), "%s", tid);
    memcpy(req->sender_nonce, nonce, 16);
    req->sender_nonce_len = 16;
    req->digest_nid = NID_sha1;
    req->cipher_nid = NID_des_ede3_cbc;
}

/* Attribute i's OID TLV inside the signedAttrs [0]. */
static struct th_tlv attr_oid(const struct th_tlv *attrs, int i)
{
    struct th_tlv a = th_der_child(attrs, i), oid;

    cr_assert_eq(a.tag, 0x30);
    oid = th_der_child(&a, 0);
    cr_assert_eq(oid.tag, 0x06);
    return oid;
}

/* Attribute i's (single) value TLV. */
static struct th_tlv attr_value(const struct th_tlv *attrs, int i)
{
    struct th_tlv a = th_der_child(attrs, i), set;

    set = th_der_child(&a, 1);
    cr_assert_eq(set.tag, 0x31);
    cr_assert_eq(th_der_count(&set), 1);
    return th_der_child(&set, 0);
}

static int find_attr(const struct th_tlv *attrs, const uint8_t *oid, size_t olen)
{
    int i, n = th_der_count(attrs);

    for (i = 0; i < n; i++) {
        struct th_tlv o = attr_oid(attrs, i);
        if (o.len == olen && memcmp(o.content, oid, olen) == 0)
            return i;
    }
    return -1;
}

/* The signedAttrs [0] of the first SignerInfo (child 3). */
static struct th_tlv signed_attrs(const uint8_t *d, size_t len)
{
    struct th_tlv sd = th_signed_data(d, len), si = th_signer_info(&sd), a;

    a = th_der_child(&si, 3);
    cr_assert_eq(a.tag, 0xa0, "SignerInfo has no signedAttrs");
    return a;
}

static void build(int status, int fail_info, long hresult, X509 *issued, struct scep_request *req,
                  struct util_buf *out)
{
    util_buf_init(out);
    cr_assert_eq(scep_certrep_build(&env.ctx, req, status, fail_info, hresult, issued, out), 0);
}

/* ---- properties of our CertRep -------------------------------------------------- */

Test(certrep, failure_shape)
{
    static const uint8_t nonce[16] = "0123456789abcdef";
    struct scep_request req;
    struct util_buf b;
    struct th_tlv sd, si, a, v;
    int i, n;

    fake_request(&req, TH_TID, nonce);
    build(SCEP_STATUS_FAILURE, SCEP_FAIL_BADREQUEST, SCEP_HR_E_INVALIDARG, NULL, &req, &b);
    sd = th_signed_data(b.data, b.len);

    /* version 1, digestAlgorithms {sha1 NULL}, encapContentInfo {data, [0] OCTET STRING {00}},
     * then straight to signerInfos: no [0] certificates, no [1] crls */
    cr_assert_eq(th_der_count(&sd), 4, "SignedData has %d fields", th_der_count(&sd));
    v = th_der_child(&sd, 0);
    cr_assert(v.tag == 0x02 && v.len == 1 && v.content[0] == 1);
    v = th_der_child(&sd, 1);
    cr_assert_eq(v.tag, 0x31);
    cr_assert_eq(v.len, sizeof(ALG_SHA1));
    cr_assert_arr_eq(v.content, ALG_SHA1, sizeof(ALG_SHA1));
    v = th_der_child(&sd, 2);
    {
        struct th_tlv ex = th_der_child(&v, 1), os = th_der_child(&ex, 0);
        cr_assert_eq(ex.tag, 0xa0);
        cr_assert_eq(os.tag, 0x04);
        cr_assert_eq(os.len, 1, "FAILURE content must be exactly one byte");
        cr_assert_eq(os.content[0], 0x00);
    }
    cr_assert_eq(th_der_child(&sd, 3).tag, 0x31);

    si = th_signer_info(&sd);
    cr_assert_eq(th_der_count(&si), 6, "no unsignedAttrs");
    v = th_der_child(&si, 0);
    cr_assert(v.tag == 0x02 && v.len == 1 && v.content[0] == 1, "SignerInfo version 1");
    v = th_der_child(&si, 1);
    cr_assert_eq(v.hl + v.len, env.pki.ra_sign_ias_len);
    cr_assert_arr_eq(v.content - v.hl, env.pki.ra_sign_ias, env.pki.ra_sign_ias_len,
                     "signer is the RA signing cert by issuerAndSerialNumber");
    v = th_der_child(&si, 2);
    cr_assert_arr_eq(v.content - v.hl, ALG_SHA1, sizeof(ALG_SHA1), "digest SHA-1 with NULL");
    v = th_der_child(&si, 4);
    cr_assert_eq(v.hl + v.len, sizeof(ALG_RSA));
    cr_assert_arr_eq(v.content - v.hl, ALG_RSA, sizeof(ALG_RSA),
                     "signatureAlgorithm must be rsaEncryption (strongSwan)");
    v = th_der_child(&si, 5);
    cr_assert_eq(v.tag, 0x04);
    cr_assert_eq(v.len, 256, "2048-bit RSA signature");

    a = th_der_child(&si, 3);
    n = th_der_count(&a);
    cr_assert_eq(n, 9, "messageType pkiStatus failInfo contentType scepError senderNonce "
                       "recipientNonce messageDigest transactionID");
    cr_assert_eq(find_attr(&a, OID_SIGNING_TIME, sizeof(OID_SIGNING_TIME)), -1, "no signingTime");
    /* DER SET OF order: each encoding <= the next, compared as octet strings */
    for (i = 1; i < n; i++) {
        struct th_tlv x = th_der_child(&a, i - 1), y = th_der_child(&a, i);
        size_t xl = x.hl + x.len, yl = y.hl + y.len, m = xl < yl ? xl : yl;
        int c = memcmp(x.content - x.hl, y.content - y.hl, m);
        cr_assert(c < 0 || (c == 0 && xl <= yl), "attribute %d sorts before attribute %d", i, i - 1);
    }
    i = find_attr(&a, OID_MSG_DIGEST, sizeof(OID_MSG_DIGEST));
    cr_assert_geq(i, 0);
    v = attr_value(&a, i);
    cr_assert_eq(v.len, 20);
    cr_assert_arr_eq(v.content, SHA1_OF_ZERO, 20, "messageDigest = SHA-1(00)");
    i = find_attr(&a, OID_SENDER_NONCE, sizeof(OID_SENDER_NONCE));
    v = attr_value(&a, i);
    cr_assert_eq(v.tag, 0x04);
    cr_assert_eq(v.len, 16, "server senderNonce: 16 bytes like NDES");
    util_buf_free(&b);
}

Test(certrep, signature_verifies_independently)
{
    /* Check the signature ourselves: RSA PKCS#1 v1.5 with SHA-1 over the
     * signedAttrs re-tagged as SET (0x31), using the RA signing public key. */
    static const uint8_t nonce[16] = {1, 2, 3};
    struct scep_request req;
    struct util_buf b, tbs;
    struct th_tlv sd, si, a, sig;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY *pub = X509_get0_pubkey(env.pki.ra_sign_cert);

    fake_request(&req, TH_TID, nonce);
    build(SCEP_STATUS_FAILURE, SCEP_FAIL_BADREQUEST, SCEP_HR_E_INVALIDARG, NULL, &req, &b);
    sd = th_signed_data(b.data, b.len);
    si = th_signer_info(&sd);
    a = th_der_child(&si, 3);
    sig = th_der_child(&si, 5);
    util_buf_init(&tbs);
    util_buf_append(&tbs, a.content - a.hl, a.hl + a.len);
    tbs.data[0] = 0x31;
    cr_assert_eq(EVP_DigestVerifyInit(m, NULL, EVP_sha1(), NULL, pub), 1);
    cr_assert_eq(EVP_DigestVerify(m, sig.content, sig.len, tbs.data, tbs.len), 1,
                 "signature does not verify over the SET-tagged attributes");
    /* and it must not verify with another key */
    EVP_MD_CTX_reset(m);
    cr_assert_eq(EVP_DigestVerifyInit(m, NULL, EVP_sha1(), NULL, X509_get0_pubkey(env.pki.ra_enc_cert)), 1);
    cr_assert_neq(EVP_DigestVerify(m, sig.content, sig.len, tbs.data, tbs.len), 1);
    ERR_clear_error();
    EVP_MD_CTX_free(m);
    util_buf_free(&tbs);
    util_buf_free(&b);
}

Test(certrep, parse_reply_checks_the_signer)
{
    static const uint8_t nonce[16] = {9};
    struct scep_request req;
    struct util_buf b;
    struct scep_reply r;

    fake_request(&req, TH_TID, nonce);
    build(SCEP_STATUS_FAILURE, SCEP_FAIL_BADREQUEST, 0, NULL, &req, &b);
    cr_assert_eq(scep_parse_reply(b.data, b.len, env.pki.ra_sign_cert, NULL, NULL, &r), 0);
    cr_assert_eq(r.signature_ok, 1);
    scep_reply_clear(&r);
    cr_assert_eq(scep_parse_reply(b.data, b.len, env.pki.ra_enc_cert, NULL, NULL, &r), 0);
    cr_assert_eq(r.signature_ok, 0, "verified with the wrong certificate");
    scep_reply_clear(&r);
    /* a flipped signature byte is caught */
    b.data[b.len - 1] ^= 1;
    cr_assert_eq(scep_parse_reply(b.data, b.len, env.pki.ra_sign_cert, NULL, NULL, &r), 0);
    cr_assert_eq(r.signature_ok, 0);
    scep_reply_clear(&r);
    util_buf_free(&b);
}

Test(certrep, every_fail_info_round_trips)
{
    static const uint8_t nonce[16] = {0xfe, 0xed};
    int f;

    for (f = SCEP_FAIL_BADALG; f <= SCEP_FAIL_BADCERTID; f++) {
        struct scep_request req;
        struct util_buf b;
        struct scep_reply r;
        long hr = -2146893800L - f;

        fake_request(&req, "TID-failinfo", nonce);
        build(SCEP_STATUS_FAILURE, f, hr, NULL, &req, &b);
        cr_assert_eq(scep_parse_reply(b.data, b.len, env.pki.ra_sign_cert, NULL, NULL, &r), 0);
        cr_assert_eq(r.signature_ok, 1);
        cr_assert_eq(r.msg_type, SCEP_MSG_CERTREP);
        cr_assert_eq(r.status, SCEP_STATUS_FAILURE);
        cr_assert_eq(r.fail_info, f, "failInfo %d came back as %d", f, r.fail_info);
        cr_assert_eq(r.has_hresult, 1);
        cr_assert_eq(r.hresult, hr);
        cr_assert_str_eq(r.tid, "TID-failinfo");
        cr_assert_eq(r.recipient_nonce_len, 16);
        cr_assert_arr_eq(r.recipient_nonce, nonce, 16);
        cr_assert_eq(r.has_signing_time, 0);
        cr_assert_eq(r.sig_alg_nid, NID_rsaEncryption);
        cr_assert_eq(r.digest_nid, NID_sha1);
        cr_assert_eq(r.content_len, 1);
        cr_assert_null(r.certs);
        scep_reply_clear(&r);
        util_buf_free(&b);
    }
}

Test(certrep, no_hresult_no_scep_error_attribute)
{
    static const uint8_t nonce[16] = {7};
    struct scep_request req;
    struct util_buf b;
    struct scep_reply r;
    struct th_tlv a;

    fake_request(&req, TH_TID, nonce);
    build(SCEP_STATUS_FAILURE, SCEP_FAIL_BADTIME, 0, NULL, &req, &b);
    cr_assert_eq(scep_parse_reply(b.data, b.len, env.pki.ra_sign_cert, NULL, NULL, &r), 0);
    cr_assert_eq(r.fail_info, SCEP_FAIL_BADTIME);
    cr_assert_eq(r.has_hresult, 0);
    a = signed_attrs(b.data, b.len);
    cr_assert_eq(th_der_count(&a), 8);
    scep_reply_clear(&r);
    util_buf_free(&b);
}

Test(certrep, pending_has_no_fail_info)
{
    static const uint8_t nonce[16] = {3, 3, 3};
    struct scep_request req;
    struct util_buf b;
    struct scep_reply r;
    struct th_tlv a;

    fake_request(&req, TH_TID, nonce);
    build(SCEP_STATUS_PENDING, SCEP_FAIL_BADREQUEST, SCEP_HR_E_INVALIDARG, NULL, &req, &b);
    cr_assert_eq(scep_parse_reply(b.data, b.len, env.pki.ra_sign_cert, NULL, NULL, &r), 0);
    cr_assert_eq(r.signature_ok, 1);
    cr_assert_eq(r.status, SCEP_STATUS_PENDING);
    cr_assert_eq(r.fail_info, -1, "PENDING carries no failInfo");
    cr_assert_eq(r.has_hresult, 0);
    cr_assert_eq(r.content_len, 1);
    a = signed_attrs(b.data, b.len);
    cr_assert_eq(th_der_count(&a), 7);
    scep_reply_clear(&r);
    util_buf_free(&b);
}

Test(certrep, transaction_id_string_type_echoed)
{
    static const uint8_t nonce[16] = {1};
    struct scep_request req;
    struct util_buf b;
    struct th_tlv a, v;
    static const uint8_t oid_tid[] = {0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x45, 0x01, 0x09, 0x07};

    fake_request(&req, "utf8-tid", nonce);
    req.tid_type = V_ASN1_UTF8STRING;
    build(SCEP_STATUS_FAILURE, SCEP_FAIL_BADREQUEST, 0, NULL, &req, &b);
    a = signed_attrs(b.data, b.len);
    v = attr_value(&a, find_attr(&a, oid_tid, sizeof(oid_tid)));
    cr_assert_eq(v.tag, 0x0c, "UTF8String transactionID echoed as UTF8String");
    cr_assert_eq(v.len, 8);
    cr_assert_arr_eq(v.content, "utf8-tid", 8);
    util_buf_free(&b);
}

Test(certrep, pkioperation_failure_echoes_request)
{
    struct th_req r;
    struct util_buf msg;
    struct scep_outcome out;
    struct scep_reply rep;
    struct th_tlv sd;

    th_req_defaults(&r, &env);
    r.challenge = "wrong";
    r.tid = "a-transaction-id-from-the-client";
    util_buf_init(&msg);
    th_build(&r, &msg);
    th_run(&env, &msg, &out, &rep, NULL, NULL);
    cr_assert_eq(rep.status, SCEP_STATUS_FAILURE);
    cr_assert_str_eq(rep.tid, "a-transaction-id-from-the-client");
    cr_assert_eq(rep.recipient_nonce_len, 16);
    cr_assert_arr_eq(rep.recipient_nonce, r.nonce, 16, "recipientNonce = request senderNonce");
    cr_assert_eq(rep.has_signing_time, 0);
    cr_assert_eq(rep.content_len, 1);
    sd = th_signed_data(out.body.data, out.body.len);
    cr_assert_eq(th_der_count(&sd), 4, "FAILURE reply carries no certificates");
    scep_reply_clear(&rep);
    scep_outcome_clear(&out);
    util_buf_free(&msg);
}

static void success_with_cipher(const char *cipher, int want_reply_nid)
{
    struct th_req r;
    struct util_buf msg;
    struct scep_outcome out;
    struct scep_reply rep;
    struct th_tlv sd, certs;
    const uint8_t *p;
    X509 *ra;

    th_req_defaults(&r, &env);
    r.cipher = cipher;
    util_buf_init(&msg);
    th_build(&r, &msg);
    th_run(&env, &msg, &out, &rep, NULL, NULL);
    cr_assert_eq(rep.status, SCEP_STATUS_SUCCESS, "%s", out.reason);
    cr_assert_eq(rep.fail_info, -1);
    cr_assert_eq(rep.has_hresult, 0);
    cr_assert_eq(rep.cipher_nid, want_reply_nid, "%s request got a %s reply", cipher,
                 OBJ_nid2sn(rep.cipher_nid));
    cr_assert_not_null(rep.certs, "reply envelope not decrypted with the requester's key");
    cr_assert_gt(rep.content_len, 100);
    cr_assert_arr_eq(rep.recipient_nonce, r.nonce, 16);
    cr_assert_str_eq(rep.tid, TH_TID);
    /* certs_in_success (default true): the RA signing cert in [0] certificates */
    sd = th_signed_data(out.body.data, out.body.len);
    cr_assert_eq(th_der_count(&sd), 5);
    certs = th_der_child(&sd, 3);
    cr_assert_eq(certs.tag, 0xa0);
    p = certs.content;
    ra = d2i_X509(NULL, &p, (long)certs.len);
    cr_assert_not_null(ra);
    cr_assert_eq(X509_cmp(ra, env.pki.ra_sign_cert), 0);
    X509_free(ra);
    scep_reply_clear(&rep);
    scep_outcome_clear(&out);
    util_buf_free(&msg);
}

Test(certrep, success_reply_cipher_follows_request)
{
    success_with_cipher("AES-128-CBC", NID_aes_128_cbc);
    success_with_cipher("AES-256-CBC", NID_aes_256_cbc);
    success_with_cipher("DES-EDE3-CBC", NID_des_ede3_cbc);
}

Test(certrep, success_reply_never_single_des)
{
    success_with_cipher("DES-CBC", NID_des_ede3_cbc);
}

Test(certrep, certs_in_success_off_and_include_ca_on)
{
    struct th_req r;
    struct util_buf msg;
    struct scep_outcome out;
    struct scep_reply rep;
    struct th_tlv sd;

    env.cfg.reply.certs_in_success = 0;
    env.cfg.reply.include_ca_in_reply = 1;
    th_req_defaults(&r, &env);
    util_buf_init(&msg);
    th_build(&r, &msg);
    th_run(&env, &msg, &out, &rep, NULL, NULL);
    cr_assert_eq(rep.status, SCEP_STATUS_SUCCESS, "%s", out.reason);
    sd = th_signed_data(out.body.data, out.body.len);
    cr_assert_eq(th_der_count(&sd), 4, "no certificates when certs_in_success is off");
    cr_assert_eq(sk_X509_num(rep.certs), 2, "issued cert + CA");
    cr_assert_eq(X509_cmp(sk_X509_value(rep.certs, 1), env.pki.ca_cert), 0);
    scep_reply_clear(&rep);
    scep_outcome_clear(&out);
    util_buf_free(&msg);
}

Test(certrep, certs_in_failure_on)
{
    static const uint8_t nonce[16] = {4};
    struct scep_request req;
    struct util_buf b;
    struct th_tlv sd;

    env.cfg.reply.certs_in_failure = 1;
    fake_request(&req, TH_TID, nonce);
    build(SCEP_STATUS_FAILURE, SCEP_FAIL_BADREQUEST, 0, NULL, &req, &b);
    sd = th_signed_data(b.data, b.len);
    cr_assert_eq(th_der_count(&sd), 5);
    cr_assert_eq(th_der_child(&sd, 3).tag, 0xa0);
    util_buf_free(&b);
}

Test(certrep, sha256_reply_digest)
{
    static const uint8_t nonce[16] = {5};
    static const uint8_t alg_sha256[] = {0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
                                         0x03, 0x04, 0x02, 0x01, 0x05, 0x00};
    struct scep_request req;
    struct util_buf b;
    struct scep_reply r;
    struct th_tlv sd, si, v;
    char err[256];

    scep_ctx_free(&env.ctx);
    snprintf(env.cfg.reply.digest, sizeof(env.cfg.reply.digest), "sha256");
    cr_assert_eq(scep_ctx_init(&env.ctx, &env.cfg, &env.pki, &env.store, err, sizeof(err)), 0);
    fake_request(&req, TH_TID, nonce);
    build(SCEP_STATUS_FAILURE, SCEP_FAIL_BADREQUEST, 0, NULL, &req, &b);
    cr_assert_eq(scep_parse_reply(b.data, b.len, env.pki.ra_sign_cert, NULL, NULL, &r), 0);
    cr_assert_eq(r.signature_ok, 1);
    cr_assert_eq(r.digest_nid, NID_sha256);
    cr_assert_eq(r.sig_alg_nid, NID_rsaEncryption);
    sd = th_signed_data(b.data, b.len);
    v = th_der_child(&sd, 1);
    cr_assert_arr_eq(v.content, alg_sha256, sizeof(alg_sha256));
    si = th_signer_info(&sd);
    v = th_der_child(&si, 2);
    cr_assert_arr_eq(v.content - v.hl, alg_sha256, sizeof(alg_sha256));
    scep_reply_clear(&r);
    util_buf_free(&b);
}

Test(certrep, sender_nonce_is_fresh)
{
    static const uint8_t nonce[16] = {6};
    struct scep_request req;
    struct util_buf b1, b2;
    struct th_tlv a1, a2, v1, v2;

    fake_request(&req, TH_TID, nonce);
    build(SCEP_STATUS_FAILURE, SCEP_FAIL_BADREQUEST, 0, NULL, &req, &b1);
    build(SCEP_STATUS_FAILURE, SCEP_FAIL_BADREQUEST, 0, NULL, &req, &b2);
    a1 = signed_attrs(b1.data, b1.len);
    a2 = signed_attrs(b2.data, b2.len);
    v1 = attr_value(&a1, find_attr(&a1, OID_SENDER_NONCE, sizeof(OID_SENDER_NONCE)));
    v2 = attr_value(&a2, find_attr(&a2, OID_SENDER_NONCE, sizeof(OID_SENDER_NONCE)));
    cr_assert_eq(v1.len, 16);
    cr_assert_neq(memcmp(v1.content, v2.content, 16), 0, "senderNonce repeated");
    cr_assert_neq(memcmp(v1.content, nonce, 16), 0, "senderNonce must not echo the client's");
    util_buf_free(&b1);
    util_buf_free(&b2);
}

/* ---- known answer: the real NDES capture ----------------------------------------------- */

Test(ndes_capture, parses_with_expected_values)
{
    uint8_t cap[700];
    size_t n = capture(cap, sizeof(cap));
    struct scep_reply r;
    struct th_tlv a, v;
    int i;

    cr_assert_eq(scep_parse_reply(cap, n, env.pki.ra_sign_cert, NULL, NULL, &r), 0);
    cr_assert_eq(r.msg_type, SCEP_MSG_CERTREP);
    cr_assert_eq(r.status, SCEP_STATUS_FAILURE);
    cr_assert_eq(r.fail_info, SCEP_FAIL_BADREQUEST);
    cr_assert_eq(r.has_hresult, 1);
    cr_assert_eq(r.hresult, -2147024809L);
    cr_assert_eq(r.hresult, SCEP_HR_E_INVALIDARG);
    cr_assert_str_eq(r.tid, TH_TID);
    cr_assert_eq(r.recipient_nonce_len, 16);
    cr_assert_arr_eq(r.recipient_nonce, CAPTURE_RECIPIENT_NONCE, 16);
    cr_assert_eq(r.has_signing_time, 0);
    cr_assert_eq(r.sig_alg_nid, NID_rsaEncryption);
    cr_assert_eq(r.digest_nid, NID_sha1);
    cr_assert_eq(r.content_len, 1);
    cr_assert_eq(r.signature_ok, 0, "signed by SRV2012's RA, not ours");
    cr_assert_null(r.certs);
    scep_reply_clear(&r);

    a = signed_attrs(cap, n);
    cr_assert_eq(a.len, 266);
    cr_assert_eq(th_der_count(&a), 9);
    i = find_attr(&a, OID_SENDER_NONCE, sizeof(OID_SENDER_NONCE));
    cr_assert_eq(i, 5);
    v = attr_value(&a, i);
    cr_assert_arr_eq(v.content, CAPTURE_SENDER_NONCE, 16);
    v = attr_value(&a, find_attr(&a, OID_MSG_DIGEST, sizeof(OID_MSG_DIGEST)));
    cr_assert_arr_eq(v.content, SHA1_OF_ZERO, 20);
}

Test(ndes_capture, our_failure_matches_capture_layout)
{
    uint8_t cap[700];
    size_t n = capture(cap, sizeof(cap)), k;
    struct scep_request req;
    struct util_buf b;
    struct th_tlv ca, oa, csd, osd, csi, osi, cv, ov;
    int i, nattr, ni;
    uint8_t *patched;

    fake_request(&req, TH_TID, CAPTURE_RECIPIENT_NONCE);
    build(SCEP_STATUS_FAILURE, SCEP_FAIL_BADREQUEST, -2147024809L, NULL, &req, &b);

    ca = signed_attrs(cap, n);
    oa = signed_attrs(b.data, b.len);
    cr_assert_eq(oa.len, 266, "our signedAttrs are %zu bytes, NDES's 266", oa.len);
    cr_assert_eq(oa.hl, ca.hl);

    /* same attributes in the same (DER) order, by OID */
    nattr = th_der_count(&ca);
    cr_assert_eq(th_der_count(&oa), nattr);
    for (i = 0; i < nattr; i++) {
        struct th_tlv x = attr_oid(&ca, i), y = attr_oid(&oa, i);
        cr_assert_eq(x.len, y.len, "attribute %d: OID differs", i);
        cr_assert_arr_eq(x.content, y.content, x.len, "attribute %d: OID differs", i);
        x = attr_value(&ca, i);
        y = attr_value(&oa, i);
        cr_assert_eq(x.tag, y.tag, "attribute %d: value type %#x, NDES %#x", i, y.tag, x.tag);
        cr_assert_eq(x.len, y.len, "attribute %d: value length", i);
    }

    /* byte for byte identical apart from our own senderNonce */
    ni = find_attr(&oa, OID_SENDER_NONCE, sizeof(OID_SENDER_NONCE));
    ov = attr_value(&oa, ni);
    patched = malloc(ca.hl + ca.len);
    memcpy(patched, ca.content - ca.hl, ca.hl + ca.len);
    k = (size_t)(attr_value(&ca, ni).content - (ca.content - ca.hl));
    memcpy(patched + k, ov.content, 16);
    cr_assert_arr_eq(oa.content - oa.hl, patched, ca.hl + ca.len,
                     "signedAttrs differ from the NDES capture beyond the senderNonce");
    free(patched);

    /* SignedData up to the signerInfos: version, digestAlgorithms, encapContentInfo */
    csd = th_signed_data(cap, n);
    osd = th_signed_data(b.data, b.len);
    cr_assert_eq(th_der_count(&osd), th_der_count(&csd), "certificates present/absent as NDES");
    for (i = 0; i < 3; i++) {
        cv = th_der_child(&csd, i);
        ov = th_der_child(&osd, i);
        cr_assert_eq(cv.hl + cv.len, ov.hl + ov.len, "SignedData field %d", i);
        cr_assert_arr_eq(cv.content - cv.hl, ov.content - ov.hl, cv.hl + cv.len,
                         "SignedData field %d differs", i);
    }
    /* SignerInfo: version, digestAlgorithm, signatureAlgorithm as NDES */
    csi = th_signer_info(&csd);
    osi = th_signer_info(&osd);
    cr_assert_eq(th_der_count(&osi), th_der_count(&csi));
    for (i = 0; i < 6; i++) {
        if (i == 1 || i == 3 || i == 5)
            continue; /* signer id, attributes (above), signature value */
        cv = th_der_child(&csi, i);
        ov = th_der_child(&osi, i);
        cr_assert_eq(cv.hl + cv.len, ov.hl + ov.len, "SignerInfo field %d", i);
        cr_assert_arr_eq(cv.content - cv.hl, ov.content - ov.hl, cv.hl + cv.len,
                         "SignerInfo field %d differs", i);
    }
    cr_assert_eq(th_der_child(&osi, 5).len, th_der_child(&csi, 5).len, "2048-bit signature");
    util_buf_free(&b);
}
