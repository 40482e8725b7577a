/* scep.h - SCEP (RFC 8894) messages as NDES speaks them: request decoding,
 * CertRep building, and the PKIOperation service that ties them to the PKI.
 * Protocol outcomes (SUCCESS, FAILURE, PENDING, "IIS 500") are data in
 * struct scep_outcome; C return codes are for our own malfunctions only. */
#ifndef NDESMOCK_SCEP_H
#define NDESMOCK_SCEP_H

#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ndesmock/config.h"
#include "ndesmock/pki.h"
#include "ndesmock/store.h"
#include "ndesmock/util.h"

enum scep_msg_type {
    SCEP_MSG_NONE = 0,
    SCEP_MSG_CERTREP = 3,
    SCEP_MSG_RENEWALREQ = 17,
    SCEP_MSG_PKCSREQ = 19,
    SCEP_MSG_CERTPOLL = 20, /* GetCertInitial */
    SCEP_MSG_GETCERT = 21,
    SCEP_MSG_GETCRL = 22,
};
const char *scep_msg_type_str(int t);

enum scep_pki_status {
    SCEP_STATUS_NONE = -1,
    SCEP_STATUS_SUCCESS = 0,
    SCEP_STATUS_FAILURE = 2,
    SCEP_STATUS_PENDING = 3,
};
const char *scep_pki_status_str(int s);

enum scep_fail_info {
    SCEP_FAIL_NONE = -1,
    SCEP_FAIL_BADALG = 0,
    SCEP_FAIL_BADMESSAGECHECK = 1,
    SCEP_FAIL_BADREQUEST = 2,
    SCEP_FAIL_BADTIME = 3,
    SCEP_FAIL_BADCERTID = 4,
};
const char *scep_fail_info_str(int f);

/* HRESULTs NDES puts in szOID_ENROLL_SCEP_ERROR (signed decimal). */
#define SCEP_HR_E_INVALIDARG (-2147024809L)         /* 0x80070057: GetCRL (captured) */
#define SCEP_HR_E_ACCESSDENIED (-2147024891L)       /* 0x80070005: password refused (inferred) */
#define SCEP_HR_NTE_BAD_SIGNATURE (-2146893818L)    /* 0x80090006 */
#define SCEP_HR_NTE_BAD_ALGID (-2146893816L)        /* 0x80090008 */
#define SCEP_HR_CERTSRV_E_UNSUPPORTED_CERT_TYPE (-2146875392L) /* 0x80094800 */
#define SCEP_HR_CERTSRV_E_KEY_LENGTH (-2146875375L) /* 0x80094811 */

/* Why a request could not be decoded far enough for a CertRep. */
enum scep_decode {
    SCEP_DECODE_OK = 0,
    SCEP_DECODE_MALFORMED,     /* not a SignedData pkiMessage: no CertRep possible */
    SCEP_DECODE_BAD_SIGNATURE, /* CertRep FAILURE badMessageCheck */
    SCEP_DECODE_BAD_ALG,       /* CertRep FAILURE badAlg */
    SCEP_DECODE_UNDECRYPTABLE, /* no recipient for our RA encryption cert, or bad data */
    SCEP_DECODE_BAD_CONTENT,   /* decrypted content is not what messageType says */
};
const char *scep_decode_str(enum scep_decode d);

/* A decoded pkiMessage. Every pointer is owned by the struct; release with
 * scep_request_clear(). Fields are filled as far as decoding got. */
