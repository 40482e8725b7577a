/* test_pki.c - src/pki and src/store: loading the lab PKI, issuance (serials,
 * extensions, chain), the certs-only PKCS#7, and the certificate store. */
#include "th.h"

#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>
#include <pthread.h>

TH_FIXTURE_PRE_HOOK
TH_FIXTURE_POST_HOOK

static struct th_env env;

static void setup(void)
{
    th_env_init(&env);
}

static void teardown(void)
{
    th_env_fini(&env);
}

TestSuite(pki, .init = setup, .fini = teardown);
TestSuite(store, .init = setup, .fini = teardown);

static X509_REQ *csr(const char *cn, const char *san)
{
    X509_REQ *r = scep_build_csr(env.client_key, cn, NULL, san, EVP_sha256());

    cr_assert_not_null(r);
    return r;
}

static X509 *issue(X509_REQ *r)
{
    char err[256] = "";
    X509 *c = pki_issue(&env.pki, &env.cfg, r, err, sizeof(err));

    cr_assert_not_null(c, "pki_issue: %s", err);
    return c;
}

/* Verifies cert against the CA (and root) of env with OpenSSL's chain check. */
static int chain_ok(struct pki *pki, X509 *cert)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    int ok;

    X509_STORE_add_cert(st, pki->root_cert);
    if (pki->has_intermediate)
        sk_X509_push(untrusted, pki->ca_cert);
    X509_STORE_CTX_init(ctx, st, cert, untrusted);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY);
    ok = X509_verify_cert(ctx); /* (a cr_log_warn here would make the run exit 1) */
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    X509_STORE_free(st);
    return ok == 1;
}

static int name_cn(X509_NAME *n, char *out, int cap)
{
    return X509_NAME_get_text_by_NID(n, NID_commonName, out, cap);
}

