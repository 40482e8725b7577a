/* test_iis.c - src/http/iis.c: IIS custom error pages and HTTP.sys pages,
 * byte lengths and SHA-256 as tabled in NDES-REFERENCE.md section 5. */
#include <criterion/criterion.h>

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "ndesmock/iis.h"
#include "ndesmock/util.h"

static void init(void)
{
    cr_assert_eq(iis_pages_init("NDES01"), 0);
}

TestSuite(iis, .init = init);

static void sha256_hex(const char *body, size_t len, char out[65])
{
    uint8_t md[32];
    size_t i;

    SHA256((const unsigned char *)body, len, md);
    util_hex_upper(md, 32, out);
    for (i = 0; i < 64; i++)
        if (out[i] >= 'A' && out[i] <= 'F')
            out[i] = (char)(out[i] - 'A' + 'a');
}

static void check(const struct iis_page *p, int status, const char *reason, size_t len,
                  const char *sha)
{
    char hex[65];

    cr_assert_not_null(p, "no page for %d", status);
    cr_assert_eq(p->status, status);
    cr_assert_str_eq(p->reason, reason);
    cr_assert_eq(p->len, len, "%d page is %zu bytes, want %zu", status, p->len, len);
    cr_assert_eq(strlen(p->body), p->len, "body length and len disagree");
    if (sha) {
        sha256_hex(p->body, p->len, hex);
        cr_assert_str_eq(hex, sha, "%d page SHA-256", status);
    }
}

Test(iis, custom_403_confirmed_capture)
{
    const struct iis_page *p = iis_custom_page(403);

    check(p, 403, "Forbidden", 1233,
          "c55f527e536de44c7980fecece7428ae5a765647495e47008a8a54fa1e434736");
    cr_assert_eq(strncmp(p->body, "<!DOCTYPE html PUBLIC", 21), 0);
    cr_assert_eq(memcmp(p->body + p->len - 9, "</html>\r\n", 9), 0, "ends with CRLF after </html>");
    cr_assert_not_null(strstr(p->body, "fieldset{padding:0 15px 10px 15px;} \r\n"), "trailing space");
    cr_assert_not_null(strstr(p->body, "\r\n  <h2>403 - Forbidden: Access is denied.</h2>\r\n"));
}

Test(iis, custom_401)
{
    check(iis_custom_page(401), 401, "Unauthorized", 1293,
          "f02487f5c4b3f915572549270547145f9d93fe805b290f936e8dff7163105a4c");
}

Test(iis, custom_404)
{
    check(iis_custom_page(404), 404, "Not Found", 1245,
          "dc1d54dab6ec8c00f70137927504e4f222c8395f10760b6beecfcfa94e08249f");
}

Test(iis, custom_500)
{
    check(iis_custom_page(500), 500, "Internal Server Error", 1208,
          "e1b0a10649c4b92f828523efc2ebe135ea9488179a2816888d1e84f786202dbf");
}

Test(iis, custom_405_text)
{
    const struct iis_page *p = iis_custom_page(405);

    cr_assert_not_null(p);
    cr_assert_eq(p->status, 405);
    cr_assert_not_null(strstr(p->body, "<title>405 - HTTP verb used to access this page is not "
                                       "allowed.</title>"));
    cr_assert_not_null(strstr(p->body, "invalid method (HTTP verb) was used to attempt access."));
}

Test(iis, every_line_ends_in_crlf)
{
    static const int codes[] = {401, 403, 404, 405, 500};
    size_t i, j;

    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const struct iis_page *p = iis_custom_page(codes[i]);
        cr_assert_not_null(p);
        for (j = 0; j < p->len; j++)
            if (p->body[j] == '\n')
                cr_assert(j > 0 && p->body[j - 1] == '\r', "%d: bare LF at %zu", codes[i], j);
    }
}

Test(iis, httpsys_503)
{
    const struct iis_page *p = iis_httpsys_page(503);

    check(p, 503, "Service Unavailable", 326,
          "fb2d9f058c2010c57f86a05ae33d282f33e3825290c66b8b120cd177416c6bdf");
    cr_assert_not_null(strstr(p->body, "EN\"\"http://"), "no space between the DOCTYPE strings");
}

