/* test_util.c - src/util: buffer, tolerant base64, percent decoding, query
 * lookup, DER writer. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ndesmock/util.h"

/* ---- base64 ---------------------------------------------------------------- */

static const uint8_t SAMPLE[] = {0xfb, 0xff, 0xbf, 0x00, 0x01, 0x3e, 0x3f, 0x80, 0x7f, 0xfe};
/* Chosen so that the encoding uses '+' and '/' (checked with Python's base64). */
#define SAMPLE_B64 "+/+/AAE+P4B//g=="

static void expect_decode(const char *in, const uint8_t *want, size_t wantlen)
{
    uint8_t out[256];
    long n = util_base64_decode(in, strlen(in), out, sizeof(out));

    cr_assert_eq(n, (long)wantlen, "decode(\"%s\") = %ld, want %zu", in, n, wantlen);
    cr_assert_arr_eq(out, want, wantlen, "decode(\"%s\") bytes differ", in);
}

Test(base64, encode_known_answers)
{
    char out[64];

    cr_assert_eq(util_base64_encode((const uint8_t *)"", 0, out), 0);
    cr_assert_str_eq(out, "");
    cr_assert_eq(util_base64_encode((const uint8_t *)"f", 1, out), 4);
    cr_assert_str_eq(out, "Zg==");
    cr_assert_eq(util_base64_encode((const uint8_t *)"fo", 2, out), 4);
    cr_assert_str_eq(out, "Zm8=");
    cr_assert_eq(util_base64_encode((const uint8_t *)"foo", 3, out), 4);
    cr_assert_str_eq(out, "Zm9v");
    cr_assert_eq(util_base64_encode((const uint8_t *)"foobar", 6, out), 8);
    cr_assert_str_eq(out, "Zm9vYmFy");
    cr_assert_eq(util_base64_encode(SAMPLE, sizeof(SAMPLE), out), strlen(SAMPLE_B64));
    cr_assert_str_eq(out, SAMPLE_B64);
}

Test(base64, standard)
{
    expect_decode("Zm9vYmFy", (const uint8_t *)"foobar", 6);
    expect_decode("Zm9vYg==", (const uint8_t *)"foob", 4);
    expect_decode("Zm9vYmE=", (const uint8_t *)"fooba", 5);
    expect_decode(SAMPLE_B64, SAMPLE, sizeof(SAMPLE));
    expect_decode("", (const uint8_t *)"", 0);
}

Test(base64, url_safe_alphabet)
{
    expect_decode("-_-_AAE-P4B__g==", SAMPLE, sizeof(SAMPLE));
    expect_decode("-_-_AAE-P4B__g", SAMPLE, sizeof(SAMPLE));
    /* mixed alphabets in one string, as some clients produce */
    expect_decode("+_-/AAE+P4B_/g", SAMPLE, sizeof(SAMPLE));
}

Test(base64, line_breaks_and_tabs_ignored)
{
    expect_decode("Zm9v\r\nYmFy", (const uint8_t *)"foobar", 6);
    expect_decode("Zm9v\nYmFy\n", (const uint8_t *)"foobar", 6);
    expect_decode("Z\tm\r9\nv", (const uint8_t *)"foo", 3);
    expect_decode("Zm9vYg=\n=\r\n", (const uint8_t *)"foob", 4);
}

Test(base64, percent0A_decoded_newlines)
{
    /* a GET message whose %0A escapes were decoded before base64 */
    char esc[] = "+/+/AAE%0A+P4B//g%3D%3D", dec[64];
    long n = util_percent_decode(esc, strlen(esc), dec, sizeof(dec));

    cr_assert_eq(n, (long)strlen("+/+/AAE\n+P4B//g=="));
    cr_assert_str_eq(dec, "+/+/AAE\n+P4B//g==");
    expect_decode(dec, SAMPLE, sizeof(SAMPLE));
}

Test(base64, space_is_plus)
{
    /* form-encoding turned every '+' into ' ' */
    expect_decode(" / /AAE P4B//g==", SAMPLE, sizeof(SAMPLE));
}

