/* pki.c - lab PKI: generate on first run, load afterwards, precompute the
 * GetCACert body and the RA signer identifiers used by every CertRep.
 * Start-up from existing files can be split (pki_start, pki_ready): the
 * certificates' bytes are read and the keys checked at start, the objects and
 * provider keys are made at first use (OpenSSL 3.0 decodes every certificate's
 * public key through its decoder framework: 1 ms and 0.3 MB of RSS for the
 * first, 0.2 ms for each further one). */
/* d2i_RSAPrivateKey and RSA_get0_* (deprecated in 3.0) decode an RSA key in
 * about 0.1 ms where OpenSSL 3's decoder framework takes 4-8 ms; MD5()
 * (deprecated too) hashes without a fetch. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "ndesmock/pki.h"
#include "ndesmock/util.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/err.h>
#include <openssl/md5.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static void ossl_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];

    ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, errlen, "%s: %s", what, e ? buf : "unknown error");
    ERR_clear_error();
}

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[PKI_PATH];
    char *p;

    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return -1;
    for (p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, mode) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, mode) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Writes data to path via a temporary file and rename(), with the given mode. */
static int write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[PKI_PATH + 16];
    int fd, rc = -1;
    const char *p = data;

    snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto out;
        }
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) != 0)
        goto out;
    rc = 0;
out:
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

static int save_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long len;
    int rc = -1;

    if (b == NULL)
        return -1;
    if (cert && !PEM_write_bio_X509(b, cert))
        goto out;
    if (key && !PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL))
        goto out;
    len = BIO_get_mem_data(b, &data);
    rc = write_atomic(path, data, (size_t)len, key ? 0600 : 0644);
out:
    BIO_free(b);
    return rc;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ex;
    int ok;

    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ex == NULL)
        return 0;
    ok = X509_add_ext(cert, ex, -1);
    X509_EXTENSION_free(ex);
    return ok;
}

static void random_serial(ASN1_INTEGER *sn)
{
    unsigned char b[16];
    BIGNUM *bn;

    RAND_bytes(b, sizeof(b));
    b[0] &= 0x7f;
    b[0] |= 0x10;
    bn = BN_bin2bn(b, sizeof(b), NULL);
    BN_to_ASN1_INTEGER(bn, sn);
    BN_free(bn);
}

/* Builds a certificate valid from now+nb_days to now+na_days (negative = in
 * the past); issuer NULL = self-signed. Returns NULL on failure. */
static X509 *make_cert_window(EVP_PKEY *key, const char *cn, const char *org, X509 *issuer,
                              EVP_PKEY *issuer_key, long nb_days, long na_days, const char *bc,
                              const char *ku, const char *eku, const char *san)
{
    X509 *c = X509_new();
    X509_NAME *n = X509_NAME_new();

    if (c == NULL || n == NULL)
        goto fail;
    X509_set_version(c, 2);
    random_serial(X509_get_serialNumber(c));
    if (org && *org)
        X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)org, -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(c, n);
    X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : n);
    if (nb_days == 0)
        X509_gmtime_adj(X509_getm_notBefore(c), -3600);
    else
        X509_time_adj_ex(X509_getm_notBefore(c), (int)nb_days, 0, NULL);
    X509_time_adj_ex(X509_getm_notAfter(c), (int)na_days, 0, NULL);
    X509_set_pubkey(c, key);
    if (bc && !add_ext(c, issuer ? issuer : c, NID_basic_constraints, bc))
        goto fail;
    if (ku && !add_ext(c, issuer ? issuer : c, NID_key_usage, ku))
        goto fail;
    if (eku && !add_ext(c, issuer ? issuer : c, NID_ext_key_usage, eku))
        goto fail;
    if (san && !add_ext(c, issuer ? issuer : c, NID_subject_alt_name, san))
        goto fail;
    if (!add_ext(c, issuer ? issuer : c, NID_subject_key_identifier, "hash"))
        goto fail;
    if (issuer && !add_ext(c, issuer, NID_authority_key_identifier, "keyid:always"))
        goto fail;
    if (!X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()))
        goto fail;
    X509_NAME_free(n);
    return c;
fail:
    X509_NAME_free(n);
    X509_free(c);
    return NULL;
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *org, X509 *issuer,
                       EVP_PKEY *issuer_key, long days, const char *bc, const char *ku,
                       const char *eku, const char *san)
{
    return make_cert_window(key, cn, org, issuer, issuer_key, 0, days, bc, ku, eku, san);
}

/* The faulty set scenarios point at (STATE/pki/faulty/): expired RA certs, a
 * valid, an expired and a no-Client-Auth policy-module certificate, and an
 * intermediate CA (not self-signed) to put in a "trusted root" list. One key
 * serves them all: they are material to be checked, never used to sign. */