struct scep_request {
    int msg_type;                 /* enum scep_msg_type, or the raw number */
    uint8_t tid[128];             /* transactionID value bytes */
    size_t tid_len;
    int tid_type;                 /* its ASN.1 string type, echoed as received */
    char tid_print[129];          /* printable copy for logs */
    uint8_t sender_nonce[64];
    size_t sender_nonce_len;
    int digest_nid;               /* SignerInfo digestAlgorithm */
    int sig_alg_nid;              /* SignerInfo signatureAlgorithm */
    int cipher_nid;               /* content-encryption algorithm */
    /* The requester's signing certificate. The DER fast path (fast.c) leaves
     * signer NULL and keeps the certificate's bytes instead; the OpenSSL path
     * sets signer. Both paths set signer_key, signer_ias and signer_keyhash.
     * Use scep_request_signer() for an X509 either way. All owned. */
    X509 *signer;
    uint8_t *signer_cert;         /* DER copy (fast path) */
    size_t signer_cert_len;
    X509_NAME *signer_subject;    /* its subject (fast path; the OpenSSL path has signer) */
    EVP_PKEY *signer_key;         /* its public key */
    uint8_t *signer_ias;          /* DER IssuerAndSerialNumber, for the reply's RecipientInfo */
    size_t signer_ias_len;
    uint8_t signer_keyhash[20];   /* SHA-1 of the subjectPublicKey bits (replay check) */
    int signer_issuer_is_ca;      /* fast path: the signer's issuer name is our CA's */
    int fast;                     /* 1 when the DER fast path decoded the SignedData */
    X509_REQ *csr;                /* PKCSReq / RenewalReq */
    char challenge[256];          /* challengePassword as sent */
    int has_challenge;
    uint8_t *inner;               /* decrypted messageData (GetCert etc.) */
    size_t inner_len;
};
void scep_request_clear(struct scep_request *req);
/* The signer certificate as an X509, parsed on first use when the fast path
 * decoded the message (cached in req). NULL if it cannot be parsed. */
X509 *scep_request_signer(struct scep_request *req);

/* Process-wide SCEP setup: registers OIDs, fetches digests and ciphers once.
 * Call once from main before any thread starts. Returns 0 or -1. */
struct scep_algs {
    const EVP_MD *md_reply;      /* CertRep digest (config reply.digest) */
    const EVP_MD *sha1, *sha256, *sha512; /* for scenario overrides and decoding */
    const EVP_MD *sha224, *sha384;        /* decoding */
    const EVP_CIPHER *des3, *aes128, *aes192, *aes256;
};

/* Requests left PENDING (scenario action), keyed by transactionID, until
 * approved or rejected (admin API, or after N polls / a delay). Thread-safe. */
struct scep_pending;
struct scep_pending_info {
    char tid[129];
    char subject[256];
    double age_s;
    int polls;
    const char *state;   /* "pending", "approved", "rejected" */
};
struct scep_pending *scep_pending_new(size_t max);
void scep_pending_free(struct scep_pending *p);
/* approve 1 / reject 0. Returns 0, or -1 when tid is not pending. */
int scep_pending_decide(struct scep_pending *p, const char *tid, int approve);
void scep_pending_each(struct scep_pending *p,
                       void (*fn)(const struct scep_pending_info *i, void *arg), void *arg);
void scep_pending_clear(struct scep_pending *p);

struct otp_cache;

/* Recently seen transactionIDs and the key that used them (bounded ring),
 * so a replayed transactionID with a different key is refused. */
struct scep_tids;
struct scep_tids *scep_tids_new(size_t capacity);
void scep_tids_free(struct scep_tids *t);

/* Everything the PKIOperation service reads; shared by threads. The config,
 * PKI and algorithms are read-only; store, otp and pending lock themselves. */
struct scep_ctx {
    const struct config *cfg;
    struct pki *pki;
    struct store *store;
    struct otp_cache *otp;       /* one-time passwords (policy "otp"); may be NULL */
    struct scep_pending *pending;/* may be NULL: PENDING then never resolves */
    struct scep_tids *tids;      /* transactionID -> key seen; may be NULL (no replay check) */
    struct scep_algs algs;
    char caps_body[1024];
    size_t caps_len;
    int details;                 /* fill the decoded fields of scep_outcome */
    int no_fast;                 /* decode through OpenSSL only (tests, differential fuzzing) */
    /* OpenSSL's default provider (owned: scep_ctx_free unloads it) and algs
     * are made by scep_ctx_ready(), once; until crypto_state says
     * SCEP_CRYPTO_READY (acquire) nothing may read algs. The legacy provider is
     * never loaded: single DES and MD4 come from util (oldcrypto.c). */
    atomic_int crypto_state;
    pthread_mutex_t crypto_mu;
    int crypto_mu_live;
    OSSL_PROVIDER *prov_default;
    char crypto_err[160];
};
enum { SCEP_CRYPTO_PENDING = 0, SCEP_CRYPTO_READY = 1, SCEP_CRYPTO_FAILED = -1 };

