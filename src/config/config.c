/* config.c - embedded defaults and the libconfig reader (table-driven). */
#include "ndesmock/config.h"

#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *challenge_policy_str(enum challenge_policy p)
{
    switch (p) {
    case CHALLENGE_STATIC: return "static";
    case CHALLENGE_ACCEPT_ANY: return "accept-any";
    case CHALLENGE_NONE: return "none";
    case CHALLENGE_OTP: return "otp";
    }
    return "?";
}

static const char *const default_caps[] = {
    /* SHA-384 and AES are what strongSwan 5.9.8 needs (its caps bits are off by one
     * table: see tests/integration/CLIENTS.md); certmonger takes the first of AES/DES3. */
    "POSTPKIOperation", "Renewal", "SHA-512", "SHA-384", "SHA-256", "SHA-1", "AES", "DES3",
    "SCEPStandard",
};

void config_defaults(struct config *cfg)
{
    size_t i;

    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->source, sizeof(cfg->source), "(embedded defaults)");
    snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:8080");
    snprintf(cfg->state_dir, sizeof(cfg->state_dir), "./state");
    cfg->threads = 0;
    cfg->max_connections = 4096;
    cfg->max_body_bytes = 1048576;
    cfg->max_url_bytes = 65534;
    cfg->max_header_bytes = 65534;
    cfg->request_timeout_s = 120.0;
    snprintf(cfg->server_header, sizeof(cfg->server_header), "Microsoft-IIS/10.0");
    snprintf(cfg->powered_by, sizeof(cfg->powered_by), "ASP.NET");
    cfg->access_log = 1;
    cfg->fast_lane = 1;

    cfg->challenge_policy = CHALLENGE_STATIC;
    cfg->otp_max = 5;
    cfg->otp_validity_minutes = 60;
    cfg->otp_length_bytes = 8;
    snprintf(cfg->admin_user, sizeof(cfg->admin_user), "NDESADMIN");
    snprintf(cfg->admin_password, sizeof(cfg->admin_password), "ndesmock");
    snprintf(cfg->admin_listen, sizeof(cfg->admin_listen), "127.0.0.1:8081");
    cfg->journal_size = 256;
    cfg->journal_raw_bytes = 65536;
    cfg->journal_secrets = 1;

    for (i = 0; i < sizeof(default_caps) / sizeof(default_caps[0]); i++)
        snprintf(cfg->caps.items[i], sizeof(cfg->caps.items[i]), "%s", default_caps[i]);
    cfg->caps.count = (int)i;
    snprintf(cfg->caps.content_type, sizeof(cfg->caps.content_type), "text/plain");
    cfg->caps.crlf = 0;

    snprintf(cfg->tmpl.name, sizeof(cfg->tmpl.name), "IPSECIntermediateOffline");
    cfg->tmpl.validity_minutes = 365L * 24 * 60;
    cfg->tmpl.backdate_minutes = 10;
    cfg->tmpl.key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;
    snprintf(cfg->tmpl.eku[0], sizeof(cfg->tmpl.eku[0]), "clientAuth");
    snprintf(cfg->tmpl.eku[1], sizeof(cfg->tmpl.eku[1]), "1.3.6.1.5.5.8.2.2");
    cfg->tmpl.eku_count = 2;
    snprintf(cfg->tmpl.digest, sizeof(cfg->tmpl.digest), "sha256");

    snprintf(cfg->reply.digest, sizeof(cfg->reply.digest), "sha1");
    cfg->reply.certs_in_success = 1;
    cfg->reply.certs_in_failure = 0;
    cfg->reply.fail_info_bad_challenge = 1;
    cfg->reply.include_ca_in_reply = 0;

    cfg->pki.key_bits = 2048;
    snprintf(cfg->pki.host_name, sizeof(cfg->pki.host_name), "NDES01");
    snprintf(cfg->pki.ca_cn, sizeof(cfg->pki.ca_cn), "ndesmock Lab Root CA");
    snprintf(cfg->pki.org, sizeof(cfg->pki.org), "ndesmock lab");
    cfg->pki.intermediate = 0;
    cfg->pki.ca_validity_days = 3650;
    cfg->pki.ra_validity_days = 730;
}