static int generate_faulty(struct pki *pki, const struct config *cfg, char *err, size_t errlen)
{
    static const struct {
        const char *file, *cn, *bc, *ku, *eku, *san;
        long nb, na;
        int self;
    } set[] = {
        {"ra-sign-expired.pem", "-MSCEP-RA", NULL, "critical,digitalSignature",
         "1.3.6.1.4.1.311.20.2.1", NULL, -760, -30, 0},
        {"ra-enc-expired.pem", "-MSCEP-RA", NULL, "critical,keyEncipherment",
         "1.3.6.1.4.1.311.20.2.1", NULL, -760, -30, 0},
        {"policy.pem", "-NDESPolicy", NULL, "critical,digitalSignature,keyEncipherment",
         "clientAuth,serverAuth", NULL, 0, 3650, 0},
        {"policy-expired.pem", "-NDESPolicy", NULL, "critical,digitalSignature,keyEncipherment",
         "clientAuth,serverAuth", NULL, -400, -1, 0},
        {"policy-no-client-auth.pem", "-NDESPolicy", NULL,
         "critical,digitalSignature,keyEncipherment", "serverAuth", NULL, 0, 3650, 0},
        {"intermediate.pem", " Issuing CA 2", "critical,CA:TRUE,pathlen:0",
         "critical,keyCertSign,cRLSign", NULL, NULL, 0, 1825, 0},
        /* TLS faults: expired, wrong host name, a chain that does not reach the lab root */
        {"tls-expired.pem", "=localhost", "critical,CA:FALSE", "critical,digitalSignature,keyEncipherment",
         "serverAuth", "DNS:localhost,IP:127.0.0.1,IP:::1", -400, -1, 0},
        {"tls-wrong-host.pem", "=ndes.wrong-host.example", "critical,CA:FALSE",
         "critical,digitalSignature,keyEncipherment", "serverAuth", "DNS:ndes.wrong-host.example",
         0, 3650, 0},
        {"tls-untrusted.pem", "=localhost", "critical,CA:FALSE",
         "critical,digitalSignature,keyEncipherment", "serverAuth",
         "DNS:localhost,IP:127.0.0.1,IP:::1", 0, 3650, 1},
    };
    char dir[PKI_PATH + 16], path[PKI_PATH + 64], cn[160];
    EVP_PKEY *key = NULL;
    size_t i;
    int rc = -1;

    snprintf(dir, sizeof(dir), "%s/faulty", pki->dir);
    snprintf(path, sizeof(path), "%s/tls-untrusted.pem", dir);
    if (access(path, R_OK) == 0)
        return 0;
    if (mkdir_p(dir, 0755) != 0) {
        snprintf(err, errlen, "%s: cannot create: %s", dir, strerror(errno));
        return -1;
    }
    key = EVP_RSA_gen((unsigned)cfg->pki.key_bits);
    if (key == NULL) {
        ossl_err(err, errlen, "RSA key generation");
        return -1;
    }
    for (i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
        X509 *c;
        if (set[i].cn[0] == ' ')
            snprintf(cn, sizeof(cn), "%s%s", cfg->pki.ca_cn, set[i].cn);
        else if (set[i].cn[0] == '=')
            snprintf(cn, sizeof(cn), "%s", set[i].cn + 1);
        else
            snprintf(cn, sizeof(cn), "%s%s", cfg->pki.host_name, set[i].cn);
        c = make_cert_window(key, cn, cfg->pki.org, set[i].self ? NULL : pki->root_cert,
                             set[i].self ? NULL : pki->ca_key_for_faulty, set[i].nb, set[i].na,
                             set[i].bc, set[i].ku, set[i].eku, set[i].san);
        snprintf(path, sizeof(path), "%s/%s", dir, set[i].file);
        if (c == NULL || save_pem(path, c, NULL) != 0) {
            X509_free(c);
            snprintf(err, errlen, "%s: cannot generate", path);
            goto out;
        }
        X509_free(c);
    }
    snprintf(path, sizeof(path), "%s/key.pem", dir); /* the one key of the set (TLS faults) */
    if (save_pem(path, NULL, key) != 0) {
        snprintf(err, errlen, "%s: cannot write", path);
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_free(key);
    return rc;
}

/* The RSA key in PKCS#8 DER, through the low-level decoder (no provider, no
 * decoder search). Returns 1 with *out set (the caller frees it), 0 when the
 * DER is a PKCS#8 key of another type, -1 when it does not decode. */
static int pkcs8_rsa(const unsigned char *der, long len, RSA **out)
{
    const unsigned char *p = der, *kp;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, len);
    const X509_ALGOR *alg = NULL;
    const ASN1_OBJECT *obj = NULL;
    int kl, rc = -1;

    *out = NULL;
    if (p8 == NULL || !PKCS8_pkey_get0(NULL, &kp, &kl, &alg, p8))
        goto out;
    X509_ALGOR_get0(&obj, NULL, NULL, alg);
    if (OBJ_obj2nid(obj) != NID_rsaEncryption)
        rc = 0;
    else if ((*out = d2i_RSAPrivateKey(NULL, &kp, kl)) != NULL)
        rc = 1;
out:
    PKCS8_PRIV_KEY_INFO_free(p8);
    ERR_clear_error();
    return rc;
}

/* A provider-side key built straight from an RSA key's numbers (0.1 ms where
 * the decoders take milliseconds). Returns a new key or NULL. */
