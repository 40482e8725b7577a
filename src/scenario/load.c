/* load.c - scenario files: libconfig parsed once into struct scenario, every
 * key checked (libconfig accepts unknown keys silently), material checked as
 * NDES and the Intune connector would, and derived rules added for it. */
#include "ndesmock/scenario.h"

#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define SC_MAX_FILE (256 * 1024)

const char *sc_action_str(enum sc_action_type t)
{
    static const char *const names[] = {
        "healthy", "iis", "httpsys", "proxy", "scep", "crash", "close",
        "reset", "partial", "drip", "hang", "delay", "landing", "caps-empty",
    };
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

static enum sc_action_type action_by_name(const char *s)
{
    int i;

    for (i = 1; i <= SC_ACT_CAPS_EMPTY; i++)
        if (strcmp(s, sc_action_str((enum sc_action_type)i)) == 0)
            return (enum sc_action_type)i;
    return SC_ACT_NONE;
}

static void add_err(struct sc_errors *errs, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_err(struct sc_errors *errs, int line, const char *fmt, ...)
{
    va_list ap;

    if (errs->n >= SC_MAX_ERRORS)
        return;
    errs->e[errs->n].line = line;
    va_start(ap, fmt);
    vsnprintf(errs->e[errs->n].message, sizeof(errs->e[errs->n].message), fmt, ap);
    va_end(ap);
    errs->n++;
}

void scenario_errors_format(const struct sc_errors *errs, char *out, size_t outcap)
{
    size_t o = 0;
    int i;

    out[0] = '\0';
    for (i = 0; i < errs->n && o < outcap; i++) {
        int n = snprintf(out + o, outcap - o, "%s%s:%d: %s", i ? "\n" : "", errs->file,
                         errs->e[i].line, errs->e[i].message);
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

void scenario_release(struct scenario *sc)
{
    if (sc && atomic_fetch_sub(&sc->refs, 1) == 1)
        free(sc);
}

static struct scenario *scenario_alloc(const char *name)
{
    struct scenario *sc = calloc(1, sizeof(*sc));

    if (sc == NULL)
        return NULL;
    atomic_init(&sc->refs, 1);
    snprintf(sc->name, sizeof(sc->name), "%s", name);
    sc->rf_max_crashes = 5;
    sc->rf_interval_s = 300.0;
    sc->rf_recovery_s = 0.0;
    return sc;
}

struct scenario *scenario_healthy(void)
{
    struct scenario *sc = scenario_alloc("healthy");

    if (sc) {
        snprintf(sc->summary, sizeof(sc->summary),
                 "A healthy NDES (WS2022, IIS 10, Intune connector): every client enrolls");
        snprintf(sc->source, sizeof(sc->source), "(built in)");
    }
    return sc;
}

int scenario_resolve(const char *arg, const char *scenarios_dir, char *out, size_t outcap)
{
    size_t n = strlen(arg);

    if (strchr(arg, '/') || (n > 4 && strcmp(arg + n - 4, ".cfg") == 0)) {
        if (snprintf(out, outcap, "%s", arg) >= (int)outcap)
            return -1;
        return 0;
    }
    if (n == 0 || n > 64 || strspn(arg, "abcdefghijklmnopqrstuvwxyz0123456789-_.") != n ||
        arg[0] == '.')
        return -1;
    if (snprintf(out, outcap, "%s/%s.cfg", scenarios_dir, arg) >= (int)outcap)
        return -1;
    if (strcmp(arg, "healthy") == 0) {
        struct stat st;
        if (stat(out, &st) != 0)
            out[0] = '\0'; /* built in */
    }
    return 0;
}

/* ---- value helpers ---- */

struct ctx {
    struct sc_errors *errs;
    const char *scenarios_dir, *state_dir;
};

static int line_of(config_setting_t *s)
{
    return config_setting_source_line(s);
}

static int get_str(struct ctx *c, config_setting_t *s, char *dst, size_t cap)
{
    const char *v;

    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        add_err(c->errs, line_of(s), "'%s' must be a string", config_setting_name(s));
        return -1;
    }
    v = config_setting_get_string(s);
    if (strlen(v) >= cap) {
        add_err(c->errs, line_of(s), "'%s' is too long (at most %zu bytes)",
                config_setting_name(s), cap - 1);
        return -1;
    }
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int get_long(struct ctx *c, config_setting_t *s, long lo, long hi, long *out)
{
    int t = config_setting_type(s);
    long long v;

    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
        add_err(c->errs, line_of(s), "'%s' must be an integer", config_setting_name(s));
        return -1;
    }
    v = config_setting_get_int64(s);
    if (v < lo || v > hi) {
        add_err(c->errs, line_of(s), "'%s' = %lld is out of range [%ld, %ld]",
                config_setting_name(s), v, lo, hi);
        return -1;
    }
    *out = (long)v;
    return 0;
}

static int get_num(struct ctx *c, config_setting_t *s, double lo, double hi, double *out)
{
    int t = config_setting_type(s);
    double v;

    if (t == CONFIG_TYPE_FLOAT)
        v = config_setting_get_float(s);
    else if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
        v = (double)config_setting_get_int64(s);
    else {
        add_err(c->errs, line_of(s), "'%s' must be a number", config_setting_name(s));
        return -1;
    }
    if (v < lo || v > hi) {
        add_err(c->errs, line_of(s), "'%s' = %g is out of range [%g, %g]",
                config_setting_name(s), v, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int get_bool(struct ctx *c, config_setting_t *s, int *out)
{
    if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
        add_err(c->errs, line_of(s), "'%s' must be true or false", config_setting_name(s));
        return -1;
    }
    *out = config_setting_get_bool(s);
    return 0;
}

static int is_group(struct ctx *c, config_setting_t *s)
{
    if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
        add_err(c->errs, line_of(s), "'%s' must be a group { ... }", config_setting_name(s));
        return 0;
    }
    return 1;
}

static int lookup_name(const char *const *names, int n, const char *v)
{
    int i;

    for (i = 0; i < n; i++)
        if (strcasecmp(names[i], v) == 0)
            return i;
    return -1;
}

static const char *const fail_names[] = {"badAlg", "badMessageCheck", "badRequest", "badTime",
                                         "badCertId"};

/* An integer or one of the names (index = value). */
static int get_enum_or_int(struct ctx *c, config_setting_t *s, const char *const *names, int n,
                           long lo, long hi, long *out)
{
    if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        int i = lookup_name(names, n, config_setting_get_string(s));
        if (i < 0) {
            add_err(c->errs, line_of(s), "'%s': unknown value \"%s\"", config_setting_name(s),
                    config_setting_get_string(s));
            return -1;
        }
        *out = i;
        return 0;
    }
    return get_long(c, s, lo, hi, out);
}

static int message_type_of(struct ctx *c, config_setting_t *s, int *out)
{
    static const struct { const char *n; int v; } mt[] = {
        {"PKCSReq", 19}, {"RenewalReq", 17}, {"CertPoll", 20}, {"GetCertInitial", 20},
        {"GetCert", 21}, {"GetCRL", 22},
    };
    size_t i;
    long v;

    if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        for (i = 0; i < sizeof(mt) / sizeof(mt[0]); i++)
            if (strcasecmp(mt[i].n, config_setting_get_string(s)) == 0) {
                *out = mt[i].v;
                return 0;
            }
        add_err(c->errs, line_of(s), "'message_type': unknown SCEP message type \"%s\"",
                config_setting_get_string(s));
        return -1;
    }
    if (get_long(c, s, 1, 255, &v) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

/* ---- material ---- */

/* Resolves a material path: "state:REL" inside the state dir, else relative to
 * (and inside) the scenarios dir. Never outside those two. */
static int material_path(struct ctx *c, config_setting_t *s, const char *v, char *out,
                         size_t outcap)
{
    char cand[PATH_MAX], root[PATH_MAX], real[PATH_MAX];
    const char *base = c->scenarios_dir, *rel = v;
    size_t rl;

    if (strncmp(v, "state:", 6) == 0) {
        base = c->state_dir;
        rel = v + 6;
    }
    if (rel[0] == '/')
        snprintf(cand, sizeof(cand), "%s", rel);
    else
        snprintf(cand, sizeof(cand), "%s/%s", base, rel);
    if (realpath(base, root) == NULL || realpath(cand, real) == NULL) {
        add_err(c->errs, line_of(s), "material file \"%s\" not found (%s)", v, strerror(errno));
        return -1;
    }
    rl = strlen(root);
    if (strncmp(real, root, rl) != 0 || (real[rl] != '/' && real[rl] != '\0')) {
        add_err(c->errs, line_of(s),
                "material file \"%s\" is outside the scenarios folder and the state directory",
                v);
        return -1;
    }
    snprintf(out, outcap, "%s", real);
    return 0;
}

static X509 *load_cert(struct ctx *c, config_setting_t *s, const char *v)
{
    char path[PATH_MAX];
    FILE *f;
    X509 *x = NULL;

    if (material_path(c, s, v, path, sizeof(path)) != 0)
        return NULL;
    f = fopen(path, "r");
    if (f) {
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    if (x == NULL)
        add_err(c->errs, line_of(s), "material file \"%s\" is not a PEM certificate", v);
    return x;
}

static int expired(X509 *x)
{
    return X509_cmp_current_time(X509_get0_notAfter(x)) < 0 ||
           X509_cmp_current_time(X509_get0_notBefore(x)) > 0;
}

static int has_client_auth(X509 *x)
{
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
    int i, ok = 0;

    if (eku == NULL)
        return 0; /* the connector requires the EKU to be present */
    for (i = 0; i < sk_ASN1_OBJECT_num(eku); i++)
        if (OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i)) == NID_client_auth)
            ok = 1;
    EXTENDED_KEY_USAGE_free(eku);
    return ok;
}

static struct sc_rule *new_rule(struct scenario *sc, const char *name, const char *from)
{
    struct sc_rule *r;

    if (sc->nrules >= SC_MAX_RULES)
        return NULL;
    r = &sc->rules[sc->nrules++];
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->derived_from, sizeof(r->derived_from), "%s", from);
    r->m.min_uri = r->m.max_uri = -1;
    r->m.probability = 1.0;
    r->m.after_s = r->m.before_s = -1;
    return r;
}

static void add_event(struct sc_rule *r, int id, const char *src, const char *level,
                      const char *msg)
{
    struct sc_event *e;

    if (r->nevents >= SC_MAX_EVENTS)
        return;
    e = &r->events[r->nevents++];
    e->id = id;
    snprintf(e->source, sizeof(e->source), "%s", src);
    snprintf(e->level, sizeof(e->level), "%s", level);
    snprintf(e->message, sizeof(e->message), "%s", msg);
}

static const char W3WP_CRASH[] =
    "Faulting application name: w3wp.exe, version: 10.0.20348.1, time stamp: 0x5215df96 "
    "Faulting module name: ntdll.dll, version: 10.0.20348.2227, time stamp: 0x59ba86db "
    "Exception code: 0xc0000005";

/* Derived rules: the symptom follows from the material, checked as NDES and
 * the connector check it. They go before the file's own rules. */
static void derive(struct scenario *sc, struct sc_rule *tmp, int ntmp)
{
    struct sc_material_result *m = &sc->material;
    struct sc_rule *r;
    int i;

    if (m->ra_expired) {
        r = new_rule(sc, "ra-cert-expired", "material.ra_*_cert");
        if (r) {
            snprintf(r->m.path, sizeof(r->m.path), "/certsrv/mscep*");
            r->a.type = SC_ACT_IIS;
            r->a.status = 500;
            add_event(r, 2, "Microsoft-Windows-NetworkDeviceEnrollmentService", "Error",
                      "The Network Device Enrollment Service cannot retrieve one of its required "
                      "certificates (0x800b0101). A required certificate is not within its "
                      "validity period when verifying against the current system clock.");
        }
    }
    if (m->policy_no_client_auth && !m->policy_expired) {
        r = new_rule(sc, "verifyrequest-403", "material.policy_cert");
        if (r) {
            snprintf(r->m.path, sizeof(r->m.path), "/certsrv/mscep*");
            snprintf(r->m.operation, sizeof(r->m.operation), "PKIOperation");
            r->a.type = SC_ACT_SCEP;
            r->a.pki_status = 2;
            r->a.fail_info = 2;
            r->a.hresult = -2147024891L; /* E_ACCESSDENIED from the policy module */
            r->extra_log.present = 1;
            snprintf(r->extra_log.method, sizeof(r->extra_log.method), "POST");
            snprintf(r->extra_log.uri, sizeof(r->extra_log.uri),
                     "/CertificateRegistrationSvc/Certificate/VerifyRequest");
            r->extra_log.status = 403;
            add_event(r, 32, "Microsoft-Windows-NetworkDeviceEnrollmentService", "Error",
                      "The Network Device Enrollment Service policy module could not verify the "
                      "request: the Intune Certificate Connector answered 403 Forbidden (the "
                      "policy module certificate lacks the Client Authentication EKU).");
        }
    }
    if (m->intermediate_in_root) {
        r = new_rule(sc, "verifyrequest-403.16-crash", "material.trusted_roots");
        if (r) {
            snprintf(r->m.path, sizeof(r->m.path), "/certsrv/mscep*");
            snprintf(r->m.operation, sizeof(r->m.operation), "PKIOperation");
            r->a.type = SC_ACT_CRASH;
            r->extra_log.present = 1;
            snprintf(r->extra_log.method, sizeof(r->extra_log.method), "POST");
            snprintf(r->extra_log.uri, sizeof(r->extra_log.uri),
                     "/CertificateRegistrationSvc/Certificate/VerifyRequest");
            r->extra_log.status = 403;
            r->extra_log.substatus = 16;
            r->extra_log.win32 = 2148204809LL;
            add_event(r, 1000, "Application Error", "Error", W3WP_CRASH);
        }
    }
    if (m->policy_expired || m->intermediate_in_root) {
        r = new_rule(sc, "w3wp-crash", m->policy_expired ? "material.policy_cert"
                                                         : "material.trusted_roots");
        if (r) {
            snprintf(r->m.path, sizeof(r->m.path), "/certsrv/mscep*");
            r->a.type = SC_ACT_CRASH;
            if (m->policy_expired)
                add_event(r, 11, "Microsoft-Windows-CAPI2", "Error",
                          "Build Chain: the certificate referenced by HKLM\\SOFTWARE\\Microsoft\\"
                          "Cryptography\\MSCEP\\Modules\\NDESPolicy\\NDESCertThumbprint is outside "
                          "its validity period (CERT_E_EXPIRED 0x800b0101).");
            add_event(r, 1000, "Application Error", "Error", W3WP_CRASH);
        }
    }
    for (i = 0; i < ntmp && sc->nrules < SC_MAX_RULES; i++)
        sc->rules[sc->nrules++] = tmp[i];
}

static int parse_material(struct ctx *c, struct scenario *sc, config_setting_t *g)
{
    int i, n = config_setting_length(g), rc = 0;
    struct sc_material_result *m = &sc->material;

    for (i = 0; i < n; i++) {
        config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *k = config_setting_name(s);
        X509 *x = NULL;
        char tmp[SC_PATH];

        if (strcmp(k, "ra_sign_cert") == 0 || strcmp(k, "ra_enc_cert") == 0 ||
            strcmp(k, "policy_cert") == 0) {
            if (get_str(c, s, tmp, sizeof(tmp)) != 0 || (x = load_cert(c, s, tmp)) == NULL) {
                rc = -1;
                continue;
            }
            if (k[0] == 'r' && expired(x)) {
                m->ra_expired = 1;
                snprintf(m->detail, sizeof(m->detail), "%s is outside its validity period", k);
            } else if (k[0] == 'p' && expired(x)) {
                m->policy_expired = 1;
                snprintf(m->detail, sizeof(m->detail), "policy certificate expired");
            } else if (k[0] == 'p' && !has_client_auth(x)) {
                m->policy_no_client_auth = 1;
                snprintf(m->detail, sizeof(m->detail),
                         "policy certificate lacks the Client Authentication EKU");
            }
            X509_free(x);
        } else if (strcmp(k, "trusted_roots") == 0) {
            int j, cnt;
            if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
                config_setting_type(s) != CONFIG_TYPE_LIST) {
                add_err(c->errs, line_of(s), "'trusted_roots' must be a list of file names");
                rc = -1;
                continue;
            }
            cnt = config_setting_length(s);
            for (j = 0; j < cnt; j++) {
                config_setting_t *e = config_setting_get_elem(s, (unsigned)j);
                if (get_str(c, e, tmp, sizeof(tmp)) != 0 || (x = load_cert(c, e, tmp)) == NULL) {
                    rc = -1;
                    continue;
                }
                /* Get-ChildItem cert:\LocalMachine\root | Where Issuer -ne Subject */
                if (X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(x)) != 0) {
                    m->intermediate_in_root = 1;
                    snprintf(m->detail, sizeof(m->detail),
                             "a certificate in the trusted-root store is not self-signed");
                }
                X509_free(x);
            }
        } else {
            add_err(c->errs, line_of(s), "unknown setting 'material.%s'", k);
            rc = -1;
        }
    }
    return rc;
}

