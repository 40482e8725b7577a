/* otp.c - the NDES password cache. */
#include "ndesmock/challenge.h"
#include "ndesmock/util.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OTP_LEN 129

struct otp {
    char pw[OTP_LEN];
    uint64_t created_ns;
};

struct otp_cache {
    pthread_mutex_t mu;
    struct otp *slots;
    int max, n, bytes;
    double validity_s;
};

struct otp_cache *otp_new(int max, double validity_s, int length_bytes)
{
    struct otp_cache *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->max = max > 0 ? max : 1;
    c->slots = calloc((size_t)c->max, sizeof(*c->slots));
    if (c->slots == NULL) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->validity_s = validity_s;
    c->bytes = length_bytes > 0 && length_bytes <= 64 ? length_bytes : 8;
    return c;
}

void otp_free(struct otp_cache *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c->slots);
    free(c);
}

static void expire_locked(struct otp_cache *c)
{
    uint64_t now = util_now_ns();
    int i, o = 0;

    for (i = 0; i < c->n; i++)
        if ((double)(now - c->slots[i].created_ns) / 1e9 < c->validity_s)
            c->slots[o++] = c->slots[i];
    c->n = o;
}

int otp_mint(struct otp_cache *c, char *out, size_t outcap)
{
    uint8_t rnd[64];
    int rc = 1;

    pthread_mutex_lock(&c->mu);
    expire_locked(c);
    if (c->n < c->max && outcap > (size_t)c->bytes * 2) {
        RAND_bytes(rnd, c->bytes);
        util_hex_upper(rnd, (size_t)c->bytes, c->slots[c->n].pw);
        c->slots[c->n].created_ns = util_now_ns();
        snprintf(out, outcap, "%s", c->slots[c->n].pw);
        c->n++;
        rc = 0;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int otp_consume(struct otp_cache *c, const char *pw)
{
    size_t l = strlen(pw);
    int i, ok = 0;

    pthread_mutex_lock(&c->mu);
    expire_locked(c);
    for (i = 0; i < c->n; i++) {
        if (strlen(c->slots[i].pw) == l && CRYPTO_memcmp(c->slots[i].pw, pw, l) == 0) {
            c->slots[i] = c->slots[--c->n];
            ok = 1;
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return ok;
}

void otp_clear(struct otp_cache *c)
{
    pthread_mutex_lock(&c->mu);
    c->n = 0;
    pthread_mutex_unlock(&c->mu);
}

int otp_outstanding(struct otp_cache *c)
{
    int n;

    pthread_mutex_lock(&c->mu);
    expire_locked(c);
    n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}

double otp_validity(const struct otp_cache *c)
{
    return c->validity_s;
}
