/* fuzz_envelope.c - the layers under the signature. A mutated pkiMessage almost
 * never survives the signature check, so this target signs what the fuzzer
 * gives it (a valid SignedData made by the harness with a throw-away key, as a
 * client would) and lets it into the inner layers:
 *
 *   byte 0, bit 3 = 0: the rest is the EnvelopedData DER (the signed content):
 *                      recipient matching, algorithm checks, RSA decryption
 *                      with the lab RA key, padding, inner PKCS#10 parsing.
 *   byte 0, bit 3 = 1: the rest is the messageData plaintext (PKCS#10 or
 *                      IssuerAndSerialNumber), enveloped by the harness to the
 *                      RA encryption certificate with the cipher in bits 4-6:
 *                      CSR parsing and self-signature, challenge attribute,
 *                      issuance with the configured template, store, GetCert
 *                      lookup, CertRep with the issued certificate.
 *   byte 0, bits 0-2: messageType (PKCSReq, RenewalReq, CertPoll, GetCert,
 *                      GetCRL, CertRep, 0, 99).
 * Seeds: fuzz/run.sh extracts both layers from scepreq requests. */
#include "fuzz_common.h"
#include "fuzz_diff.h"

#include <openssl/pkcs7.h>
#include <openssl/rand.h>

#define FZ_MAX_INPUT (64 * 1024)

extern int scep_nid_message_type, scep_nid_sender_nonce, scep_nid_transaction_id;

static EVP_PKEY *fz_key;
static X509 *fz_cert;
static const EVP_CIPHER *fz_ciphers[8];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const names[8] = {"DES-CBC",     "DES-EDE3-CBC", "AES-128-CBC",
                                         "AES-192-CBC", "AES-256-CBC",  "AES-128-CBC",
                                         "DES-EDE3-CBC", "AES-256-CBC"};
    int i;

    (void)argc;
    (void)argv;
    fz_lab_init(CHALLENGE_ACCEPT_ANY);
    /* 1024-bit: the harness signs every input; the request's strength is not under test. */
    fz_key = EVP_RSA_gen(1024);
    fz_cert = fz_key ? scep_build_selfsigned(fz_key, "fuzz-client") : NULL;
    if (fz_cert == NULL)
        fz_die("client key", "cannot generate");
    for (i = 0; i < 8; i++)
        if ((fz_ciphers[i] = EVP_CIPHER_fetch(NULL, names[i], NULL)) == NULL)
            fz_die("cipher", names[i]);
    return 0;
}

static int add_str(PKCS7_SIGNER_INFO *si, int nid, int type, const void *d, int n)
{
    ASN1_STRING *v = ASN1_STRING_type_new(type);

    if (v == NULL || !ASN1_STRING_set(v, d, n) || !PKCS7_add_signed_attribute(si, nid, type, v)) {
        ASN1_STRING_free(v);
        return 0;
    }
    return 1;
}

/* A client's SignedData over content. Returns a DER length (*der malloc'd) or -1. */
static int sign_content(int msg_type, const uint8_t *content, size_t clen, uint8_t **der)
{
    PKCS7 *p7 = PKCS7_new();
    PKCS7_SIGNER_INFO *si;
    BIO *bio = NULL;
    char mt[16];
    uint8_t nonce[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    int l = -1;

    *der = NULL;
    if (p7 == NULL || !PKCS7_set_type(p7, NID_pkcs7_signed) ||
        !PKCS7_content_new(p7, NID_pkcs7_data))
        goto out;
    si = PKCS7_add_signature(p7, fz_cert, fz_key, EVP_sha256());
    if (si == NULL || !PKCS7_add_certificate(p7, fz_cert))
        goto out;
    snprintf(mt, sizeof(mt), "%d", msg_type);
    if (!PKCS7_add_signed_attribute(si, NID_pkcs9_contentType, V_ASN1_OBJECT,
                                    OBJ_nid2obj(NID_pkcs7_data)) ||
        !add_str(si, scep_nid_message_type, V_ASN1_PRINTABLESTRING, mt, (int)strlen(mt)) ||
        !add_str(si, scep_nid_transaction_id, V_ASN1_PRINTABLESTRING, "FUZZTID", 7) ||
        !add_str(si, scep_nid_sender_nonce, V_ASN1_OCTET_STRING, nonce, (int)sizeof(nonce)))
        goto out;
    bio = PKCS7_dataInit(p7, NULL);
    if (bio == NULL || (clen > 0 && BIO_write(bio, content, (int)clen) != (int)clen) ||
        !PKCS7_dataFinal(p7, bio))
        goto out;
    l = i2d_PKCS7(p7, der);
out:
    BIO_free_all(bio);
    PKCS7_free(p7);
    return l;
}

/* EnvelopedData to the RA encryption certificate. Returns a DER length or -1. */
static int envelope(const EVP_CIPHER *c, const uint8_t *d, size_t n, uint8_t **der)
{
    STACK_OF(X509) *rc = sk_X509_new_null();
    BIO *in = BIO_new_mem_buf(n ? d : (const uint8_t *)"", (int)n);
    PKCS7 *env = NULL;
    int l = -1;

    *der = NULL;
    if (rc && in && sk_X509_push(rc, fz_pki.ra_enc_cert) &&
        (env = PKCS7_encrypt(rc, in, c, PKCS7_BINARY)) != NULL)
        l = i2d_PKCS7(env, der);
    PKCS7_free(env);
    BIO_free(in);
    sk_X509_free(rc);
    return l;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int types[8] = {SCEP_MSG_PKCSREQ, SCEP_MSG_RENEWALREQ, SCEP_MSG_CERTPOLL,
                                 SCEP_MSG_GETCERT, SCEP_MSG_GETCRL,     SCEP_MSG_CERTREP,
                                 0,                99};
    struct scep_outcome out;
    uint8_t *env = NULL, *msg = NULL;
    const uint8_t *content;
    int clen, mlen;

    if (size < 1 || size > FZ_MAX_INPUT)
        return -1;
    if (data[0] & 8) {
        clen = envelope(fz_ciphers[(data[0] >> 4) & 7], data + 1, size - 1, &env);
        if (clen <= 0)
            goto out;
        content = env;
    } else {
        content = data + 1;
        clen = (int)(size - 1);
    }
    mlen = sign_content(types[data[0] & 7], content, (size_t)clen, &msg);
    if (mlen <= 0)
        goto out;
    fz_differential(msg, (size_t)mlen);
    scep_pkioperation(&fz_ctx, msg, (size_t)mlen, &out);
    fz_check_certrep(&out);
    fz_after_issue(&out);
    scep_outcome_clear(&out);
out:
    OPENSSL_free(env);
    OPENSSL_free(msg);
    ERR_clear_error();
    return 0;
}