int config_parse_hostport(const char *s, char *host, size_t hostcap, int *port)
{
    const char *colon;
    char *end;
    size_t hl;
    long p;

    if (s == NULL || *s == '\0')
        return -1;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return -1;
        hl = (size_t)(rb - s - 1);
        if (hl == 0 || hl >= hostcap)
            return -1;
        memcpy(host, s + 1, hl);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hl = (size_t)(colon - s);
        if (hl == 0 || hl >= hostcap || memchr(s, ':', hl) != NULL)
            return -1;
        memcpy(host, s, hl);
    }
    host[hl] = '\0';
    if (!isdigit((unsigned char)colon[1]))
        return -1;
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (errno || *end != '\0' || end == colon + 1 || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

/* ---- schema ---------------------------------------------------------- */

enum kind { K_STR, K_INT, K_BOOL, K_FLOAT, K_CAPS, K_EKU, K_KU, K_POLICY, K_DIGEST, K_HOSTPORT, K_GROUP };

struct key_spec {
    const char *path;
    enum kind kind;
    size_t off;
    size_t size; /* string capacity */
    double min, max;
};

#define O(f) offsetof(struct config, f)
#define S(f) sizeof(((struct config *)0)->f)

static const struct key_spec specs[] = {
    {"listen", K_HOSTPORT, O(listen), S(listen), 0, 0},
    {"tls_listen", K_HOSTPORT, O(tls_listen), S(tls_listen), 1, 0}, /* min 1: "" = off */
    {"state_dir", K_STR, O(state_dir), S(state_dir), 0, 0},
    {"server", K_GROUP, 0, 0, 0, 0},
    {"server.threads", K_INT, O(threads), S(threads), 0, 64},
    {"server.max_connections", K_INT, O(max_connections), S(max_connections), 1, 1000000},
    {"server.max_body_bytes", K_INT, O(max_body_bytes), S(max_body_bytes), 1024, 1073741824},
    {"server.max_url_bytes", K_INT, O(max_url_bytes), S(max_url_bytes), 64, 16777216},
    {"server.max_header_bytes", K_INT, O(max_header_bytes), S(max_header_bytes), 256, 16777216},
    {"server.request_timeout", K_FLOAT, O(request_timeout_s), 0, 0.001, 86400},
    {"server.server_header", K_STR, O(server_header), S(server_header), 0, 0},
    {"server.powered_by", K_STR, O(powered_by), S(powered_by), 0, 0},
    {"server.access_log", K_BOOL, O(access_log), 0, 0, 0},
    {"server.log_json", K_BOOL, O(log_json), 0, 0, 0},
    {"server.fast_lane", K_BOOL, O(fast_lane), 0, 0, 0},
    {"challenge", K_GROUP, 0, 0, 0, 0},
    {"challenge.policy", K_POLICY, O(challenge_policy), 0, 0, 0},
    {"challenge.password", K_STR, O(challenge), S(challenge), 0, 0},
    {"challenge.otp_max", K_INT, O(otp_max), S(otp_max), 1, 1000},
    {"challenge.otp_validity_minutes", K_INT, O(otp_validity_minutes), S(otp_validity_minutes), 1, 525600},
    {"challenge.otp_length_bytes", K_INT, O(otp_length_bytes), S(otp_length_bytes), 4, 64},
    {"challenge.admin_user", K_STR, O(admin_user), S(admin_user), 0, 0},
    {"challenge.admin_password", K_STR, O(admin_password), S(admin_password), 0, 0},
    {"admin", K_GROUP, 0, 0, 0, 0},
    {"admin.listen", K_HOSTPORT, O(admin_listen), S(admin_listen), 0, 0},
    {"admin.token", K_STR, O(admin_token), S(admin_token), 0, 0},
    {"admin.journal_size", K_INT, O(journal_size), S(journal_size), 1, 1000000},
    {"admin.journal_raw_bytes", K_INT, O(journal_raw_bytes), S(journal_raw_bytes), 0, 16777216},
    {"admin.journal_secrets", K_BOOL, O(journal_secrets), 0, 0, 0},
    {"caps", K_GROUP, 0, 0, 0, 0},
    {"caps.list", K_CAPS, O(caps), 0, 0, 0},
    {"caps.content_type", K_STR, O(caps.content_type), S(caps.content_type), 0, 0},
    {"caps.crlf", K_BOOL, O(caps.crlf), 0, 0, 0},
    {"template", K_GROUP, 0, 0, 0, 0},
    {"template.name", K_STR, O(tmpl.name), S(tmpl.name), 0, 0},
    {"template.validity_minutes", K_INT, O(tmpl.validity_minutes), S(tmpl.validity_minutes), 1, 60L * 24 * 365 * 30},
    {"template.backdate_minutes", K_INT, O(tmpl.backdate_minutes), S(tmpl.backdate_minutes), 0, 60 * 24},
    {"template.key_usage", K_KU, O(tmpl.key_usage), 0, 0, 0},
    {"template.eku", K_EKU, O(tmpl), 0, 0, 0},
    {"template.digest", K_DIGEST, O(tmpl.digest), S(tmpl.digest), 0, 0},
    {"reply", K_GROUP, 0, 0, 0, 0},
    {"reply.digest", K_DIGEST, O(reply.digest), S(reply.digest), 0, 0},
    {"reply.certs_in_success", K_BOOL, O(reply.certs_in_success), 0, 0, 0},
    {"reply.certs_in_failure", K_BOOL, O(reply.certs_in_failure), 0, 0, 0},
    {"reply.fail_info_bad_challenge", K_INT, O(reply.fail_info_bad_challenge), S(reply.fail_info_bad_challenge), 0, 4},
    {"reply.include_ca", K_BOOL, O(reply.include_ca_in_reply), 0, 0, 0},
    {"pki", K_GROUP, 0, 0, 0, 0},
    {"pki.key_bits", K_INT, O(pki.key_bits), S(pki.key_bits), 1024, 8192},
    {"pki.host_name", K_STR, O(pki.host_name), S(pki.host_name), 0, 0},
    {"pki.ca_cn", K_STR, O(pki.ca_cn), S(pki.ca_cn), 0, 0},
    {"pki.org", K_STR, O(pki.org), S(pki.org), 0, 0},
    {"pki.intermediate", K_BOOL, O(pki.intermediate), 0, 0, 0},
    {"pki.ca_validity_days", K_INT, O(pki.ca_validity_days), S(pki.ca_validity_days), 1, 36500},
    {"pki.ra_validity_days", K_INT, O(pki.ra_validity_days), S(pki.ra_validity_days), 1, 36500},
};

static const struct { const char *name; unsigned bit; } ku_names[] = {
    {"digitalSignature", KU_DIGITAL_SIGNATURE}, {"nonRepudiation", KU_NON_REPUDIATION},
    {"keyEncipherment", KU_KEY_ENCIPHERMENT},   {"dataEncipherment", KU_DATA_ENCIPHERMENT},
    {"keyAgreement", KU_KEY_AGREEMENT},         {"keyCertSign", KU_KEY_CERT_SIGN},
    {"cRLSign", KU_CRL_SIGN},
};

static const char *const digests[] = {"sha1", "sha256", "sha384", "sha512"};

static const struct key_spec *find_spec(const char *path)
{
    size_t i;

    for (i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
        if (strcmp(specs[i].path, path) == 0)
            return &specs[i];
    return NULL;
}

#define FAIL(...)                                                                    \
    do {                                                                             \
        snprintf(err, errlen, "%s:%d: ", file, config_setting_source_line(s));       \
        snprintf(err + strlen(err), errlen - strlen(err), __VA_ARGS__);              \
        return -1;                                                                   \
    } while (0)

static int copy_str(config_setting_t *s, const char *file, const char *path, char *dst,
                    size_t cap, char *err, size_t errlen)
{
    const char *v;

    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        FAIL("'%s' must be a string", path);
    v = config_setting_get_string(s);
    if (strlen(v) >= cap)
        FAIL("'%s' is too long (at most %zu bytes)", path, cap - 1);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int apply(struct config *cfg, const struct key_spec *k, config_setting_t *s,
                 const char *file, char *err, size_t errlen)
{
    char *base = (char *)cfg;
    int type = config_setting_type(s);
    int i, n;

    switch (k->kind) {
    case K_GROUP:
        return 0;
    case K_STR:
        if (copy_str(s, file, k->path, base + k->off, k->size, err, errlen) != 0)
            return -1;
        if (strpbrk(base + k->off, "\r\n") != NULL)
            FAIL("'%s' must not contain line breaks", k->path);
        return 0;
    case K_HOSTPORT: {
        char host[CONFIG_STR], val[CONFIG_STR];
        int port;
        if (copy_str(s, file, k->path, val, sizeof(val) < k->size ? sizeof(val) : k->size, err,
                     errlen) != 0)
            return -1;
        if (!(k->min == 1 && val[0] == '\0') &&
            config_parse_hostport(val, host, sizeof(host), &port) != 0)
            FAIL("'%s' must be HOST:PORT or [V6]:PORT, not \"%s\"", k->path, val);
        memcpy(base + k->off, val, strlen(val) + 1);
        return 0;
    }
    case K_INT: {
        long long v;
        if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
            FAIL("'%s' must be an integer", k->path);
        v = config_setting_get_int64(s);
        if ((double)v < k->min || (double)v > k->max)
            FAIL("'%s' = %lld is out of range [%.0f, %.0f]", k->path, v, k->min, k->max);
        if (k->size == sizeof(long))
            *(long *)(base + k->off) = (long)v;
        else
            *(int *)(base + k->off) = (int)v;
        return 0;
    }
    case K_FLOAT: {
        double v = 0;
        if (type == CONFIG_TYPE_FLOAT)
            v = config_setting_get_float(s);
        else if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64)
            v = (double)config_setting_get_int64(s);
        else
            FAIL("'%s' must be a number", k->path);
        if (v < k->min || v > k->max)
            FAIL("'%s' = %g is out of range [%g, %g]", k->path, v, k->min, k->max);
        memcpy(base + k->off, &v, sizeof(v)); /* the field is a double (table above) */
        return 0;
    }
    case K_BOOL:
        if (type != CONFIG_TYPE_BOOL)
            FAIL("'%s' must be true or false", k->path);
        *(int *)(base + k->off) = config_setting_get_bool(s);
        return 0;
    case K_POLICY: {
        const char *v;
        if (type != CONFIG_TYPE_STRING)
            FAIL("'%s' must be a string", k->path);
        v = config_setting_get_string(s);
        if (strcmp(v, "static") == 0)
            cfg->challenge_policy = CHALLENGE_STATIC;
        else if (strcmp(v, "accept-any") == 0)
            cfg->challenge_policy = CHALLENGE_ACCEPT_ANY;
        else if (strcmp(v, "none") == 0)
            cfg->challenge_policy = CHALLENGE_NONE;
        else if (strcmp(v, "otp") == 0)
            cfg->challenge_policy = CHALLENGE_OTP;
        else
            FAIL("'%s' must be \"static\", \"accept-any\", \"none\" or \"otp\", not \"%s\"",
                 k->path, v);
        return 0;
    }
    case K_DIGEST: {
        const char *v;
        size_t d;
        if (type != CONFIG_TYPE_STRING)
            FAIL("'%s' must be a string", k->path);
        v = config_setting_get_string(s);
        for (d = 0; d < sizeof(digests) / sizeof(digests[0]); d++)
            if (strcasecmp(v, digests[d]) == 0)
                break;
        if (d == sizeof(digests) / sizeof(digests[0]))
            FAIL("'%s' must be one of sha1, sha256, sha384, sha512, not \"%s\"", k->path, v);
        snprintf(base + k->off, k->size, "%s", digests[d]);
        return 0;
    }
    case K_CAPS:
        if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
            FAIL("'%s' must be an array of strings", k->path);
        n = config_setting_length(s);
        if (n > CONFIG_MAX_CAPS)
            FAIL("'%s' has %d entries, at most %d", k->path, n, CONFIG_MAX_CAPS);
        for (i = 0; i < n; i++) {
            config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            if (copy_str(e, file, k->path, cfg->caps.items[i], sizeof(cfg->caps.items[i]), err,
                         errlen) != 0)
                return -1;
            if (strpbrk(cfg->caps.items[i], "\r\n") != NULL) {
                s = e;
                FAIL("'%s' entries must not contain line breaks", k->path);
            }
        }
        cfg->caps.count = n;
        return 0;
    case K_EKU:
        if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
            FAIL("'%s' must be an array of strings", k->path);
        n = config_setting_length(s);
        if (n > CONFIG_MAX_EKU)
            FAIL("'%s' has %d entries, at most %d", k->path, n, CONFIG_MAX_EKU);
        for (i = 0; i < n; i++) {
            config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            if (copy_str(e, file, k->path, cfg->tmpl.eku[i], sizeof(cfg->tmpl.eku[i]), err,
                         errlen) != 0)
                return -1;
            if (OBJ_txt2nid(cfg->tmpl.eku[i]) == NID_undef) {
                ASN1_OBJECT *o = OBJ_txt2obj(cfg->tmpl.eku[i], 1);
                if (o == NULL) {
                    s = e;
                    FAIL("'%s': \"%s\" is neither a known EKU name nor a dotted OID", k->path,
                         cfg->tmpl.eku[i]);
                }
                ASN1_OBJECT_free(o);
            }
        }
        cfg->tmpl.eku_count = n;
        return 0;
    case K_KU: {
        unsigned bits = 0;
        if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
            FAIL("'%s' must be an array of strings", k->path);
        n = config_setting_length(s);
        for (i = 0; i < n; i++) {
            config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            const char *v = config_setting_get_string(e);
            size_t j;
            if (v == NULL) {
                s = e;
                FAIL("'%s' entries must be strings", k->path);
            }
            for (j = 0; j < sizeof(ku_names) / sizeof(ku_names[0]); j++)
                if (strcmp(v, ku_names[j].name) == 0)
                    break;
            if (j == sizeof(ku_names) / sizeof(ku_names[0])) {
                s = e;
                FAIL("'%s': unknown key usage \"%s\"", k->path, v);
            }
            bits |= ku_names[j].bit;
        }
        cfg->tmpl.key_usage = bits;
        return 0;
    }
    }
    return 0;
}

static int walk(struct config *cfg, config_setting_t *group, const char *prefix,
                const char *file, char *err, size_t errlen)
{
    int i, n = config_setting_length(group);

    for (i = 0; i < n; i++) {
        config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        const char *name = config_setting_name(s);
        const struct key_spec *k;
        char path[128];

        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", name ? name : "?");
        k = find_spec(path);
        if (k == NULL)
            FAIL("unknown setting '%s'", path);
        if (k->kind == K_GROUP) {
            if (config_setting_type(s) != CONFIG_TYPE_GROUP)
                FAIL("'%s' must be a group { ... }", path);
            if (walk(cfg, s, path, file, err, errlen) != 0)
                return -1;
            continue;
        }
        if (apply(cfg, k, s, file, err, errlen) != 0)
            return -1;
    }
    return 0;
}

int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
    config_t lc;
    int rc = -1;
    const char *file = path;

    config_init(&lc);
    /* The main config is the operator's own file: @include stays relative to it. */
    if (config_read_file(&lc, path) != CONFIG_TRUE) {
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
            snprintf(err, errlen, "%s: cannot read file: %s", path, strerror(errno));
        else
            snprintf(err, errlen, "%s:%d: %s",
                     config_error_file(&lc) ? config_error_file(&lc) : path,
                     config_error_line(&lc), config_error_text(&lc));
        goto out;
    }
    if (walk(cfg, config_root_setting(&lc), "", file, err, errlen) != 0)
        goto out;
    snprintf(cfg->source, sizeof(cfg->source), "%s", path);
    rc = 0;
out:
    config_destroy(&lc);
    return rc;
}
