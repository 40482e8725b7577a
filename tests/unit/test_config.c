/* test_config.c - src/config: defaults, the libconfig reader and its
 * "FILE:LINE: reason" errors, HOST:PORT parsing. */
#include "th.h"

#include <openssl/x509v3.h>

static char *dir;

static void setup(void)
{
    dir = th_mkdtemp();
}

static void teardown(void)
{
    th_rm_rf(dir);
    free(dir);
}

TestSuite(config, .init = setup, .fini = teardown);

/* Writes text to DIR/name and returns the path (static buffer). */
static const char *cfgfile(const char *name, const char *text)
{
    static char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    th_write_file(path, text, strlen(text));
    return path;
}

/* Loads text over the defaults; returns the rc and leaves the error in err. */
static int load(const char *text, struct config *cfg, char *err, size_t errlen)
{
    const char *path = cfgfile("t.cfg", text);

    config_defaults(cfg);
    err[0] = '\0';
    return config_load_file(cfg, path, err, errlen);
}

/* Expects a failure whose message is "PATH:LINE: ..." containing needle. */
static void expect_error(const char *text, int line, const char *needle)
{
    struct config cfg;
    char err[512], prefix[PATH_MAX + 32];

    cr_assert_eq(load(text, &cfg, err, sizeof(err)), -1, "accepted:\n%s", text);
    snprintf(prefix, sizeof(prefix), "%s/t.cfg:%d: ", dir, line);
    cr_assert_eq(strncmp(err, prefix, strlen(prefix)), 0, "error \"%s\" does not start with \"%s\"",
                 err, prefix);
    cr_assert_not_null(strstr(err, needle), "error \"%s\" does not mention \"%s\"", err, needle);
}

