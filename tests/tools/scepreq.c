/* scepreq.c - a SCEP request maker and reply checker for tests, benchmarks and
 * fuzz seeds. It uses the library's client side (OpenSSL PKCS#7), not the
 * server's CertRep writer.
 *
 *   scepreq make  --ra RA_ENC.pem [--ra MORE.pem] --out REQ.der [--key-out K.pem]
 *                 [--cert-out C.pem] [--key K.pem] [--cn CN] [--challenge PW]
 *                 [--san DNS:x] [--cipher des|des3|aes128|aes192|aes256]
 *                 [--digest sha1|sha256|sha512|md5] [--type 19|17|20|21|22]
 *                 [--tamper] [--count N --out-dir DIR] [--key-type rsa|ec] [--tid ID]
 *   scepreq reply --in REPLY.der --ra-sign RA_SIGN.pem --key K.pem --cert C.pem
 *                 [--issued-out ISSUED.pem]
 *
 * `reply` prints one line: status= fail_info= hresult= msg_type= tid=
 * nonce_ok= sig_ok= signing_time= sig_alg= digest= cipher= content_len= certs=
 * and exits 0 when it could parse a CertRep. */
#include "ndesmock/scep.h"

#include <getopt.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *c = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

    if (f)
        fclose(f);
    if (c == NULL)
        fprintf(stderr, "scepreq: %s: cannot read a PEM certificate\n", path);
    return c;
}

static EVP_PKEY *read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;

    if (f)
        fclose(f);
    if (k == NULL)
        fprintf(stderr, "scepreq: %s: cannot read a PEM private key\n", path);
    return k;
}

static int write_file(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(d, 1, n, f) == n;

    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "scepreq: %s: cannot write\n", path);
    return ok ? 0 : -1;
}

static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *d = NULL;
    long l;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (l = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
        goto out;
    d = malloc((size_t)l + 1);
    if (d && fread(d, 1, (size_t)l, f) != (size_t)l) {
        free(d);
        d = NULL;
    }
    *n = (size_t)l;
out:
    if (f)
        fclose(f);
    return d;
}

static const EVP_CIPHER *cipher_by_name(const char *n)
{
    const char *ossl = strcasecmp(n, "des") == 0      ? "DES-CBC"
                       : strcasecmp(n, "des3") == 0   ? "DES-EDE3-CBC"
                       : strcasecmp(n, "aes128") == 0 ? "AES-128-CBC"
                       : strcasecmp(n, "aes192") == 0 ? "AES-192-CBC"
                       : strcasecmp(n, "aes256") == 0 ? "AES-256-CBC"
                       : strcasecmp(n, "aes") == 0    ? "AES-128-CBC"
                                                      : n;
    return EVP_CIPHER_fetch(NULL, ossl, NULL);
}