static EVP_PKEY *rsa_to_pkey(const RSA *r)
{
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *prm = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *k = NULL;
    const BIGNUM *n, *e, *d, *f1, *f2, *e1, *e2, *c1;

    RSA_get0_key(r, &n, &e, &d);
    RSA_get0_factors(r, &f1, &f2);
    RSA_get0_crt_params(r, &e1, &e2, &c1);
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL || !n || !e || !d || !f1 || !f2 || !e1 || !e2 || !c1 ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR1, f1) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR2, f2) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT1, e1) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT2, e2) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, c1) ||
        (prm = OSSL_PARAM_BLD_to_param(bld)) == NULL)
        goto out;
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_KEYPAIR, prm) != 1)
        k = NULL;
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(prm);
    OSSL_PARAM_BLD_free(bld);
    ERR_clear_error();
    return k;
}

/* ---- reading the PEM files ------------------------------------------------ */

/* The files that hold a certificate and its key, by slot. */
enum { PAIR_ROOT, PAIR_ISSUING, PAIR_RA_SIGN, PAIR_RA_ENC, PAIR_N };
static const char *const pair_file[PAIR_N] = {"root.pem", "issuing.pem", "ra-sign.pem",
                                              "ra-enc.pem"};

/* One PEM file's blocks: the certificate's DER (exactly one TLV) and the
 * block after it (the key), and that key already decoded when it is RSA
 * PKCS#8 (pki_start checks it). All owned by the struct; pem_pair_clear()
 * wipes the key. */
struct pem_pair {
    unsigned char *cert, *key;
    long cert_len, key_len;
    char *key_name;
    RSA *rsa;
};

static void pem_pair_clear(struct pem_pair *pp)
{
    OPENSSL_free(pp->cert);
    if (pp->key)
        OPENSSL_clear_free(pp->key, (size_t)pp->key_len);
    OPENSSL_free(pp->key_name);
    RSA_free(pp->rsa); /* clears the private numbers */
    memset(pp, 0, sizeof(*pp));
}

/* Reads dir/file into *pp: the first CERTIFICATE block (as PEM_read_bio_X509
 * finds it), then the next block. Base64 only, no ASN.1 decoding. Returns 1,
 * 0 when the file cannot be opened, -1 when it is not such a pair. */
static int read_pem_pair(const char *dir, const char *file, struct pem_pair *pp)
{
    char path[PKI_PATH + 32], *hdr = NULL;
    struct der_span s;
    struct der_tlv t;
    BIO *b;
    int rc = -1;

    memset(pp, 0, sizeof(*pp));
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    b = BIO_new_file(path, "r");
    if (b == NULL) {
        ERR_clear_error();
        return 0;
    }
    if (PEM_bytes_read_bio(&pp->cert, &pp->cert_len, NULL, PEM_STRING_X509, b, NULL, NULL) != 1 ||
        PEM_read_bio(b, &pp->key_name, &hdr, &pp->key, &pp->key_len) != 1)
        goto out;
    /* the block is one DER Certificate and nothing else (its bytes are served
     * as they are): SEQUENCE { tbsCertificate, signatureAlgorithm, signature } */
    s.p = pp->cert;
    s.len = (size_t)pp->cert_len;
    if (der_read_tag(&s, 0x30, &t) != 0 || s.len != 0)
        goto out;
    s = der_inner(&t);
    if (der_read_tag(&s, 0x30, &t) != 0 || der_read_tag(&s, 0x30, &t) != 0 ||
        der_read_tag(&s, 0x03, &t) != 0 || s.len != 0)
        goto out;
    rc = 1;
out:
    OPENSSL_free(hdr);
    BIO_free(b);
    if (rc != 1)
        pem_pair_clear(pp);
    ERR_clear_error();
    return rc;
}

/* The certificate of a pair, or NULL. Its encoding must come back byte for
 * byte: the DER read from the file is what GetCACert sends, the object's is
 * what CertReps carry. */
static X509 *pair_cert(const struct pem_pair *pp)
{
    const unsigned char *p = pp->cert;
    X509 *x = d2i_X509(NULL, &p, pp->cert_len);
    unsigned char *der = NULL;
    int n = x ? i2d_X509(x, &der) : -1;

    if (n != pp->cert_len || memcmp(der, pp->cert, (size_t)n) != 0) {
        X509_free(x);
        x = NULL;
    }
    OPENSSL_free(der);
    ERR_clear_error();
    return x;
}

/* Decodes the key of a pair when it is RSA PKCS#8 (pp->rsa). Returns 1 when
 * it is, 0 when it is another kind of key (left to pair_key), -1 when it
 * does not decode. */
static int pair_rsa(struct pem_pair *pp)
{
    if (pp->rsa != NULL)
        return 1;
    if (strcmp(pp->key_name, "PRIVATE KEY") != 0)
        return 0;
    return pkcs8_rsa(pp->key, pp->key_len, &pp->rsa);
}

/* The private key of a pair: an RSA PKCS#8 key straight from its numbers,
 * anything else through OpenSSL's decoders. Returns a new key or NULL. */