/* ---- ndes, rapid_fail ---- */

static int parse_ndes(struct ctx *c, struct scenario *sc, config_setting_t *g)
{
    int i, n = config_setting_length(g), rc = 0;

    for (i = 0; i < n; i++) {
        config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *k = config_setting_name(s);
        long v;

        if (strcmp(k, "caps") == 0) {
            int j, cnt;
            if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
                config_setting_type(s) != CONFIG_TYPE_LIST) {
                add_err(c->errs, line_of(s), "'caps' must be a list of strings");
                rc = -1;
                continue;
            }
            cnt = config_setting_length(s);
            if (cnt > CONFIG_MAX_CAPS) {
                add_err(c->errs, line_of(s), "'caps' has more than %d entries", CONFIG_MAX_CAPS);
                rc = -1;
                continue;
            }
            sc->caps_override = 1;
            for (j = 0; j < cnt; j++)
                if (get_str(c, config_setting_get_elem(s, (unsigned)j), sc->caps.items[j],
                            sizeof(sc->caps.items[j])) != 0)
                    rc = -1;
            sc->caps.count = cnt;
        } else if (strcmp(k, "caps_content_type") == 0) {
            sc->caps_override |= 2;
            rc |= get_str(c, s, sc->caps.content_type, sizeof(sc->caps.content_type));
        } else if (strcmp(k, "caps_crlf") == 0) {
            sc->caps_override |= 4;
            rc |= get_bool(c, s, &sc->caps.crlf);
        } else if (strcmp(k, "reply_cipher") == 0) {
            char t[16];
            if (get_str(c, s, t, sizeof(t)) != 0) {
                rc = -1;
            } else if (strcmp(t, "des3") == 0) {
                sc->reply_des3 = 1;
            } else if (strcmp(t, "request") != 0) {
                add_err(c->errs, line_of(s), "'reply_cipher' must be \"request\" or \"des3\"");
                rc = -1;
            }
        } else if (strcmp(k, "reply_digest") == 0) {
            char t[16];
            if (get_str(c, s, t, sizeof(t)) != 0) {
                rc = -1;
            } else if (strcmp(t, "sha1") && strcmp(t, "sha256") && strcmp(t, "sha512")) {
                add_err(c->errs, line_of(s), "'reply_digest' must be sha1, sha256 or sha512");
                rc = -1;
            } else {
                snprintf(sc->reply_digest, sizeof(sc->reply_digest), "%s", t);
            }
        } else if (strcmp(k, "tls") == 0) {
            static const char *const names[] = {"ok", "expired", "wrong-host", "untrusted-chain",
                                                "tls10-only"};
            char t[32];
            int j;
            if (get_str(c, s, t, sizeof(t)) != 0) {
                rc = -1;
            } else {
                for (j = 0; j < SC_TLS_FAULTS; j++)
                    if (strcmp(t, names[j]) == 0)
                        break;
                if (j == SC_TLS_FAULTS) {
                    add_err(c->errs, line_of(s), "'tls' must be ok, expired, wrong-host, "
                                                 "untrusted-chain or tls10-only");
                    rc = -1;
                } else {
                    sc->tls_fault = j;
                }
            }
        } else if (strcmp(k, "server_header") == 0) {
            rc |= get_str(c, s, sc->server_header, sizeof(sc->server_header));
        } else if (strcmp(k, "max_url_bytes") == 0) {
            rc |= get_long(c, s, 64, 16777216, &v);
            sc->max_url_bytes = v;
        } else if (strcmp(k, "max_request_bytes") == 0) {
            rc |= get_long(c, s, 256, 16777216, &v);
            sc->max_request_bytes = v;
        } else if (strcmp(k, "max_url") == 0) {
            rc |= get_long(c, s, 1, 16777216, &v);
            sc->max_path = v;
        } else if (strcmp(k, "max_query_string") == 0) {
            rc |= get_long(c, s, 1, 16777216, &v);
            sc->max_query = v;
        } else {
            add_err(c->errs, line_of(s), "unknown setting 'ndes.%s'", k);
            rc = -1;
        }
    }
    return rc ? -1 : 0;
}

