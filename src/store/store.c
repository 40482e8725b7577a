/* store.c - issued certificates: one PEM per serial, append-only index.txt. */
#include "ndesmock/store.h"
#include "ndesmock/pki.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int store_open(struct store *st, const char *state_dir, char *err, size_t errlen)
{
    char path[600];

    memset(st, 0, sizeof(*st));
    st->index_fd = -1;
    if (snprintf(st->certs_dir, sizeof(st->certs_dir), "%s/certs", state_dir) >=
        (int)sizeof(st->certs_dir)) {
        snprintf(err, errlen, "state directory path too long");
        return -1;
    }
    if (mkdir(st->certs_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create: %s", st->certs_dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof(path), "%s/index.txt", state_dir);
    st->index_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (st->index_fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

void store_close(struct store *st)
{
    if (st->index_fd >= 0)
        close(st->index_fd);
    st->index_fd = -1;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int store_cert_path(const char *certs_dir, const char *hex, char *out, size_t outcap)
{
    size_t n = strlen(hex);

    if (n < 2 || n > 64 || strspn(hex, "0123456789ABCDEF") != n)
        return -1;
    if (snprintf(out, outcap, "%s/%s/%s.pem", certs_dir, hex + n - 2, hex) >= (int)outcap)
        return -1;
    return 0;
}

static int shard_index(const char *hex)
{
    size_t n = strlen(hex);
    int hi = hex[n - 2], lo = hex[n - 1];

    hi = hi <= '9' ? hi - '0' : hi - 'A' + 10;
    lo = lo <= '9' ? lo - '0' : lo - 'A' + 10;
    return hi * 16 + lo;
}

int store_put(struct store *st, X509 *cert, char *err, size_t errlen)
{
    char serial[80], path[700], tmp[720], line[1400], subj[1024], exp[32];
    BIO *b = NULL;
    char *pem;
    long pemlen;
    int fd = -1, rc = -1, n;
    const ASN1_TIME *na = X509_get0_notAfter(cert);
    struct tm tm;

    pki_serial_hex(cert, serial, sizeof(serial));
    if (store_cert_path(st->certs_dir, serial, path, sizeof(path)) != 0) {
        snprintf(err, errlen, "bad serial %s", serial);
        return -1;
    }
    {
        int sh = shard_index(serial);
        if (!st->made[sh]) {
            char d[600];
            snprintf(d, sizeof(d), "%s/%s", st->certs_dir, serial + strlen(serial) - 2);
            if (mkdir(d, 0755) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "%s: %s", d, strerror(errno));
                return -1;
            }
            st->made[sh] = 1;
        }
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    b = BIO_new(BIO_s_mem());
    if (b == NULL || !PEM_write_bio_X509(b, cert))
        goto out;
    pemlen = BIO_get_mem_data(b, &pem);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write_all(fd, pem, (size_t)pemlen) != 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    /* index.txt, as `openssl ca` writes it: V, expiry, (revocation), serial, file, DN. */
    X509_NAME_oneline(X509_get_subject_name(cert), subj, sizeof(subj));
    if (ASN1_TIME_to_tm(na, &tm))
        snprintf(exp, sizeof(exp), "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    else
        snprintf(exp, sizeof(exp), "000101000000Z");
    n = snprintf(line, sizeof(line), "V\t%s\t\t%s\tunknown\t%s\n", exp, serial, subj);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        line[sizeof(line) - 2] = '\n';
        n = (int)sizeof(line) - 1;
    }
    /* One write() on an O_APPEND descriptor: lines from threads never interleave. */
    if (write_all(st->index_fd, line, (size_t)n) != 0) {
        snprintf(err, errlen, "index.txt: %s", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    BIO_free(b);
    return rc;
}