Test(pki, loads_fixture_without_regenerating)
{
    char path[PATH_MAX], cn[128];
    size_t n1, n2;
    char *before, *after;

    snprintf(path, sizeof(path), "%s/pki/root.pem", env.dir);
    before = th_read_file(path, &n1);
    cr_assert_not_null(before);
    /* a second load of the same directory reads, it does not regenerate */
    {
        struct pki again;
        char err[256];
        cr_assert_eq(pki_load_or_create(&again, &env.cfg, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(X509_cmp(again.ca_cert, env.pki.ca_cert), 0);
        cr_assert_eq(X509_cmp(again.ra_sign_cert, env.pki.ra_sign_cert), 0);
        cr_assert_str_eq(again.challenge, env.pki.challenge);
        cr_assert_str_eq(again.ca_md5, env.pki.ca_md5);
        pki_free(&again);
    }
    after = th_read_file(path, &n2);
    cr_assert_eq(n1, n2);
    cr_assert_eq(memcmp(before, after, n1), 0);
    free(before);
    free(after);

    cr_assert_eq(env.pki.has_intermediate, 0);
    cr_assert_eq(X509_cmp(env.pki.root_cert, env.pki.ca_cert), 0);
    cr_assert_gt(name_cn(X509_get_subject_name(env.pki.ra_sign_cert), cn, sizeof(cn)), 0);
    cr_assert_str_eq(cn, "NDES01-MSCEP-RA");
    cr_assert_gt(name_cn(X509_get_subject_name(env.pki.ca_cert), cn, sizeof(cn)), 0);
    cr_assert_str_eq(cn, "ndesmock Lab Root CA");
    cr_assert_eq(strlen(env.pki.challenge), 16);
    snprintf(path, sizeof(path), "%s/pki/ca.pem", env.dir);
    cr_assert_str_eq(env.pki.ca_cert_path, path);
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(d, "%s", dir);
    while ((e = readdir(d)) != NULL) {
        char p[PATH_MAX];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        cr_assert_eq(stat(p, &st), 0);
        n += S_ISDIR(st.st_mode) ? count_files(p) : 1;
    }
    closedir(d);
    return n;
}

Test(pki, fixture_is_complete)
{
    /* Loading the copied fixture generated nothing: no per-test key generation.
     * If this fails, the PKI grew a new file: regenerate the fixture
     * (tests/fixtures/make-fixtures.sh adds missing parts). */
    char a[PATH_MAX], b[PATH_MAX];

    snprintf(a, sizeof(a), "%s/state/pki", th_fixtures());
    snprintf(b, sizeof(b), "%s/pki", env.dir);
    cr_assert_eq(count_files(b), count_files(a), "pki_load_or_create added files to the copy");
}

Test(pki, ra_certificates)
{
    /* signing cert: digitalSignature only; encryption cert: keyEncipherment only */
    cr_assert_eq(X509_get_key_usage(env.pki.ra_sign_cert), KU_DIGITAL_SIGNATURE);
    cr_assert_eq(X509_get_key_usage(env.pki.ra_enc_cert), KU_KEY_ENCIPHERMENT);
    cr_assert_eq(X509_check_issued(env.pki.ca_cert, env.pki.ra_sign_cert), X509_V_OK);
    cr_assert_eq(X509_check_issued(env.pki.ca_cert, env.pki.ra_enc_cert), X509_V_OK);
    cr_assert(chain_ok(&env.pki, env.pki.ra_sign_cert));
    cr_assert(X509_check_private_key(env.pki.ra_sign_cert, env.pki.ra_sign_key));
    cr_assert(X509_check_private_key(env.pki.ra_enc_cert, env.pki.ra_enc_key));
    cr_assert(X509_check_private_key(env.pki.ca_cert, env.pki.ca_key));
    cr_assert_eq(X509_check_ca(env.pki.ca_cert), 1);
}

Test(pki, ca_md5_thumbprint)
{
    uint8_t md[16];
    unsigned int n = sizeof(md);
    char hex[33], want[40];

    X509_digest(env.pki.root_cert, EVP_md5(), md, &n);
    util_hex_upper(md, 16, hex);
    snprintf(want, sizeof(want), "%.8s %.8s %.8s %.8s", hex, hex + 8, hex + 16, hex + 24);
    cr_assert_str_eq(env.pki.ca_md5, want);
}

Test(pki, getcacert_and_precomputed_der)
{
    const unsigned char *p = env.pki.getcacert_der;
    PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)env.pki.getcacert_len);
    STACK_OF(X509) *certs;
    unsigned char *der = NULL;
    int l;

    cr_assert_not_null(p7);
    cr_assert_eq(p, env.pki.getcacert_der + env.pki.getcacert_len, "trailing bytes");
    cr_assert(PKCS7_type_is_signed(p7));
    certs = p7->d.sign->cert;
    cr_assert_eq(sk_X509_num(certs), 3);
    cr_assert_eq(X509_cmp(sk_X509_value(certs, 0), env.pki.ra_sign_cert), 0);
    cr_assert_eq(X509_cmp(sk_X509_value(certs, 1), env.pki.ra_enc_cert), 0);
    cr_assert_eq(X509_cmp(sk_X509_value(certs, 2), env.pki.ca_cert), 0);
    cr_assert_eq(sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info), 0);
    PKCS7_free(p7);

    l = i2d_X509(env.pki.ra_sign_cert, &der);
    cr_assert_eq((size_t)l, env.pki.ra_sign_len);
    cr_assert_arr_eq(der, env.pki.ra_sign_der, (size_t)l);
    OPENSSL_free(der);
    der = NULL;
    l = i2d_X509(env.pki.ca_cert, &der);
    cr_assert_eq((size_t)l, env.pki.ca_chain_len, "no intermediate: the chain is the CA alone");
    cr_assert_arr_eq(der, env.pki.ca_chain_der, (size_t)l);
    OPENSSL_free(der);

    {
        const unsigned char *q = env.pki.ra_sign_ias;
        PKCS7_ISSUER_AND_SERIAL *ias =
            d2i_PKCS7_ISSUER_AND_SERIAL(NULL, &q, (long)env.pki.ra_sign_ias_len);
        cr_assert_not_null(ias);
        cr_assert_eq(X509_NAME_cmp(ias->issuer, X509_get_issuer_name(env.pki.ra_sign_cert)), 0);
        cr_assert_eq(ASN1_INTEGER_cmp(ias->serial, X509_get0_serialNumber(env.pki.ra_sign_cert)), 0);
        PKCS7_ISSUER_AND_SERIAL_free(ias);
    }
}

