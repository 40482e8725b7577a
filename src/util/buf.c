/* buf.c - growable byte buffer. */
#include "ndesmock/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUF_MAX ((size_t)1 << 30)

void util_buf_init(struct util_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void util_buf_free(struct util_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void util_buf_reset(struct util_buf *b)
{
    b->len = 0;
    b->failed = 0;
}

static int reserve(struct util_buf *b, size_t extra)
{
    size_t want, ncap;
    uint8_t *p;

    if (b->failed)
        return -1;
    if (extra > BUF_MAX - b->len) {
        b->failed = 1;
        return -1;
    }
    want = b->len + extra;
    if (want <= b->cap)
        return 0;
    ncap = b->cap ? b->cap : 256;
    while (ncap < want)
        ncap *= 2;
    p = realloc(b->data, ncap);
    if (p == NULL) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = ncap;
    return 0;
}

int util_buf_append(struct util_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return b->failed ? -1 : 0;
    if (reserve(b, n) != 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

uint8_t *util_buf_grow(struct util_buf *b, size_t n)
{
    if (reserve(b, n) != 0)
        return NULL;
    b->len += n;
    return b->data + b->len - n;
}

int util_buf_appendf(struct util_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    size_t room;

    /* one pass in the common case: format into the spare room, grow if short */
    if (reserve(b, 256) != 0)
        return -1;
    room = b->cap - b->len;
    va_start(ap, fmt);
    n = vsnprintf((char *)b->data + b->len, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n >= room) {
        if (reserve(b, (size_t)n + 1) != 0)
            return -1;
        va_start(ap, fmt);
        vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return 0;
}

void util_buf_puts(struct util_buf *b, const char *s)
{
    if (s == NULL)
        s = "-";
    util_buf_append(b, s, strlen(s));
}

void util_buf_putu(struct util_buf *b, unsigned long long v)
{
    char tmp[24];
    size_t n = sizeof(tmp);

    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    util_buf_append(b, tmp + n, sizeof(tmp) - n);
}

void util_buf_puti(struct util_buf *b, long long v)
{
    if (v < 0) {
        util_buf_append(b, "-", 1);
        util_buf_putu(b, (unsigned long long)(-(v + 1)) + 1);
    } else {
        util_buf_putu(b, (unsigned long long)v);
    }
}

static inline unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

int util_ascii_caseeq(const char *a, const char *b)
{
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;

    for (; ascii_lower(*x) == ascii_lower(*y); x++, y++)
        if (*x == '\0')
            return 1;
    return 0;
}

const char *util_ascii_casestr(const char *hay, const char *needle, size_t nlen)
{
    const unsigned char *h = (const unsigned char *)hay, *n = (const unsigned char *)needle;
    unsigned char up = n[0] >= 'a' && n[0] <= 'z' ? (unsigned char)(n[0] - 32) : n[0];
    size_t i, len = strlen(hay);
    const unsigned char *last;

    if (len < nlen)
        return NULL;
    for (last = h + (len - nlen); h <= last; h++) {
        if (*h != n[0] && *h != up)
            continue;
        for (i = 1; i < nlen && ascii_lower(h[i]) == n[i]; i++)
            ;
        if (i == nlen)
            return (const char *)h;
    }
    return NULL;
}

size_t util_strlcpy(char *dst, const char *src, size_t cap)
{
    size_t n = src ? strlen(src) : 0;

    if (cap == 0)
        return n;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

uint8_t *util_buf_steal(struct util_buf *b, size_t *len)
{
    uint8_t *p = b->data;

    if (len)
        *len = b->len;
    memset(b, 0, sizeof(*b));
    return p;
}

uint64_t util_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void util_hex_upper(const uint8_t *in, size_t n, char *out)
{
    static const char hx[] = "0123456789ABCDEF";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = '\0';
}