static int parse_rapid_fail(struct ctx *c, struct scenario *sc, config_setting_t *g)
{
    int i, n = config_setting_length(g), rc = 0;

    for (i = 0; i < n; i++) {
        config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *k = config_setting_name(s);
        long v;

        if (strcmp(k, "max_crashes") == 0) {
            rc |= get_long(c, s, 0, 1000, &v);
            sc->rf_max_crashes = (int)v;
        } else if (strcmp(k, "interval") == 0) {
            rc |= get_num(c, s, 0.001, 86400, &sc->rf_interval_s);
        } else if (strcmp(k, "recovery") == 0) {
            rc |= get_num(c, s, 0, 86400, &sc->rf_recovery_s);
        } else {
            add_err(c->errs, line_of(s), "unknown setting 'rapid_fail.%s'", k);
            rc = -1;
        }
    }
    return rc ? -1 : 0;
}

/* ---- rules ---- */

static int parse_methods(struct ctx *c, config_setting_t *s, unsigned *out)
{
    int i, n = 1, list = config_setting_type(s) == CONFIG_TYPE_ARRAY ||
                         config_setting_type(s) == CONFIG_TYPE_LIST;

    *out = 0;
    if (list)
        n = config_setting_length(s);
    for (i = 0; i < n; i++) {
        config_setting_t *e = list ? config_setting_get_elem(s, (unsigned)i) : s;
        const char *v = config_setting_get_string(e);
        if (v == NULL) {
            add_err(c->errs, line_of(e), "'method' must be a string or a list of strings");
            return -1;
        }
        if (strcasecmp(v, "GET") == 0)
            *out |= SC_M_GET;
        else if (strcasecmp(v, "POST") == 0)
            *out |= SC_M_POST;
        else if (strcasecmp(v, "HEAD") == 0)
            *out |= SC_M_HEAD;
        else if (strcasecmp(v, "OTHER") == 0)
            *out |= SC_M_OTHER;
        else {
            add_err(c->errs, line_of(e), "'method': unknown method \"%s\" (GET, POST, HEAD, OTHER)",
                    v);
            return -1;
        }
    }
    return 0;
}

