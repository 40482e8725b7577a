/* codec.c - tolerant base64, percent-decoding and query lookup. */
#include "ndesmock/util.h"

#include <string.h>
#include <strings.h>

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-' || c == ' ')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

long util_base64_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap)
{
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    size_t i, o = 0;

    for (i = 0; i < inlen; i++) {
        int c = (unsigned char)in[i], v;

        if (c == '\r' || c == '\n' || c == '\t')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad)
            return -1; /* data after padding */
        v = b64val(c);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outcap)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (pad > 2 || bits >= 6)
        return -1;
    return (long)o;
}

size_t util_base64_encode(const uint8_t *in, size_t n, char *out)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;

    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = tbl[(v >> 6) & 63];
        out[o++] = tbl[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long util_percent_decode(const char *in, size_t inlen, char *out, size_t outcap)
{
    size_t i, o = 0;

    if (outcap == 0)
        return -1;
    for (i = 0; i < inlen; i++) {
        int c = (unsigned char)in[i];

        if (c == '%' && i + 2 < inlen) {
            int h = hexval((unsigned char)in[i + 1]), l = hexval((unsigned char)in[i + 2]);
            if (h >= 0 && l >= 0) {
                c = h << 4 | l;
                i += 2;
            }
        }
        if (o + 1 >= outcap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (long)o;
}

int util_query_param(const char *query, const char *name, const char **val, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *p = query;

    if (query == NULL)
        return 0;
    while (*p) {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *kend = eq ? eq : end;

        if ((size_t)(kend - p) == nlen && strncasecmp(p, name, nlen) == 0) {
            *val = eq ? eq + 1 : end;
            *vlen = (size_t)(end - *val);
            return 1;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return 0;
}
