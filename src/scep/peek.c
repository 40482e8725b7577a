/* peek.c - read a pkiMessage's messageType without verifying or decrypting. */
#include "ndesmock/scep.h"

#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <stdlib.h>
#include <string.h>

extern int scep_nid_message_type;

static int peek_parsed(const uint8_t *der, size_t len, int *signer_key_type);

/* The messageType attribute as it sits in a DER SignerInfo: OID
 * 2.16.840.1.113733.1.9.2, SET { PrintableString "19" }. A byte scan finds it
 * in a microsecond where parsing the message takes hundreds: scenario rules
 * only need it to choose a rule, the real decode checks everything later. */
static int scan_message_type(const uint8_t *der, size_t len)
{
    static const uint8_t oid[] = {0x06, 0x0a, 0x60, 0x86, 0x48, 0x01, 0x86, 0xf8,
                                  0x45, 0x01, 0x09, 0x02};
    const uint8_t *p = der, *end = der + len;

    while ((p = memmem(p, (size_t)(end - p), oid, sizeof(oid))) != NULL) {
        const uint8_t *v = p + sizeof(oid);
        if (end - v >= 5 && v[0] == 0x31 && v[2] == 0x13 && v[3] >= 1 && v[3] <= 3 &&
            v[1] == v[3] + 2 && end - v >= 4 + v[3]) {
            int mt = 0, i;
            for (i = 0; i < v[3]; i++) {
                if (v[4 + i] < '0' || v[4 + i] > '9')
                    return 0;
                mt = mt * 10 + (v[4 + i] - '0');
            }
            return mt;
        }
        p += 1;
    }
    return 0;
}

int scep_peek_message_type(const uint8_t *der, size_t len, int *signer_key_type)
{
    if (signer_key_type == NULL) {
        int mt = scan_message_type(der, len);
        if (mt)
            return mt;
    }
    return peek_parsed(der, len, signer_key_type);
}

static int peek_parsed(const uint8_t *der, size_t len, int *signer_key_type)
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