static int parse_match(struct ctx *c, struct sc_rule *r, config_setting_t *g)
{
    int i, n = config_setting_length(g), rc = 0;
    struct sc_match *m = &r->m;

    for (i = 0; i < n; i++) {
        config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *k = config_setting_name(s);

        if (strcmp(k, "path") == 0)
            rc |= get_str(c, s, m->path, sizeof(m->path));
        else if (strcmp(k, "method") == 0)
            rc |= parse_methods(c, s, &m->methods);
        else if (strcmp(k, "operation") == 0)
            rc |= get_str(c, s, m->operation, sizeof(m->operation));
        else if (strcmp(k, "message_type") == 0)
            rc |= message_type_of(c, s, &m->message_type);
        else if (strcmp(k, "signer_key_type") == 0) {
            char t[8];
            if (get_str(c, s, t, sizeof(t)) != 0)
                rc = -1;
            else if (strcasecmp(t, "rsa") == 0)
                m->signer_key_type = EVP_PKEY_RSA;
            else if (strcasecmp(t, "ec") == 0)
                m->signer_key_type = EVP_PKEY_EC;
            else {
                add_err(c->errs, line_of(s), "'signer_key_type' must be \"rsa\" or \"ec\"");
                rc = -1;
            }
        } else if (strcmp(k, "min_uri_length") == 0)
            rc |= get_long(c, s, 0, 1L << 30, &m->min_uri);
        else if (strcmp(k, "max_uri_length") == 0)
            rc |= get_long(c, s, 0, 1L << 30, &m->max_uri);
        else if (strcmp(k, "header") == 0)
            rc |= get_str(c, s, m->header, sizeof(m->header));
        else if (strcmp(k, "header_contains") == 0)
            rc |= get_str(c, s, m->header_contains, sizeof(m->header_contains));
        else if (strcmp(k, "nth") == 0)
            rc |= get_long(c, s, 1, LONG_MAX, &m->nth);
        else if (strcmp(k, "first") == 0)
            rc |= get_long(c, s, 1, LONG_MAX, &m->first);
        else if (strcmp(k, "every") == 0)
            rc |= get_long(c, s, 1, LONG_MAX, &m->every);
        else if (strcmp(k, "request_nth") == 0)
            rc |= get_long(c, s, 1, LONG_MAX, &m->request_nth);
        else if (strcmp(k, "probability") == 0)
            rc |= get_num(c, s, 0, 1, &m->probability);
        else if (strcmp(k, "after") == 0)
            rc |= get_num(c, s, 0, 1e9, &m->after_s);
        else if (strcmp(k, "before") == 0)
            rc |= get_num(c, s, 0, 1e9, &m->before_s);
        else {
            add_err(c->errs, line_of(s), "unknown setting 'match.%s'", k);
            rc = -1;
        }
    }
    if (m->header_contains[0] && !m->header[0]) {
        add_err(c->errs, line_of(g), "'match.header_contains' needs 'match.header'");
        rc = -1;
    }
    return rc ? -1 : 0;
}