static int cmd_make(int argc, char **argv)
{
    static const struct option o[] = {
        {"ra", 1, 0, 'r'},      {"out", 1, 0, 'o'},     {"key-out", 1, 0, 'K'},
        {"cert-out", 1, 0, 'C'}, {"key", 1, 0, 'k'},     {"cn", 1, 0, 'n'},
        {"challenge", 1, 0, 'p'}, {"san", 1, 0, 's'},   {"cipher", 1, 0, 'c'},
        {"digest", 1, 0, 'd'},  {"type", 1, 0, 't'},    {"tamper", 0, 0, 'T'},
        {"count", 1, 0, 'N'},   {"out-dir", 1, 0, 'D'}, {"cert", 1, 0, 'x'},
        {"key-type", 1, 0, 'y'},  {"tid", 1, 0, 'I'},
        {0, 0, 0, 0},
    };
    X509 *ra[8];
    int nra = 0, type = SCEP_MSG_PKCSREQ, tamper = 0, c, rc = 1, count = 1, i;
    const char *out = NULL, *key_out = NULL, *cert_out = NULL, *key_in = NULL, *cert_in = NULL;
    const char *cn = "scepreq", *challenge = NULL, *san = NULL, *cipher = "des3", *digest = "sha256";
    const char *out_dir = NULL, *key_type = "rsa", *tid_arg = NULL;
    EVP_PKEY *key = NULL;
    X509 *self = NULL;
    const EVP_CIPHER *ciph = NULL;
    const EVP_MD *md = NULL;

    while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
        switch (c) {
        case 'r': if (nra < 8 && (ra[nra] = read_cert(optarg)) != NULL) nra++; else return 2; break;
        case 'o': out = optarg; break;
        case 'K': key_out = optarg; break;
        case 'C': cert_out = optarg; break;
        case 'k': key_in = optarg; break;
        case 'x': cert_in = optarg; break;
        case 'n': cn = optarg; break;
        case 'p': challenge = optarg; break;
        case 's': san = optarg; break;
        case 'c': cipher = optarg; break;
        case 'd': digest = optarg; break;
        case 't': type = atoi(optarg); break;
        case 'T': tamper = 1; break;
        case 'N': count = atoi(optarg); break;
        case 'D': out_dir = optarg; break;
        case 'y': key_type = optarg; break;
        case 'I': tid_arg = optarg; break;
        default: return 2;
        }
    }
    if (nra == 0 || (!out && !out_dir) || count < 1) {
        fprintf(stderr, "scepreq make: need --ra and --out (or --count/--out-dir)\n");
        return 2;
    }
    ciph = cipher_by_name(cipher);
    md = EVP_MD_fetch(NULL, digest, NULL);
    if (ciph == NULL || md == NULL) {
        fprintf(stderr, "scepreq make: unknown cipher or digest\n");
        return 2;
    }
    key = key_in                          ? read_key(key_in)
          : strcmp(key_type, "ec") == 0   ? EVP_EC_gen("P-256")
                                          : EVP_RSA_gen(2048);
    if (key == NULL)
        goto out;
    self = cert_in ? read_cert(cert_in) : scep_build_selfsigned(key, cn);
    if (self == NULL)
        goto out;
    for (i = 0; i < count; i++) {
        struct scep_build b;
        struct util_buf buf, content;
        char tid[64], subj[160], path[600];
        X509_REQ *csr = NULL;
        uint8_t rnd[16];

        memset(&b, 0, sizeof(b));
        util_buf_init(&buf);
        util_buf_init(&content);
        RAND_bytes(rnd, sizeof(rnd));
        util_hex_upper(rnd, 16, tid);
        if (tid_arg && count == 1)
            snprintf(tid, sizeof(tid), "%s", tid_arg);
        snprintf(subj, sizeof(subj), count > 1 ? "%s-%d-%.8s" : "%s", cn, i, tid);
        if (type == SCEP_MSG_PKCSREQ || type == SCEP_MSG_RENEWALREQ) {
            unsigned char *p = NULL;
            int l;
            csr = scep_build_csr(key, subj, challenge, san, EVP_sha256());
            if (csr == NULL || (l = i2d_X509_REQ(csr, &p)) <= 0)
                goto out;
            util_buf_append(&content, p, (size_t)l);
            OPENSSL_free(p);
            X509_REQ_free(csr);
        } else {
            /* IssuerAndSerialNumber of the RA cert: enough for GetCRL/GetCert tests */
            PKCS7_ISSUER_AND_SERIAL ias;
            unsigned char *p = NULL;
            int l;
            ias.issuer = X509_get_issuer_name(ra[0]);
            ias.serial = X509_get_serialNumber(ra[0]);
            if ((l = i2d_PKCS7_ISSUER_AND_SERIAL(&ias, &p)) <= 0)
                goto out;
            util_buf_append(&content, p, (size_t)l);
            OPENSSL_free(p);
        }
        b.msg_type = type;
        b.signer = self;
        b.signer_key = key;
        b.md = md;
        b.cipher = ciph;
        b.recipients = ra;
        b.nrecipients = nra;
        b.content = content.data;
        b.content_len = content.len;
        b.tid = tid;
        memcpy(b.nonce, rnd, sizeof(b.nonce));
        if (scep_build_request(&b, &buf) != 0) {
            fprintf(stderr, "scepreq make: cannot build the request\n");
            goto out;
        }
        if (tamper) /* flip a bit in the signature at the end */
            buf.data[buf.len - 10] ^= 0x01;
        if (out_dir)
            snprintf(path, sizeof(path), "%s/req-%06d.der", out_dir, i);
        else
            snprintf(path, sizeof(path), "%s", out);
        if (write_file(path, buf.data, buf.len) != 0)
            goto out;
        util_buf_free(&buf);
        util_buf_free(&content);
    }
    if (key_out) {
        FILE *f = fopen(key_out, "w");
        if (!f || !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL))
            goto out;
        fclose(f);
    }
    if (cert_out) {
        FILE *f = fopen(cert_out, "w");
        if (!f || !PEM_write_X509(f, self))
            goto out;
        fclose(f);
    }
    rc = 0;
