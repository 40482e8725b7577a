/* config.h - the server's configuration, parsed once into plain structs.
 * HTTP and SCEP code read these structs; only src/config touches libconfig. */
#ifndef NDESMOCK_CONFIG_H
#define NDESMOCK_CONFIG_H

#include <stddef.h>

#define CONFIG_MAX_CAPS 16
#define CONFIG_MAX_EKU 8
#define CONFIG_STR 256

enum challenge_policy {
    CHALLENGE_STATIC = 0,     /* one static password from config */
    CHALLENGE_ACCEPT_ANY = 1, /* Intune-style: validation always succeeds */
    CHALLENGE_NONE = 2,       /* EnforcePassword=0: no challenge checked */
    CHALLENGE_OTP = 3,        /* NDES one-time passwords from mscep_admin / the admin API */
};
const char *challenge_policy_str(enum challenge_policy p);

/* What GetCACaps answers. */
struct config_caps {
    char items[CONFIG_MAX_CAPS][64];
    int count;
    char content_type[64]; /* "" = send no Content-Type header */
    int crlf;              /* 1: lines end with CRLF, 0: LF */
};

/* Issued-certificate template (NDES passes the CSR to the CA with a template). */
struct config_template {
    char name[64];               /* e.g. IPSECIntermediateOffline */
    long validity_minutes;       /* notAfter = now + this */
    long backdate_minutes;       /* notBefore = now - this (CA clock skew) */
    unsigned key_usage;          /* X509v3 KU bits, OpenSSL KU_* values */
    char eku[CONFIG_MAX_EKU][64];/* short names or dotted OIDs */
    int eku_count;
    char digest[16];             /* certificate signature digest */
};

struct config_reply {
    char digest[16];           /* CertRep digest algorithm (NDES: sha1) */
    int certs_in_success;      /* include the RA signing cert in SUCCESS replies */
    int certs_in_failure;      /* include it in FAILURE/PENDING replies */
    int fail_info_bad_challenge; /* failInfo for a refused challenge (NDES: 1) */
    int include_ca_in_reply;   /* add the CA chain to the issued-cert bundle */
};

struct config_pki {
    int key_bits;
    char host_name[64];        /* <host> in CN=<host>-MSCEP-RA */
    char ca_cn[128];
    char org[128];
    int intermediate;          /* 1: issue from an intermediate under the root */
    long ca_validity_days;
    long ra_validity_days;
};

struct config {
    char source[CONFIG_STR];   /* file it came from, or "(embedded defaults)" */
    char listen[CONFIG_STR];   /* HOST:PORT */
    char tls_listen[CONFIG_STR]; /* HOST:PORT of the HTTPS listener; "" = none */
    char state_dir[CONFIG_STR];
    int threads;               /* 0: one per core */
    int max_connections;
    long max_body_bytes;
    long max_url_bytes;        /* HTTP.sys MaxFieldLength for the URL (tuned: 65534) */
    long max_header_bytes;     /* HTTP.sys MaxRequestBytes (tuned: 65534) */
    double request_timeout_s;  /* IIS connectionTimeout: 120 s */
    char server_header[64];
    char powered_by[64];       /* "" = no X-Powered-By */
    int access_log;            /* one line per request on stderr */
    int fast_lane;             /* plain keep-alive GETs answered without evhttp */

    enum challenge_policy challenge_policy;
    char challenge[128];       /* static password; "" = generate one per state dir */
    int otp_max;               /* PasswordMax: outstanding one-time passwords */
    long otp_validity_minutes; /* PasswordValidity */
    int otp_length_bytes;      /* PasswordLength (bytes; 8 = 16 hex characters) */
    char admin_user[128];      /* mscep_admin credentials (Basic or NTLM), lab only */
    char admin_password[128];
    int log_json;              /* access log lines as JSON */

    /* admin API */
    char admin_listen[CONFIG_STR];
    char admin_token[128];     /* "" = no bearer token required */
    long journal_size;         /* requests kept */
    long journal_raw_bytes;    /* bytes of each request kept */
    int journal_secrets;       /* keep challenge passwords in the journal */

    struct config_caps caps;
    struct config_template tmpl;
    struct config_reply reply;
    struct config_pki pki;
};

/* Fills cfg with the embedded defaults. */
void config_defaults(struct config *cfg);

/* Reads a libconfig file over the defaults already in cfg. Unknown keys,
 * wrong types and bad values are errors. On error writes "file:line: reason"
 * to err and returns -1; returns 0 on success. */
int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen);

/* Parses "HOST:PORT" or "[V6]:PORT" into host (hostcap bytes) and *port.
 * Returns 0, or -1 when malformed. */
int config_parse_hostport(const char *s, char *host, size_t hostcap, int *port);

#endif
