/* fuzz_pkioperation.c - the whole PKIOperation path on hostile input:
 * base64 (GET form) -> SignedData -> signature check -> EnvelopedData ->
 * decryption with the lab RA key -> PKCS#10 -> challenge policy -> issuance ->
 * store -> CertRep, as scep_pkioperation() runs it for the HTTP layer.
 *
 * Input: a DER pkiMessage (first byte 0x30, as a POST body), or anything else,
 * read as the still-escaped "message" value of a GET (percent-escapes, raw '+',
 * %0A line breaks, base64url), decoded with scep_decode_get_message() first.
 * The challenge policy is accept-any, so valid seeds reach issuance; the store
 * is a temporary directory wiped every FZ_STORE_WIPE issuances. Oracles: our
 * CertRep must parse and verify, and whatever the DER fast path decodes the
 * OpenSSL path must decode the same (fz_differential). */
#include "fuzz_common.h"

#define FZ_MAX_INPUT (256 * 1024)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_lab_init(CHALLENGE_ACCEPT_ANY);
    return 0;
}

static void fz_disagree(const char *what, const char *wa, const char *wb)
{
    fprintf(stderr, "fuzz oracle: fast and OpenSSL decoders disagree on %s (%s / %s)\n", what,
            wa, wb);
    abort();
}

/* Differential check: when the DER fast path (src/scep/fast.c) decoded a
 * layer, the OpenSSL path must reach the same result with the same fields. */
static void fz_differential(const uint8_t *der, size_t len)
{
    struct scep_request a, b;
    char wa[256], wb[256];
    enum scep_decode ra, rb;

    ra = scep_request_decode(&fz_ctx, der, len, &a, wa, sizeof(wa));
    if (a.fast || a.csr) {
        fz_ctx.no_fast = 1;
        rb = scep_request_decode(&fz_ctx, der, len, &b, wb, sizeof(wb));
        fz_ctx.no_fast = 0;
        if (ra != rb)
            fz_disagree("the outcome", wa, wb);
        if (ra == SCEP_DECODE_OK) {
            if (a.msg_type != b.msg_type || a.tid_len != b.tid_len ||
                memcmp(a.tid, b.tid, a.tid_len) != 0 || a.tid_type != b.tid_type ||
                a.sender_nonce_len != b.sender_nonce_len ||
                memcmp(a.sender_nonce, b.sender_nonce, a.sender_nonce_len) != 0 ||
                a.digest_nid != b.digest_nid || a.sig_alg_nid != b.sig_alg_nid ||
                a.cipher_nid != b.cipher_nid)
                fz_disagree("the SignedData fields", wa, wb);
            if (memcmp(a.signer_keyhash, b.signer_keyhash, 20) != 0 ||
                a.signer_ias_len != b.signer_ias_len ||
                memcmp(a.signer_ias, b.signer_ias, a.signer_ias_len) != 0 ||
                EVP_PKEY_eq(a.signer_key, b.signer_key) != 1)
                fz_disagree("the signer", wa, wb);
            if ((a.csr == NULL) != (b.csr == NULL) || a.has_challenge != b.has_challenge ||
                strcmp(a.challenge, b.challenge) != 0 ||
                (a.csr && (X509_NAME_cmp(X509_REQ_get_subject_name(a.csr),
                                         X509_REQ_get_subject_name(b.csr)) != 0 ||
                           EVP_PKEY_eq(X509_REQ_get0_pubkey(a.csr),
                                       X509_REQ_get0_pubkey(b.csr)) != 1)))
                fz_disagree("the PKCS#10 request", wa, wb);
        }
        scep_request_clear(&b);
    }
    scep_request_clear(&a);
    ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct scep_outcome out;
    const uint8_t *der = data;
    uint8_t *dec = NULL;
    size_t len = size;

    if (size > FZ_MAX_INPUT)
        return -1;
    if (size > 0 && data[0] != 0x30) {
        /* Exactly sized so that ASan sees any write past the decoded bytes. */
        size_t cap = size * 3 / 4 + 1;
        long n;
        dec = malloc(cap);
        if (dec == NULL)
            return 0;
        n = scep_decode_get_message((const char *)data, size, dec, cap);
        if (n < 0) {
            free(dec);
            return 0;
        }
        if ((size_t)n > cap)
            abort();
        der = dec;
        len = (size_t)n;
    }
#ifdef HAVE_SCEP_PEEK
    /* The scenario matcher reads the messageType before decryption. */
#if HAVE_SCEP_PEEK == 3
    {
        int kt = 0;
        (void)scep_peek_message_type(der, len, &kt);
    }
#else
    (void)scep_peek_message_type(der, len);
#endif
#endif
    fz_differential(der, len);
    scep_pkioperation(&fz_ctx, der, len, &out);
    fz_check_certrep(&out);
    fz_after_issue(&out);
    scep_outcome_clear(&out);
    free(dec);
    ERR_clear_error();
    return 0;
}
