/* th.h - shared helpers for the Criterion unit suites (one test binary = one .c
 * file including this header once, so everything here is static).
 *
 * Lab PKI: generated once, never per test. `make unit` runs
 * tests/fixtures/make-fixtures.sh into $NDESMOCK_FIXTURES; when that variable
 * is unset the suite's PRE_ALL hook (TH_FIXTURE_PRE_HOOK) generates the same
 * fixture in-process into a temporary directory, before any test is spawned,
 * and removes it at the end. Each test then copies the PKI files into its own
 * mkdtemp() state directory, so parallel tests never share a writable path. */
#ifndef TH_H
#define TH_H

#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ndesmock/config.h"
#include "ndesmock/pki.h"
#include "ndesmock/scep.h"
#include "ndesmock/store.h"
#include "ndesmock/util.h"

#define TH_UNUSED __attribute__((unused))
#define TH_CHALLENGE "lab-secret-0123"

/* ---- files and directories ---------------------------------------------- */

static int th_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb; (void)flag; (void)f;
    return remove(p);
}

static TH_UNUSED void th_rm_rf(const char *dir)
{
    if (dir && *dir)
        nftw(dir, th_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh private directory; returns a malloc'd path. */
static TH_UNUSED char *th_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[PATH_MAX];

    snprintf(tmpl, sizeof(tmpl), "%s/ndesmock-ut-XXXXXX", base && *base ? base : "/tmp");
    cr_assert_not_null(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
    return strdup(tmpl);
}

static TH_UNUSED void th_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/* Reads a whole file (malloc'd, NUL-terminated); NULL if it cannot be read. */
static TH_UNUSED char *th_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *d = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (d = malloc((size_t)n + 1)) != NULL) {
        if (fread(d, 1, (size_t)n, f) != (size_t)n) {
            free(d);
            d = NULL;
        } else {
            d[n] = '\0';
            if (len)
                *len = (size_t)n;
        }
    }
    fclose(f);
    return d;
}

static TH_UNUSED void th_copy_file(const char *from, const char *to)
{
    size_t n;
    char *d = th_read_file(from, &n);

    cr_assert_not_null(d, "fixture file %s missing", from);
    th_write_file(to, d, n);
    free(d);
}

/* Copies directory from (files and subdirectories) into to (created). */
static TH_UNUSED void th_copy_tree(const char *from, const char *to)
{
    DIR *d = opendir(from);
    struct dirent *e;

    cr_assert_not_null(d, "fixture directory %s missing", from);
    cr_assert(mkdir(to, 0700) == 0 || errno == EEXIST, "%s: %s", to, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        char f[PATH_MAX], t[PATH_MAX];
        struct stat st;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        cr_assert_lt(snprintf(f, sizeof(f), "%s/%s", from, e->d_name), (int)sizeof(f));
        cr_assert_lt(snprintf(t, sizeof(t), "%s/%s", to, e->d_name), (int)sizeof(t));
        cr_assert_eq(stat(f, &st), 0);
        if (S_ISDIR(st.st_mode))
            th_copy_tree(f, t);
        else
            th_copy_file(f, t);
    }
    closedir(d);
}

/* ---- OpenSSL ------------------------------------------------------------- */

/* The tests build single-DES envelopes with EVP, which needs OpenSSL's legacy
 * provider (the server decrypts them without it: util/oldcrypto.c); loading it
 * switches off the implicit default one, so load both. Idempotent. */
static TH_UNUSED void th_providers(void)
{
    static int done;

    if (done)
        return;
    cr_assert_not_null(OSSL_PROVIDER_load(NULL, "default"));
    cr_assert_not_null(OSSL_PROVIDER_load(NULL, "legacy"), "legacy provider (single DES) not available");
    done = 1;
}

static TH_UNUSED EVP_PKEY *th_load_key(const char *path)
{
    BIO *b = BIO_new_file(path, "r");
    EVP_PKEY *k;

    cr_assert_not_null(b, "cannot open %s", path);
    k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    cr_assert_not_null(k, "no private key in %s", path);
    return k;
}

/* ---- the shared fixture -------------------------------------------------- */

static TH_UNUSED char th_fixture_tmp[PATH_MAX]; /* set when the hook generated it */

/* Generates FIXTURES/state (lab PKI), FIXTURES/state-int (with an intermediate)
 * and FIXTURES/client.key in-process. Mirrors tests/fixtures/make-fixtures.sh. */