static int parse_action(struct ctx *c, struct sc_rule *r, config_setting_t *g)
{
    static const char *const status_names[] = {"SUCCESS", "-", "FAILURE", "PENDING"};
    int i, n = config_setting_length(g), rc = 0;
    struct sc_action *a = &r->a;
    config_setting_t *type = config_setting_get_member(g, "type");
    char t[32];
    long v;

    if (type == NULL) {
        add_err(c->errs, line_of(g), "'action' needs a 'type'");
        return -1;
    }
    if (get_str(c, type, t, sizeof(t)) != 0)
        return -1;
    a->type = action_by_name(t);
    if (a->type == SC_ACT_NONE) {
        add_err(c->errs, line_of(type),
                "unknown action type \"%s\" (iis, httpsys, proxy, scep, crash, close, reset, "
                "partial, drip, hang, delay, landing, caps-empty)", t);
        return -1;
    }
    a->pki_status = 2;
    a->fail_info = 2;
    for (i = 0; i < n; i++) {
        config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *k = config_setting_name(s);

        if (strcmp(k, "type") == 0)
            continue;
        if (strcmp(k, "status") == 0) {
            rc |= get_long(c, s, 100, 599, &v);
            a->status = (int)v;
        } else if (strcmp(k, "substatus") == 0) {
            rc |= get_long(c, s, 0, 999, &v);
            a->substatus = (int)v;
        } else if (strcmp(k, "win32") == 0) {
            rc |= get_long(c, s, 0, 4294967295L, &v);
            a->win32 = v;
        } else if (strcmp(k, "reason") == 0) {
            rc |= get_str(c, s, a->httperr_reason, sizeof(a->httperr_reason));
        } else if (strcmp(k, "page") == 0) {
            if (get_str(c, s, t, sizeof(t)) != 0)
                rc = -1;
            else if (strcmp(t, "gateway-timeout") == 0)
                a->proxy_page = SC_PROXY_GATEWAY_TIMEOUT;
            else if (strcmp(t, "cant-display") == 0)
                a->proxy_page = SC_PROXY_CANT_DISPLAY;
            else {
                add_err(c->errs, line_of(s), "'page' must be \"gateway-timeout\" or \"cant-display\"");
                rc = -1;
            }
        } else if (strcmp(k, "pki_status") == 0) {
            rc |= get_enum_or_int(c, s, status_names, 4, 0, 3, &v);
            a->pki_status = (int)v;
            if (v == 1) {
                add_err(c->errs, line_of(s), "'pki_status' must be SUCCESS, FAILURE or PENDING");
                rc = -1;
            }
        } else if (strcmp(k, "fail_info") == 0) {
            rc |= get_enum_or_int(c, s, fail_names, 5, 0, 4, &v);
            a->fail_info = (int)v;
        } else if (strcmp(k, "hresult") == 0) {
            rc |= get_long(c, s, -2147483648L, 4294967295L, &v);
            a->hresult = v > 2147483647L ? (long)(int32_t)(uint32_t)v : v;
        } else if (strcmp(k, "approve_after_polls") == 0) {
            rc |= get_long(c, s, 0, 1000000, &a->approve_after_polls);
        } else if (strcmp(k, "approve_after") == 0) {
            rc |= get_num(c, s, 0, 86400 * 30, &a->approve_after_s);
        } else if (strcmp(k, "seconds") == 0) {
            rc |= get_num(c, s, 0, 86400, &a->seconds);
        } else if (strcmp(k, "then") == 0) {
            if (get_str(c, s, t, sizeof(t)) != 0) {
                rc = -1;
            } else {
                a->then = action_by_name(t);
                if (a->then == SC_ACT_NONE && strcmp(t, "healthy") != 0) {
                    add_err(c->errs, line_of(s), "'then': unknown action \"%s\"", t);
                    rc = -1;
                } else if (a->then == SC_ACT_DELAY) {
                    add_err(c->errs, line_of(s), "'then' cannot be another delay");
                    rc = -1;
                }
            }
        } else if (strcmp(k, "then_status") == 0) {
            rc |= get_long(c, s, 100, 599, &v);
            a->then_status = (int)v;
        } else if (strcmp(k, "bytes") == 0) {
            rc |= get_long(c, s, 0, 1L << 30, &a->bytes);
        } else if (strcmp(k, "interval") == 0) {
            rc |= get_num(c, s, 0.0001, 3600, &a->interval_s);
        } else {
            add_err(c->errs, line_of(s), "unknown setting 'action.%s'", k);
            rc = -1;
        }
    }
    if (rc)
        return -1;
    /* defaults and consistency */
    switch (a->type) {
    case SC_ACT_IIS:
        if (a->status == 0)
            a->status = 500;
        break;
    case SC_ACT_HTTPSYS:
        if (a->status == 0)
            a->status = 503;
        if (a->status != 400 && a->status != 414 && a->status != 503) {
            add_err(c->errs, line_of(g), "httpsys status must be 400, 414 or 503");
            return -1;
        }
        if (!a->httperr_reason[0])
            snprintf(a->httperr_reason, sizeof(a->httperr_reason), "%s",
                     a->status == 503 ? "AppOffline" : a->status == 414 ? "URL_Length"
                                                                        : "RequestLength");
        break;
    case SC_ACT_PROXY:
        if (a->status == 0)
            a->status = a->proxy_page == SC_PROXY_GATEWAY_TIMEOUT ? 504 : 404;
        break;
    case SC_ACT_DRIP:
        if (a->bytes <= 0)
            a->bytes = 1;
        if (a->interval_s <= 0)
            a->interval_s = 1.0;
        break;
    case SC_ACT_DELAY:
        if (a->seconds <= 0) {
            add_err(c->errs, line_of(g), "a delay needs 'seconds' > 0");
            return -1;
        }
        if ((a->then == SC_ACT_IIS || a->then == SC_ACT_HTTPSYS || a->then == SC_ACT_PROXY) &&
            a->then_status == 0)
            a->then_status = a->then == SC_ACT_IIS ? 500 : a->then == SC_ACT_HTTPSYS ? 503 : 504;
        if (a->then == SC_ACT_HTTPSYS && a->then_status != 400 && a->then_status != 414 &&
            a->then_status != 503) {
            add_err(c->errs, line_of(g), "then_status after httpsys must be 400, 414 or 503");
            return -1;
        }
        break;
    default:
        break;
    }
    return 0;
}

