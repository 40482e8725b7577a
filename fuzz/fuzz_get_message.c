/* fuzz_get_message.c - the GET query path: util_query_param() on the raw query
 * string, util_percent_decode(), util_base64_decode() and
 * scep_decode_get_message() on the "message" value. Output buffers are sized
 * exactly (or too small on purpose) so that ASan catches any write past them.
 * Oracles: no decoder claims more bytes than its buffer; percent-decoding never
 * grows the text; base64 output re-encodes and decodes to the same bytes; a
 * too-small buffer gives -1 or a prefix of the full result. */
#include "ndesmock/scep.h"
#include "ndesmock/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_MAX_INPUT (128 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz oracle: %s\n", what);
        abort();
    }
}

static void base64_props(const char *in, size_t n)
{
    size_t cap = n * 3 / 4 + 1, small;
    uint8_t *out = malloc(cap), *out2, *out3;
    char *enc;
    long r, r2, r3;

    if (out == NULL)
        return;
    r = util_base64_decode(in, n, out, cap);
    check(r <= (long)cap, "base64 decode longer than its buffer");
    if (r >= 0) {
        /* Round trip through the encoder. */
        enc = malloc(4 * (((size_t)r + 2) / 3) + 1);
        out2 = malloc((size_t)r + 1);
        if (enc && out2) {
            size_t el = util_base64_encode(out, (size_t)r, enc);
            check(el == strlen(enc), "base64 encode length");
            r2 = util_base64_decode(enc, el, out2, (size_t)r + 1);
            check(r2 == r && memcmp(out, out2, (size_t)r) == 0, "base64 round trip");
        }
        free(enc);
        free(out2);
        /* A buffer one byte short: -1, never a longer write. */
        if (r > 0) {
            small = (size_t)r - 1;
            out3 = malloc(small ? small : 1);
            if (out3) {
                r3 = util_base64_decode(in, n, out3, small);
                check(r3 == -1, "base64 decode into a short buffer did not fail");
                free(out3);
            }
        }
    }
    free(out);
}

static void percent_props(const char *in, size_t n)
{
    char *out = malloc(n + 1), *out2;
    long r, r2;
    size_t small;

    if (out == NULL)
        return;
    r = util_percent_decode(in, n, out, n + 1);
    check(r >= 0 && (size_t)r <= n && out[r] == '\0', "percent decode length");
    /* Short buffers: -1 or the same prefix. */
    small = (size_t)r / 2 + 1;
    out2 = malloc(small);
    if (out2) {
        r2 = util_percent_decode(in, n, out2, small);
        check(r2 == -1 || (r2 == r && memcmp(out, out2, (size_t)r) == 0),
              "percent decode into a short buffer");
        free(out2);
    }
    check(util_percent_decode(in, n, out, 0) == -1, "percent decode with outcap 0");
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"operation", "message", "OPERATION", "Message", "",
                                        "message="};
    char *q;
    const char *v;
    size_t vl, i;
    uint8_t *der;
    long r;

    if (size > FZ_MAX_INPUT)
        return -1;
    /* The HTTP layer hands over a NUL-terminated query without '?'. */
    q = malloc(size + 1);
    if (q == NULL)
        return 0;
    memcpy(q, data, size);
    q[size] = '\0';

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (util_query_param(q, names[i], &v, &vl)) {
            check(v >= q && v + vl <= q + strlen(q), "query value outside the query");
            if (strcmp(names[i], "message") == 0 || strcmp(names[i], "Message") == 0) {
                size_t cap = vl * 3 / 4 + 1;
                der = malloc(cap);
                if (der) {
                    r = scep_decode_get_message(v, vl, der, cap);
                    check(r <= (long)cap, "GET message longer than its buffer");
                    free(der);
                }
            }
        }
    }
    /* The whole input as one escaped value, then as plain base64. */
    percent_props((const char *)data, size);
    base64_props((const char *)data, size);
    {
        size_t cap = size * 3 / 4 + 1;
        der = malloc(cap);
        if (der) {
            r = scep_decode_get_message((const char *)data, size, der, cap);
            check(r <= (long)cap, "GET message longer than its buffer");
            free(der);
        }
    }
    free(q);
    return 0;
}