Test(base64, missing_padding)
{
    expect_decode("Zg", (const uint8_t *)"f", 1);
    expect_decode("Zm8", (const uint8_t *)"fo", 2);
    expect_decode("Zg=", (const uint8_t *)"f", 1);
    expect_decode("+/+/AAE+P4B//g", SAMPLE, sizeof(SAMPLE));
}

Test(base64, garbage_rejected)
{
    static const char *const bad[] = {
        "Zm9v!mFy",   /* '!' not in any alphabet */
        "Zm9v*",      "Zm9v.YmFy", "Zm9v\x80", "Zm9v\"",
        "Z",          /* a lone sextet cannot hold a byte */
        "Zm9vY",      /* 5 chars: dangling sextet */
        "Zg==Zg==",   /* data after padding */
        "Zg===",      /* three padding characters */
        "Zm9v%0AYmFy" /* still-escaped text is not base64 */
    };
    uint8_t out[64];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(util_base64_decode(bad[i], strlen(bad[i]), out, sizeof(out)), -1,
                     "\"%s\" was accepted", bad[i]);
}

Test(base64, output_cap_respected)
{
    uint8_t out[8];

    memset(out, 0xAA, sizeof(out));
    cr_assert_eq(util_base64_decode("Zm9vYmFy", 8, out, 6), 6);
    cr_assert_eq(util_base64_decode("Zm9vYmFy", 8, out, 5), -1);
    memset(out, 0xAA, sizeof(out));
    cr_assert_eq(util_base64_decode("Zm9vYmFy", 8, out, 3), -1);
    cr_assert_eq(out[3], 0xAA, "wrote past the cap");
    cr_assert_eq(util_base64_decode("Zg==", 4, out, 0), -1);
    cr_assert_eq(util_base64_decode("", 0, out, 0), 0);
}

Test(base64, inlen_respected)
{
    uint8_t out[16];

    /* only the first 4 characters count; the rest would be garbage */
    cr_assert_eq(util_base64_decode("Zm9v!!!", 4, out, sizeof(out)), 3);
    cr_assert_arr_eq(out, "foo", 3);
}