static int parse_events(struct ctx *c, struct sc_rule *r, config_setting_t *s)
{
    int i, n, rc = 0;

    if (config_setting_type(s) != CONFIG_TYPE_LIST) {
        add_err(c->errs, line_of(s), "'events' must be a list ( { ... }, ... )");
        return -1;
    }
    n = config_setting_length(s);
    if (n > SC_MAX_EVENTS) {
        add_err(c->errs, line_of(s), "at most %d events per rule", SC_MAX_EVENTS);
        return -1;
    }
    for (i = 0; i < n; i++) {
        config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
        struct sc_event *e = &r->events[r->nevents];
        int j, cnt;
        if (!is_group(c, g))
            return -1;
        snprintf(e->level, sizeof(e->level), "Error");
        cnt = config_setting_length(g);
        for (j = 0; j < cnt; j++) {
            config_setting_t *f = config_setting_get_elem(g, (unsigned)j);
            const char *k = config_setting_name(f);
            long v;
            if (strcmp(k, "id") == 0) {
                rc |= get_long(c, f, 0, 65535, &v);
                e->id = (int)v;
            } else if (strcmp(k, "source") == 0)
                rc |= get_str(c, f, e->source, sizeof(e->source));
            else if (strcmp(k, "level") == 0)
                rc |= get_str(c, f, e->level, sizeof(e->level));
            else if (strcmp(k, "message") == 0)
                rc |= get_str(c, f, e->message, sizeof(e->message));
            else {
                add_err(c->errs, line_of(f), "unknown setting 'events.%s'", k);
                rc = -1;
            }
        }
        r->nevents++;
    }
    return rc ? -1 : 0;
}

