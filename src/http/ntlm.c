/* ntlm.c - NTLM (MS-NLMP) server side for the lab's mscep_admin page. */
#include "ntlm.h"
#include "ndesmock/util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define NTLM_SIG "NTLMSSP"

static uint8_t secret[32];
static pthread_once_t secret_once = PTHREAD_ONCE_INIT;

static void make_secret(void)
{
    RAND_bytes(secret, sizeof(secret));
}

void ntlm_challenge_for(const char *peer, int port, uint8_t out[8])
{
    char who[96];
    uint8_t mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    int n;

    pthread_once(&secret_once, make_secret);
    n = snprintf(who, sizeof(who), "%s:%d", peer, port);
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, sizeof(secret),
                  (const unsigned char *)who, (size_t)n, mac, sizeof(mac), &maclen) == NULL ||
        maclen < 8)
        memset(mac, 0x5a, 8);
    memcpy(out, mac, 8);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

/* ASCII to UTF-16LE; returns bytes written. */
static size_t utf16(const char *s, uint8_t *out, size_t cap, int upper)
{
    size_t i, n = 0;

    for (i = 0; s[i] && n + 2 <= cap; i++) {
        char c = s[i];
        if (upper && c >= 'a' && c <= 'z')
            c = (char)(c - 32);
        out[n++] = (uint8_t)c;
        out[n++] = 0;
    }
    return n;
}

int ntlm_type2(const uint8_t *msg, size_t len, const uint8_t challenge[8], const char *domain,
               const char *host, char *out_b64, size_t outcap)
{
    uint8_t m[512], dom[128], hst[128], info[300];
    size_t dl, hl, il = 0, total;
    uint32_t flags = 0x00000001u | 0x00000004u | 0x00000200u | 0x00008000u | 0x00010000u |
                     0x00080000u | 0x00800000u | 0x20000000u | 0x80000000u;

    if (len < 12 || memcmp(msg, NTLM_SIG, 8) != 0 || le32(msg + 8) != 1)
        return -1;
    dl = utf16(domain, dom, sizeof(dom), 1);
    hl = utf16(host, hst, sizeof(hst), 1);
    /* target info: NetBIOS domain (2), NetBIOS computer (1), end (0) */
    put16(info + il, 2);
    put16(info + il + 2, (unsigned)dl);
    memcpy(info + il + 4, dom, dl);
    il += 4 + dl;
    put16(info + il, 1);
    put16(info + il + 2, (unsigned)hl);
    memcpy(info + il + 4, hst, hl);
    il += 4 + hl;
    put32(info + il, 0);
    il += 4;
    total = 48 + dl + il;
    if (total > sizeof(m) || outcap < 4 * ((total + 2) / 3) + 1)
        return -1;
    memset(m, 0, 48);
    memcpy(m, NTLM_SIG, 8);
    put32(m + 8, 2);
    put16(m + 12, (unsigned)dl);
    put16(m + 14, (unsigned)dl);
    put32(m + 16, 48);
    put32(m + 20, flags);
    memcpy(m + 24, challenge, 8);
    put16(m + 40, (unsigned)il);
    put16(m + 42, (unsigned)il);
    put32(m + 44, (uint32_t)(48 + dl));
    memcpy(m + 48, dom, dl);
    memcpy(m + 48 + dl, info, il);
    util_base64_encode(m, total, out_b64);
    return 0;
}

/* A security buffer (len, maxlen, offset) inside msg, or NULL if out of range. */
static const uint8_t *field(const uint8_t *msg, size_t len, size_t at, size_t *flen)
{
    size_t l, off;

    if (at + 8 > len)
        return NULL;
    l = (size_t)msg[at] | (size_t)msg[at + 1] << 8;
    off = le32(msg + at + 4);
    if (off > len || l > len - off)
        return NULL;
    *flen = l;
    return msg + off;
}

static void ascii_of(const uint8_t *u16, size_t n, char *out, size_t cap)
{
    size_t i, o = 0;

    for (i = 0; i + 1 < n && o + 1 < cap; i += 2)
        out[o++] = (u16[i] >= 0x20 && u16[i] < 0x7f && u16[i + 1] == 0) ? (char)u16[i] : '?';
    out[o] = '\0';
}

int ntlm_verify_type3(const uint8_t *msg, size_t len, const uint8_t challenge[8],
                      const char *want_user, const char *want_password, char *user_out,
                      size_t user_cap)
{
    const uint8_t *nt, *dom, *usr;
    size_t ntl, doml, usrl, pl;
    uint8_t pw16[512], nthash[16], ident[512], v2[EVP_MAX_MD_SIZE], buf[2048],
        proof[EVP_MAX_MD_SIZE];
    char user[128], domain[128];
    const char *bs;
    size_t il, v2l = 0, pfl = 0;
    int ok = 0;

    if (len < 64 || memcmp(msg, NTLM_SIG, 8) != 0 || le32(msg + 8) != 3)
        return -1;
    nt = field(msg, len, 20, &ntl);
    dom = field(msg, len, 28, &doml);
    usr = field(msg, len, 36, &usrl);
    if (nt == NULL || dom == NULL || usr == NULL || ntl <= 16 || ntl - 16 > sizeof(buf) - 8)
        return -1;
    ascii_of(usr, usrl, user, sizeof(user));
    ascii_of(dom, doml, domain, sizeof(domain));
    snprintf(user_out, user_cap, "%s%s%s", domain, domain[0] ? "\\" : "", user);
    if ((bs = strchr(want_user, '\\')) != NULL)
        want_user = bs + 1;
    if (strcasecmp(user, want_user) != 0)
        return 0;
    /* NTOWFv2 = HMAC-MD5(MD4(UTF16(password)), UTF16(UPPER(user) || domain)) */
    pl = utf16(want_password, pw16, sizeof(pw16), 0);
    util_md4(pw16, pl, nthash);
    il = utf16(user, ident, sizeof(ident), 1);
    memcpy(ident + il, dom, doml < sizeof(ident) - il ? doml : sizeof(ident) - il);
    il += doml < sizeof(ident) - il ? doml : 0;
    if (EVP_Q_mac(NULL, "HMAC", NULL, "MD5", NULL, nthash, 16, ident, il, v2, sizeof(v2), &v2l) ==
        NULL)
        goto out;
    /* NTProofStr = HMAC-MD5(NTOWFv2, server challenge || blob) */
    memcpy(buf, challenge, 8);
    memcpy(buf + 8, nt + 16, ntl - 16);
    if (EVP_Q_mac(NULL, "HMAC", NULL, "MD5", NULL, v2, v2l, buf, 8 + ntl - 16, proof,
                  sizeof(proof), &pfl) == NULL || pfl < 16)
        goto out;
    ok = CRYPTO_memcmp(proof, nt, 16) == 0;
out:
    return ok;
}