Test(base64, round_trip_all_lengths)
{
    uint8_t in[300], out[300];
    char enc[420];
    size_t n, i;

    for (i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(i * 37 + 11);
    for (n = 0; n <= sizeof(in); n++) {
        size_t el = util_base64_encode(in, n, enc);
        cr_assert_eq(el, 4 * ((n + 2) / 3));
        cr_assert_eq(util_base64_decode(enc, el, out, sizeof(out)), (long)n, "length %zu", n);
        cr_assert_arr_eq(out, in, n);
    }
}

/* ---- percent decoding ------------------------------------------------------ */

static void expect_pct(const char *in, const char *want)
{
    char out[128];
    long n = util_percent_decode(in, strlen(in), out, sizeof(out));

    cr_assert_eq(n, (long)strlen(want), "pct(\"%s\") = %ld", in, n);
    cr_assert_str_eq(out, want);
}

Test(percent, basic_escapes)
{
    expect_pct("abc", "abc");
    expect_pct("%41%42%43", "ABC");
    expect_pct("%2b%2F%3d", "+/=");
    expect_pct("SCEP%20Authority", "SCEP Authority");
    expect_pct("", "");
}

Test(percent, plus_kept)
{
    expect_pct("a+b", "a+b");
    expect_pct("++%2B", "+++");
}

Test(percent, malformed_escapes_copied_literally)
{
    expect_pct("%", "%");
    expect_pct("%4", "%4");
    expect_pct("a%4", "a%4");
    expect_pct("%zz", "%zz");
    expect_pct("%4g%41", "%4gA");
    expect_pct("100%", "100%");
    expect_pct("%%41", "%A");
}

Test(percent, escape_at_very_end)
{
    /* "%41" exactly at the end of the input must be decoded */
    expect_pct("x%41", "xA");
    /* inlen cuts the escape: copied literally */
    {
        char out[16];
        cr_assert_eq(util_percent_decode("x%41", 3, out, sizeof(out)), 3);
        cr_assert_str_eq(out, "x%4");
    }
}

Test(percent, nul_byte_escape)
{
    char out[16];

    cr_assert_eq(util_percent_decode("a%00b", 5, out, sizeof(out)), 3);
    cr_assert_eq(out[0], 'a');
    cr_assert_eq(out[1], '\0');
    cr_assert_eq(out[2], 'b');
}

Test(percent, overflow)
{
    char out[4];

    cr_assert_eq(util_percent_decode("abc", 3, out, 4), 3); /* 3 + NUL fits */
    cr_assert_str_eq(out, "abc");
    cr_assert_eq(util_percent_decode("abcd", 4, out, 4), -1);
    cr_assert_eq(util_percent_decode("%41%42%43", 9, out, 4), 3);
    cr_assert_eq(util_percent_decode("%41%42%43%44", 12, out, 4), -1);
    cr_assert_eq(util_percent_decode("a", 1, out, 0), -1);
    cr_assert_eq(util_percent_decode("", 0, out, 1), 0);
    cr_assert_eq(out[0], '\0');
}

/* ---- query parameters ------------------------------------------------------- */

static int qp(const char *q, const char *name, char *val, size_t cap)
{
    const char *v = NULL;
    size_t n = 0;

    if (!util_query_param(q, name, &v, &n))
        return 0;
    cr_assert(v >= q && v + n <= q + strlen(q), "value must point into the query");
    snprintf(val, cap, "%.*s", (int)n, v);
    return 1;
}

Test(query, found_case_insensitive)
{
    char v[64];
    const char *q = "operation=GetCACert&message=SCEP%20Authority";

    cr_assert_eq(qp(q, "operation", v, sizeof(v)), 1);
    cr_assert_str_eq(v, "GetCACert");
    cr_assert_eq(qp(q, "OPERATION", v, sizeof(v)), 1);
    cr_assert_str_eq(v, "GetCACert");
    cr_assert_eq(qp(q, "Message", v, sizeof(v)), 1);
    cr_assert_str_eq(v, "SCEP%20Authority", "value must stay escaped");
}

Test(query, missing)
{
    char v[64];

    cr_assert_eq(qp("operation=GetCACaps", "message", v, sizeof(v)), 0);
    cr_assert_eq(qp("", "operation", v, sizeof(v)), 0);
    cr_assert_eq(qp("operationx=1&xoperation=2", "operation", v, sizeof(v)), 0);
    cr_assert_eq(qp("oper=1", "operation", v, sizeof(v)), 0);
    {
        const char *val;
        size_t n;
        cr_assert_eq(util_query_param(NULL, "operation", &val, &n), 0);
    }
}

Test(query, empty_values)
{
    char v[64] = "x";

    cr_assert_eq(qp("operation=&message=x", "operation", v, sizeof(v)), 1);
    cr_assert_str_eq(v, "");
    cr_assert_eq(qp("operation&message=x", "operation", v, sizeof(v)), 1);
    cr_assert_str_eq(v, "");
    cr_assert_eq(qp("message=x&operation", "operation", v, sizeof(v)), 1);
    cr_assert_str_eq(v, "");
    cr_assert_eq(qp("a=1&&operation=PKIOperation", "operation", v, sizeof(v)), 1);
    cr_assert_str_eq(v, "PKIOperation");
}

Test(query, first_match_wins_and_raw_value)
{
    char v[128];

    cr_assert_eq(qp("operation=A&operation=B", "operation", v, sizeof(v)), 1);
    cr_assert_str_eq(v, "A");
    /* '+', '/', '=' inside a base64 value are kept as they are */
    cr_assert_eq(qp("operation=PKIOperation&message=MIIB+a/b==", "message", v, sizeof(v)), 1);
    cr_assert_str_eq(v, "MIIB+a/b==");
    cr_assert_eq(qp("message=a=b=c", "message", v, sizeof(v)), 1);
    cr_assert_str_eq(v, "a=b=c");
}

/* ---- buffer ----------------------------------------------------------------- */

Test(buf, append_grow_steal)
{
    struct util_buf b;
    uint8_t *p, *s;
    size_t len, i;

    util_buf_init(&b);
    cr_assert_eq(b.len, 0);
    for (i = 0; i < 1000; i++)
        cr_assert_eq(util_buf_append(&b, "ab", 2), 0);
    cr_assert_eq(b.len, 2000);
    cr_assert_eq(b.data[1999], 'b');
    p = util_buf_grow(&b, 3);
    cr_assert_not_null(p);
    memcpy(p, "xyz", 3);
    cr_assert_eq(util_buf_appendf(&b, "%d-%s", 42, "ok"), 0);
    cr_assert_eq(b.len, 2008);
    cr_assert_arr_eq(b.data + 2000, "xyz42-ok", 8);
    s = util_buf_steal(&b, &len);
    cr_assert_eq(len, 2008);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    free(s);
    util_buf_free(&b);
    util_buf_free(NULL);
}

Test(buf, failed_flag_sticks)
{
    struct util_buf b;

    util_buf_init(&b);
    cr_assert_eq(util_buf_append(&b, "a", 1), 0);
    cr_assert_null(util_buf_grow(&b, (size_t)1 << 31), "a 2 GiB grow must hit the cap");
    cr_assert(b.failed);
    cr_assert_eq(util_buf_append(&b, "b", 1), -1);
    cr_assert_eq(b.len, 1);
    util_buf_reset(&b);
    cr_assert_eq(b.failed, 0);
    cr_assert_eq(util_buf_append(&b, "c", 1), 0);
    cr_assert_eq(b.data[0], 'c');
    util_buf_free(&b);
}

Test(util, hex_upper)
{
    char out[9];
    const uint8_t in[] = {0x00, 0x9c, 0xab, 0xff};

    util_hex_upper(in, 4, out);
    cr_assert_str_eq(out, "009CABFF");
    util_hex_upper(in, 0, out);
    cr_assert_str_eq(out, "");
}

/* ---- DER writer ---------------------------------------------------------------- */

struct hdr_case {
    size_t len;
    uint8_t hdr[6];
    size_t hl;
};

ParameterizedTestParameters(der, header_lengths)
{
    static struct hdr_case cases[] = {
        {0, {0x04, 0x00}, 2},
        {1, {0x04, 0x01}, 2},
        {127, {0x04, 0x7f}, 2},
        {128, {0x04, 0x81, 0x80}, 3},
        {255, {0x04, 0x81, 0xff}, 3},
        {256, {0x04, 0x82, 0x01, 0x00}, 4},
        {65535, {0x04, 0x82, 0xff, 0xff}, 4},
        {65536, {0x04, 0x83, 0x01, 0x00, 0x00}, 5},
        {0x1000000, {0x04, 0x84, 0x01, 0x00, 0x00, 0x00}, 6},
    };
    return cr_make_param_array(struct hdr_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct hdr_case *c, der, header_lengths)
{
    struct util_buf b;

    util_buf_init(&b);
    der_header(&b, 0x04, c->len);
    cr_assert_eq(b.len, c->hl, "header for %zu is %zu bytes, want %zu", c->len, b.len, c->hl);
    cr_assert_arr_eq(b.data, c->hdr, c->hl, "header bytes for length %zu", c->len);
    util_buf_free(&b);
}

ParameterizedTestParameters(der, wrap_lengths)
{
    static size_t lens[] = {0, 1, 127, 128, 255, 256, 65535, 65536};
    return cr_make_param_array(size_t, lens, sizeof(lens) / sizeof(lens[0]));
}

ParameterizedTest(size_t *lenp, der, wrap_lengths)
{
    size_t len = *lenp, i, hl;
    struct util_buf b, ref;
    uint8_t *payload = malloc(len + 1);

    for (i = 0; i < len; i++)
        payload[i] = (uint8_t)(i * 7);
    util_buf_init(&b);
    util_buf_init(&ref);
    util_buf_append(&b, "\x05\x00", 2); /* something before the wrapped part */
    util_buf_append(&b, payload, len);
    der_wrap(&b, 2, 0x30);
    der_header(&ref, 0x30, len);
    hl = ref.len;
    util_buf_append(&ref, payload, len);
    cr_assert_eq(b.failed, 0);
    cr_assert_eq(b.len, 2 + hl + len);
    cr_assert_arr_eq(b.data, "\x05\x00", 2, "bytes before start moved");
    cr_assert_arr_eq(b.data + 2, ref.data, ref.len, "der_wrap(%zu) differs from header+content", len);
    util_buf_free(&b);
    util_buf_free(&ref);
    free(payload);
}

Test(der, tlv_oid_int_null)
{
    static const uint8_t sha1[] = {0x2b, 0x0e, 0x03, 0x02, 0x1a};
    static const uint8_t want[] = {
        0x04, 0x03, 'a', 'b', 'c',                   /* der_tlv */
        0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a,    /* der_oid */
        0x05, 0x00,                                  /* der_null */
        0x02, 0x01, 0x00,                            /* 0 */
        0x02, 0x01, 0x01,                            /* 1 */
        0x02, 0x01, 0x7f,                            /* 127 */
        0x02, 0x02, 0x00, 0x80,                      /* 128: leading zero */
        0x02, 0x02, 0x01, 0x00,                      /* 256 */
        0x02, 0x03, 0x00, 0xff, 0xff,                /* 65535 */
        0x02, 0x05, 0x00, 0xff, 0xff, 0xff, 0xff,    /* UINT_MAX */
    };
    struct util_buf b;

    util_buf_init(&b);
    der_tlv(&b, 0x04, "abc", 3);
    der_oid(&b, sha1, sizeof(sha1));
    der_null(&b);
    der_int_small(&b, 0);
    der_int_small(&b, 1);
    der_int_small(&b, 127);
    der_int_small(&b, 128);
    der_int_small(&b, 256);
    der_int_small(&b, 65535);
    der_int_small(&b, 0xffffffffu);
    cr_assert_eq(b.len, sizeof(want));
    cr_assert_arr_eq(b.data, want, sizeof(want));
    util_buf_free(&b);
}

Test(der, nested_wrap)
{
    /* SEQUENCE { SET { NULL } }, built inside-out with two wraps */
    static const uint8_t want[] = {0x30, 0x04, 0x31, 0x02, 0x05, 0x00};
    struct util_buf b;

    util_buf_init(&b);
    der_null(&b);
    der_wrap(&b, 0, 0x31);
    der_wrap(&b, 0, 0x30);
    cr_assert_eq(b.len, sizeof(want));
    cr_assert_arr_eq(b.data, want, sizeof(want));
    /* start beyond the end is ignored */
    der_wrap(&b, b.len + 1, 0x30);
    cr_assert_eq(b.len, sizeof(want));
    util_buf_free(&b);
}

Test(util, monotonic_clock)
{
    uint64_t a = util_now_ns(), c = util_now_ns();

    cr_assert(a > 0);
    cr_assert_geq(c, a);
}

Test(util, ascii_case_comparisons_match_strcasecmp_and_strcasestr)
{
    /* the matcher's hand-written comparisons against libc's, C locale */
    static const char *const hay[] = {"", "a", "Host", "127.0.0.1:8080", "lab.Example.ORG",
                                      "xxnO-SUCH-HOST-1", "no-such-host-", "aaab", "@`[{",
                                      "\xc3\xa9t\xc3\xa9", "ab ab abc"};
    static const char *const needle[] = {"a", "host", "no-such-host-1", "example.org", "aab",
                                         "`", "@", "[", "\xc3\xa9", "abc", "8080", "lab.example.orgx"};
    size_t i, k;

    for (i = 0; i < sizeof(hay) / sizeof(hay[0]); i++) {
        for (k = 0; k < sizeof(hay) / sizeof(hay[0]); k++)
            cr_assert_eq(util_ascii_caseeq(hay[i], hay[k]), strcasecmp(hay[i], hay[k]) == 0,
                         "caseeq('%s', '%s')", hay[i], hay[k]);
        for (k = 0; k < sizeof(needle) / sizeof(needle[0]); k++)
            cr_assert_eq(util_ascii_casestr(hay[i], needle[k], strlen(needle[k])),
                         strcasestr(hay[i], needle[k]), "casestr('%s', '%s')", hay[i], needle[k]);
    }
    cr_assert(util_ascii_caseeq("CONTENT-length", "Content-Length"));
    cr_assert(!util_ascii_caseeq("Content-Length", "Content-Lengt"));
    cr_assert(!util_ascii_caseeq("Host", "Hosts"));
}

/* ---- single DES-CBC and MD4 without the legacy provider (oldcrypto.c) ---- */

#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

Test(oldcrypto, md4_rfc1320_vectors)
{
    static const struct {
        const char *in, *hex;
    } v[] = {
        {"", "31d6cfe0d16ae931b73c59d7e0c089c0"},
        {"a", "bde52cb31de33e46245e05fbdbd6fb24"},
        {"abc", "a448017aaf21d8525fc10ae87aa6729d"},
        {"message digest", "d9130a8164549fe818874806e1c7014b"},
        {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "e33b4ddc9c38f2199c3e7b164fcc0536"},
    };
    size_t i;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint8_t d[16];
        char hex[33];
        util_md4(v[i].in, strlen(v[i].in), d);
        util_hex_upper(d, 16, hex);
        cr_assert(strcasecmp(hex, v[i].hex) == 0, "MD4(\"%s\") = %s", v[i].in, hex);
    }
}

/* EVP's DES-CBC (the legacy provider, which the tests load) decides what the
 * plaintext is, or that there is none; util must agree on every case. */
static long evp_des_decrypt(const EVP_CIPHER *des, const uint8_t *k, const uint8_t *iv,
                            const uint8_t *in, size_t len, uint8_t *out)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n1 = 0, n2 = 0;
    long r = -1;

    if (EVP_DecryptInit_ex2(c, des, k, iv, NULL) && EVP_DecryptUpdate(c, out, &n1, in, (int)len) &&
        EVP_DecryptFinal_ex(c, out + n1, &n2))
        r = n1 + n2;
    EVP_CIPHER_CTX_free(c);
    return r;
}