static int parse_iis_log(struct ctx *c, struct sc_rule *r, config_setting_t *g)
{
    int i, n = config_setting_length(g), rc = 0;
    struct sc_iis_line *l = &r->extra_log;

    l->present = 1;
    snprintf(l->method, sizeof(l->method), "POST");
    for (i = 0; i < n; i++) {
        config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *k = config_setting_name(s);
        long v;
        if (strcmp(k, "method") == 0)
            rc |= get_str(c, s, l->method, sizeof(l->method));
        else if (strcmp(k, "uri") == 0)
            rc |= get_str(c, s, l->uri, sizeof(l->uri));
        else if (strcmp(k, "status") == 0) {
            rc |= get_long(c, s, 100, 599, &v);
            l->status = (int)v;
        } else if (strcmp(k, "substatus") == 0) {
            rc |= get_long(c, s, 0, 999, &v);
            l->substatus = (int)v;
        } else if (strcmp(k, "win32") == 0) {
            rc |= get_long(c, s, 0, 4294967295L, &v);
            l->win32 = v;
        } else {
            add_err(c->errs, line_of(s), "unknown setting 'iis_log.%s'", k);
            rc = -1;
        }
    }
    if (!l->uri[0] || !l->status) {
        add_err(c->errs, line_of(g), "'iis_log' needs 'uri' and 'status'");
        rc = -1;
    }
    return rc ? -1 : 0;
}

static int parse_rules(struct ctx *c, struct sc_rule *out, int *nout, config_setting_t *list)
{
    int i, n, rc = 0;

    if (config_setting_type(list) != CONFIG_TYPE_LIST) {
        add_err(c->errs, line_of(list), "'rules' must be a list ( { ... }, ... )");
        return -1;
    }
    n = config_setting_length(list);
    if (n > SC_MAX_RULES - 8) {
        add_err(c->errs, line_of(list), "at most %d rules", SC_MAX_RULES - 8);
        return -1;
    }
    for (i = 0; i < n; i++) {
        config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        struct sc_rule *r = &out[*nout];
        int j, cnt, have_action = 0;

        if (!is_group(c, g)) {
            rc = -1;
            continue;
        }
        memset(r, 0, sizeof(*r));
        r->line = line_of(g);
        r->m.min_uri = r->m.max_uri = -1;
        r->m.probability = 1.0;
        r->m.after_s = r->m.before_s = -1;
        snprintf(r->name, sizeof(r->name), "rule%d", i + 1);
        cnt = config_setting_length(g);
        for (j = 0; j < cnt; j++) {
            config_setting_t *s = config_setting_get_elem(g, (unsigned)j);
            const char *k = config_setting_name(s);
            if (strcmp(k, "name") == 0)
                rc |= get_str(c, s, r->name, sizeof(r->name));
            else if (strcmp(k, "match") == 0)
                rc |= is_group(c, s) ? parse_match(c, r, s) : -1;
            else if (strcmp(k, "action") == 0) {
                rc |= is_group(c, s) ? parse_action(c, r, s) : -1;
                have_action = 1;
            } else if (strcmp(k, "events") == 0)
                rc |= parse_events(c, r, s);
            else if (strcmp(k, "iis_log") == 0)
                rc |= is_group(c, s) ? parse_iis_log(c, r, s) : -1;
            else {
                add_err(c->errs, line_of(s), "unknown setting '%s' in a rule", k);
                rc = -1;
            }
        }
        if (!have_action) {
            add_err(c->errs, r->line, "rule '%s' has no 'action'", r->name);
            rc = -1;
        }
        (*nout)++;
    }
    return rc ? -1 : 0;
}

static struct scenario *parse(struct ctx *c, config_t *lc, const char *name)
{
    struct scenario *sc = scenario_alloc(name);
    config_setting_t *root = config_root_setting(lc);
    struct sc_rule *tmp = calloc(SC_MAX_RULES, sizeof(*tmp));
    int i, n = config_setting_length(root), ntmp = 0, rc = 0;

