/* ntlm.h - private to src/http: the NTLM handshake mscep_admin offers, enough
 * for lab credentials (NTLMv2 responses checked against the configured user
 * and password). */
#ifndef HTTP_NTLM_H
#define HTTP_NTLM_H

#include <stddef.h>
#include <stdint.h>

/* The server challenge for a connection: derived from a per-process secret
 * and the peer's address and port, so the handshake needs no state (the
 * three messages travel on one connection). */
void ntlm_challenge_for(const char *peer, int port, uint8_t out[8]);

/* Builds the base64 CHALLENGE message (Type 2) for a NEGOTIATE (Type 1).
 * Returns 0, or -1 when msg is not a Type 1 message. */
int ntlm_type2(const uint8_t *msg, size_t len, const uint8_t challenge[8], const char *domain,
               const char *host, char *out_b64, size_t outcap);

/* Checks an AUTHENTICATE message (Type 3): 1 if the user (any case, domain
 * ignored) is want_user and the NTLMv2 response proves want_password; 0 if
 * not; -1 if msg is not a Type 3 message. user_out gets "DOMAIN\user". */
int ntlm_verify_type3(const uint8_t *msg, size_t len, const uint8_t challenge[8],
                      const char *want_user, const char *want_password, char *user_out,
                      size_t user_cap);

#endif
