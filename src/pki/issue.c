/* issue.c - certificate issuance from a PKCS#10 request (thread-safe). */
/* EVP_PKEY_get1_RSA / EVP_PKEY_assign_RSA (deprecated in 3.0): see pubkey_for_cert(). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "ndesmock/pki.h"
#include "ndesmock/util.h"

#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_uint_fast64_t serial_counter = 1;

/* X509_set_pubkey() with a provider-side key (what CSR decoding yields) goes
 * through an encoder and the decoder framework: a sixth of an enrollment's
 * instructions. An RSA key handed over as a legacy key is encoded directly.
 * Returns a new reference the caller frees. */
static EVP_PKEY *pubkey_for_cert(EVP_PKEY *pub)
{
    EVP_PKEY *legacy;
    RSA *r;

    if (EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA || (r = EVP_PKEY_get1_RSA(pub)) == NULL ||
        (legacy = EVP_PKEY_new()) == NULL) {
        EVP_PKEY_up_ref(pub);
        return pub;
    }
    if (EVP_PKEY_assign_RSA(legacy, r) != 1) {
        RSA_free(r);
        EVP_PKEY_free(legacy);
        EVP_PKEY_up_ref(pub);
        return pub;
    }
    return legacy;
}

static int add_copy(X509 *c, X509_EXTENSION *ex)
{
    return ex == NULL || X509_add_ext(c, ex, -1);
}

X509 *pki_issue(struct pki *pki, const struct config *cfg, X509_REQ *req, char *err,
                size_t errlen)
{
    X509 *c = X509_new();
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509V3_CTX ctx;
    X509_EXTENSION *ski = NULL;
    uint8_t sn[16];
    uint64_t ctr = atomic_fetch_add(&serial_counter, 1);
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req), *certkey = NULL;
    int i;

    if (c == NULL || pub == NULL) {
        snprintf(err, errlen, "out of memory or CSR without key");
        goto fail;
    }
    memcpy(sn, pki->serial_prefix, 8);
    for (i = 0; i < 8; i++)
        sn[8 + i] = (uint8_t)(ctr >> (56 - 8 * i));
    if (!X509_set_version(c, 2) || !ASN1_STRING_set(X509_get_serialNumber(c), sn, sizeof(sn)) ||
        !X509_set_issuer_name(c, pki->issuer_name) ||
        !X509_set_subject_name(c, X509_REQ_get_subject_name(req)) ||
        !X509_gmtime_adj(X509_getm_notBefore(c), -60L * cfg->tmpl.backdate_minutes) ||
        !X509_gmtime_adj(X509_getm_notAfter(c), 60L * cfg->tmpl.validity_minutes) ||
        (certkey = pubkey_for_cert(pub)) == NULL || !X509_set_pubkey(c, certkey))
        goto ossl;

    if (!add_copy(c, pki->ext_bc) || !add_copy(c, pki->ext_ku) || !add_copy(c, pki->ext_eku))
        goto ossl;
    exts = X509_REQ_get_extensions(req);
    for (i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *ex = sk_X509_EXTENSION_value(exts, i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(ex)) == NID_subject_alt_name &&
            !X509_add_ext(c, ex, -1))
            goto ossl;
    }
    X509V3_set_ctx(&ctx, pki->ca_cert, c, NULL, NULL, 0);
    ski = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
    /* the authority key identifier was made once (pki.c) */
    if (ski == NULL || !X509_add_ext(c, ski, -1) || !add_copy(c, pki->ext_aki))
        goto ossl;
    if (!X509_sign(c, pki->ca_key, pki->cert_md))
        goto ossl;
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_EXTENSION_free(ski);
    EVP_PKEY_free(certkey);
    return c;
ossl: {
        unsigned long e = ERR_get_error();
        char buf[200];
        ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(err, errlen, "issuance failed: %s", e ? buf : "unknown");
        ERR_clear_error();
    }
fail:
    EVP_PKEY_free(certkey);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_EXTENSION_free(ski);
    X509_free(c);
    return NULL;
}

void pki_serial_hex(const X509 *cert, char *out, size_t outcap)
{
    const ASN1_INTEGER *sn = X509_get0_serialNumber(cert);
    int n = ASN1_STRING_length(sn);
    const unsigned char *d = ASN1_STRING_get0_data(sn);

    if (outcap < 3 || n <= 0 || (size_t)n * 2 + 1 > outcap) {
        if (outcap)
            out[0] = '\0';
        return;
    }
    util_hex_upper(d, (size_t)n, out);
}