Test(config, defaults)
{
    struct config c;

    config_defaults(&c);
    cr_assert_str_eq(c.source, "(embedded defaults)");
    cr_assert_str_eq(c.listen, "127.0.0.1:8080");
    cr_assert_str_eq(c.state_dir, "./state");
    cr_assert_eq(c.threads, 0);
    cr_assert_eq(c.max_connections, 4096);
    cr_assert_eq(c.max_body_bytes, 1048576);
    cr_assert_eq(c.max_url_bytes, 65534);
    cr_assert_eq(c.max_header_bytes, 65534);
    cr_assert_float_eq(c.request_timeout_s, 120.0, 1e-9);
    cr_assert_str_eq(c.server_header, "Microsoft-IIS/10.0");
    cr_assert_str_eq(c.powered_by, "ASP.NET");
    cr_assert_eq(c.access_log, 1);
    cr_assert_eq(c.challenge_policy, CHALLENGE_STATIC);
    cr_assert_str_eq(c.challenge, "");
    cr_assert_eq(c.caps.count, 9);
    cr_assert_str_eq(c.caps.items[0], "POSTPKIOperation");
    cr_assert_str_eq(c.caps.items[8], "SCEPStandard");
    cr_assert_str_eq(c.caps.content_type, "text/plain");
    cr_assert_eq(c.caps.crlf, 0);
    cr_assert_str_eq(c.tmpl.name, "IPSECIntermediateOffline");
    cr_assert_eq(c.tmpl.validity_minutes, 525600);
    cr_assert_eq(c.tmpl.backdate_minutes, 10);
    cr_assert_eq(c.tmpl.key_usage, KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    cr_assert_eq(c.tmpl.eku_count, 2);
    cr_assert_str_eq(c.tmpl.eku[0], "clientAuth");
    cr_assert_str_eq(c.tmpl.eku[1], "1.3.6.1.5.5.8.2.2");
    cr_assert_str_eq(c.tmpl.digest, "sha256");
    cr_assert_str_eq(c.reply.digest, "sha1");
    cr_assert_eq(c.reply.certs_in_success, 1);
    cr_assert_eq(c.reply.certs_in_failure, 0);
    cr_assert_eq(c.reply.fail_info_bad_challenge, 1);
    cr_assert_eq(c.reply.include_ca_in_reply, 0);
    cr_assert_eq(c.pki.key_bits, 2048);
    cr_assert_str_eq(c.pki.host_name, "NDES01");
    cr_assert_str_eq(c.pki.ca_cn, "ndesmock Lab Root CA");
    cr_assert_str_eq(c.pki.org, "ndesmock lab");
    cr_assert_eq(c.pki.intermediate, 0);
    cr_assert_eq(c.pki.ca_validity_days, 3650);
    cr_assert_eq(c.pki.ra_validity_days, 730);
    cr_assert_str_eq(challenge_policy_str(CHALLENGE_STATIC), "static");
    cr_assert_str_eq(challenge_policy_str(CHALLENGE_ACCEPT_ANY), "accept-any");
    cr_assert_str_eq(challenge_policy_str(CHALLENGE_NONE), "none");
}

static const char EVERY_KEY[] =
    "listen = \"[::1]:0\";\n"
    "state_dir = \"/var/lib/ndesmock\";\n"
    "server: {\n"
    "  threads = 3;\n"
    "  max_connections = 77;\n"
    "  max_body_bytes = 2048;\n"
    "  max_url_bytes = 16384;\n"
    "  max_header_bytes = 16384;\n"
    "  request_timeout = 2.5;\n"
    "  server_header = \"Microsoft-IIS/8.5\";\n"
    "  powered_by = \"\";\n"
    "  access_log = false;\n"
    "};\n"
    "challenge: {\n"
    "  policy = \"accept-any\";\n"
    "  password = \"s3cret\";\n"
    "};\n"
    "caps: {\n"
    "  list = [ \"POSTPKIOperation\", \"SHA-1\", \"DES3\" ];\n"
    "  content_type = \"\";\n"
    "  crlf = true;\n"
    "};\n"
    "template: {\n"
    "  name = \"WebServer\";\n"
    "  validity_minutes = 5;\n"
    "  backdate_minutes = 0;\n"
    "  key_usage = [ \"digitalSignature\", \"nonRepudiation\", \"keyAgreement\" ];\n"
    "  eku = [ \"serverAuth\", \"1.2.3.4.5\", \"emailProtection\" ];\n"
    "  digest = \"SHA384\";\n"
    "};\n"
    "reply: {\n"
    "  digest = \"sha256\";\n"
    "  certs_in_success = false;\n"
    "  certs_in_failure = true;\n"
    "  fail_info_bad_challenge = 2;\n"
    "  include_ca = true;\n"
    "};\n"
    "pki: {\n"
    "  key_bits = 3072;\n"
    "  host_name = \"SRV2012\";\n"
    "  ca_cn = \"SRV2012-CA\";\n"
    "  org = \"\";\n"
    "  intermediate = true;\n"
    "  ca_validity_days = 100;\n"
    "  ra_validity_days = 50;\n"
    "};\n";

Test(config, every_key)
{
    struct config c;
    char err[512];
    const char *path;

    cr_assert_eq(load(EVERY_KEY, &c, err, sizeof(err)), 0, "%s", err);
    path = cfgfile("t.cfg", EVERY_KEY);
    cr_assert_str_eq(c.source, path);
    cr_assert_str_eq(c.listen, "[::1]:0");
    cr_assert_str_eq(c.state_dir, "/var/lib/ndesmock");
    cr_assert_eq(c.threads, 3);
    cr_assert_eq(c.max_connections, 77);
    cr_assert_eq(c.max_body_bytes, 2048);
    cr_assert_eq(c.max_url_bytes, 16384);
    cr_assert_eq(c.max_header_bytes, 16384);
    cr_assert_float_eq(c.request_timeout_s, 2.5, 1e-9);
    cr_assert_str_eq(c.server_header, "Microsoft-IIS/8.5");
    cr_assert_str_eq(c.powered_by, "");
    cr_assert_eq(c.access_log, 0);
    cr_assert_eq(c.challenge_policy, CHALLENGE_ACCEPT_ANY);
    cr_assert_str_eq(c.challenge, "s3cret");
    cr_assert_eq(c.caps.count, 3);
    cr_assert_str_eq(c.caps.items[0], "POSTPKIOperation");
    cr_assert_str_eq(c.caps.items[1], "SHA-1");
    cr_assert_str_eq(c.caps.items[2], "DES3");
    cr_assert_str_eq(c.caps.content_type, "");
    cr_assert_eq(c.caps.crlf, 1);
    cr_assert_str_eq(c.tmpl.name, "WebServer");
    cr_assert_eq(c.tmpl.validity_minutes, 5);
    cr_assert_eq(c.tmpl.backdate_minutes, 0);
    cr_assert_eq(c.tmpl.key_usage, KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION | KU_KEY_AGREEMENT);
    cr_assert_eq(c.tmpl.eku_count, 3);
    cr_assert_str_eq(c.tmpl.eku[0], "serverAuth");
    cr_assert_str_eq(c.tmpl.eku[1], "1.2.3.4.5");
    cr_assert_str_eq(c.tmpl.eku[2], "emailProtection");
    cr_assert_str_eq(c.tmpl.digest, "sha384", "digest names are normalised to lower case");
    cr_assert_str_eq(c.reply.digest, "sha256");
    cr_assert_eq(c.reply.certs_in_success, 0);
    cr_assert_eq(c.reply.certs_in_failure, 1);
    cr_assert_eq(c.reply.fail_info_bad_challenge, 2);
    cr_assert_eq(c.reply.include_ca_in_reply, 1);
    cr_assert_eq(c.pki.key_bits, 3072);
    cr_assert_str_eq(c.pki.host_name, "SRV2012");
    cr_assert_str_eq(c.pki.ca_cn, "SRV2012-CA");
    cr_assert_str_eq(c.pki.org, "");
    cr_assert_eq(c.pki.intermediate, 1);
    cr_assert_eq(c.pki.ca_validity_days, 100);
    cr_assert_eq(c.pki.ra_validity_days, 50);
}

Test(config, shipped_ndesmock_cfg_equals_defaults)
{
    /* The documented file shows every default: loading it changes nothing. */
    struct config d, c;
    char err[512];

    config_defaults(&d);
    config_defaults(&c);
    if (access("ndesmock.cfg", R_OK) != 0)
        cr_skip_test("run from the repository root to check ndesmock.cfg");
    cr_assert_eq(config_load_file(&c, "ndesmock.cfg", err, sizeof(err)), 0, "%s", err);
    snprintf(c.source, sizeof(c.source), "%s", d.source);
    cr_assert_eq(memcmp(&c, &d, sizeof(c)), 0, "ndesmock.cfg differs from config_defaults()");
}

Test(config, partial_file_keeps_other_defaults)
{
    struct config c;
    char err[256];

    cr_assert_eq(load("server: { threads = 2; };\n", &c, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(c.threads, 2);
    cr_assert_eq(c.max_connections, 4096);
    cr_assert_str_eq(c.listen, "127.0.0.1:8080");
}

Test(config, int_accepted_for_float)
{
    struct config c;
    char err[256];

    cr_assert_eq(load("server: { request_timeout = 7; };\n", &c, err, sizeof(err)), 0, "%s", err);
    cr_assert_float_eq(c.request_timeout_s, 7.0, 1e-9);
    cr_assert_eq(load("server: { request_timeout = 8L; };\n", &c, err, sizeof(err)), 0, "%s", err);
    cr_assert_float_eq(c.request_timeout_s, 8.0, 1e-9);
}

Test(config, unknown_key_with_line)
{
    expect_error("listen = \"127.0.0.1:0\";\n\nbogus = 1;\n", 3, "unknown setting 'bogus'");
    expect_error("server: {\n  threads = 1;\n  thread = 2;\n};\n", 3, "'server.thread'");
    expect_error("pki: {\n  key_bits = 2048;\n  nested: { x = 1; };\n};\n", 3, "pki.nested");
}

Test(config, wrong_type_with_line)
{
    expect_error("\nserver: {\n  threads = \"4\";\n};\n", 3, "'server.threads' must be an integer");
    expect_error("server: {\n  access_log = 1;\n};\n", 2, "true or false");
    expect_error("state_dir = 5;\n", 1, "'state_dir' must be a string");
    expect_error("\n\nserver: {\n\n  request_timeout = \"slow\";\n};\n", 5, "must be a number");
    expect_error("caps: {\n  list = \"SHA-1\";\n};\n", 2, "array of strings");
    /* a list (not an array) may mix types: the bad element's own line is reported */
    expect_error("caps: {\n  list = ( \"SHA-1\",\n    1 );\n};\n", 3, "must be a string");
    expect_error("server = 1;\n", 1, "must be a group");
    expect_error("template: {\n  key_usage = ( \"digitalSignature\", 4 );\n};\n", 2,
                 "entries must be strings");
}

Test(config, out_of_range_with_line)
{
    expect_error("server: {\n  threads = 65;\n};\n", 2, "out of range");
    expect_error("server: {\n\n  max_body_bytes = 1023;\n};\n", 3, "out of range");
    expect_error("pki: { key_bits = 512; };\n", 1, "'pki.key_bits' = 512 is out of range");
    expect_error("reply: {\n  fail_info_bad_challenge = 5;\n};\n", 2, "out of range");
    expect_error("server: {\n  request_timeout = 0.0;\n};\n", 2, "out of range");
    expect_error("server: {\n  request_timeout = 100000;\n};\n", 2, "out of range");
    expect_error("template: {\n  validity_minutes = 0;\n};\n", 2, "out of range");
    expect_error("server: {\n  max_connections = 9999999999L;\n};\n", 2, "out of range");
}

Test(config, bad_enum_with_line)
{
    expect_error("challenge: {\n  policy = \"sometimes\";\n};\n", 2, "\"sometimes\"");
    expect_error("reply: {\n\n  digest = \"md5\";\n};\n", 3, "must be one of sha1");
    expect_error("template: {\n  key_usage = [ \"digitalSignature\",\n \"fly\" ];\n};\n", 3,
                 "unknown key usage \"fly\"");
    expect_error("template: {\n  eku = [ \"clientAuth\", \"not an oid\" ];\n};\n", 2,
                 "neither a known EKU name nor a dotted OID");
    expect_error("listen = \"localhost\";\n", 1, "HOST:PORT");
    expect_error("\nlisten = \"::1:80\";\n", 2, "HOST:PORT");
    expect_error("\n\ntls_listen = \"127.0.0.1\";\n", 3, "'tls_listen' must be HOST:PORT");
}

Test(config, too_long_and_too_many)
{
    char text[512];

    snprintf(text, sizeof(text), "server: {\n  server_header = \"%070d\";\n};\n", 0);
    expect_error(text, 2, "too long");
    expect_error("caps: {\n  list = [ \"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\","
                 "\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\" ];\n};\n",
                 2, "at most 16");
    expect_error("caps: {\n  list = [ \"SHA-1\\nDES3\" ];\n};\n", 2, "line breaks");
}

Test(config, syntax_error_has_line)
{
    struct config c;
    char err[512], want[PATH_MAX + 16];

    cr_assert_eq(load("server: {\n  threads = ;\n};\n", &c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s/t.cfg:2: ", dir);
    cr_assert_eq(strncmp(err, want, strlen(want)), 0, "got \"%s\"", err);
}

Test(config, missing_file)
{
    struct config c;
    char err[512], path[PATH_MAX];

    config_defaults(&c);
    snprintf(path, sizeof(path), "%s/nope.cfg", dir);
    cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, path), "%s", err);
    cr_assert_not_null(strstr(err, "cannot read"), "%s", err);
    cr_assert_str_eq(c.source, "(embedded defaults)");
}

Test(config, challenge_with_line_break_rejected)
{
    struct config c;
    char err[512];

    cr_assert_eq(load("challenge: { password = \"a\\nb\"; };\n", &c, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "line breaks"), "%s", err);
}

/* ---- HOST:PORT ---------------------------------------------------------------- */

struct hp_case {
    const char *in;
    int rc;
    const char *host;
    int port;
};

Test(hostport, good_forms)
{
    static const struct hp_case ok[] = {
        {"127.0.0.1:8080", 0, "127.0.0.1", 8080},
        {"0.0.0.0:0", 0, "0.0.0.0", 0},
        {"localhost:65535", 0, "localhost", 65535},
        {"[::1]:0", 0, "::1", 0},
        {"[::]:443", 0, "::", 443},
        {"[fe80::1%eth0]:80", 0, "fe80::1%eth0", 80},
    };
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char host[64] = "unchanged";
        int port = -7;
        cr_assert_eq(config_parse_hostport(ok[i].in, host, sizeof(host), &port), 0, "%s", ok[i].in);
        cr_assert_str_eq(host, ok[i].host, "%s", ok[i].in);
        cr_assert_eq(port, ok[i].port, "%s", ok[i].in);
    }
}

Test(hostport, bad_forms)
{
    static const char *const bad[] = {
        "", "localhost", ":80", "host:", "host:65536", "host:-1", "host:80x", "host:x80",
        "::1:80", "[::1]", "[::1]80", "[]:80", "[::1:80", "host:99999999999999999999",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char host[64];
        int port = -7;
        cr_expect_eq(config_parse_hostport(bad[i], host, sizeof(host), &port), -1,
                     "\"%s\" was accepted", bad[i]);
        cr_expect_eq(port, -7, "\"%s\" changed the port", bad[i]);
    }
    cr_assert_eq(config_parse_hostport(NULL, NULL, 0, NULL), -1);
}

Test(hostport, host_capacity)
{
    char host[5];
    int port;

    cr_assert_eq(config_parse_hostport("abcd:1", host, sizeof(host), &port), 0);
    cr_assert_str_eq(host, "abcd");
    cr_assert_eq(config_parse_hostport("abcde:1", host, sizeof(host), &port), -1);
    cr_assert_eq(config_parse_hostport("[a::b]:1", host, sizeof(host), &port), 0);
    cr_assert_eq(config_parse_hostport("[a::bc]:1", host, sizeof(host), &port), -1);
}
