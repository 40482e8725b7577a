/* util.h - growable byte buffer, tolerant base64, query decoding, DER writing,
 * single DES and MD4. */
#ifndef NDESMOCK_UTIL_H
#define NDESMOCK_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer. The struct is owned by the caller; util_buf_free()
 * releases the heap block it points to. A buffer whose 'failed' flag is set
 * (allocation failure or cap reached) ignores further appends. */
struct util_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    int failed;
};

void util_buf_init(struct util_buf *b);
void util_buf_free(struct util_buf *b);
void util_buf_reset(struct util_buf *b);
int util_buf_append(struct util_buf *b, const void *p, size_t n);
/* Appends n uninitialised bytes; returns a pointer to them or NULL. */
uint8_t *util_buf_grow(struct util_buf *b, size_t n);
int util_buf_appendf(struct util_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Fast appends for hot paths (no printf): a C string (NULL = "-"), an
 * unsigned decimal, a signed decimal. */
void util_buf_puts(struct util_buf *b, const char *s);
void util_buf_putu(struct util_buf *b, unsigned long long v);
void util_buf_puti(struct util_buf *b, long long v);

/* Copies src (NULL = "") into dst of cap bytes, truncating; always
 * NUL-terminated. Returns the length copied. (snprintf("%s") is slow.) */
size_t util_strlcpy(char *dst, const char *src, size_t cap);
/* ASCII case-insensitive comparisons (HTTP header names and values, as
 * strcasecmp in the C locale), written out because they sit on the rule
 * matcher's path: util_ascii_caseeq is 1 when a and b are equal ignoring
 * case; util_ascii_casestr finds needle (already lower case, nlen bytes,
 * nlen > 0) in hay ignoring case, or returns NULL. */
int util_ascii_caseeq(const char *a, const char *b);
const char *util_ascii_casestr(const char *hay, const char *needle, size_t nlen);
/* Detaches the block: the caller owns the returned pointer (free()). */
uint8_t *util_buf_steal(struct util_buf *b, size_t *len);

/* Decodes base64 in any of the forms SCEP clients send: standard alphabet,
 * URL-safe alphabet ('-' '_'), embedded CR/LF/space/tab (a space is read as
 * '+', since form-encoding turns '+' into ' '), missing '=' padding.
 * Writes at most outcap bytes to out. Returns the decoded length, or -1 when
 * the text is not base64 or would not fit. */
long util_base64_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap);
/* Standard base64 with no line breaks; out needs 4*((n+2)/3)+1 bytes.
 * Returns the length written (not counting the NUL). */
size_t util_base64_encode(const uint8_t *in, size_t n, char *out);

/* Percent-decodes in place semantics into out (outcap bytes, NUL-terminated).
 * '+' is kept as '+' (never turned into a space: base64 needs it).
 * Returns the decoded length or -1 on overflow. Malformed escapes are copied
 * through literally, as IIS does with allowDoubleEscaping. */
long util_percent_decode(const char *in, size_t inlen, char *out, size_t outcap);

/* Finds parameter 'name' (ASCII case-insensitive) in a raw query string
 * (without '?'). Sets *val and *vlen to the raw, still-escaped value inside
 * the query (not copied). Returns 1 if found, 0 if not. */
int util_query_param(const char *query, const char *name, const char **val, size_t *vlen);

/* Upper-case hex of n bytes into out (2n+1 bytes). */
void util_hex_upper(const uint8_t *in, size_t n, char *out);

/* Minimal DER writer. Each function appends one complete TLV to b. */
void der_tlv(struct util_buf *b, uint8_t tag, const void *content, size_t len);
void der_header(struct util_buf *b, uint8_t tag, size_t len);
/* Wraps the bytes b->data[start..] in a TLV with 'tag' (moves them). */
void der_wrap(struct util_buf *b, size_t start, uint8_t tag);
void der_oid(struct util_buf *b, const uint8_t *oid_der, size_t len);
void der_int_small(struct util_buf *b, unsigned v);
void der_null(struct util_buf *b);

/* Minimal DER reader over a span of bytes: one-byte tags, definite lengths of
 * at most 4 bytes, minimal length encoding. Anything else (BER indefinite
 * lengths, high tag numbers) is refused: callers that meet it fall back to
 * OpenSSL's BER parser. Spans and TLVs point into the caller's bytes. */
struct der_span {
    const uint8_t *p;
    size_t len;
};
struct der_tlv {
    uint8_t tag;
    const uint8_t *tlv;   /* the whole TLV */
    size_t tlv_len;
    const uint8_t *val;   /* its contents */
    size_t len;
};
/* Reads the next TLV of s and advances s past it. Returns 0, or -1 when s is
 * empty or the TLV is not DER-shaped or runs past the end of s. */
int der_read(struct der_span *s, struct der_tlv *t);
/* der_read() that also requires the tag. */
int der_read_tag(struct der_span *s, uint8_t tag, struct der_tlv *t);
/* The contents of t, to walk a constructed value. */
struct der_span der_inner(const struct der_tlv *t);
/* 1 if t's contents are exactly content[0..len). */
int der_is(const struct der_tlv *t, const uint8_t *content, size_t len);

/* Single DES-CBC decryption of in[0..len) into out (len bytes of room), with
 * PKCS#7 padding checked as EVP does: returns the plaintext length, or -1 when
 * len is 0 or not a multiple of 8 or the padding is wrong. MD4 (NTLM's NT hash).
 * Both without OpenSSL's legacy provider (src/util/oldcrypto.c says why). */
long util_des_cbc_decrypt(const uint8_t key[8], const uint8_t iv[8], const uint8_t *in,
                          size_t len, uint8_t *out);
void util_md4(const void *data, size_t len, uint8_t out[16]);

/* Monotonic clock in nanoseconds. */
uint64_t util_now_ns(void);

#endif
