/* scenario.h - NDES/IIS failure scenarios: a libconfig file of rules that say
 * what differs from the healthy server, a thread-safe runtime (counters,
 * seeded draws, time windows, IIS rapid-fail protection) and the switch.
 *
 * Ownership: a loaded struct scenario is immutable and reference-counted;
 * scenario_engine_acquire() hands out a reference that the caller releases
 * with scenario_release(). Switching never frees a scenario in use. */
#ifndef NDESMOCK_SCENARIO_H
#define NDESMOCK_SCENARIO_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ndesmock/config.h"

#define SC_MAX_RULES 64
#define SC_MAX_EVENTS 4
#define SC_MAX_ERRORS 16
#define SC_PATH 512

enum sc_action_type {
    SC_ACT_NONE = 0,  /* healthy */
    SC_ACT_IIS,       /* IIS custom error page: status.substatus, win32 status in the log */
    SC_ACT_HTTPSYS,   /* HTTP.sys page (400/414/503), Connection: close, HTTPERR line */
    SC_ACT_PROXY,     /* Entra App Proxy page (504 gateway timeout, "can't be displayed") */
    SC_ACT_SCEP,      /* CertRep with a given pkiStatus/failInfo/HRESULT */
    SC_ACT_CRASH,     /* w3wp crash: connection closed, no reply; counts for rapid-fail */
    SC_ACT_CLOSE,     /* close the connection with no reply */
    SC_ACT_RESET,     /* TCP reset */
    SC_ACT_PARTIAL,   /* send the first N bytes of the healthy reply, then close */
    SC_ACT_DRIP,      /* send the healthy reply N bytes every interval */
    SC_ACT_HANG,      /* read the request, never answer (until the client or the timeout gives up) */
    SC_ACT_DELAY,     /* wait, then do 'then' (healthy when absent) */
    SC_ACT_LANDING,   /* NDES landing page, 200 UTF-16LE (no connector) */
    SC_ACT_CAPS_EMPTY,/* GetCACaps answered 200 with an empty body (WS2008) */
};
const char *sc_action_str(enum sc_action_type t);

enum sc_proxy_page { SC_PROXY_GATEWAY_TIMEOUT = 0, SC_PROXY_CANT_DISPLAY = 1 };

/* What the HTTPS listener presents (scenario key ndes.tls). */
enum sc_tls_fault {
    SC_TLS_OK = 0,
    SC_TLS_EXPIRED,         /* an expired server certificate */
    SC_TLS_WRONG_HOST,      /* a certificate for another host name */
    SC_TLS_UNTRUSTED,       /* a chain that does not reach the lab root */
    SC_TLS_TLS10_ONLY,      /* TLS 1.0 only (security level 0) */
    SC_TLS_FAULTS
};

struct sc_event {           /* one line of the simulated Windows event log */
    int id;
    char source[64];
    char level[16];
    char message[384];
};

struct sc_iis_line {        /* an extra W3C line IIS writes (e.g. the connector's VerifyRequest) */
    int present;
    char method[8];
    char uri[128];
    int status, substatus;
    long long win32;
};

struct sc_match {
    char path[128];          /* fnmatch glob, case-insensitive; "" = any */
    size_t path_prefix;      /* length of its literal prefix (before any wildcard) */
    unsigned methods;        /* bitmask of SC_M_*; 0 = any */
    char operation[32];      /* "" = any */
    int message_type;        /* SCEP messageType; 0 = any */
    int signer_key_type;     /* EVP_PKEY_RSA / EVP_PKEY_EC of the requester; 0 = any */
    long min_uri, max_uri;   /* request-URI length bounds; -1 = none */
    char header[64];         /* header name that must be present ("" = none) */
    char header_contains[128];  /* lower-cased by the loader */
    size_t header_contains_len;
    int header_first;        /* loader: first rule testing the same header (lookups shared) */
    long nth, first, every;  /* per-rule counters (requests that passed the filters) */
    long request_nth;        /* global request counter */
    double probability;      /* 1.0 = always */
    double after_s, before_s;/* window since the scenario became active; -1 = open */
    /* derived by the loader, for the matcher: which filters are set (SC_T_*)
     * and the operation as a code (SC_OP_*) */
    unsigned tests;
    int op_code;
};
#define SC_T_PATH 1u
#define SC_T_METHODS 2u
#define SC_T_OPERATION 4u
#define SC_T_MESSAGE_TYPE 8u
#define SC_T_KEY_TYPE 16u
#define SC_T_URI_LEN 32u
#define SC_T_HEADER 64u
enum { SC_OP_ABSENT = 1, SC_OP_GETCACAPS, SC_OP_GETCACERT, SC_OP_PKIOPERATION, SC_OP_OTHER };
#define SC_M_GET 1u
#define SC_M_POST 2u
#define SC_M_HEAD 4u
#define SC_M_OTHER 8u

struct sc_action {
    enum sc_action_type type;
    int status, substatus;
    long long win32;
    char httperr_reason[32];
    enum sc_proxy_page proxy_page;
    int pki_status, fail_info;   /* SC_ACT_SCEP */
    long hresult;
    long approve_after_polls;    /* SCEP PENDING: approved by itself after N polls */
    double approve_after_s;      /* ... or after this many (scaled) seconds */
    double seconds;              /* DELAY: how long; HANG: cap (0 = request timeout) */
    enum sc_action_type then;    /* DELAY: what follows */
    int then_status;             /* DELAY then IIS/HTTPSYS/PROXY status */
    long bytes;                  /* PARTIAL / DRIP */
    double interval_s;           /* DRIP */
};

