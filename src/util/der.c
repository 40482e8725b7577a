/* der.c - a minimal DER writer for the SCEP replies we assemble by hand. */
#include "ndesmock/util.h"

#include <string.h>

static size_t header_len(size_t len)
{
    if (len < 0x80)
        return 2;
    if (len < 0x100)
        return 3;
    if (len < 0x10000)
        return 4;
    if (len < 0x1000000)
        return 5;
    return 6;
}

static void put_header(uint8_t *p, uint8_t tag, size_t len)
{
    size_t hl = header_len(len), i;

    p[0] = tag;
    if (hl == 2) {
        p[1] = (uint8_t)len;
        return;
    }
    p[1] = (uint8_t)(0x80 | (hl - 2));
    for (i = 0; i < hl - 2; i++)
        p[hl - 1 - i] = (uint8_t)(len >> (8 * i));
}

void der_header(struct util_buf *b, uint8_t tag, size_t len)
{
    uint8_t h[6];

    put_header(h, tag, len);
    util_buf_append(b, h, header_len(len));
}

void der_tlv(struct util_buf *b, uint8_t tag, const void *content, size_t len)
{
    der_header(b, tag, len);
    util_buf_append(b, content, len);
}

void der_wrap(struct util_buf *b, size_t start, uint8_t tag)
{
    size_t len, hl;
    uint8_t h[6];

    if (b->failed || start > b->len)
        return;
    len = b->len - start;
    hl = header_len(len);
    put_header(h, tag, len);
    if (util_buf_append(b, h, hl) != 0) /* grow by hl, then shift */
        return;
    memmove(b->data + start + hl, b->data + start, len);
    memcpy(b->data + start, h, hl);
}

void der_oid(struct util_buf *b, const uint8_t *oid_der, size_t len)
{
    der_tlv(b, 0x06, oid_der, len);
}

void der_int_small(struct util_buf *b, unsigned v)
{
    uint8_t c[5];
    size_t n = 0, i;
    uint8_t tmp[5];

    do {
        tmp[n++] = (uint8_t)(v & 0xff);
        v >>= 8;
    } while (v);
    if (tmp[n - 1] & 0x80)
        tmp[n++] = 0;
    for (i = 0; i < n; i++)
        c[i] = tmp[n - 1 - i];
    der_tlv(b, 0x02, c, n);
}

void der_null(struct util_buf *b)
{
    der_tlv(b, 0x05, NULL, 0);
}

/* ---- reader ---------------------------------------------------------------- */

int der_read(struct der_span *s, struct der_tlv *t)
{
    const uint8_t *p = s->p;
    size_t n = s->len, len, hl, i;

    if (n < 2 || (p[0] & 0x1f) == 0x1f) /* empty, or a multi-byte tag */
        return -1;
    if (p[1] < 0x80) {
        len = p[1];
        hl = 2;
    } else {
        size_t nb = p[1] & 0x7f;
        if (nb == 0 || nb > 4 || n < 2 + nb || p[2] == 0) /* indefinite, huge, or not minimal */
            return -1;
        for (len = 0, i = 0; i < nb; i++)
            len = (len << 8) | p[2 + i];
        if (len < 0x80)
            return -1;
        hl = 2 + nb;
    }
    if (len > n - hl)
        return -1;
    t->tag = p[0];
    t->tlv = p;
    t->tlv_len = hl + len;
    t->val = p + hl;
    t->len = len;
    s->p += t->tlv_len;
    s->len -= t->tlv_len;
    return 0;
}

int der_read_tag(struct der_span *s, uint8_t tag, struct der_tlv *t)
{
    return der_read(s, t) == 0 && t->tag == tag ? 0 : -1;
}

struct der_span der_inner(const struct der_tlv *t)
{
    struct der_span s = {t->val, t->len};
    return s;
}

int der_is(const struct der_tlv *t, const uint8_t *content, size_t len)
{
    return t->len == len && memcmp(t->val, content, len) == 0;
}