static TH_UNUSED int th_generate_fixtures(const char *dir)
{
    static const char *const sub[] = {"state", "state-int"};
    char path[PATH_MAX], err[256];
    struct config cfg;
    struct pki pki;
    int i;

    for (i = 0; i < 2; i++) {
        config_defaults(&cfg);
        if (snprintf(cfg.state_dir, sizeof(cfg.state_dir), "%s/%s", dir, sub[i]) >=
            (int)sizeof(cfg.state_dir))
            return -1;
        cfg.pki.intermediate = i;
        if (mkdir(cfg.state_dir, 0700) != 0 && errno != EEXIST)
            return -1;
        if (pki_load_or_create(&pki, &cfg, err, sizeof(err)) != 0) {
            fprintf(stderr, "fixture PKI: %s\n", err);
            return -1;
        }
        pki_free(&pki);
    }
    if (snprintf(path, sizeof(path), "%s/client.key", dir) >= (int)sizeof(path))
        return -1;
    if (access(path, R_OK) != 0) {
        EVP_PKEY *k = EVP_RSA_gen(2048);
        BIO *b = BIO_new_file(path, "w");
        int ok = k && b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
        BIO_free(b);
        EVP_PKEY_free(k);
        if (!ok)
            return -1;
    }
    return 0;
}

static TH_UNUSED const char *th_fixtures(void)
{
    const char *d = getenv("NDESMOCK_FIXTURES");

    cr_assert(d && *d, "NDESMOCK_FIXTURES is not set (TH_FIXTURE_PRE_HOOK missing?)");
    return d;
}

/* Generates the fixture once, in the runner process before any test is
 * spawned, unless make-fixtures.sh already did (NDESMOCK_FIXTURES). */
static TH_UNUSED void th_fixture_pre(void)
{
    const char *d = getenv("NDESMOCK_FIXTURES"), *tmp = getenv("TMPDIR");
    char probe[PATH_MAX];

    if (d && *d) {
        snprintf(probe, sizeof(probe), "%s/state-int/pki/issuing.pem", d);
        if (access(probe, R_OK) == 0)
            return;
    }
    OSSL_PROVIDER_load(NULL, "default");
    snprintf(th_fixture_tmp, sizeof(th_fixture_tmp), "%s/ndesmock-fx-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(th_fixture_tmp) == NULL || th_generate_fixtures(th_fixture_tmp) != 0) {
        fprintf(stderr, "cannot generate the unit-test fixtures\n");
        abort();
    }
    setenv("NDESMOCK_FIXTURES", th_fixture_tmp, 1);
}

static TH_UNUSED void th_fixture_post(void)
{
    if (th_fixture_tmp[0])
        th_rm_rf(th_fixture_tmp);
}

/* Use both, on separate lines (Criterion names hooks by line), in a test
 * file that needs the lab PKI. */
#define TH_FIXTURE_PRE_HOOK                                                                 \
    ReportHook(PRE_ALL)(struct criterion_test_set *set)                                     \
    {                                                                                       \
        (void)set;                                                                          \
        th_fixture_pre();                                                                   \
    }
#define TH_FIXTURE_POST_HOOK                                                                \
    ReportHook(POST_ALL)(struct criterion_global_stats *stats)                              \
    {                                                                                       \
        (void)stats;                                                                        \
        th_fixture_post();                                                                  \
    }

/* One test's private world: a state dir holding a copy of the fixture PKI,
 * the PKI loaded from it, the store and the SCEP context. */
struct th_env {
    char *dir;
    struct config cfg;
    struct pki pki;
    struct store store;
    struct scep_ctx ctx;
    EVP_PKEY *client_key;  /* the requester's key (fixture, shared) */
    X509 *client_cert;     /* self-signed throw-away cert for it */
};

/* Prepares the config (defaults, state dir, static challenge); call
 * th_env_start() after changing env->cfg as a test needs. */
static TH_UNUSED void th_env_prepare(struct th_env *e, const char *variant)
{
    char from[PATH_MAX], to[PATH_MAX];

    th_providers();
    memset(e, 0, sizeof(*e));
    e->store.index_fd = -1;
    e->dir = th_mkdtemp();
    config_defaults(&e->cfg);
    snprintf(e->cfg.state_dir, sizeof(e->cfg.state_dir), "%s", e->dir);
    snprintf(e->cfg.challenge, sizeof(e->cfg.challenge), "%s", TH_CHALLENGE);
    e->cfg.access_log = 0;
    /* everything the fixture holds (keys, certificates, challenge, any
     * generated extras), so that loading it generates nothing */
    snprintf(from, sizeof(from), "%s/%s/pki", th_fixtures(), variant);
    snprintf(to, sizeof(to), "%s/pki", e->dir);
    th_copy_tree(from, to);
    if (strcmp(variant, "state-int") == 0)
        e->cfg.pki.intermediate = 1;
}