struct sc_rule {
    char name[64];
    int line;
    struct sc_match m;
    struct sc_action a;
    struct sc_event events[SC_MAX_EVENTS];
    int nevents;
    struct sc_iis_line extra_log;  /* written before the request's own line */
    char derived_from[64];         /* "material.policy_cert" etc. for derived rules */
};

struct sc_material_result {       /* what the material checks found, for logs and the API */
    int ra_expired;
    int policy_expired;
    int policy_no_client_auth;
    int intermediate_in_root;
    char detail[256];
};

struct scenario {
    atomic_int refs;
    char name[64];
    char summary[256];
    char source[SC_PATH];          /* file, or "(built in)" */
    struct sc_rule rules[SC_MAX_RULES];
    int nrules;
    /* overrides of the healthy behaviour */
    int caps_override;             /* 1: caps below replace the config's */
    struct config_caps caps;
    int reply_des3;                /* replies always 3DES (old NDES) */
    char reply_digest[16];         /* "" = config */
    long max_url_bytes;            /* HTTP.sys limit for the request line; 0 = config */
    long max_request_bytes;        /* HTTP.sys limit for the whole header block; 0 = config */
    long max_path;                 /* request filtering maxUrl (404.14); 0 = off */
    long max_query;                /* request filtering maxQueryString (404.15); 0 = off */
    char server_header[64];        /* "" = config (e.g. Microsoft-IIS/7.5 for 2008 R2) */
    int tls_fault;                 /* enum sc_tls_fault for the HTTPS listener */
    int needs_peek;                /* a rule matches on messageType or signer key type */
    int needs_key_type;            /* ... on the signer key type (needs a real parse) */
    /* IIS rapid-fail protection */
    int rf_max_crashes;            /* 0 = off */
    double rf_interval_s;
    double rf_recovery_s;          /* 0 = stays stopped until reset/switch */
    struct sc_material_result material;
};

struct sc_error { int line; char message[256]; };
struct sc_errors { struct sc_error e[SC_MAX_ERRORS]; int n; char file[SC_PATH]; };

/* Loads and validates a scenario file. Paths it names (material) must resolve
 * inside scenarios_dir or state_dir ("state:" prefix); @include is refused.
 * Returns a new scenario (refs = 1) or NULL with errs filled. */
struct scenario *scenario_load_file(const char *path, const char *scenarios_dir,
                                    const char *state_dir, struct sc_errors *errs);
/* Same, from text (e.g. a PUT body); name is used for messages. */
struct scenario *scenario_load_text(const char *text, const char *name,
                                    const char *scenarios_dir, const char *state_dir,
                                    struct sc_errors *errs);
/* The built-in healthy scenario (no rules). */
struct scenario *scenario_healthy(void);
void scenario_release(struct scenario *sc);

/* Resolves --scenario NAME|PATH: a value with '/' or ending in ".cfg" is a
 * path, otherwise NAME.cfg in scenarios_dir; "healthy" is also built in.
 * Writes the file path to out (empty for the built-in). Returns 0 or -1. */
int scenario_resolve(const char *arg, const char *scenarios_dir, char *out, size_t outcap);

/* Formats errs as "file:line: message" lines into out. */
void scenario_errors_format(const struct sc_errors *errs, char *out, size_t outcap);

/* ---- runtime ---- */

struct sc_request {           /* what the matcher looks at */
    const char *path;         /* decoded */
    size_t path_len;          /* strlen(path) */
    unsigned method;          /* SC_M_* */
    const char *operation;    /* may be NULL */
    int message_type;         /* 0 if unknown */
    int signer_key_type;      /* EVP_PKEY_* of the requester's signing cert, 0 if unknown */
    size_t uri_len;
    /* header lookup: returns the value or NULL */
    const char *(*header)(void *arg, const char *name);
    void *header_arg;
};

struct scenario_engine;

/* time_scale multiplies every scenario duration; seed feeds the draws. */
struct scenario_engine *scenario_engine_new(struct scenario *initial, double time_scale,
                                            uint64_t seed);
void scenario_engine_free(struct scenario_engine *e);
/* Makes sc active (takes the caller's reference); counters, windows and the
 * rapid-fail state start afresh. */
void scenario_engine_switch(struct scenario_engine *e, struct scenario *sc);
/* Clears counters, windows and rapid-fail state (as iisreset). */
void scenario_engine_reset(struct scenario_engine *e);
/* A reference to the active scenario (release it). */
struct scenario *scenario_engine_acquire(struct scenario_engine *e);
double scenario_engine_time_scale(const struct scenario_engine *e);

/* First matching rule of sc for req, or NULL (healthy). Counts the request. */
/* SC_OP_* of an operation name (NULL or "" = SC_OP_ABSENT). */
int scenario_op_code(const char *operation);
const struct sc_rule *scenario_match(struct scenario_engine *e, const struct scenario *sc,
                                     const struct sc_request *req);
/* 1 when rapid-fail protection has stopped the application pool. */
int scenario_pool_stopped(struct scenario_engine *e);
/* Records a worker crash; returns 1 if this crash stopped the pool. */
int scenario_record_crash(struct scenario_engine *e);
/* Total requests seen and crashes since activation (for metrics/tests). */
uint64_t scenario_requests(struct scenario_engine *e);

#endif