static EVP_PKEY *pair_key(struct pem_pair *pp)
{
    EVP_PKEY *k = NULL;
    int r = pair_rsa(pp);

    if (r == 1)
        k = rsa_to_pkey(pp->rsa);
    else if (r == 0) { /* not RSA PKCS#8: let OpenSSL's decoders have it */
        const unsigned char *p = pp->key;
        k = d2i_AutoPrivateKey(NULL, &p, pp->key_len);
    }
    ERR_clear_error();
    return k;
}

/* Reads and decodes dir/file. Returns 1 with *cert and *key set (the caller
 * owns them), 0 when the file cannot be opened, -1 when it cannot be decoded. */
static int load_pair(const char *dir, const char *file, X509 **cert, EVP_PKEY **key)
{
    struct pem_pair pp;
    int r = read_pem_pair(dir, file, &pp);

    *cert = NULL;
    *key = NULL;
    if (r == 1 && ((*cert = pair_cert(&pp)) == NULL || (*key = pair_key(&pp)) == NULL)) {
        X509_free(*cert);
        *cert = NULL;
        r = -1;
    }
    pem_pair_clear(&pp);
    return r;
}

/* Loads or generates one key pair + certificate; the PEM file holds both. */
static int ensure(struct pki *pki, const struct config *cfg, const char *file, X509 **cert,
                  EVP_PKEY **key, const char *cn, X509 *issuer, EVP_PKEY *ikey, long days,
                  const char *bc, const char *ku, const char *eku, const char *san, char *err,
                  size_t errlen)
{
    char path[PKI_PATH + 32];
    int r = load_pair(pki->dir, file, cert, key);

    if (r == 1)
        return 0;
    if (r < 0) {
        snprintf(err, errlen, "%s/%s: cannot read certificate and key (delete it to regenerate)",
                 pki->dir, file);
        return -1;
    }
    *key = EVP_RSA_gen((unsigned)cfg->pki.key_bits);
    if (*key == NULL) {
        ossl_err(err, errlen, "RSA key generation");
        return -1;
    }
    *cert = make_cert(*key, cn, cfg->pki.org, issuer, ikey, days, bc, ku, eku, san);
    if (*cert == NULL) {
        ossl_err(err, errlen, "certificate generation");
        return -1;
    }
    snprintf(path, sizeof(path), "%s/%s", pki->dir, file);
    if (save_pem(path, *cert, *key) != 0) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int der_of(X509 *c, uint8_t **out, size_t *len)
{
    int n = i2d_X509(c, NULL);
    unsigned char *p;

    if (n <= 0)
        return -1;
    *out = malloc((size_t)n);
    if (*out == NULL)
        return -1;
    p = *out;
    i2d_X509(c, &p);
    *len = (size_t)n;
    return 0;
}

/* Degenerate certs-only PKCS#7 SignedData holding n certificates, given as
 * objects (certs) or as DER (der, len). */
static int build_certs_only(struct util_buf *b, X509 *const *certs, const uint8_t *const *der,
                            const size_t *len, int n)
{
    static const uint8_t oid_signed[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02};
    static const uint8_t oid_data[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01};
    size_t outer, ctx, sd, seq, cs;
    int i;

    outer = b->len;
    der_oid(b, oid_signed, sizeof(oid_signed));
    ctx = b->len;
    sd = b->len;
    der_int_small(b, 1);
    der_header(b, 0x31, 0); /* digestAlgorithms: empty SET */
    seq = b->len;
    der_oid(b, oid_data, sizeof(oid_data));
    der_wrap(b, seq, 0x30);
    cs = b->len;
    for (i = 0; i < n; i++) {
        if (certs) {
            int l = i2d_X509(certs[i], NULL);
            unsigned char *p;
            if (l <= 0 || (p = util_buf_grow(b, (size_t)l)) == NULL)
                return -1;
            i2d_X509(certs[i], &p);
        } else if (util_buf_append(b, der[i], len[i]) != 0) {
            return -1;
        }
    }
    der_wrap(b, cs, 0xa0);  /* [0] IMPLICIT certificates */
    der_header(b, 0x31, 0); /* signerInfos: empty SET */
    der_wrap(b, sd, 0x30);
    der_wrap(b, ctx, 0xa0);
    der_wrap(b, outer, 0x30);
    return b->failed ? -1 : 0;
}

int pki_certs_only_der(X509 *const *certs, int n, uint8_t **out, size_t *len)
{
    struct util_buf b;

    util_buf_init(&b);
    if (build_certs_only(&b, certs, NULL, NULL, n) != 0) {
        util_buf_free(&b);
        return -1;
    }
    *out = util_buf_steal(&b, len);
    return 0;
}

/* DER IssuerAndSerialNumber of a DER certificate, read from its bytes: the
 * issuer Name and serial INTEGER are copied as they are. *out is malloc'd. */
static int ias_of_der(const uint8_t *der, size_t len, uint8_t **out, size_t *outlen)
{
    struct der_span s = {der, len}, c;
    struct der_tlv cert, tbs, t, serial, issuer;
    struct util_buf b;

    if (der_read_tag(&s, 0x30, &cert) != 0)
        return -1;
    c = der_inner(&cert);
    if (der_read_tag(&c, 0x30, &tbs) != 0)
        return -1;
    c = der_inner(&tbs);
    if (der_read(&c, &t) != 0 || (t.tag == 0xa0 && der_read(&c, &t) != 0) || t.tag != 0x02)
        return -1; /* [0] version, then serialNumber */
    serial = t;
    if (der_read_tag(&c, 0x30, &t) != 0 || der_read_tag(&c, 0x30, &issuer) != 0)
        return -1; /* signature AlgorithmIdentifier, issuer Name */
    util_buf_init(&b);
    util_buf_append(&b, issuer.tlv, issuer.tlv_len);
    util_buf_append(&b, serial.tlv, serial.tlv_len);
    der_wrap(&b, 0, 0x30);
    if (b.failed) {
        util_buf_free(&b);
        return -1;
    }
    *out = util_buf_steal(&b, outlen);
    return 0;
}

/* Everything served or written before the keys are needed, from the
 * certificates' DER alone (der[PAIR_*]; der[PAIR_ISSUING] only with an
 * intermediate): the GetCACert body, the RA signer's DER and
 * IssuerAndSerialNumber, the CA chain, the root's MD5 thumbprint. */
static int precompute(struct pki *pki, const uint8_t *const der[PAIR_N], const size_t len[PAIR_N],
                      char *err, size_t errlen)
{
    const int ca = pki->has_intermediate ? PAIR_ISSUING : PAIR_ROOT;
    const int slot[4] = {PAIR_RA_SIGN, PAIR_RA_ENC, ca, PAIR_ROOT};
    const uint8_t *gc[4];
    size_t gl[4];
    int i, n = pki->has_intermediate ? 4 : 3;
    struct util_buf b;
    unsigned char md5[MD5_DIGEST_LENGTH];
    char hex[33];

    /* GetCACert: RA signing, RA encryption, issuing CA (and root). */
    for (i = 0; i < n; i++) {
        gc[i] = der[slot[i]];
        gl[i] = len[slot[i]];
    }
    util_buf_init(&b);
    if (build_certs_only(&b, NULL, gc, gl, n) != 0) {
        util_buf_free(&b);
        snprintf(err, errlen, "cannot encode GetCACert");
        return -1;
    }
    pki->getcacert_der = util_buf_steal(&b, &pki->getcacert_len);

    pki->ra_sign_der = malloc(len[PAIR_RA_SIGN]);
    if (pki->ra_sign_der == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(pki->ra_sign_der, der[PAIR_RA_SIGN], len[PAIR_RA_SIGN]);
    pki->ra_sign_len = len[PAIR_RA_SIGN];
    if (ias_of_der(der[PAIR_RA_SIGN], len[PAIR_RA_SIGN], &pki->ra_sign_ias,
                   &pki->ra_sign_ias_len) != 0) {
        snprintf(err, errlen, "cannot encode RA issuerAndSerialNumber");
        return -1;
    }

    util_buf_init(&b);
    util_buf_append(&b, der[ca], len[ca]);
    if (pki->has_intermediate)
        util_buf_append(&b, der[PAIR_ROOT], len[PAIR_ROOT]);
    if (b.failed) {
        util_buf_free(&b);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pki->ca_chain_der = util_buf_steal(&b, &pki->ca_chain_len);

    /* the digest of the DER, as X509_digest() computes it; MD5() fetches
     * nothing (OpenSSL's first fetch builds its name map: 0.5 ms, left to
     * the fetches that start-up needs anyway) */
    MD5(der[PAIR_ROOT], len[PAIR_ROOT], md5);
    util_hex_upper(md5, 16, hex);
    snprintf(pki->ca_md5, sizeof(pki->ca_md5), "%.8s %.8s %.8s %.8s", hex, hex + 8, hex + 16,
             hex + 24);
    return 0;
}

static int load_challenge(struct pki *pki, char *err, size_t errlen)
{
    char path[PKI_PATH + 32];
    FILE *f;
    uint8_t rnd[8];

    snprintf(path, sizeof(path), "%s/challenge", pki->dir);
    f = fopen(path, "r");
    if (f) {
        char line[64] = "";
        if (fgets(line, sizeof(line), f))
            line[strcspn(line, "\r\n")] = '\0';
        fclose(f);
        if (line[0]) {
            snprintf(pki->challenge, sizeof(pki->challenge), "%s", line);
            return 0;
        }
    }
    RAND_bytes(rnd, sizeof(rnd));
    util_hex_upper(rnd, sizeof(rnd), pki->challenge);
    {
        char line[80];
        int n = snprintf(line, sizeof(line), "%s\n", pki->challenge);
        if (write_atomic(path, line, (size_t)n, 0600) != 0) {
            snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static X509_EXTENSION *template_ext(int nid, const char *value)
{
    return X509V3_EXT_conf_nid(NULL, NULL, nid, value);
}

static int build_template(struct pki *pki, const struct config *cfg, char *err, size_t errlen)
{
    static const struct { unsigned bit; const char *name; } kus[] = {
        {KU_DIGITAL_SIGNATURE, "digitalSignature"}, {KU_NON_REPUDIATION, "nonRepudiation"},
        {KU_KEY_ENCIPHERMENT, "keyEncipherment"},   {KU_DATA_ENCIPHERMENT, "dataEncipherment"},
        {KU_KEY_AGREEMENT, "keyAgreement"},         {KU_KEY_CERT_SIGN, "keyCertSign"},
        {KU_CRL_SIGN, "cRLSign"},
    };
    char buf[1024] = "";
    size_t i;
    int j;

    if (cfg->tmpl.key_usage) {
        snprintf(buf, sizeof(buf), "critical");
        for (i = 0; i < sizeof(kus) / sizeof(kus[0]); i++)
            if (cfg->tmpl.key_usage & kus[i].bit)
                snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ",%s", kus[i].name);
        pki->ext_ku = template_ext(NID_key_usage, buf);
        if (pki->ext_ku == NULL)
            goto fail;
    }
    if (cfg->tmpl.eku_count) {
        buf[0] = '\0';
        for (j = 0; j < cfg->tmpl.eku_count; j++)
            snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", j ? "," : "",
                     cfg->tmpl.eku[j]);
        pki->ext_eku = template_ext(NID_ext_key_usage, buf);
        if (pki->ext_eku == NULL)
            goto fail;
    }
    pki->ext_bc = template_ext(NID_basic_constraints, "critical,CA:FALSE");
    {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, pki->ca_cert, NULL, NULL, NULL, 0);
        pki->ext_aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier,
                                           "keyid:always");
    }
    if (pki->ext_bc == NULL || pki->ext_aki == NULL)
        goto fail;
    pki->cert_md = EVP_MD_fetch(NULL, cfg->tmpl.digest, NULL);
    if (pki->cert_md == NULL)
        goto fail;
    return 0;
fail:
    ossl_err(err, errlen, "certificate template");
    return -1;
}

/* What issuance needs besides the keys: the issuer name, the serial prefix,
 * the extension template. */
static int finish_objects(struct pki *pki, const struct config *cfg, char *err, size_t errlen)
{
    pki->issuer_name = X509_get_subject_name(pki->ca_cert);
    /* getrandom(), not RAND_bytes(): the DRBG's first use costs ~1 ms of start-up */
    if (getrandom(pki->serial_prefix, sizeof(pki->serial_prefix), 0) !=
        (ssize_t)sizeof(pki->serial_prefix))
        RAND_bytes(pki->serial_prefix, sizeof(pki->serial_prefix));
    pki->serial_prefix[0] = (uint8_t)((pki->serial_prefix[0] & 0x3f) | 0x40);
    return build_template(pki, cfg, err, errlen);
}

/* A part of the PKI is missing (first run): generate it, loading the rest, all
 * on this thread. */
static int create_all(struct pki *pki, const struct config *cfg, char *err, size_t errlen)
{
    char ra_cn[128], tls_cn[] = "localhost";
    uint8_t *der[PAIR_N] = {NULL};
    size_t len[PAIR_N] = {0};
    int i, rc = -1;

    snprintf(ra_cn, sizeof(ra_cn), "%s-MSCEP-RA", cfg->pki.host_name);
    if (ensure(pki, cfg, "root.pem", &pki->root_cert, &pki->ca_key, cfg->pki.ca_cn, NULL, NULL,
               cfg->pki.ca_validity_days, "critical,CA:TRUE", "critical,keyCertSign,cRLSign",
               NULL, NULL, err, errlen) != 0)
        return -1;
    pki->ca_key_for_faulty = pki->ca_key;
    if (generate_faulty(pki, cfg, err, errlen) != 0)
        return -1;
    pki->ca_key_for_faulty = NULL;
    if (cfg->pki.intermediate) {
        char icn[160];
        EVP_PKEY *root_key = pki->ca_key;
        snprintf(icn, sizeof(icn), "%s Issuing CA", cfg->pki.ca_cn);
        pki->ca_key = NULL;
        if (ensure(pki, cfg, "issuing.pem", &pki->ca_cert, &pki->ca_key, icn, pki->root_cert,
                   root_key, cfg->pki.ca_validity_days, "critical,CA:TRUE,pathlen:0",
                   "critical,keyCertSign,cRLSign", NULL, NULL, err, errlen) != 0) {
            EVP_PKEY_free(root_key);
            return -1;
        }
        EVP_PKEY_free(root_key); /* the root key is not needed at run time */
        pki->has_intermediate = 1;
    } else {
        pki->ca_cert = pki->root_cert;
        X509_up_ref(pki->ca_cert);
    }
    if (ensure(pki, cfg, "ra-sign.pem", &pki->ra_sign_cert, &pki->ra_sign_key, ra_cn,
               pki->ca_cert, pki->ca_key, cfg->pki.ra_validity_days, NULL,
               "critical,digitalSignature", "1.3.6.1.4.1.311.20.2.1", NULL, err, errlen) != 0)
        return -1;
    if (ensure(pki, cfg, "ra-enc.pem", &pki->ra_enc_cert, &pki->ra_enc_key, ra_cn, pki->ca_cert,
               pki->ca_key, cfg->pki.ra_validity_days, NULL, "critical,keyEncipherment",
               "1.3.6.1.4.1.311.20.2.1", NULL, err, errlen) != 0)
        return -1;
    if (ensure(pki, cfg, "tls.pem", &pki->tls_cert, &pki->tls_key, tls_cn, pki->ca_cert,
               pki->ca_key, cfg->pki.ra_validity_days, "critical,CA:FALSE",
               "critical,digitalSignature,keyEncipherment", "serverAuth",
               "DNS:localhost,IP:127.0.0.1,IP:::1", err, errlen) != 0)
        return -1;

    /* A plain CA certificate file for clients and `openssl verify`. */
    if (access(pki->ca_cert_path, R_OK) != 0 && save_pem(pki->ca_cert_path, pki->root_cert, NULL) != 0) {
        snprintf(err, errlen, "%s: cannot write: %s", pki->ca_cert_path, strerror(errno));
        return -1;
    }

    /* the same precomputation as a start from the files, from the objects' DER */
    if (der_of(pki->root_cert, &der[PAIR_ROOT], &len[PAIR_ROOT]) != 0 ||
        (pki->has_intermediate &&
         der_of(pki->ca_cert, &der[PAIR_ISSUING], &len[PAIR_ISSUING]) != 0) ||
        der_of(pki->ra_sign_cert, &der[PAIR_RA_SIGN], &len[PAIR_RA_SIGN]) != 0 ||
        der_of(pki->ra_enc_cert, &der[PAIR_RA_ENC], &len[PAIR_RA_ENC]) != 0) {
        snprintf(err, errlen, "cannot encode the lab certificates");
        goto out;
    }
    if (precompute(pki, (const uint8_t *const *)der, len, err, errlen) != 0)
        goto out;
    rc = finish_objects(pki, cfg, err, errlen);
out:
    for (i = 0; i < PAIR_N; i++)
        free(der[i]);
    return rc;
}

/* ---- start-up: the files are there, decode them when first needed -------- */

/* What pki_start() left for pki_ready(): the PEM blocks it read, and the lock
 * the first pki_ready() call holds while it decodes them. Owned by struct pki. */
struct pki_loader {
    pthread_mutex_t mu;
    const struct config *cfg;   /* borrowed: pki_start()'s caller keeps it alive */
    unsigned flags;
    struct pem_pair pair[PAIR_N];
    char err[PKI_PATH + 160];   /* why loading failed; written once, under mu */
};

/* 1 when slot i's key is used at run time: with an intermediate the root key
 * only ever signs the issuing CA (at generation), so it is not decoded. */
static int key_used(const struct pki *pki, int i)
{
    return !(i == PAIR_ROOT && pki->has_intermediate);
}

/* Decodes the certificates and keys read by pki_start() and builds what
 * issuance needs. Returns 0, or -1 with a reason in err. */
static int decode_pending(struct pki *pki, struct pki_loader *l, char *err, size_t errlen)
{
    X509 **certs[PAIR_N] = {&pki->root_cert, &pki->ca_cert, &pki->ra_sign_cert,
                            &pki->ra_enc_cert};
    EVP_PKEY **keys[PAIR_N] = {&pki->ca_key, &pki->ca_key, &pki->ra_sign_key, &pki->ra_enc_key};
    int i;

    for (i = 0; i < PAIR_N; i++) {
        struct pem_pair *pp = &l->pair[i];
        if (pp->cert == NULL)
            continue; /* no intermediate */
        if ((*certs[i] = pair_cert(pp)) == NULL ||
            (key_used(pki, i) && (*keys[i] = pair_key(pp)) == NULL)) {
            snprintf(err, errlen, "%s/%s: cannot read certificate and key (delete it to regenerate)",
                     pki->dir, pair_file[i]);
            return -1;
        }
    }
    if (!pki->has_intermediate) {
        pki->ca_cert = pki->root_cert;
        X509_up_ref(pki->ca_cert);
    }
    if ((l->flags & PKI_LOAD_TLS) &&
        load_pair(pki->dir, "tls.pem", &pki->tls_cert, &pki->tls_key) != 1) {
        snprintf(err, errlen, "%s/tls.pem: cannot read certificate and key (delete it to regenerate)",
                 pki->dir);
        return -1;
    }
    return finish_objects(pki, l->cfg, err, errlen);
}

/* 1 when every file of the PKI is there, so that nothing has to be generated. */
static int all_present(const struct pki *pki, const struct config *cfg)
{
    static const char *const files[] = {"root.pem", "ra-sign.pem", "ra-enc.pem", "tls.pem",
                                        "ca.pem", "faulty/tls-untrusted.pem", "issuing.pem"};
    char path[PKI_PATH + 32];
    size_t i, n = sizeof(files) / sizeof(files[0]) - (cfg->pki.intermediate ? 0 : 1);

    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", pki->dir, files[i]);
        if (access(path, R_OK) != 0)
            return 0;
    }
    return 1;
}

int pki_start(struct pki *pki, const struct config *cfg, unsigned flags, char *err,
              size_t errlen)
{
    const uint8_t *der[PAIR_N] = {NULL};
    size_t len[PAIR_N] = {0};
    struct pki_loader *l;
    int i;

    memset(pki, 0, sizeof(*pki));
    atomic_init(&pki->state, PKI_EMPTY);
    if (snprintf(pki->dir, sizeof(pki->dir), "%s/pki", cfg->state_dir) >= (int)sizeof(pki->dir)) {
        snprintf(err, errlen, "state directory path too long");
        return -1;
    }
    if (mkdir_p(pki->dir, 0700) != 0) {
        snprintf(err, errlen, "%s: cannot create: %s", pki->dir, strerror(errno));
        return -1;
    }
    snprintf(pki->ca_cert_path, sizeof(pki->ca_cert_path), "%s/ca.pem", pki->dir);
    if (!all_present(pki, cfg)) {
        if (create_all(pki, cfg, err, errlen) != 0 || load_challenge(pki, err, errlen) != 0)
            return -1;
        atomic_store_explicit(&pki->state, PKI_READY, memory_order_release);
        return 0;
    }

    /* Everything is on disk: read the PEM blocks, check that the keys decode
     * (RSA: the low-level decoder, microseconds) and precompute what GetCACert
     * serves from the certificates' bytes. The certificate objects and the
     * provider keys are made by pki_ready(): now, or at first use. */
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&l->mu, NULL);
    l->cfg = cfg;
    l->flags = flags;
    pki->loader = l;
    pki->has_intermediate = cfg->pki.intermediate != 0;
    for (i = 0; i < PAIR_N; i++) {
        if (i == PAIR_ISSUING && !pki->has_intermediate)
            continue;
        if (read_pem_pair(pki->dir, pair_file[i], &l->pair[i]) != 1 ||
            (key_used(pki, i) && pair_rsa(&l->pair[i]) < 0)) {
            snprintf(err, errlen, "%s/%s: cannot read certificate and key (delete it to regenerate)",
                     pki->dir, pair_file[i]);
            return -1;
        }
        der[i] = l->pair[i].cert;
        len[i] = (size_t)l->pair[i].cert_len;
    }
    if (precompute(pki, der, len, err, errlen) != 0 || load_challenge(pki, err, errlen) != 0)
        return -1;
    atomic_store_explicit(&pki->state, PKI_LOADING, memory_order_release);
    if (flags & PKI_LOAD_LATER)
        return 0;
    return pki_ready(pki, err, errlen);
}