    if (sc == NULL || tmp == NULL) {
        add_err(c->errs, 0, "out of memory");
        goto fail;
    }
    for (i = 0; i < n; i++) {
        config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const char *k = config_setting_name(s);

        if (strcmp(k, "summary") == 0)
            rc |= get_str(c, s, sc->summary, sizeof(sc->summary));
        else if (strcmp(k, "ndes") == 0)
            rc |= is_group(c, s) ? parse_ndes(c, sc, s) : -1;
        else if (strcmp(k, "material") == 0)
            rc |= is_group(c, s) ? parse_material(c, sc, s) : -1;
        else if (strcmp(k, "rapid_fail") == 0)
            rc |= is_group(c, s) ? parse_rapid_fail(c, sc, s) : -1;
        else if (strcmp(k, "rules") == 0)
            rc |= parse_rules(c, tmp, &ntmp, s);
        else {
            add_err(c->errs, line_of(s), "unknown setting '%s'", k);
            rc = -1;
        }
    }
    if (rc || c->errs->n)
        goto fail;
    derive(sc, tmp, ntmp);
    for (i = 0; i < sc->nrules; i++) {
        struct sc_match *m = &sc->rules[i].m;
        size_t k;

        if (m->message_type || m->signer_key_type)
            sc->needs_peek = 1;
        if (m->signer_key_type)
            sc->needs_key_type = 1;
        m->path_prefix = strcspn(m->path, "*?[\\");
        /* the matcher compares header_contains in lower case (ASCII, as strcasestr) */
        for (k = 0; m->header_contains[k]; k++)
            if (m->header_contains[k] >= 'A' && m->header_contains[k] <= 'Z')
                m->header_contains[k] = (char)(m->header_contains[k] + 32);
        m->header_contains_len = k;
        m->tests = (m->path[0] ? SC_T_PATH : 0) | (m->methods ? SC_T_METHODS : 0) |
                   (m->operation[0] ? SC_T_OPERATION : 0) |
                   (m->message_type ? SC_T_MESSAGE_TYPE : 0) |
                   (m->signer_key_type ? SC_T_KEY_TYPE : 0) |
                   (m->min_uri >= 0 || m->max_uri >= 0 ? SC_T_URI_LEN : 0) |
                   (m->header[0] ? SC_T_HEADER : 0);
        m->op_code = scenario_op_code(strcmp(m->operation, "-") == 0 ? "" : m->operation);
        for (m->header_first = 0; m->header_first < i; m->header_first++)
            if (strcasecmp(sc->rules[m->header_first].m.header, m->header) == 0)
                break;
    }
    free(tmp);
    return sc;
fail:
    if (c->errs->n == 0)
        add_err(c->errs, 0, "invalid scenario");
    free(tmp);
    free(sc);
    return NULL;
}

static int has_include(const char *text)
{
    const char *p = text;

    while (p && *p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "@include", 8) == 0)
            return 1;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return 0;
}

struct scenario *scenario_load_text(const char *text, const char *name,
                                    const char *scenarios_dir, const char *state_dir,
                                    struct sc_errors *errs)
{
    config_t lc;
    struct ctx c = {errs, scenarios_dir, state_dir};
    struct scenario *sc = NULL;
    char base[64];
    const char *slash = strrchr(name, '/');
    size_t bl;

    memset(errs, 0, sizeof(*errs));
    snprintf(errs->file, sizeof(errs->file), "%s", name);
    if (strlen(text) > SC_MAX_FILE) {
        add_err(errs, 0, "scenario larger than %d bytes", SC_MAX_FILE);
        return NULL;
    }
    if (has_include(text)) {
        add_err(errs, 0, "@include is not allowed in scenario files");
        return NULL;
    }
    snprintf(base, sizeof(base), "%s", slash ? slash + 1 : name);
    bl = strlen(base);
    if (bl > 4 && strcmp(base + bl - 4, ".cfg") == 0)
        base[bl - 4] = '\0';
    config_init(&lc);
    if (config_read_string(&lc, text) != CONFIG_TRUE) {
        add_err(errs, config_error_line(&lc), "%s", config_error_text(&lc));
    } else {
        sc = parse(&c, &lc, base);
        if (sc)
            snprintf(sc->source, sizeof(sc->source), "%s", name);
    }
    config_destroy(&lc);
    return sc;
}

struct scenario *scenario_load_file(const char *path, const char *scenarios_dir,
                                    const char *state_dir, struct sc_errors *errs)
{
    FILE *f = fopen(path, "r");
    char *text;
    size_t n;
    struct scenario *sc;

    if (f == NULL) {
        memset(errs, 0, sizeof(*errs));
        snprintf(errs->file, sizeof(errs->file), "%s", path);
        add_err(errs, 0, "cannot read: %s", strerror(errno));
        return NULL;
    }
    text = malloc(SC_MAX_FILE + 2);
    n = text ? fread(text, 1, SC_MAX_FILE + 1, f) : 0;
    fclose(f);
    if (text == NULL)
        return NULL;
    text[n] = '\0';
    if (memchr(text, '\0', n)) {
        memset(errs, 0, sizeof(*errs));
        snprintf(errs->file, sizeof(errs->file), "%s", path);
        add_err(errs, 0, "not a text file");
        free(text);
        return NULL;
    }
    sc = scenario_load_text(text, path, scenarios_dir, state_dir, errs);
    free(text);
    return sc;
}
