/* fuzz_common.h - shared set-up for the libFuzzer targets: OpenSSL providers,
 * a lab PKI created once, a throw-away certificate store, and a SCEP context.
 *
 * Environment:
 *   NDESMOCK_FUZZ_STATE  state directory holding the lab PKI (STATE/pki). Created
 *                        on first use; fuzz/run.sh points it at build/fuzz/state so
 *                        the seeds it makes with scepreq are encrypted to the same
 *                        RA certificate. Unset: a temporary directory, removed at exit.
 * The certificate store (issued certificates) is always a private temporary
 * directory, wiped every FZ_STORE_WIPE issuances and removed at exit, so disk
 * use stays bounded however long the fuzzer runs. */
#ifndef NDESMOCK_FUZZ_COMMON_H
#define NDESMOCK_FUZZ_COMMON_H

#include "ndesmock/config.h"
#include "ndesmock/pki.h"
#include "ndesmock/scep.h"
#include "ndesmock/store.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FZ_STORE_WIPE 256

static struct config fz_cfg;
static struct pki fz_pki;
static struct store fz_store;
static struct scep_ctx fz_ctx;
static char fz_tmp_state[64];  /* temporary PKI state dir (when not from the environment) */
static char fz_store_dir[64];  /* temporary store dir */
static unsigned long fz_issued;

static void fz_die(const char *what, const char *why)
{
    fprintf(stderr, "fuzz init: %s: %s\n", what, why);
    abort();
}

static void fz_providers(void)
{
    /* The harnesses build single-DES envelopes with EVP, which needs "legacy"
     * (the server decrypts them without it: util/oldcrypto.c); loading it
     * switches the implicit "default" off: load both. */
    if (OSSL_PROVIDER_load(NULL, "default") == NULL || OSSL_PROVIDER_load(NULL, "legacy") == NULL)
        fz_die("OpenSSL", "cannot load the default and legacy providers");
}

static int fz_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void fz_rm_rf(const char *dir)
{
    if (dir[0])
        nftw(dir, fz_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void fz_cleanup(void)
{
    store_close(&fz_store);
    fz_rm_rf(fz_store_dir);
    fz_rm_rf(fz_tmp_state);
}

/* Removes every issued certificate and empties index.txt. */
static void fz_store_wipe(void)
{
    DIR *d = opendir(fz_store.certs_dir);
    struct dirent *e;
    char path[1200];

    if (d) {
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", fz_store.certs_dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    if (fz_store.index_fd >= 0 && ftruncate(fz_store.index_fd, 0) != 0)
        perror("fuzz: ftruncate index.txt");
}

/* Call after each scep_pkioperation: keeps the store small. */
static void fz_after_issue(const struct scep_outcome *out)
{
    if (out->serial[0] && ++fz_issued % FZ_STORE_WIPE == 0)
        fz_store_wipe();
}

/* policy: the challenge policy (accept-any lets valid seeds reach issuance). */
static void fz_lab_init(enum challenge_policy policy)
{
    const char *state = getenv("NDESMOCK_FUZZ_STATE");
    char err[512];

    fz_providers();
    config_defaults(&fz_cfg);
    fz_cfg.challenge_policy = policy;
    fz_cfg.access_log = 0;
    /* The smallest key the configuration allows: every decodable input costs an RSA
     * decryption and a CertRep signature, and key size is not what is under test. */
    fz_cfg.pki.key_bits = 1024;
    if (state == NULL || state[0] == '\0') {
        snprintf(fz_tmp_state, sizeof(fz_tmp_state), "/tmp/ndesmock-fuzz-pki-XXXXXX");
        if (mkdtemp(fz_tmp_state) == NULL)
            fz_die("mkdtemp", strerror(errno));
        state = fz_tmp_state;
    } else if (mkdir(state, 0755) != 0 && errno != EEXIST) {
        fz_die(state, strerror(errno));
    }
    if (strlen(state) >= sizeof(fz_cfg.state_dir) - 64)
        fz_die(state, "path too long");
    snprintf(fz_cfg.state_dir, sizeof(fz_cfg.state_dir), "%s", state);
    snprintf(fz_store_dir, sizeof(fz_store_dir), "/tmp/ndesmock-fuzz-store-XXXXXX");
    if (mkdtemp(fz_store_dir) == NULL)
        fz_die("mkdtemp", strerror(errno));
    atexit(fz_cleanup);
    if (pki_load_or_create(&fz_pki, &fz_cfg, err, sizeof(err)) != 0)
        fz_die("lab PKI", err);
    if (store_open(&fz_store, fz_store_dir, err, sizeof(err)) != 0)
        fz_die("store", err);
    if (scep_ctx_init(&fz_ctx, &fz_cfg, &fz_pki, &fz_store, err, sizeof(err)) != 0)
        fz_die("SCEP context", err);
    ERR_clear_error();
}

/* Oracle: whatever we answer as a CertRep must parse as one and carry a
 * signature that verifies with the RA signing certificate. */
static void fz_check_certrep(const struct scep_outcome *out)
{
    struct scep_reply r;

    if (out->kind != SCEP_OUT_CERTREP)
        return;
    if (out->body.len == 0) {
        fprintf(stderr, "fuzz oracle: CertRep outcome with an empty body (%s)\n", out->reason);
        abort();
    }
    if (scep_parse_reply(out->body.data, out->body.len, fz_pki.ra_sign_cert, NULL, NULL, &r) != 0 ||
        !r.signature_ok || r.msg_type != SCEP_MSG_CERTREP || r.status != out->status) {
        fprintf(stderr, "fuzz oracle: our CertRep does not parse or verify (%s)\n", out->reason);
        abort();
    }
    scep_reply_clear(&r);
}

#endif
