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
#include "fuzz_diff.h"

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