out:
    EVP_PKEY_free(key);
    X509_free(self);
    for (i = 0; i < nra; i++)
        X509_free(ra[i]);
    EVP_CIPHER_free((EVP_CIPHER *)ciph);
    EVP_MD_free((EVP_MD *)md);
    return rc;
}

static int cmd_reply(int argc, char **argv)
{
    static const struct option o[] = {
        {"in", 1, 0, 'i'}, {"ra-sign", 1, 0, 'r'}, {"key", 1, 0, 'k'}, {"cert", 1, 0, 'c'},
        {"issued-out", 1, 0, 'o'}, {0, 0, 0, 0},
    };
    const char *in = NULL, *ra = NULL, *keyp = NULL, *certp = NULL, *issued_out = NULL;
    unsigned char *d;
    size_t n;
    X509 *ras, *cert;
    EVP_PKEY *key;
    struct scep_reply r;
    int c;

    while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
        switch (c) {
        case 'i': in = optarg; break;
        case 'r': ra = optarg; break;
        case 'k': keyp = optarg; break;
        case 'c': certp = optarg; break;
        case 'o': issued_out = optarg; break;
        default: return 2;
        }
    }
    if (!in || !ra || !keyp || !certp) {
        fprintf(stderr, "scepreq reply: need --in --ra-sign --key --cert\n");
        return 2;
    }
    d = read_file(in, &n);
    ras = read_cert(ra);
    cert = read_cert(certp);
    key = read_key(keyp);
    if (!d || !ras || !cert || !key)
        return 1;
    if (scep_parse_reply(d, n, ras, cert, key, &r) != 0) {
        printf("not-a-certrep\n");
        return 1;
    }
    printf("status=%s fail_info=%s hresult=%ld msg_type=%d tid=%s sig_ok=%d signing_time=%d "
           "sig_alg=%s digest=%s cipher=%s content_len=%zu certs=%d\n",
           scep_pki_status_str(r.status), scep_fail_info_str(r.fail_info),
           r.has_hresult ? r.hresult : 0, r.msg_type, r.tid, r.signature_ok, r.has_signing_time,
           OBJ_nid2sn(r.sig_alg_nid), OBJ_nid2sn(r.digest_nid),
           r.cipher_nid ? OBJ_nid2sn(r.cipher_nid) : "-", r.content_len,
           r.certs ? sk_X509_num(r.certs) : 0);
    if (issued_out && r.certs && sk_X509_num(r.certs) > 0) {
        FILE *f = fopen(issued_out, "w");
        if (f) {
            PEM_write_X509(f, sk_X509_value(r.certs, 0));
            fclose(f);
        }
    }
    scep_reply_clear(&r);
    free(d);
    X509_free(ras);
    X509_free(cert);
    EVP_PKEY_free(key);
    return 0;
}

int main(int argc, char **argv)
{
    struct scep_ctx ctx;
    struct config cfg;
    char err[128];
    int rc;

    OSSL_PROVIDER_load(NULL, "default");
    OSSL_PROVIDER_load(NULL, "legacy");
    config_defaults(&cfg);
    /* registers the SCEP attribute OIDs */
    if (scep_ctx_init(&ctx, &cfg, NULL, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "scepreq: %s\n", err);
        return 1;
    }
    if (argc >= 2 && strcmp(argv[1], "make") == 0) {
        rc = cmd_make(argc - 1, argv + 1);
    } else if (argc >= 2 && strcmp(argv[1], "reply") == 0) {
        rc = cmd_reply(argc - 1, argv + 1);
    } else {
        fprintf(stderr, "usage: scepreq make|reply ... (see the comment at the top of scepreq.c)\n");
        rc = 2;
    }
    scep_ctx_free(&ctx);
    return rc;
}