Test(pki, certs_only_der)
{
    X509 *certs[2] = {env.pki.ca_cert, env.pki.tls_cert};
    uint8_t *der = NULL;
    size_t len = 0;
    const unsigned char *p;
    PKCS7 *p7;

    cr_assert_eq(pki_certs_only_der(certs, 2, &der, &len), 0);
    p = der;
    p7 = d2i_PKCS7(NULL, &p, (long)len);
    cr_assert_not_null(p7);
    cr_assert_eq(sk_X509_num(p7->d.sign->cert), 2);
    cr_assert_eq(X509_cmp(sk_X509_value(p7->d.sign->cert, 1), env.pki.tls_cert), 0);
    PKCS7_free(p7);
    free(der);
}

Test(pki, issued_certificate_contents)
{
    X509_REQ *r = csr("device-42.example", "DNS:device-42.example,DNS:alt.example,IP:10.1.2.3");
    X509 *c = issue(r);
    char cn[128];
    GENERAL_NAMES *san;
    EXTENDED_KEY_USAGE *eku;
    BASIC_CONSTRAINTS *bc;
    int crit = -1, i;
    time_t now = time(NULL);

    cr_assert_gt(name_cn(X509_get_subject_name(c), cn, sizeof(cn)), 0);
    cr_assert_str_eq(cn, "device-42.example");
    cr_assert_eq(X509_NAME_cmp(X509_get_issuer_name(c), X509_get_subject_name(env.pki.ca_cert)), 0);
    cr_assert_eq(EVP_PKEY_eq(X509_get0_pubkey(c), env.client_key), 1);
    cr_assert(chain_ok(&env.pki, c));
    cr_assert_eq(X509_get_signature_nid(c), NID_sha256WithRSAEncryption);
    cr_assert_eq(X509_get_version(c), 2);

    san = X509_get_ext_d2i(c, NID_subject_alt_name, &crit, NULL);
    cr_assert_not_null(san, "SAN not copied from the CSR");
    cr_assert_eq(sk_GENERAL_NAME_num(san), 3);
    {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(san, 1);
        cr_assert_eq(g->type, GEN_DNS);
        cr_assert_str_eq((const char *)ASN1_STRING_get0_data(g->d.dNSName), "alt.example");
        g = sk_GENERAL_NAME_value(san, 2);
        cr_assert_eq(g->type, GEN_IPADD);
        cr_assert_eq(ASN1_STRING_length(g->d.iPAddress), 4);
        cr_assert_arr_eq(ASN1_STRING_get0_data(g->d.iPAddress), "\x0a\x01\x02\x03", 4);
    }
    GENERAL_NAMES_free(san);

    cr_assert_eq(X509_get_key_usage(c), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    eku = X509_get_ext_d2i(c, NID_ext_key_usage, NULL, NULL);
    cr_assert_not_null(eku);
    cr_assert_eq(sk_ASN1_OBJECT_num(eku), 2);
    cr_assert_eq(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_client_auth);
    {
        char txt[64];
        OBJ_obj2txt(txt, sizeof(txt), sk_ASN1_OBJECT_value(eku, 1), 1);
        cr_assert_str_eq(txt, "1.3.6.1.5.5.8.2.2");
    }
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    bc = X509_get_ext_d2i(c, NID_basic_constraints, &crit, NULL);
    cr_assert_not_null(bc);
    cr_assert_eq(bc->ca, 0);
    cr_assert_eq(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    cr_assert_geq(X509_get_ext_by_NID(c, NID_subject_key_identifier, -1), 0);
    cr_assert_geq(X509_get_ext_by_NID(c, NID_authority_key_identifier, -1), 0);

    /* validity: notBefore = now - 10 min, notAfter = now + 525600 min */
    {
        int day, sec;
        cr_assert(ASN1_TIME_diff(&day, &sec, X509_get0_notBefore(c), X509_get0_notAfter(c)));
        cr_assert_eq((long)day * 86400 + sec, (525600L + 10) * 60, "validity %d d %d s", day, sec);
        cr_assert_eq(X509_cmp_time(X509_get0_notBefore(c), &now), -1);
    }
    for (i = 0; i < X509_get_ext_count(c); i++)
        cr_assert_neq(OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(c, i))),
                      NID_pkcs9_challengePassword);
    X509_free(c);
    X509_REQ_free(r);
}

