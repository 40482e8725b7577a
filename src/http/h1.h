/* h1.h - private to src/http: the request parser of the fast lane (server.c).
 *
 * The fast lane answers plain keep-alive GET requests itself, without evhttp,
 * when they are of the simplest kind; everything else is left to evhttp. So
 * this parser does not accept HTTP in general: it recognises one request of
 * the form
 *
 *   GET /<uri> HTTP/1.1 CRLF
 *   (<token>: <printable ASCII, no tab> CRLF){1..H1_MAX_HEADERS}
 *   CRLF
 *
 * with exactly one Host header and none of the headers that change how a
 * connection or a body is handled (Content-Length, Transfer-Encoding,
 * Connection, Proxy-Connection, Keep-Alive, Expect, Upgrade, Trailer), and a
 * URI made of the characters RFC 3986 allows outside fragments. Header values
 * lose leading and trailing spaces, as evhttp stores them. */
#ifndef HTTP_H1_H
#define HTTP_H1_H

#include <stddef.h>

#define H1_MAX_HEADERS 32

struct h1_header {
    const char *name;  /* NUL-terminated, in the caller's buffer */
    const char *value; /* NUL-terminated, trimmed */
};

struct h1_request {
    const char *uri;   /* NUL-terminated, in the caller's buffer */
    size_t uri_len;
    struct h1_header h[H1_MAX_HEADERS];
    int nh;
    size_t len;        /* bytes of the request, blank line included */
};

enum h1_result {
    H1_OK,         /* *r describes the request in buf[0 .. r->len) */
    H1_INCOMPLETE, /* a prefix of such a request: more bytes are needed */
    H1_OTHER       /* not a request the fast lane answers */
};

/* Parses the request at the start of buf[0 .. n). On H1_OK it writes NUL
 * bytes into buf[0 .. r->len) to terminate the URI, names and values; on the
 * other results buf may be modified the same way and *r is not meaningful. */
enum h1_result h1_parse_get(char *buf, size_t n, struct h1_request *r);

/* The first header of that name (any case), or NULL. */
const char *h1_header(const struct h1_request *r, const char *name);

#endif