int pki_ready(struct pki *pki, char *err, size_t errlen)
{
    struct pki_loader *l = pki->loader;
    int st = atomic_load_explicit(&pki->state, memory_order_acquire);

    if (st == PKI_LOADING) {
        pthread_mutex_lock(&l->mu);
        st = atomic_load_explicit(&pki->state, memory_order_acquire);
        if (st == PKI_LOADING) { /* the first call: decode; the others wait on mu */
            int i;
            st = decode_pending(pki, l, l->err, sizeof(l->err)) == 0 ? PKI_READY : PKI_FAILED;
            for (i = 0; i < PAIR_N; i++)
                pem_pair_clear(&l->pair[i]); /* wipes the keys' DER */
            ERR_clear_error();
            atomic_store_explicit(&pki->state, st, memory_order_release);
        }
        pthread_mutex_unlock(&l->mu);
    }
    if (st == PKI_READY)
        return 0;
    if (err)
        snprintf(err, errlen, "%s", l && l->err[0] ? l->err : "lab PKI not loaded");
    return -1;
}

int pki_load_or_create(struct pki *pki, const struct config *cfg, char *err, size_t errlen)
{
    return pki_start(pki, cfg, PKI_LOAD_TLS, err, errlen);
}

void pki_free(struct pki *pki)
{
    struct pki_loader *l;
    int i;

    if (pki == NULL)
        return;
    l = pki->loader;
    if (l) {
        for (i = 0; i < PAIR_N; i++)
            pem_pair_clear(&l->pair[i]);
        pthread_mutex_destroy(&l->mu);
        free(l);
    }
    X509_free(pki->root_cert);
    X509_free(pki->ca_cert);
    EVP_PKEY_free(pki->ca_key);
    X509_free(pki->ra_sign_cert);
    EVP_PKEY_free(pki->ra_sign_key);
    X509_free(pki->ra_enc_cert);
    EVP_PKEY_free(pki->ra_enc_key);
    X509_free(pki->tls_cert);
    EVP_PKEY_free(pki->tls_key);
    free(pki->getcacert_der);
    free(pki->ra_sign_der);
    free(pki->ra_sign_ias);
    free(pki->ca_chain_der);
    X509_EXTENSION_free(pki->ext_ku);
    X509_EXTENSION_free(pki->ext_eku);
    X509_EXTENSION_free(pki->ext_bc);
    X509_EXTENSION_free(pki->ext_aki);
    EVP_MD_free((EVP_MD *)pki->cert_md);
    memset(pki, 0, sizeof(*pki));
}