Test(oldcrypto, des_cbc_agrees_with_evp)
{
    EVP_CIPHER *des;
    uint8_t k[8], iv[8], pt[80], ct[96], a[96], b[96 + 8];
    int i, agree_ok = 0, agree_fail = 0;

    cr_assert_not_null(OSSL_PROVIDER_load(NULL, "default"));
    cr_assert_not_null(OSSL_PROVIDER_load(NULL, "legacy"));
    des = EVP_CIPHER_fetch(NULL, "DES-CBC", NULL);
    cr_assert_not_null(des);
    for (i = 0; i < 3000; i++) {
        size_t ptlen = (size_t)(i % 81), ctlen;
        int n1 = 0, n2 = 0;
        long ra, rb;
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        cr_assert(RAND_bytes(k, 8) == 1 && RAND_bytes(iv, 8) == 1 && RAND_bytes(pt, sizeof(pt)) == 1);
        cr_assert(EVP_EncryptInit_ex2(c, des, k, iv, NULL) &&
                  EVP_EncryptUpdate(c, ct, &n1, pt, (int)ptlen) && EVP_EncryptFinal_ex(c, ct + n1, &n2));
        EVP_CIPHER_CTX_free(c);
        ctlen = (size_t)(n1 + n2);
        switch (i % 4) { /* 0: as sent; 1: a flipped bit; 2: a cut block; 3: one byte short */
        case 1: ct[(size_t)i % ctlen] ^= (uint8_t)(1u << (i % 8)); break;
        case 2: ctlen -= 8; break;
        case 3: ctlen -= 1; break;
        }
        ra = util_des_cbc_decrypt(k, iv, ct, ctlen, a);
        rb = evp_des_decrypt(des, k, iv, ct, ctlen, b);
        cr_assert_eq(ra, rb, "case %d (cut %d): util %ld, EVP %ld", i, i % 4, ra, rb);
        if (ra >= 0) {
            cr_assert_eq(memcmp(a, b, (size_t)ra), 0, "case %d: plaintexts differ", i);
            if (i % 4 == 0)
                cr_assert(ra == (long)ptlen && memcmp(a, pt, ptlen) == 0);
            agree_ok++;
        } else {
            agree_fail++;
        }
    }
    cr_assert(agree_ok > 1000 && agree_fail > 700, "both outcomes exercised: %d ok, %d failed",
              agree_ok, agree_fail);
    EVP_CIPHER_free(des);
}
