/* service.c - the PKIOperation service: decode, policy, issue, store, reply. */
#include "ndesmock/scep.h"
#include "fast.h"
#include "ndesmock/challenge.h"
#include "pending.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

extern int scep_nid_message_type, scep_nid_pki_status, scep_nid_fail_info,
    scep_nid_sender_nonce, scep_nid_recipient_nonce, scep_nid_transaction_id;

const char *scep_msg_type_str(int t)
{
    switch (t) {
    case SCEP_MSG_CERTREP: return "CertRep";
    case SCEP_MSG_RENEWALREQ: return "RenewalReq";
    case SCEP_MSG_PKCSREQ: return "PKCSReq";
    case SCEP_MSG_CERTPOLL: return "CertPoll";
    case SCEP_MSG_GETCERT: return "GetCert";
    case SCEP_MSG_GETCRL: return "GetCRL";
    case SCEP_MSG_NONE: return "-";
    }
    return "Unknown";
}

const char *scep_pki_status_str(int s)
{
    switch (s) {
    case SCEP_STATUS_SUCCESS: return "SUCCESS";
    case SCEP_STATUS_FAILURE: return "FAILURE";
    case SCEP_STATUS_PENDING: return "PENDING";
    }
    return "-";
}

const char *scep_fail_info_str(int f)
{
    switch (f) {
    case SCEP_FAIL_BADALG: return "badAlg";
    case SCEP_FAIL_BADMESSAGECHECK: return "badMessageCheck";
    case SCEP_FAIL_BADREQUEST: return "badRequest";
    case SCEP_FAIL_BADTIME: return "badTime";
    case SCEP_FAIL_BADCERTID: return "badCertId";
    }
    return "-";
}

static int reg_oid(const char *oid, const char *sn)
{
    int nid = OBJ_txt2nid(oid);

    if (nid == NID_undef)
        nid = OBJ_create(oid, sn, sn);
    return nid;
}

/* The providers and the fetches (scep_ctx_ready holds crypto_mu). */
static int crypto_load(struct scep_ctx *ctx, char *err, size_t errlen)
{
    const struct config *cfg = ctx->cfg;

    /* Explicitly, so that nothing (an OpenSSL configuration that loads other
     * providers) can leave it out. No "legacy": single DES and MD4 come from
     * libcrypto's own low-level code (util/oldcrypto.c). */
    if ((ctx->prov_default = OSSL_PROVIDER_load(NULL, "default")) == NULL) {
        snprintf(err, errlen, "cannot load the OpenSSL default provider");
        return -1;
    }
    ctx->algs.md_reply = EVP_MD_fetch(NULL, cfg->reply.digest, NULL);
    ctx->algs.sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    ctx->algs.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    ctx->algs.sha512 = EVP_MD_fetch(NULL, "SHA512", NULL);
    ctx->algs.sha224 = EVP_MD_fetch(NULL, "SHA224", NULL);
    ctx->algs.sha384 = EVP_MD_fetch(NULL, "SHA384", NULL);
    ctx->algs.des3 = EVP_CIPHER_fetch(NULL, "DES-EDE3-CBC", NULL);
    ctx->algs.aes128 = EVP_CIPHER_fetch(NULL, "AES-128-CBC", NULL);
    ctx->algs.aes192 = EVP_CIPHER_fetch(NULL, "AES-192-CBC", NULL);
    ctx->algs.aes256 = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    ERR_clear_error();
    if (!ctx->algs.md_reply || !ctx->algs.sha1 || !ctx->algs.sha256 || !ctx->algs.sha512 ||
        !ctx->algs.sha224 || !ctx->algs.sha384 || !ctx->algs.des3 || !ctx->algs.aes128 ||
        !ctx->algs.aes192 || !ctx->algs.aes256) {
        snprintf(err, errlen, "cannot fetch the SCEP digests and ciphers from OpenSSL");
        return -1;
    }
    return 0;
}

