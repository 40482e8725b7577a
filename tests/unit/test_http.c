/* test_http.c - src/http/h1.c: the fast lane's request parser. What it
 * accepts the fast lane answers itself; everything else must come back as
 * H1_OTHER (evhttp's) or H1_INCOMPLETE, never as a request read wrongly. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "../../src/http/h1.h"

static enum h1_result parse(const char *text, struct h1_request *r, char *buf, size_t cap)
{
    size_t n = strlen(text);

    cr_assert_lt(n, cap);
    memcpy(buf, text, n + 1);
    return h1_parse_get(buf, n, r);
}

Test(h1, simple_get)
{
    char buf[512];
    struct h1_request r;
    const char *t = "GET /certsrv/mscep/mscep.dll?operation=GetCACaps&message=x HTTP/1.1\r\n"
                    "Host: 127.0.0.1:8080\r\nUser-Agent:   curl/7.88  \r\nAccept: */*\r\n\r\n";

    cr_assert_eq(parse(t, &r, buf, sizeof(buf)), H1_OK);
    cr_assert_str_eq(r.uri, "/certsrv/mscep/mscep.dll?operation=GetCACaps&message=x");
    cr_assert_eq(r.uri_len, strlen(r.uri));
    cr_assert_eq(r.len, strlen(t));
    cr_assert_eq(r.nh, 3);
    cr_assert_str_eq(h1_header(&r, "host"), "127.0.0.1:8080");
    cr_assert_str_eq(h1_header(&r, "USER-AGENT"), "curl/7.88"); /* trimmed as evhttp does */
    cr_assert_str_eq(r.h[2].name, "Accept");
    cr_assert_null(h1_header(&r, "Referer"));
}

Test(h1, pipelined_requests_end_where_they_end)
{
    char buf[512];
    struct h1_request r;
    const char *one = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    char two[256];

    snprintf(two, sizeof(two), "%s%s", one, "GET /b HTTP/1.1\r\nHost: y\r\n\r\n");
    cr_assert_eq(parse(two, &r, buf, sizeof(buf)), H1_OK);
    cr_assert_eq(r.len, strlen(one));
    cr_assert_str_eq(r.uri, "/a");
    cr_assert_eq(h1_parse_get(buf + r.len, strlen(two) - r.len, &r), H1_OK);
    cr_assert_str_eq(r.uri, "/b");
    cr_assert_str_eq(h1_header(&r, "Host"), "y");
}

Test(h1, every_prefix_is_incomplete)
{
    const char *t = "GET /certsrv/mscep/mscep.dll?operation=GetCACert HTTP/1.1\r\n"
                    "Host: x\r\nUser-Agent: a b\r\n\r\n";
    size_t n = strlen(t), i;
    char buf[256];
    struct h1_request r;

    for (i = 0; i < n; i++) {
        memcpy(buf, t, n);
        cr_assert_eq(h1_parse_get(buf, i, &r), H1_INCOMPLETE, "prefix of %zu bytes", i);
    }
    memcpy(buf, t, n);
    cr_assert_eq(h1_parse_get(buf, n, &r), H1_OK);
}

Test(h1, anything_unusual_is_left_to_evhttp)
{
    static const char *const others[] = {
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
        "get / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",       /* absolute form */
        "GET / HTTP/1.0\r\nHost: x\r\n\r\n",               /* 1.0: close rules differ */
        "GET / HTTP/1.1\r\n\r\n",                          /* no Host */
        "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",    /* two */
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nconnection: keep-alive\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
        "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX: a\tb\r\n\r\n",       /* tab in a value */
        "GET / HTTP/1.1\r\nHost: x\r\nX: caf\xc3\xa9\r\n\r\n", /* not ASCII */
        "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",    /* obs-fold */
        "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n",
        "GET / HTTP/1.1\nHost: x\n\n",                     /* bare LF */
        "GET / HTTP/1.1\r\nHost: x\r\n\rX",
        "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /a\"b HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /a#frag HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",     /* a TLS ClientHello */
    };
    char buf[512];
    struct h1_request r;
    size_t i;

    for (i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        cr_assert_eq(parse(others[i], &r, buf, sizeof(buf)), H1_OTHER, "case %zu: %s", i,
                     others[i]);
}

Test(h1, header_count_and_name_length_are_capped)
{
    char text[8192], buf[8192];
    struct h1_request r;
    size_t off;
    int i;

    off = (size_t)snprintf(text, sizeof(text), "GET / HTTP/1.1\r\nHost: x\r\n");
    for (i = 1; i < H1_MAX_HEADERS; i++)
        off += (size_t)snprintf(text + off, sizeof(text) - off, "X-%d: v\r\n", i);
    snprintf(text + off, sizeof(text) - off, "\r\n");
    cr_assert_eq(parse(text, &r, buf, sizeof(buf)), H1_OK);
    cr_assert_eq(r.nh, H1_MAX_HEADERS);
    snprintf(text + off, sizeof(text) - off, "X-last: v\r\n\r\n");
    cr_assert_eq(parse(text, &r, buf, sizeof(buf)), H1_OTHER);

    off = (size_t)snprintf(text, sizeof(text), "GET / HTTP/1.1\r\nHost: x\r\n");
    memset(text + off, 'N', 65);
    snprintf(text + off + 65, sizeof(text) - off - 65, ": v\r\n\r\n");
    cr_assert_eq(parse(text, &r, buf, sizeof(buf)), H1_OTHER);
}

Test(h1, empty_values_and_no_space_after_colon)
{
    char buf[256];
    struct h1_request r;

    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost:x\r\nX-Empty:\r\nY:   \r\n\r\n", &r, buf,
                       sizeof(buf)),
                 H1_OK);
    cr_assert_str_eq(h1_header(&r, "Host"), "x");
    cr_assert_str_eq(h1_header(&r, "X-Empty"), "");
    cr_assert_str_eq(h1_header(&r, "Y"), "");
}
