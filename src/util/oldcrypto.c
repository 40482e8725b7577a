/* oldcrypto.c - single DES-CBC decryption and MD4, from libcrypto's low-level
 * functions. OpenSSL 3 offers both through its "legacy" provider only, which is
 * a module that links the shared libcrypto: loading it into the server (linked
 * statically) would map a second libcrypto (about 1 MB of RSS and 3 ms). The
 * low-level DES and MD4 code is part of libcrypto itself. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "ndesmock/util.h"

#include <openssl/crypto.h>
#include <openssl/des.h>
#include <openssl/md4.h>
#include <limits.h>
#include <string.h>

long util_des_cbc_decrypt(const uint8_t key[8], const uint8_t iv[8], const uint8_t *in,
                          size_t len, uint8_t *out)
{
    DES_key_schedule ks;
    DES_cblock k = {0}, v = {0}; /* (cppcheck 2.10 takes memcpy into them for a read) */
    unsigned pad, bad = 0, i;

    /* what EVP_DecryptFinal_ex refuses: no block, a partial block, bad padding */
    if (len == 0 || len % 8 != 0 || len > (size_t)LONG_MAX)
        return -1;
    memcpy(k, key, 8);
    memcpy(v, iv, 8);
    DES_set_key_unchecked(&k, &ks); /* EVP's DES-CBC does not check parity either */
    DES_ncbc_encrypt(in, out, (long)len, &ks, &v, DES_DECRYPT);
    OPENSSL_cleanse(&ks, sizeof(ks));
    OPENSSL_cleanse(k, sizeof(k));
    pad = out[len - 1];
    if (pad == 0 || pad > 8)
        return -1;
    for (i = 1; i <= pad; i++)
        bad |= out[len - i] ^ pad;
    return bad ? -1 : (long)(len - pad);
}

void util_md4(const void *data, size_t len, uint8_t out[16])
{
    MD4(data, len, out);
}
