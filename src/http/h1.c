/* h1.c - the fast lane's request parser (see h1.h). */
#include "h1.h"

#include "ndesmock/util.h"

#include <string.h>

/* RFC 3986 unreserved, reserved (but '#') and '%'. */
static int uri_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("-._~:/?[]@!$&'()*+,;=%", c) != NULL;
}

/* RFC 9110 tchar. */
static int tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Headers that change connection or body handling: evhttp's business. */
static int excluded(const char *name)
{
    static const char *const names[] = {"Content-Length", "Transfer-Encoding", "Connection",
                                        "Proxy-Connection", "Keep-Alive", "Expect", "Upgrade",
                                        "Trailer"};
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (util_ascii_caseeq(name, names[i]))
            return 1;
    return 0;
}

enum h1_result h1_parse_get(char *buf, size_t n, struct h1_request *r)
{
    static const char version[] = " HTTP/1.1\r\n";
    size_t p = 4, hosts = 0;

    memset(r, 0, sizeof(*r));
    if (n < 5)
        return memcmp(buf, "GET /", n) == 0 ? H1_INCOMPLETE : H1_OTHER;
    if (memcmp(buf, "GET /", 5) != 0)
        return H1_OTHER;
    while (p < n && uri_char((unsigned char)buf[p]))
        p++;
    if (p == n)
        return H1_INCOMPLETE;
    r->uri = buf + 4;
    r->uri_len = p - 4;
    if (n - p < sizeof(version) - 1)
        return memcmp(buf + p, version, n - p) == 0 ? H1_INCOMPLETE : H1_OTHER;
    if (memcmp(buf + p, version, sizeof(version) - 1) != 0)
        return H1_OTHER;
    buf[p] = '\0';
    p += sizeof(version) - 1;
    for (;;) {
        size_t name, colon, v, end;

        if (p == n)
            return H1_INCOMPLETE;
        if (buf[p] == '\r') {
            if (p + 1 == n)
                return H1_INCOMPLETE;
            if (buf[p + 1] != '\n')
                return H1_OTHER;
            r->len = p + 2;
            return hosts == 1 ? H1_OK : H1_OTHER;
        }
        name = p;
        while (p < n && tchar((unsigned char)buf[p]))
            p++;
        if (p == n)
            return H1_INCOMPLETE;
        if (buf[p] != ':' || p == name || p - name > 64)
            return H1_OTHER;
        colon = p++;
        while (p < n && buf[p] == ' ')
            p++;
        v = p;
        while (p < n && (unsigned char)buf[p] >= 0x20 && (unsigned char)buf[p] < 0x7f)
            p++;
        if (p == n || (p + 1 == n && buf[p] == '\r'))
            return H1_INCOMPLETE;
        if (buf[p] != '\r' || buf[p + 1] != '\n')
            return H1_OTHER;
        end = p;
        while (end > v && buf[end - 1] == ' ')
            end--;
        if (r->nh == H1_MAX_HEADERS)
            return H1_OTHER;
        buf[colon] = '\0';
        buf[end] = '\0';
        if (excluded(buf + name))
            return H1_OTHER;
        if (util_ascii_caseeq(buf + name, "Host"))
            hosts++;
        r->h[r->nh].name = buf + name;
        r->h[r->nh].value = buf + v;
        r->nh++;
        p += 2;
    }
}

const char *h1_header(const struct h1_request *r, const char *name)
{
    int i;

    for (i = 0; i < r->nh; i++)
        if (util_ascii_caseeq(r->h[i].name, name))
            return r->h[i].value;
    return NULL;
}