Test(pki, template_from_config)
{
    X509_REQ *r;
    X509 *c;
    char err[256];
    int day, sec;

    pki_free(&env.pki);
    env.cfg.tmpl.validity_minutes = 5;
    env.cfg.tmpl.backdate_minutes = 0;
    env.cfg.tmpl.key_usage = KU_DIGITAL_SIGNATURE;
    env.cfg.tmpl.eku_count = 1;
    snprintf(env.cfg.tmpl.eku[0], sizeof(env.cfg.tmpl.eku[0]), "serverAuth");
    snprintf(env.cfg.tmpl.digest, sizeof(env.cfg.tmpl.digest), "sha384");
    cr_assert_eq(pki_load_or_create(&env.pki, &env.cfg, err, sizeof(err)), 0, "%s", err);
    r = csr("short-lived", NULL);
    c = issue(r);
    cr_assert_eq(X509_get_key_usage(c), KU_DIGITAL_SIGNATURE);
    cr_assert_eq(X509_get_extended_key_usage(c), XKU_SSL_SERVER);
    cr_assert_eq(X509_get_signature_nid(c), NID_sha384WithRSAEncryption);
    cr_assert(ASN1_TIME_diff(&day, &sec, X509_get0_notBefore(c), X509_get0_notAfter(c)));
    cr_assert_eq(day * 86400 + sec, 300);
    cr_assert_lt(X509_get_ext_by_NID(c, NID_subject_alt_name, -1), 0, "no SAN requested");
    X509_free(c);
    X509_REQ_free(r);
}