int scep_ctx_ready(struct scep_ctx *ctx, char *err, size_t errlen)
{
    int st = atomic_load_explicit(&ctx->crypto_state, memory_order_acquire);

    if (st == SCEP_CRYPTO_PENDING) {
        pthread_mutex_lock(&ctx->crypto_mu);
        st = atomic_load_explicit(&ctx->crypto_state, memory_order_acquire);
        if (st == SCEP_CRYPTO_PENDING) { /* the first caller loads; the others wait on mu */
            st = crypto_load(ctx, ctx->crypto_err, sizeof(ctx->crypto_err)) == 0
                     ? SCEP_CRYPTO_READY
                     : SCEP_CRYPTO_FAILED;
            atomic_store_explicit(&ctx->crypto_state, st, memory_order_release);
        }
        pthread_mutex_unlock(&ctx->crypto_mu);
    }
    if (st == SCEP_CRYPTO_READY)
        return 0;
    if (err)
        snprintf(err, errlen, "%s", ctx->crypto_err);
    return -1;
}

int scep_ctx_init_ex(struct scep_ctx *ctx, const struct config *cfg, struct pki *pki,
                     struct store *store, int flags, char *err, size_t errlen)
{
    int i;
    const char *eol = cfg->caps.crlf ? "\r\n" : "\n";

    memset(ctx, 0, sizeof(*ctx));
    ctx->cfg = cfg;
    ctx->pki = pki;
    ctx->store = store;
    atomic_init(&ctx->crypto_state, SCEP_CRYPTO_PENDING);
    pthread_mutex_init(&ctx->crypto_mu, NULL);
    ctx->crypto_mu_live = 1;
    scep_nid_message_type = reg_oid("2.16.840.1.113733.1.9.2", "scepMessageType");
    scep_nid_pki_status = reg_oid("2.16.840.1.113733.1.9.3", "scepPkiStatus");
    scep_nid_fail_info = reg_oid("2.16.840.1.113733.1.9.4", "scepFailInfo");
    scep_nid_sender_nonce = reg_oid("2.16.840.1.113733.1.9.5", "scepSenderNonce");
    scep_nid_recipient_nonce = reg_oid("2.16.840.1.113733.1.9.6", "scepRecipientNonce");
    scep_nid_transaction_id = reg_oid("2.16.840.1.113733.1.9.7", "scepTransactionID");
    if (scep_nid_transaction_id == NID_undef) {
        snprintf(err, errlen, "cannot register SCEP OIDs");
        scep_ctx_free(ctx);
        return -1;
    }
    for (i = 0; i < cfg->caps.count; i++) {
        int n = snprintf(ctx->caps_body + ctx->caps_len, sizeof(ctx->caps_body) - ctx->caps_len,
                         "%s%s", cfg->caps.items[i], eol);
        if (n < 0 || (size_t)n >= sizeof(ctx->caps_body) - ctx->caps_len) {
            snprintf(err, errlen, "GetCACaps list too long");
            scep_ctx_free(ctx);
            return -1;
        }
        ctx->caps_len += (size_t)n;
    }
    if (!(flags & SCEP_CTX_CRYPTO_LATER) && scep_ctx_ready(ctx, err, errlen) != 0) {
        scep_ctx_free(ctx);
        return -1;
    }
    return 0;
}

int scep_ctx_init(struct scep_ctx *ctx, const struct config *cfg, struct pki *pki,
                  struct store *store, char *err, size_t errlen)
{
    return scep_ctx_init_ex(ctx, cfg, pki, store, 0, err, errlen);
}

/* Idempotent: a second call (main's exit path after a failed init) does nothing. */
void scep_ctx_free(struct scep_ctx *ctx)
{
    EVP_MD_free((EVP_MD *)ctx->algs.md_reply);
    EVP_MD_free((EVP_MD *)ctx->algs.sha1);
    EVP_MD_free((EVP_MD *)ctx->algs.sha256);
    EVP_MD_free((EVP_MD *)ctx->algs.sha512);
    EVP_MD_free((EVP_MD *)ctx->algs.sha224);
    EVP_MD_free((EVP_MD *)ctx->algs.sha384);
    EVP_CIPHER_free((EVP_CIPHER *)ctx->algs.des3);
    EVP_CIPHER_free((EVP_CIPHER *)ctx->algs.aes128);
    EVP_CIPHER_free((EVP_CIPHER *)ctx->algs.aes192);
    EVP_CIPHER_free((EVP_CIPHER *)ctx->algs.aes256);
    memset(&ctx->algs, 0, sizeof(ctx->algs));
    if (ctx->prov_default)
        OSSL_PROVIDER_unload(ctx->prov_default);
    ctx->prov_default = NULL;
    if (ctx->crypto_mu_live)
        pthread_mutex_destroy(&ctx->crypto_mu);
    ctx->crypto_mu_live = 0;
    atomic_store(&ctx->crypto_state, SCEP_CRYPTO_PENDING);
}