/* Sets up ctx: the SCEP OIDs, the GetCACaps body and, unless flags has
 * SCEP_CTX_CRYPTO_LATER, the default provider and the algorithms
 * (scep_ctx_ready). With the flag, a server can listen first (the provider
 * and the fetches are ~3 ms of its start-up) and make them right after, while
 * the fast lane already answers GetCACaps and GetCACert. Returns 0 or -1. */
#define SCEP_CTX_CRYPTO_LATER 1
int scep_ctx_init_ex(struct scep_ctx *ctx, const struct config *cfg, struct pki *pki,
                     struct store *store, int flags, char *err, size_t errlen);
int scep_ctx_init(struct scep_ctx *ctx, const struct config *cfg, struct pki *pki,
                  struct store *store, char *err, size_t errlen);
/* Loads the default provider and fetches algs, the first time; concurrent
 * callers wait for the first; later calls are one atomic load. Everything that
 * needs a provider-backed algorithm (PKIOperation, NTLM's HMAC-MD5) calls it
 * first.
 * Returns 0, or -1 with err (every call, after a failure). */
int scep_ctx_ready(struct scep_ctx *ctx, char *err, size_t errlen);
void scep_ctx_free(struct scep_ctx *ctx);

/* Decodes a DER/BER pkiMessage: signature checked against the signer cert in
 * the message (no chain: requesters sign with throw-away self-signed certs),
 * content decrypted with the RA encryption key. Returns how far it got. */
enum scep_decode scep_request_decode(const struct scep_ctx *ctx, const uint8_t *der, size_t len,
                                     struct scep_request *req, char *why, size_t whylen);

/* Builds a CertRep for req into out (DER). status SUCCESS needs issued
 * (not taken over); fail_info and hresult are used for FAILURE (hresult 0 =
 * no szOID_ENROLL_SCEP_ERROR attribute). Returns 0 or -1 on malfunction. */
int scep_certrep_build(const struct scep_ctx *ctx, const struct scep_request *req, int status,
                       int fail_info, long hresult, X509 *issued, struct util_buf *out);

enum scep_outcome_kind {
    SCEP_OUT_CERTREP = 0, /* 200 application/x-pki-message, body = CertRep */
    SCEP_OUT_IIS_500,     /* what NDES gives for an undecodable request */
};

/* The result of one PKIOperation, for the HTTP layer and the logs. The body
 * buffer is owned by the struct: scep_outcome_clear(). */
struct scep_outcome {
    enum scep_outcome_kind kind;
    struct util_buf body;
    int msg_type;
    char tid[129];
    int status;
    int fail_info;
    long hresult;
    char serial[64];   /* issued certificate's serial, upper-case hex */
    char reason[160];  /* why, for the access log */
    /* decoded request fields, filled when ctx->details is set (journal) */
    char sender_nonce[129];        /* hex */
    char cipher[24], digest[16];
    char signer[256], csr_subject[256], sans[512];
    char key_type[8];
    int key_bits;
    char challenge[256];
    int has_challenge;
};
void scep_outcome_clear(struct scep_outcome *out);

/* Runs one PKIOperation end to end: decode, check the challenge, issue,
 * store, build the CertRep. Always fills out (never fails). */
void scep_pkioperation(const struct scep_ctx *ctx, const uint8_t *msg, size_t len,
                       struct scep_outcome *out);