static TH_UNUSED void th_env_start(struct th_env *e)
{
    char err[512], path[PATH_MAX];

    cr_assert_eq(pki_load_or_create(&e->pki, &e->cfg, err, sizeof(err)), 0, "pki: %s", err);
    cr_assert_eq(store_open(&e->store, e->cfg.state_dir, err, sizeof(err)), 0, "store: %s", err);
    cr_assert_eq(scep_ctx_init(&e->ctx, &e->cfg, &e->pki, &e->store, err, sizeof(err)), 0,
                 "scep: %s", err);
    snprintf(path, sizeof(path), "%s/client.key", th_fixtures());
    e->client_key = th_load_key(path);
    e->client_cert = scep_build_selfsigned(e->client_key, "client.example");
    cr_assert_not_null(e->client_cert);
}

static TH_UNUSED void th_env_init(struct th_env *e)
{
    th_env_prepare(e, "state");
    th_env_start(e);
}

static TH_UNUSED void th_env_fini(struct th_env *e)
{
    scep_ctx_free(&e->ctx);
    if (e->store.index_fd >= 0)
        store_close(&e->store);
    pki_free(&e->pki);
    X509_free(e->client_cert);
    EVP_PKEY_free(e->client_key);
    th_rm_rf(e->dir);
    free(e->dir);
    memset(e, 0, sizeof(*e));
}

/* ---- a tiny DER reader ----------------------------------------------------- */

struct th_tlv {
    uint8_t tag;
    size_t hl;   /* header length */
    size_t len;  /* content length */
    const uint8_t *content;
    int indefinite;
};

/* Reads one TLV at p (low tag numbers only). Returns 0, or -1 if malformed. */
static TH_UNUSED int th_der_read(const uint8_t *p, size_t avail, struct th_tlv *t)
{
    size_t i, n;

    memset(t, 0, sizeof(*t));
    if (avail < 2 || (p[0] & 0x1f) == 0x1f)
        return -1;
    t->tag = p[0];
    if (p[1] < 0x80) {
        t->hl = 2;
        t->len = p[1];
    } else if (p[1] == 0x80) {
        t->hl = 2;
        t->indefinite = 1;
        t->content = p + 2;
        return (p[0] & 0x20) ? 0 : -1;
    } else {
        n = p[1] & 0x7f;
        if (n > 4 || avail < 2 + n)
            return -1;
        t->len = 0;
        for (i = 0; i < n; i++)
            t->len = t->len << 8 | p[2 + i];
        t->hl = 2 + n;
    }
    if (t->len > avail - t->hl)
        return -1;
    t->content = p + t->hl;
    return 0;
}

/* Descends: returns the i-th child TLV (0-based) of the constructed TLV t. */
static TH_UNUSED struct th_tlv th_der_child(const struct th_tlv *t, int idx)
{
    struct th_tlv c;
    const uint8_t *p = t->content;
    size_t left = t->len;
    int i;

    for (i = 0;; i++) {
        cr_assert_eq(th_der_read(p, left, &c), 0, "DER child %d of tag 0x%02x unreadable", i, t->tag);
        if (i == idx)
            return c;
        p += c.hl + c.len;
        left -= c.hl + c.len;
    }
}

static TH_UNUSED int th_der_count(const struct th_tlv *t)
{
    struct th_tlv c;
    const uint8_t *p = t->content;
    size_t left = t->len;
    int n = 0;

    while (left > 0) {
        cr_assert_eq(th_der_read(p, left, &c), 0);
        p += c.hl + c.len;
        left -= c.hl + c.len;
        n++;
    }
    return n;
}

/* The top-level TLV of a whole DER buffer (must span it exactly). */
static TH_UNUSED struct th_tlv th_der_top(const uint8_t *d, size_t len)
{
    struct th_tlv t;

    cr_assert_eq(th_der_read(d, len, &t), 0, "not DER");
    cr_assert_eq(t.hl + t.len, len, "trailing bytes after the top-level TLV");
    return t;
}

/* Path helpers for a CMS ContentInfo{signedData}: */
static TH_UNUSED struct th_tlv th_signed_data(const uint8_t *d, size_t len)
{
    struct th_tlv ci = th_der_top(d, len), ctx0, sd;

    ctx0 = th_der_child(&ci, 1);
    cr_assert_eq(ctx0.tag, 0xa0);
    sd = th_der_child(&ctx0, 0);
    cr_assert_eq(sd.tag, 0x30);
    return sd;
}

/* The (first) SignerInfo of a SignedData: the last child, a SET. */
static TH_UNUSED struct th_tlv th_signer_info(const struct th_tlv *sd)
{
    struct th_tlv set = th_der_child(sd, th_der_count(sd) - 1);

    cr_assert_eq(set.tag, 0x31);
    return th_der_child(&set, 0);
}

#endif
