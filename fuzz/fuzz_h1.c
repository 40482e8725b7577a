/* fuzz_h1.c - the fast lane's request parser (src/http/h1.c). The fast lane
 * answers what this parser accepts without evhttp, so what it accepts must be
 * exactly the narrow form h1.h describes. Oracles on every input:
 *   - H1_OK: the request is "GET /<uri> HTTP/1.1\r\n", headers, "\r\n" ending
 *     at r.len; the URI, names and values use only their allowed characters,
 *     values are trimmed, exactly one Host, none of the excluded headers;
 *     the request rebuilt from the parsed fields parses to the same fields;
 *     one byte less is H1_INCOMPLETE; bytes appended change nothing.
 *   - never a read outside the input (ASan) or a result outside the enum. */
#include "../src/http/h1.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FZ_MAX (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *why)
{
    fprintf(stderr, "fuzz_h1 oracle: %s\n", why);
    abort();
}

static int in_set(unsigned char c, const char *set)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr(set, c) != NULL);
}

static void check_fields(const struct h1_request *r)
{
    static const char *const excluded[] = {"Content-Length", "Transfer-Encoding", "Connection",
                                           "Proxy-Connection", "Keep-Alive", "Expect",
                                           "Upgrade", "Trailer"};
    size_t i, k;
    int h, hosts = 0;

    if (r->uri_len == 0 || r->uri[0] != '/' || strlen(r->uri) != r->uri_len)
        die("URI");
    for (i = 0; i < r->uri_len; i++)
        if (!in_set((unsigned char)r->uri[i], "-._~:/?[]@!$&'()*+,;=%"))
            die("URI character");
    if (r->nh < 1 || r->nh > H1_MAX_HEADERS)
        die("header count");
    for (h = 0; h < r->nh; h++) {
        const char *n = r->h[h].name, *v = r->h[h].value;
        size_t nl = strlen(n), vl = strlen(v);
        if (nl == 0 || nl > 64)
            die("name length");
        for (i = 0; i < nl; i++)
            if (!in_set((unsigned char)n[i], "!#$%&'*+-.^_`|~"))
                die("name character");
        for (i = 0; i < vl; i++)
            if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] >= 0x7f)
                die("value character");
        if (vl && (v[0] == ' ' || v[vl - 1] == ' '))
            die("value not trimmed");
        for (k = 0; k < sizeof(excluded) / sizeof(excluded[0]); k++)
            if (strcasecmp(n, excluded[k]) == 0)
                die("excluded header accepted");
        if (strcasecmp(n, "Host") == 0)
            hosts++;
    }
    if (hosts != 1)
        die("Host count");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf, *again, *more;
    struct h1_request r, r2;
    enum h1_result res;
    size_t i, len;
    int h;

    if (size > FZ_MAX)
        return 0;
    buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    res = h1_parse_get(buf, size, &r);
    if (res != H1_OK && res != H1_INCOMPLETE && res != H1_OTHER)
        die("result");
    if (res != H1_OK) {
        free(buf);
        return 0;
    }
    if (r.len < 18 || r.len > size || memcmp(data, "GET /", 5) != 0 ||
        memcmp(data + r.len - 4, "\r\n\r\n", 4) != 0 ||
        (const char *)r.uri != buf + 4)
        die("request bounds");
    check_fields(&r);

    /* rebuilt from the fields: the same request */
    len = 4 + r.uri_len + 11 + 2;
    for (h = 0; h < r.nh; h++)
        len += strlen(r.h[h].name) + 2 + strlen(r.h[h].value) + 2;
    again = malloc(len + 1);
    if (again == NULL)
        die("malloc");
    i = (size_t)sprintf(again, "GET %s HTTP/1.1\r\n", r.uri);
    for (h = 0; h < r.nh; h++)
        i += (size_t)sprintf(again + i, "%s: %s\r\n", r.h[h].name, r.h[h].value);
    i += (size_t)sprintf(again + i, "\r\n");
    if (i != len || h1_parse_get(again, len, &r2) != H1_OK || r2.len != len ||
        r2.nh != r.nh || strcmp(r2.uri, r.uri) != 0)
        die("rebuilt request differs");
    for (h = 0; h < r.nh; h++)
        if (strcmp(r2.h[h].name, r.h[h].name) != 0 || strcmp(r2.h[h].value, r.h[h].value) != 0)
            die("rebuilt header differs");
    free(again);

    /* one byte less: incomplete; bytes after: the same request */
    more = malloc(r.len + 8);
    if (more == NULL)
        die("malloc");
    memcpy(more, data, r.len - 1);
    if (h1_parse_get(more, r.len - 1, &r2) != H1_INCOMPLETE)
        die("a prefix of a complete request is not incomplete");
    memcpy(more, data, r.len);
    memcpy(more + r.len, "GET /x\r\n", 8);
    if (h1_parse_get(more, r.len + 8, &r2) != H1_OK || r2.len != r.len || r2.nh != r.nh)
        die("bytes after the request changed it");
    free(more);
    free(buf);
    return 0;
}