/* What a scenario changes in a PKIOperation. */
struct scep_opts {
    int force_status;        /* SCEP_STATUS_NONE (-1): decide as healthy NDES;
                              * FAILURE/PENDING: answer that once decoded */
    int fail_info;
    long hresult;
    int force_des3;          /* replies always 3DES (old NDES) */
    const EVP_MD *md;        /* CertRep digest; NULL = the configured one */
    int pending_after_polls; /* PENDING: approve by itself after N polls (0 = never) */
    double pending_after_s;  /* ... or after this many seconds (0 = never) */
};
void scep_pkioperation_ex(const struct scep_ctx *ctx, const uint8_t *msg, size_t len,
                          const struct scep_opts *opts, struct scep_outcome *out);

/* The messageType of a pkiMessage without decrypting it (0 if unreadable),
 * and the EVP_PKEY_* type of the signer certificate's key (0 if unknown;
 * signer_key_type may be NULL). For scenario rules that match on them. */
int scep_peek_message_type(const uint8_t *der, size_t len, int *signer_key_type);

/* scep_certrep_build with scenario options (opts may be NULL). */
int scep_certrep_build_ex(const struct scep_ctx *ctx, const struct scep_request *req, int status,
                          int fail_info, long hresult, X509 *issued,
                          const struct scep_opts *opts, struct util_buf *out);

/* Decodes the message of a GET PKIOperation (still percent-escaped as in the
 * query) into DER: escaped, raw '+' and '/', %0A line breaks, base64url.
 * Returns the DER length, or -1 if it is not base64. */
long scep_decode_get_message(const char *escaped, size_t len, uint8_t *out, size_t outcap);

/* ---- client side (tests, benchmarks, fuzz seeds) ---------------------- */

/* What a SCEP client puts in a pkiMessage. Built with OpenSSL's own PKCS#7
 * code (not our CertRep writer) so that tests cross-check the two. */
struct scep_build {
    int msg_type;
    X509 *signer;               /* requester's (self-signed) certificate */
    EVP_PKEY *signer_key;
    const EVP_MD *md;           /* SignerInfo digest */
    const EVP_CIPHER *cipher;   /* content encryption */
    X509 *const *recipients;    /* one RecipientInfo per certificate */
    int nrecipients;
    const uint8_t *content;     /* messageData: PKCS#10, IssuerAndSerial, ... */
    size_t content_len;
    const char *tid;            /* transactionID (printable) */
    uint8_t nonce[16];          /* senderNonce */
};

/* Encodes a pkiMessage into out. Returns 0 or -1. */
int scep_build_request(const struct scep_build *b, struct util_buf *out);

/* A PKCS#10 for key with subject "CN=cn", an optional challengePassword and
 * optional subjectAltName (OpenSSL syntax, e.g. "DNS:a.example,IP:10.0.0.1").
 * Returns a new X509_REQ (caller frees) or NULL. */
X509_REQ *scep_build_csr(EVP_PKEY *key, const char *cn, const char *challenge, const char *san,
                         const EVP_MD *md);

/* A throw-away self-signed certificate for key, as clients make. Caller frees. */
X509 *scep_build_selfsigned(EVP_PKEY *key, const char *cn);

/* Decoded CertRep, for tests and tools. Owned pointers: scep_reply_clear(). */
struct scep_reply {
    int msg_type, status, fail_info;
    long hresult;                 /* 0 when no szOID_ENROLL_SCEP_ERROR */
    int has_hresult;
    char tid[129];
    uint8_t recipient_nonce[64];
    size_t recipient_nonce_len;
    int has_signing_time;
    int sig_alg_nid, digest_nid, cipher_nid;
    int signature_ok;             /* verified against ra_sign */
    STACK_OF(X509) *certs;        /* SUCCESS: certificates from the envelope */
    size_t content_len;           /* length of the encapsulated content */
};
void scep_reply_clear(struct scep_reply *r);

/* Parses a CertRep DER, checks its signature with ra_sign, and on SUCCESS
 * decrypts the envelope with the requester's key. Returns 0 when it could be
 * parsed (check the fields), -1 when it is not a CertRep at all. */
int scep_parse_reply(const uint8_t *der, size_t len, X509 *ra_sign, X509 *req_cert,
                     EVP_PKEY *req_key, struct scep_reply *r);

#endif