Test(iis, httpsys_400)
{
    const struct iis_page *p = iis_httpsys_page(400);
    static const char want[] =
        "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\"\"http://www.w3.org/TR/html4/strict.dtd\">\r\n"
        "<HTML><HEAD><TITLE>Bad Request</TITLE>\r\n"
        "<META HTTP-EQUIV=\"Content-Type\" Content=\"text/html; charset=us-ascii\"></HEAD>\r\n"
        "<BODY><h2>Bad Request - Request Too Long</h2>\r\n"
        "<hr><p>HTTP Error 400. The size of the request headers is too long.</p>\r\n"
        "</BODY></HTML>\r\n";

    check(p, 400, "Bad Request", 346, NULL);
    cr_assert_eq(sizeof(want) - 1, 346);
    cr_assert_str_eq(p->body, want);
}

Test(iis, httpsys_414)
{
    check(iis_httpsys_page(414), 414, "Request-URI Too Long", 329,
          "ef972000aa66e129b77e955e2cdfe3bc43df42c777cd3973204cafc8c4a37084");
}

Test(iis, unknown_codes)
{
    cr_assert_null(iis_custom_page(200));
    cr_assert_null(iis_custom_page(503));
    cr_assert_null(iis_custom_page(0));
    cr_assert_null(iis_httpsys_page(403));
    cr_assert_null(iis_httpsys_page(404));
}

Test(iis, init_is_idempotent)
{
    const struct iis_page *a = iis_custom_page(403);
    size_t len = a->len;

    cr_assert_eq(iis_pages_init("NDES01"), 0);
    cr_assert_eq(iis_custom_page(403), a);
    cr_assert_eq(a->len, len);
}

/* The landing page (GET mscep.dll without the connector): UTF-16LE, no BOM. */
Test(iis, landing_page_utf16le)
{
    const struct iis_page *p = iis_landing_page();
    char ascii[4096];
    size_t i;

    cr_assert_not_null(p);
    cr_assert_eq(p->status, 200);
    cr_assert_eq(p->len % 2, 0);
    cr_assert_gt(p->len, 200);
    cr_assert_lt(p->len / 2, sizeof(ascii));
    cr_assert_neq((unsigned char)p->body[0], 0xff, "no BOM");
    for (i = 0; i < p->len / 2; i++) {
        cr_assert_eq(p->body[2 * i + 1], 0, "high byte of UTF-16 unit %zu", i);
        cr_assert_neq(p->body[2 * i], 0, "NUL character at %zu", i);
        ascii[i] = p->body[2 * i];
    }
    ascii[i] = '\0';
    cr_assert_eq(strncmp(ascii, "<HTML>", 6), 0);
    cr_assert_not_null(strstr(ascii, "Network Device Enrollment Service"));
    cr_assert_not_null(strstr(ascii, "http://NDES01/CertSrv/mscep_admin"), "host is shown");
}

Test(iis, landing_page_host_changes)
{
    const struct iis_page *p;
    char ascii[4096];
    size_t i;

    cr_assert_eq(iis_pages_init("ndes.corp.example"), 0);
    p = iis_landing_page();
    for (i = 0; i < p->len / 2; i++)
        ascii[i] = p->body[2 * i];
    ascii[i] = '\0';
    cr_assert_not_null(strstr(ascii, "http://ndes.corp.example/CertSrv/mscep_admin"));
    cr_assert_null(strstr(ascii, "NDES01"));
}

Test(iis, proxy_pages)
{
    const struct iis_page *t = iis_proxy_page(0), *d = iis_proxy_page(1);

    cr_assert_not_null(t);
    cr_assert_not_null(d);
    cr_assert_eq(t->status, 504);
    cr_assert_eq(d->status, 404);
    cr_assert_eq(strlen(t->body), t->len);
    cr_assert_eq(strlen(d->body), d->len);
    cr_assert_not_null(strstr(t->body, "This corporate app can't be accessed"));
    cr_assert_not_null(strstr(t->body, "Gateway Timeout"));
    cr_assert_not_null(strstr(d->body, "This page can't be displayed"));
}
