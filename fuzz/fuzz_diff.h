/* fuzz_diff.h - differential oracle shared by fuzz_pkioperation and
 * fuzz_envelope: whatever the DER fast path (src/scep/fast.c) decodes, the
 * OpenSSL-only path (ctx.no_fast) must decode to the same outcome and fields.
 * Include after fuzz_common.h. */
#ifndef NDESMOCK_FUZZ_DIFF_H
#define NDESMOCK_FUZZ_DIFF_H

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

#endif