void scep_outcome_clear(struct scep_outcome *out)
{
    util_buf_free(&out->body);
}

static int challenge_ok(const struct scep_ctx *ctx, const struct scep_request *req)
{
    const char *want;
    size_t wl;

    switch (ctx->cfg->challenge_policy) {
    case CHALLENGE_ACCEPT_ANY:
    case CHALLENGE_NONE:
        return 1;
    case CHALLENGE_OTP:
        /* single use: a password that verifies is spent */
        return ctx->otp && req->has_challenge && otp_consume(ctx->otp, req->challenge);
    case CHALLENGE_STATIC:
        break;
    }
    want = ctx->cfg->challenge[0] ? ctx->cfg->challenge : ctx->pki->challenge;
    wl = strlen(want);
    return req->has_challenge && strlen(req->challenge) == wl &&
           CRYPTO_memcmp(req->challenge, want, wl) == 0;
}

/* A request signed by a certificate this CA issued (renewal, or re-enrollment
 * signed with the existing certificate) needs no challenge. */
static int signed_by_issued_cert(const struct scep_ctx *ctx, struct scep_request *req)
{
    EVP_PKEY *ca = X509_get0_pubkey(ctx->pki->ca_cert);
    X509 *signer;

    /* Most signers are self-signed: the fast path has compared the issuer name
     * already, and keeps only the certificate's DER. */
    if (req->signer == NULL && !req->signer_issuer_is_ca)
        return 0;
    signer = scep_request_signer(req);
    if (signer == NULL || X509_check_issued(ctx->pki->ca_cert, signer) != X509_V_OK)
        return 0;
    return ca && X509_verify(signer, ca) == 1;
}

/* GetCert: messageData is IssuerAndSerialNumber; look the serial up in the store. */
static X509 *lookup_issued(const struct scep_ctx *ctx, const struct scep_request *req)
{
    const unsigned char *p = req->inner;
    PKCS7_ISSUER_AND_SERIAL *ias = d2i_PKCS7_ISSUER_AND_SERIAL(NULL, &p, (long)req->inner_len);
    X509 *c = NULL;
    char hex[80], path[700];
    int n;
    BIO *b;

    if (ias == NULL)
        return NULL;
    n = ASN1_STRING_length(ias->serial);
    if (n > 0 && n <= 32 && X509_NAME_cmp(ias->issuer, ctx->pki->issuer_name) == 0) {
        util_hex_upper(ASN1_STRING_get0_data(ias->serial), (size_t)n, hex);
        b = store_cert_path(ctx->store->certs_dir, hex, path, sizeof(path)) == 0
                ? BIO_new_file(path, "r")
                : NULL;
        if (b) {
            c = PEM_read_bio_X509(b, NULL, NULL, NULL);
            BIO_free(b);
        }
    }
    ERR_clear_error();
    PKCS7_ISSUER_AND_SERIAL_free(ias);
    return c;
}

static void reply(const struct scep_ctx *ctx, const struct scep_request *req,
                  const struct scep_opts *opts, struct scep_outcome *out, int status,
                  int fail_info, long hresult, X509 *issued);

/* Issues for csr, stores the certificate and answers SUCCESS (or FAILURE). */
static void issue_and_reply(const struct scep_ctx *ctx, const struct scep_request *req,
                            const struct scep_opts *opts, X509_REQ *csr,
                            struct scep_outcome *out)
{
    char err[128];
    X509 *issued = pki_issue(ctx->pki, ctx->cfg, csr, err, sizeof(err));

