/* peek.c - read a pkiMessage's messageType without verifying or decrypting. */
#include "ndesmock/scep.h"

#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <stdlib.h>
#include <string.h>

extern int scep_nid_message_type;

int scep_peek_message_type(const uint8_t *der, size_t len, int *signer_key_type)
{
    const unsigned char *p = der;
    PKCS7 *p7 = len < 0x7fffffff ? d2i_PKCS7(NULL, &p, (long)len) : NULL;
    int mt = 0;

    if (signer_key_type)
        *signer_key_type = 0;
    if (p7 && PKCS7_type_is_signed(p7) && sk_PKCS7_SIGNER_INFO_num(PKCS7_get_signer_info(p7)) > 0) {
        PKCS7_SIGNER_INFO *si = sk_PKCS7_SIGNER_INFO_value(PKCS7_get_signer_info(p7), 0);
        ASN1_TYPE *t = PKCS7_get_signed_attribute(si, scep_nid_message_type);
        if (t && t->type == V_ASN1_PRINTABLESTRING && t->value.asn1_string->length > 0 &&
            t->value.asn1_string->length < 4) {
            char b[4] = {0};
            memcpy(b, t->value.asn1_string->data, (size_t)t->value.asn1_string->length);
            mt = atoi(b);
        }
        if (signer_key_type) {
            X509 *signer = X509_find_by_issuer_and_serial(
                p7->d.sign->cert, si->issuer_and_serial->issuer, si->issuer_and_serial->serial);
            EVP_PKEY *pk = signer ? X509_get0_pubkey(signer) : NULL;
            *signer_key_type = pk ? EVP_PKEY_get_base_id(pk) : 0;
        }
    }
    PKCS7_free(p7);
    ERR_clear_error();
    return mt;
}