Test(pki, serial_hex)
{
    X509_REQ *r = csr("serial", NULL);
    X509 *c = issue(r);
    char hex[64], small[8];
    const ASN1_INTEGER *sn = X509_get0_serialNumber(c);
    BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
    char *bnhex = BN_bn2hex(bn);

    pki_serial_hex(c, hex, sizeof(hex));
    cr_assert_eq(strlen(hex), 32, "16-byte serials");
    cr_assert_str_eq(hex, bnhex);
    cr_assert(BN_is_negative(bn) == 0, "serial must be positive");
    memset(small, 'x', sizeof(small));
    pki_serial_hex(c, small, sizeof(small));
    cr_assert_str_eq(small, "", "too small a buffer gives an empty string");
    OPENSSL_free(bnhex);
    BN_free(bn);
    X509_free(c);
    X509_REQ_free(r);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

#define N_SERIAL 200
Test(pki, serials_unique_sequential)
{
    static char hex[N_SERIAL][64];
    X509_REQ *r = csr("many", NULL);
    int i;

    for (i = 0; i < N_SERIAL; i++) {
        X509 *c = issue(r);
        pki_serial_hex(c, hex[i], sizeof(hex[i]));
        cr_assert_eq(strlen(hex[i]), 32);
        X509_free(c);
    }
    qsort(hex, N_SERIAL, sizeof(hex[0]), cmp_str);
    for (i = 1; i < N_SERIAL; i++)
        cr_assert_str_neq(hex[i - 1], hex[i], "duplicate serial %s", hex[i]);
    X509_REQ_free(r);
}

#define N_THREADS 4
#define PER_THREAD 60
struct issuer_arg {
    X509_REQ *req;
    char hex[PER_THREAD][64];
    int failures;
    int stored;
};

static void *issuer_thread(void *p)
{
    struct issuer_arg *a = p;
    char err[256];
    int i;

    for (i = 0; i < PER_THREAD; i++) {
        X509 *c = pki_issue(&env.pki, &env.cfg, a->req, err, sizeof(err));
        if (c == NULL) {
            a->failures++;
            continue;
        }
        pki_serial_hex(c, a->hex[i], sizeof(a->hex[i]));
        if (store_put(&env.store, c, err, sizeof(err)) == 0)
            a->stored++;
        X509_free(c);
    }
    return NULL;
}

Test(pki, serials_unique_across_threads)
{
    static struct issuer_arg args[N_THREADS];
    static char all[N_THREADS * PER_THREAD][64];
    pthread_t th[N_THREADS];
    X509_REQ *r = csr("threads", NULL);
    char path[PATH_MAX], *idx, *line;
    size_t idxlen;
    int i, j, n = 0, lines = 0;

    for (i = 0; i < N_THREADS; i++) {
        args[i].req = r;
        cr_assert_eq(pthread_create(&th[i], NULL, issuer_thread, &args[i]), 0);
    }
    for (i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);
    for (i = 0; i < N_THREADS; i++) {
        cr_assert_eq(args[i].failures, 0);
        cr_assert_eq(args[i].stored, PER_THREAD);
        for (j = 0; j < PER_THREAD; j++)
            memcpy(all[n++], args[i].hex[j], 64);
    }
    qsort(all, (size_t)n, sizeof(all[0]), cmp_str);
    for (i = 1; i < n; i++)
        cr_assert_str_neq(all[i - 1], all[i], "duplicate serial %s", all[i]);

    /* the index got exactly one well-formed line per certificate (no interleaving) */
    snprintf(path, sizeof(path), "%s/index.txt", env.dir);
    idx = th_read_file(path, &idxlen);
    cr_assert_not_null(idx);
    for (line = strtok(idx, "\n"); line; line = strtok(NULL, "\n")) {
        cr_assert_eq(strncmp(line, "V\t", 2), 0, "bad index line: %s", line);
        cr_assert_not_null(strstr(line, "\tunknown\t/CN=threads"), "bad index line: %s", line);
        lines++;
    }
    cr_assert_eq(lines, N_THREADS * PER_THREAD);
    free(idx);
    X509_REQ_free(r);
}

Test(pki, csr_without_key_refused)
{
    X509_REQ *r = X509_REQ_new();
    char err[256] = "";

    cr_assert_null(pki_issue(&env.pki, &env.cfg, r, err, sizeof(err)));
    cr_assert_neq(err[0], '\0', "a reason is given");
    X509_REQ_free(r);
}

Test(pki, intermediate_fixture)
{
    struct th_env ie;
    X509_REQ *r;
    X509 *c;
    const unsigned char *p;
    PKCS7 *p7;
    char cn[160];

    th_env_prepare(&ie, "state-int");
    th_env_start(&ie);
    cr_assert_eq(ie.pki.has_intermediate, 1);
    cr_assert_neq(X509_cmp(ie.pki.ca_cert, ie.pki.root_cert), 0);
    cr_assert_gt(name_cn(X509_get_subject_name(ie.pki.ca_cert), cn, sizeof(cn)), 0);
    cr_assert_str_eq(cn, "ndesmock Lab Root CA Issuing CA");
    cr_assert_eq(X509_check_issued(ie.pki.root_cert, ie.pki.ca_cert), X509_V_OK);
    cr_assert_eq(X509_check_issued(ie.pki.ca_cert, ie.pki.ra_sign_cert), X509_V_OK);
    p = ie.pki.getcacert_der;
    p7 = d2i_PKCS7(NULL, &p, (long)ie.pki.getcacert_len);
    cr_assert_not_null(p7);
    cr_assert_eq(sk_X509_num(p7->d.sign->cert), 4, "RA sign, RA enc, issuing CA, root");
    cr_assert_eq(X509_cmp(sk_X509_value(p7->d.sign->cert, 3), ie.pki.root_cert), 0);
    PKCS7_free(p7);
    cr_assert_eq(ie.pki.ca_chain_len, (size_t)(i2d_X509(ie.pki.ca_cert, NULL) +
                                               i2d_X509(ie.pki.root_cert, NULL)));

    r = scep_build_csr(ie.client_key, "int-device", NULL, NULL, EVP_sha256());
    c = pki_issue(&ie.pki, &ie.cfg, r, cn, sizeof(cn));
    cr_assert_not_null(c, "%s", cn);
    cr_assert_eq(X509_NAME_cmp(X509_get_issuer_name(c), X509_get_subject_name(ie.pki.ca_cert)), 0);
    cr_assert(chain_ok(&ie.pki, c));
    cr_assert_not(chain_ok(&env.pki, c), "must not chain to the other lab root");
    X509_free(c);
    X509_REQ_free(r);
    th_env_fini(&ie);
}

/* ---- store ---------------------------------------------------------------------- */

/* ---- pki_start(PKI_LOAD_LATER): the bytes first, the objects at first use -- */

static void *ready_in_thread(void *arg)
{
    struct pki *p = arg;
    int ok = pki_ready(p, NULL, 0) == 0 && p->ra_enc_key != NULL && p->ra_sign_key != NULL &&
             p->ca_cert != NULL && p->cert_md != NULL && p->ext_aki != NULL;

    return ok ? p : NULL;
}

/* Replaces what follows the certificate in STATE/pki/file. */
static void replace_key_block(const char *file, const char *block)
{
    char path[PATH_MAX], *pem, *end;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "%s/pki/%s", env.dir, file);
    pem = th_read_file(path, &n);
    cr_assert_not_null(pem);
    end = strstr(pem, "-----END CERTIFICATE-----\n");
    cr_assert_not_null(end);
    end[strlen("-----END CERTIFICATE-----\n")] = '\0';
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(pem, f);
    fputs(block, f);
    fclose(f);
    free(pem);
}