    if (issued == NULL || store_put(ctx->store, issued, err, sizeof(err)) != 0) {
        snprintf(out->reason, sizeof(out->reason), "%s", err);
        reply(ctx, req, opts, out, SCEP_STATUS_FAILURE, SCEP_FAIL_BADREQUEST,
              SCEP_HR_E_INVALIDARG, NULL);
    } else {
        pki_serial_hex(issued, out->serial, sizeof(out->serial));
        snprintf(out->reason, sizeof(out->reason), "issued");
        reply(ctx, req, opts, out, SCEP_STATUS_SUCCESS, SCEP_FAIL_NONE, 0, issued);
    }
    X509_free(issued);
}

/* CertPoll, or a PKCSReq resent for a pending transaction. Returns 1 if the
 * transaction was pending (out is filled), 0 if unknown. */
static int poll_pending(const struct scep_ctx *ctx, const struct scep_request *req,
                        const struct scep_opts *opts, struct scep_outcome *out)
{
    uint8_t *der = NULL;
    size_t len = 0;
    int st = ctx->pending ? pending_poll(ctx->pending, req->tid_print, &der, &len) : -1;
    const unsigned char *p;
    X509_REQ *csr;

    if (st < 0)
        return 0;
    if (st == PENDING_WAITING) {
        snprintf(out->reason, sizeof(out->reason), "still pending");
        reply(ctx, req, opts, out, SCEP_STATUS_PENDING, SCEP_FAIL_NONE, 0, NULL);
    } else if (st == PENDING_REJECTED) {
        snprintf(out->reason, sizeof(out->reason), "request rejected");
        reply(ctx, req, opts, out, SCEP_STATUS_FAILURE, SCEP_FAIL_BADREQUEST,
              SCEP_HR_E_ACCESSDENIED, NULL);
    } else {
        p = der;
        csr = d2i_X509_REQ(NULL, &p, (long)len);
        if (csr)
            issue_and_reply(ctx, req, opts, csr, out);
        else
            reply(ctx, req, opts, out, SCEP_STATUS_FAILURE, SCEP_FAIL_BADREQUEST,
                  SCEP_HR_E_INVALIDARG, NULL);
        X509_REQ_free(csr);
    }
    free(der);
    return 1;
}

static void reply(const struct scep_ctx *ctx, const struct scep_request *req,
                  const struct scep_opts *opts, struct scep_outcome *out, int status,
                  int fail_info, long hresult, X509 *issued)
{
    out->status = status;
    out->fail_info = status == SCEP_STATUS_FAILURE ? fail_info : SCEP_FAIL_NONE;
    out->hresult = status == SCEP_STATUS_FAILURE ? hresult : 0;
    if (scep_certrep_build_ex(ctx, req, status, fail_info, hresult, issued, opts, &out->body) != 0) {
        out->kind = SCEP_OUT_IIS_500;
        out->status = SCEP_STATUS_NONE;
        util_buf_reset(&out->body);
        snprintf(out->reason, sizeof(out->reason), "cannot build CertRep");
    }
}

void scep_pkioperation(const struct scep_ctx *ctx, const uint8_t *msg, size_t len,
                       struct scep_outcome *out)
{
    scep_pkioperation_ex(ctx, msg, len, NULL, out);
}

/* The decoded fields the journal shows. */
static void details(const struct scep_request *req, struct scep_outcome *out)
{
    EVP_PKEY *pk;
    STACK_OF(X509_EXTENSION) *exts;
    int i;

    util_hex_upper(req->sender_nonce, req->sender_nonce_len > 64 ? 64 : req->sender_nonce_len,
                   out->sender_nonce);
    if (req->cipher_nid)
        snprintf(out->cipher, sizeof(out->cipher), "%s", OBJ_nid2sn(req->cipher_nid));
    if (req->digest_nid)
        snprintf(out->digest, sizeof(out->digest), "%s", OBJ_nid2sn(req->digest_nid));
    if (req->signer) {
        X509_NAME_oneline(X509_get_subject_name(req->signer), out->signer, sizeof(out->signer));
    } else if (req->signer_subject) {
        X509_NAME_oneline(req->signer_subject, out->signer, sizeof(out->signer));
    }
    if (req->csr == NULL)
        return;
    X509_NAME_oneline(X509_REQ_get_subject_name(req->csr), out->csr_subject,
                      sizeof(out->csr_subject));
    pk = X509_REQ_get0_pubkey(req->csr);
    if (pk) {
        int t = EVP_PKEY_get_base_id(pk);
        snprintf(out->key_type, sizeof(out->key_type), "%s",
                 t == EVP_PKEY_RSA ? "RSA" : t == EVP_PKEY_EC ? "EC" : "other");
        out->key_bits = EVP_PKEY_get_bits(pk);
    }
    if (req->has_challenge) {
        snprintf(out->challenge, sizeof(out->challenge), "%s", req->challenge);
        out->has_challenge = 1;
    }
    exts = X509_REQ_get_extensions(req->csr);
    for (i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *ex = sk_X509_EXTENSION_value(exts, i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(ex)) == NID_subject_alt_name) {
            BIO *b = BIO_new(BIO_s_mem());
            if (b && X509V3_EXT_print(b, ex, 0, 0) == 1) {
                int n = BIO_read(b, out->sans, (int)sizeof(out->sans) - 1);
                out->sans[n > 0 ? n : 0] = '\0';
            }
            BIO_free(b);
        }
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ERR_clear_error();
}

