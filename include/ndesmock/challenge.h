/* challenge.h - NDES one-time challenge passwords: a cache of PasswordMax
 * outstanding passwords (default 5), each valid PasswordValidity minutes
 * (default 60), single use, cleared by a reset (iisreset). Thread-safe. */
#ifndef NDESMOCK_CHALLENGE_H
#define NDESMOCK_CHALLENGE_H

#include <stddef.h>

struct otp_cache;

struct otp_cache *otp_new(int max, double validity_s, int length_bytes);
void otp_free(struct otp_cache *c);

/* Mints a password (upper-case hex, 2*length_bytes chars) into out.
 * Returns 0, or 1 when the cache is full (NDES shows "The password cache is full"). */
int otp_mint(struct otp_cache *c, char *out, size_t outcap);

/* 1 if pw is an outstanding, unexpired password (it is used up), else 0. */
int otp_consume(struct otp_cache *c, const char *pw);

void otp_clear(struct otp_cache *c);
int otp_outstanding(struct otp_cache *c);
double otp_validity(const struct otp_cache *c);

#endif