/* Replaces the certificate block of STATE/pki/FILE with block (the key stays). */
static void replace_cert_block(const char *file, const char *block)
{
    char path[PATH_MAX], *pem, *key;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "%s/pki/%s", env.dir, file);
    pem = th_read_file(path, &n);
    cr_assert_not_null(pem);
    key = strstr(pem, "-----BEGIN PRIVATE KEY-----");
    cr_assert_not_null(key);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(block, f);
    fputs(key, f);
    fclose(f);
    free(pem);
}

Test(pki, later_start_matches_full_load)
{
    struct pki lz;
    char err[512] = "";
    X509_REQ *r = csr("lazy", NULL);
    X509 *c;

    cr_assert_eq(pki_start(&lz, &env.cfg, PKI_LOAD_LATER, err, sizeof(err)), 0, "%s", err);
    /* what is served before the first PKIOperation: a full load's bytes */
    cr_assert_eq(lz.getcacert_len, env.pki.getcacert_len);
    cr_assert_arr_eq(lz.getcacert_der, env.pki.getcacert_der, lz.getcacert_len);
    cr_assert_eq(lz.ra_sign_len, env.pki.ra_sign_len);
    cr_assert_arr_eq(lz.ra_sign_der, env.pki.ra_sign_der, lz.ra_sign_len);
    cr_assert_eq(lz.ra_sign_ias_len, env.pki.ra_sign_ias_len);
    cr_assert_arr_eq(lz.ra_sign_ias, env.pki.ra_sign_ias, lz.ra_sign_ias_len);
    cr_assert_eq(lz.ca_chain_len, env.pki.ca_chain_len);
    cr_assert_arr_eq(lz.ca_chain_der, env.pki.ca_chain_der, lz.ca_chain_len);
    cr_assert_str_eq(lz.ca_md5, env.pki.ca_md5);
    cr_assert_str_eq(lz.challenge, env.pki.challenge);
    cr_assert_str_eq(lz.ca_cert_path, env.pki.ca_cert_path);
    cr_assert_null(lz.ra_enc_key, "made at first use");

    cr_assert_eq(pki_ready(&lz, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(pki_ready(&lz, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(X509_cmp(lz.ca_cert, env.pki.ca_cert), 0);
    cr_assert_eq(X509_cmp(lz.ra_sign_cert, env.pki.ra_sign_cert), 0);
    cr_assert_eq(X509_cmp(lz.ra_enc_cert, env.pki.ra_enc_cert), 0);
    cr_assert_eq(EVP_PKEY_eq(lz.ca_key, env.pki.ca_key), 1);
    cr_assert_eq(EVP_PKEY_eq(lz.ra_sign_key, env.pki.ra_sign_key), 1);
    cr_assert_eq(EVP_PKEY_eq(lz.ra_enc_key, env.pki.ra_enc_key), 1);
    cr_assert_null(lz.tls_cert, "without PKI_LOAD_TLS the TLS pair is not read");
    cr_assert_null(lz.tls_key);
    c = pki_issue(&lz, &env.cfg, r, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    cr_assert(chain_ok(&env.pki, c));
    X509_free(c);
    X509_REQ_free(r);
    pki_free(&lz);
}

Test(pki, first_use_from_many_threads)
{
    struct pki lz;
    pthread_t t[4];
    void *res;
    char err[512] = "";
    int i;

    cr_assert_eq(pki_start(&lz, &env.cfg, PKI_LOAD_LATER | PKI_LOAD_TLS, err, sizeof(err)), 0,
                 "%s", err);
    /* four workers meet the first PKIOperation at once: one decodes, all see it all */
    for (i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, ready_in_thread, &lz), 0);
    for (i = 0; i < 4; i++) {
        pthread_join(t[i], &res);
        cr_assert_not_null(res, "thread %d saw a PKI not fully loaded", i);
    }
    cr_assert_not_null(lz.tls_cert);
    cr_assert(X509_check_private_key(lz.tls_cert, lz.tls_key));
    pki_free(&lz);
}

Test(pki, undecodable_key_fails_the_start)
{
    struct pki lz;
    char err[512] = "";

    /* valid PEM, not a key: found at start, before anything is served */
    replace_key_block("ra-enc.pem", "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n");
    cr_assert_eq(pki_start(&lz, &env.cfg, PKI_LOAD_LATER, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "/pki/ra-enc.pem: cannot read certificate and key"), "%s", err);
    cr_assert_eq(pki_ready(&lz, NULL, 0), -1);
    pki_free(&lz);
    err[0] = '\0';
    cr_assert_eq(pki_load_or_create(&lz, &env.cfg, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "/pki/ra-enc.pem: cannot read certificate and key"), "%s", err);
    pki_free(&lz);
}

Test(pki, certificate_not_der_fails_the_start)
{
    struct pki lz;
    char err[512] = "";

    replace_cert_block("ra-enc.pem", "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n");
    cr_assert_eq(pki_start(&lz, &env.cfg, PKI_LOAD_LATER, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "/pki/ra-enc.pem: cannot read certificate and key"), "%s", err);
    pki_free(&lz);
}

Test(pki, missing_key_block_fails_the_start)
{
    struct pki lz;
    char err[512] = "";

    replace_key_block("ra-sign.pem", "no key here\n");
    cr_assert_eq(pki_start(&lz, &env.cfg, PKI_LOAD_LATER, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "/pki/ra-sign.pem: cannot read certificate and key"), "%s", err);
    pki_free(&lz);
}

Test(pki, undecodable_certificate_fails_at_first_use)
{
    struct pki lz;
    char err[512] = "";

    /* shaped like a Certificate (SEQUENCE { SEQUENCE, SEQUENCE, BIT STRING })
     * but empty: read at start, refused when the object is made, for good */
    replace_cert_block("ra-enc.pem",
                       "-----BEGIN CERTIFICATE-----\nMAcwADAAAwEA\n-----END CERTIFICATE-----\n");
    cr_assert_eq(pki_start(&lz, &env.cfg, PKI_LOAD_LATER, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert_eq(pki_ready(&lz, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "/pki/ra-enc.pem: cannot read certificate and key"), "%s", err);
    err[0] = '\0';
    cr_assert_eq(pki_ready(&lz, err, sizeof(err)), -1, "a failure is final");
    cr_assert_not_null(strstr(err, "/pki/ra-enc.pem"), "%s", err);
    pki_free(&lz);
}

Test(pki, free_drops_a_pending_load)
{
    struct pki lz;
    char err[512] = "";

    cr_assert_eq(pki_start(&lz, &env.cfg, PKI_LOAD_LATER, err, sizeof(err)), 0, "%s",
                 err);
    pki_free(&lz);
    cr_assert_null(lz.loader);
    cr_assert_eq(pki_ready(&lz, NULL, 0), -1, "a freed PKI is not ready");
}

Test(store, put_writes_pem_and_index_line)
{
    X509_REQ *r = csr("stored.example", NULL);
    X509 *c = issue(r), *back;
    char serial[64], path[PATH_MAX], err[256], *idx, want[512], exp[32];
    size_t len;
    BIO *b;
    struct tm tm;

    pki_serial_hex(c, serial, sizeof(serial));
    cr_assert_eq(store_put(&env.store, c, err, sizeof(err)), 0, "%s", err);
    snprintf(path, sizeof(path), "%s/certs/%s/%s.pem", env.dir, serial + strlen(serial) - 2, serial);
    b = BIO_new_file(path, "r");
    cr_assert_not_null(b, "%s not written", path);
    back = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    cr_assert_not_null(back);
    cr_assert_eq(X509_cmp(back, c), 0);
    X509_free(back);

    snprintf(path, sizeof(path), "%s/index.txt", env.dir);
    idx = th_read_file(path, &len);
    cr_assert_not_null(idx);
    cr_assert(ASN1_TIME_to_tm(X509_get0_notAfter(c), &tm));
    snprintf(exp, sizeof(exp), "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    snprintf(want, sizeof(want), "V\t%s\t\t%s\tunknown\t/CN=stored.example\n", exp, serial);
    cr_assert_str_eq(idx, want);
    free(idx);

    /* no temporary file left behind */
    snprintf(path, sizeof(path), "%s/certs/.%s.tmp", env.dir, serial);
    cr_assert_neq(access(path, F_OK), 0);
    X509_free(c);
    X509_REQ_free(r);
}

Test(store, one_line_per_cert_appended)
{
    X509_REQ *r = csr("n", NULL);
    char path[PATH_MAX], err[256], *idx, *p;
    size_t len;
    int i, lines = 0;

    for (i = 0; i < 5; i++) {
        X509 *c = issue(r);
        cr_assert_eq(store_put(&env.store, c, err, sizeof(err)), 0, "%s", err);
        X509_free(c);
    }
    /* reopening appends, it does not truncate */
    store_close(&env.store);
    cr_assert_eq(store_open(&env.store, env.dir, err, sizeof(err)), 0, "%s", err);
    {
        X509 *c = issue(r);
        cr_assert_eq(store_put(&env.store, c, err, sizeof(err)), 0, "%s", err);
        X509_free(c);
    }
    snprintf(path, sizeof(path), "%s/index.txt", env.dir);
    idx = th_read_file(path, &len);
    for (p = idx; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 6);
    free(idx);
    X509_REQ_free(r);
}

Test(store, open_errors)
{
    struct store st;
    char err[256] = "";

    cr_assert_eq(store_open(&st, "/nonexistent/dir/for/ndesmock", err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "/nonexistent/dir/for/ndesmock/certs"), "%s", err);
    store_close(&st);
}