void scep_pkioperation_ex(const struct scep_ctx *ctx, const uint8_t *msg, size_t len,
                          const struct scep_opts *opts, struct scep_outcome *out)
{
    struct scep_request req;
    enum scep_decode d;
    X509 *issued = NULL;

    memset(out, 0, sizeof(*out));
    util_buf_init(&out->body);
    out->kind = SCEP_OUT_CERTREP;
    out->status = SCEP_STATUS_NONE;
    out->fail_info = SCEP_FAIL_NONE;

    memset(&req, 0, sizeof(req));
    if (atomic_load_explicit(&ctx->crypto_state, memory_order_acquire) != SCEP_CRYPTO_READY) {
        /* the caller did not call scep_ctx_ready(), or it failed: no algorithms */
        snprintf(out->reason, sizeof(out->reason), "OpenSSL algorithms not loaded");
        out->kind = SCEP_OUT_IIS_500;
        goto done;
    }
    d = scep_request_decode(ctx, msg, len, &req, out->reason, sizeof(out->reason));
    out->msg_type = req.msg_type;
    snprintf(out->tid, sizeof(out->tid), "%s", req.tid_print);
    if (ctx->details)
        details(&req, out);
    switch (d) {
    case SCEP_DECODE_MALFORMED:
    case SCEP_DECODE_UNDECRYPTABLE:
        out->kind = SCEP_OUT_IIS_500;
        goto done;
    case SCEP_DECODE_BAD_SIGNATURE:
        reply(ctx, &req, opts, out, SCEP_STATUS_FAILURE, SCEP_FAIL_BADMESSAGECHECK,
              SCEP_HR_NTE_BAD_SIGNATURE, NULL);
        goto done;
    case SCEP_DECODE_BAD_ALG:
        reply(ctx, &req, opts, out, SCEP_STATUS_FAILURE, SCEP_FAIL_BADALG, SCEP_HR_NTE_BAD_ALGID, NULL);
        goto done;
    case SCEP_DECODE_BAD_CONTENT:
        reply(ctx, &req, opts, out, SCEP_STATUS_FAILURE, SCEP_FAIL_BADREQUEST, SCEP_HR_E_INVALIDARG,
              NULL);
        goto done;
    case SCEP_DECODE_OK:
        break;
    }

    if (opts && opts->force_status == SCEP_STATUS_PENDING &&
        (req.msg_type == SCEP_MSG_PKCSREQ || req.msg_type == SCEP_MSG_RENEWALREQ)) {
        if (poll_pending(ctx, &req, opts, out))
            goto done;
        if (ctx->pending && req.csr && req.inner) {
            /* the PKCS#10 as sent (req.inner), not a re-encoding: the fast path's
             * X509_REQ is rebuilt and would not keep the original bytes */
            char subj[256];
            X509_NAME_oneline(X509_REQ_get_subject_name(req.csr), subj, sizeof(subj));
            pending_add(ctx->pending, req.tid_print, subj, req.inner, req.inner_len,
                        opts->pending_after_polls, opts->pending_after_s);
        }
        snprintf(out->reason, sizeof(out->reason), "scenario: left pending");
        reply(ctx, &req, opts, out, SCEP_STATUS_PENDING, SCEP_FAIL_NONE, 0, NULL);
        goto done;
    }
    if (opts && (opts->force_status == SCEP_STATUS_FAILURE ||
                 opts->force_status == SCEP_STATUS_PENDING)) {
        snprintf(out->reason, sizeof(out->reason), "scenario: %s",
                 scep_pki_status_str(opts->force_status));
        reply(ctx, &req, opts, out, opts->force_status, opts->fail_info, opts->hresult, NULL);
        goto done;
    }

    switch (req.msg_type) {
    case SCEP_MSG_PKCSREQ:
    case SCEP_MSG_RENEWALREQ:
        if (EVP_PKEY_get_base_id(req.signer_key) != EVP_PKEY_RSA) {
            /* NDES event 13: it cannot encrypt a response to a non-RSA client. */
            snprintf(out->reason, sizeof(out->reason), "requester key is not RSA (NDES event 13)");
            reply(ctx, &req, opts, out, SCEP_STATUS_FAILURE, SCEP_FAIL_BADALG, SCEP_HR_NTE_BAD_ALGID,
                  NULL);
            goto done;
        }
        if (poll_pending(ctx, &req, opts, out))
            break; /* a PKCSReq resent for a pending transaction */
        if (ctx->tids) {
            if (tids_check(ctx->tids, ctx->algs.sha1, req.tid_print, req.signer_keyhash) != 0) {
                snprintf(out->reason, sizeof(out->reason),
                         "transactionID already used with a different key");
                reply(ctx, &req, opts, out, SCEP_STATUS_FAILURE, SCEP_FAIL_BADREQUEST,
                      SCEP_HR_E_INVALIDARG, NULL);
                break;
            }
        }
        if (!signed_by_issued_cert(ctx, &req) && !challenge_ok(ctx, &req)) {
            snprintf(out->reason, sizeof(out->reason), "%s challenge password (NDES event 29)",
                     req.has_challenge ? "wrong" : "missing");
            reply(ctx, &req, opts, out, SCEP_STATUS_FAILURE, ctx->cfg->reply.fail_info_bad_challenge,
                  SCEP_HR_E_ACCESSDENIED, NULL);
            goto done;
        }
        issue_and_reply(ctx, &req, opts, req.csr, out);
        break;
    case SCEP_MSG_GETCERT:
        issued = lookup_issued(ctx, &req);
        if (issued == NULL) {
            snprintf(out->reason, sizeof(out->reason), "no such certificate");
            reply(ctx, &req, opts, out, SCEP_STATUS_FAILURE, SCEP_FAIL_BADCERTID, SCEP_HR_E_INVALIDARG,
                  NULL);
            goto done;
        }
        pki_serial_hex(issued, out->serial, sizeof(out->serial));
        snprintf(out->reason, sizeof(out->reason), "found");
        reply(ctx, &req, opts, out, SCEP_STATUS_SUCCESS, SCEP_FAIL_NONE, 0, issued);
        break;
    case SCEP_MSG_GETCRL:
        snprintf(out->reason, sizeof(out->reason), "GetCRL is not supported by NDES");
        reply(ctx, &req, opts, out, SCEP_STATUS_FAILURE, SCEP_FAIL_BADREQUEST, SCEP_HR_E_INVALIDARG,
              NULL);
        break;
    case SCEP_MSG_CERTPOLL:
        if (poll_pending(ctx, &req, opts, out))
            break;
        /* Not pending (healthy NDES issues at once): there is nothing to poll. */
        snprintf(out->reason, sizeof(out->reason), "no pending request for this transaction");
        reply(ctx, &req, opts, out, SCEP_STATUS_FAILURE, SCEP_FAIL_BADCERTID, SCEP_HR_E_INVALIDARG,
              NULL);
        break;
    default:
        snprintf(out->reason, sizeof(out->reason), "unsupported messageType %d", req.msg_type);
        reply(ctx, &req, opts, out, SCEP_STATUS_FAILURE, SCEP_FAIL_BADREQUEST, SCEP_HR_E_INVALIDARG,
              NULL);
        break;
    }
done:
    X509_free(issued);
    scep_request_clear(&req);
}
