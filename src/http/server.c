/* server.c - worker threads sharing one listening socket, IIS-shaped routing,
 * the scenario hook (rules, rapid-fail, HTTP.sys limits) and the transport
 * faults (crash, close, reset, partial, drip, hang, delay) on raw sockets. */
#include "ndesmock/server.h"
#include "ndesmock/iis.h"
#include "ndesmock/util.h"
#include "h1.h"
#include "ntlm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <fnmatch.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 64
#define LOG_FLUSH_BYTES 16384
#define PATH_CAP 2048
#define FAST_PEEK 16384          /* bytes the guard and the fast lane look at */

struct rawc;
struct guard;

struct worker {
    struct server *srv;
    int id;
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    struct evconnlistener *listener;
    struct evhttp *https;     /* the TLS listener's evhttp (may be NULL) */
    struct evconnlistener *tls_listener;
    struct event *flush_ev;
    struct event *stop_ev;
    struct event *drain_ev;
    struct util_buf log;
    struct winlog_buf wlb;
    struct rawc *raws;        /* hijacked connections (faults) */
    struct guard *guards;     /* every connection evhttp holds, see "connection guard" */
    struct guard **by_fd;
    size_t by_fd_cap;
    struct event *sweep_ev;
    atomic_long nconns;       /* connections this worker holds (for balancing) */
    atomic_int accepting;     /* its listener is enabled */
    struct event *balance_ev; /* activated by other workers: re-check at once */
    int stopping;             /* shutting down: the listener stays off */
    time_t clock_sec;         /* the second the strings below were made for */
    char http_date[40];       /* RFC 1123, for the Date header */
    char iso_date[32];        /* for the access log */
    long inflight;
    int drain_ticks;
    struct util_buf fast_out; /* the fast lane's replies to one batch of requests */
};

struct server {
    const struct config *cfg;
    struct scep_ctx *scep; /* read-only but for scep_ctx_ready() */
    struct scenario_engine *engine;
    struct winlog *winlog;
    struct journal *journal;
    struct stats *stats;
    struct otp_cache *otp;
    int fd;
    char address[300];
    char s_ip[256];
    int s_port;
    int nworkers;
    struct worker workers[MAX_WORKERS];
    int started;
    atomic_long conns;        /* open connections, all workers */
    int tls_fd;
    char tls_address[300];
    SSL_CTX *tls_ctx[SC_TLS_FAULTS]; /* the server cert, and one per TLS fault */
};

/* Per-worker clock strings, remade once a second (strftime per request shows
 * in profiles). */
static void worker_clock(struct worker *w, time_t now)
{
    struct tm tm;

    if (now == w->clock_sec)
        return;
    w->clock_sec = now;
    gmtime_r(&now, &tm);
    strftime(w->http_date, sizeof(w->http_date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    strftime(w->iso_date, sizeof(w->iso_date), "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- access log (per-thread buffer, flushed by size, timer and at stop) ---- */

static void log_flush(struct worker *w)
{
    size_t off = 0;

    while (off < w->log.len) {
        ssize_t n = write(STDERR_FILENO, w->log.data + off, w->log.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    util_buf_reset(&w->log);
    winlog_flush(w->srv->winlog, &w->wlb);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    log_flush(arg);
}

static const char *method_str(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "?";
}

/* ---- one request ---- */

enum route { ROUTE_NONE, ROUTE_SCEP, ROUTE_REDIRECT, ROUTE_ADMIN, ROUTE_ADMIN_REDIRECT };

enum reply_kind { RK_IIS, RK_HTTPSYS, RK_PROXY };

struct reply {
    int status;
    const char *reason;
    enum reply_kind kind;
    const char *ctype;        /* NULL = no Content-Type */
    const void *body;
    size_t len;
    struct util_buf own;      /* body storage when built per request */
    char location[PATH_CAP + 16];
    int substatus;            /* W3C sc-substatus */
    long long win32;          /* W3C sc-win32-status */
    const char *httperr_reason;
    int no_log;               /* nothing in the W3C/HTTPERR logs (crash, proxy) */
    const char *server;       /* IIS Server header (scenario may override) */
    int www_authenticate;     /* 401: offer Negotiate and NTLM */
    int body_static;          /* body lives as long as the process: sent by reference */
    char ntlm_challenge[700]; /* 401 in an NTLM handshake: "NTLM <Type 2>" */
};

/* One request, from evhttp (r) or from the fast lane (h1); exactly one is set. */
struct rq {
    struct worker *w;
    struct evhttp_request *r;
    const struct h1_request *h1;
    struct guard *g;          /* fast lane: the connection's guard */
    int close_after;          /* fast lane: the reply says Connection: close */
    int taken;                /* a transport fault took the socket (hijack) */
    uint64_t t0;
    time_t now;
    const char *uri;
    size_t uri_len;
    char path[PATH_CAP];
    const char *query;
    char opbuf[64];
    const char *op;
    enum evhttp_cmd_type cmd;
    enum route route;
    uint8_t *der;             /* PKIOperation message, owned */
    long dlen;
    struct scep_outcome o;
    int have_o;
    struct scenario *sc;      /* reference held for the request */
    const struct sc_rule *rule;
    char peer[64];
    int peer_port;
    const char *note;
    const char *fault;        /* action taken instead of the healthy answer */
    char username[160];       /* W3C cs-username after mscep_admin authentication */
    int tls;                  /* arrived on the HTTPS listener */
};

static void access_log_json(struct rq *q, const struct reply *rep, size_t bytes, const char *ts,
                            double ms)
{
    struct worker *w = q->w;
    json_t *o = json_object();
    char *text;

    json_object_set_new(o, "time", json_string(ts));
    json_object_set_new(o, "client", json_string(q->peer));
    json_object_set_new(o, "method", json_string(method_str(q->cmd)));
    json_object_set_new(o, "path", json_string(q->path));
    json_object_set_new(o, "operation", q->op ? json_string(q->op) : json_null());
    json_object_set_new(o, "status", rep ? json_integer(rep->status) : json_null());
    json_object_set_new(o, "substatus", json_integer(rep ? rep->substatus : 0));
    json_object_set_new(o, "bytes", json_integer((json_int_t)bytes));
    json_object_set_new(o, "ms", json_real(ms));
    json_object_set_new(o, "scenario", json_string(q->sc ? q->sc->name : ""));
    if (q->rule) {
        json_object_set_new(o, "rule", json_string(q->rule->name));
        json_object_set_new(o, "action", json_string(sc_action_str(q->rule->a.type)));
    }
    if (q->have_o) {
        json_object_set_new(o, "message_type", json_string(scep_msg_type_str(q->o.msg_type)));
        json_object_set_new(o, "transaction_id", json_string(q->o.tid));
        json_object_set_new(o, "pki_status", json_string(scep_pki_status_str(q->o.status)));
        json_object_set_new(o, "fail_info", json_string(scep_fail_info_str(q->o.fail_info)));
        json_object_set_new(o, "serial", json_string(q->o.serial));
        json_object_set_new(o, "reason", json_string(q->o.reason));
    }
    if (q->note)
        json_object_set_new(o, "note", json_string(q->note));
    text = json_dumps(o, JSON_COMPACT);
    if (text) {
        util_buf_appendf(&w->log, "%s\n", text);
        free(text);
    }
    json_decref(o);
}

/* One line per request on stderr (text or JSON). Never the challenge. */
static void access_log(struct rq *q, const struct reply *rep, size_t bytes)
{
    struct worker *w = q->w;
    const char *ts;
    double ms = (double)(util_now_ns() - q->t0) / 1e6;

    if (!w->srv->cfg->access_log)
        return;
    worker_clock(w, q->now);
    ts = w->iso_date;
    if (w->srv->cfg->log_json) {
        access_log_json(q, rep, bytes, ts, ms);
    } else {
        struct util_buf *b = &w->log;
        util_buf_puts(b, ts);
        util_buf_puts(b, " ");
        util_buf_puts(b, q->peer);
        util_buf_puts(b, " ");
        util_buf_puts(b, method_str(q->cmd));
        util_buf_puts(b, " ");
        util_buf_puts(b, q->path[0] ? q->path : "-");
        util_buf_puts(b, " op=");
        util_buf_puts(b, q->op);
        if (rep) {
            util_buf_puts(b, " status=");
            util_buf_puti(b, rep->status);
            util_buf_puts(b, ".");
            util_buf_puti(b, rep->substatus);
            util_buf_puts(b, " bytes=");
            util_buf_putu(b, bytes);
        } else {
            util_buf_puts(b, " status=- bytes=0");
        }
        {
            unsigned long long cs = (unsigned long long)(ms * 100.0 + 0.5); /* ms, 2 decimals */
            char frac[3] = {(char)('0' + cs % 100 / 10), (char)('0' + cs % 10), 0};
            util_buf_puts(b, " ms=");
            util_buf_putu(b, cs / 100);
            util_buf_puts(b, ".");
            util_buf_puts(b, frac);
        }
        util_buf_puts(b, " scenario=");
        util_buf_puts(b, q->sc ? q->sc->name : "-");
        if (q->rule) {
            util_buf_puts(b, " rule=");
            util_buf_puts(b, q->rule->name);
            util_buf_puts(b, " action=");
            util_buf_puts(b, sc_action_str(q->rule->a.type));
        }
        if (q->have_o)
            util_buf_appendf(b, " msg=%s tid=%s scep=%s fail=%s serial=%s reason=\"%s\"",
                             scep_msg_type_str(q->o.msg_type), q->o.tid[0] ? q->o.tid : "-",
                             scep_pki_status_str(q->o.status), scep_fail_info_str(q->o.fail_info),
                             q->o.serial[0] ? q->o.serial : "-", q->o.reason);
        if (q->note) {
            util_buf_puts(b, " note=\"");
            util_buf_puts(b, q->note);
            util_buf_puts(b, "\"");
        }
        util_buf_append(b, "\n", 1);
    }
    if (w->log.len >= LOG_FLUSH_BYTES)
        log_flush(w);
}

static const char *rq_header(const struct rq *q, const char *name)
{
    if (q->r)
        return evhttp_find_header(evhttp_request_get_input_headers(q->r), name);
    return h1_header(q->h1, name);
}

/* struct sc_request's header callback (arg: the struct rq). */
static const char *header_lookup(void *arg, const char *name)
{
    return rq_header(arg, name);
}

/* One HTTPERR line for this request (status 0 and siteid 0 print "-"). */
static void httperr_line_for(struct rq *q, int status, int siteid, const char *reason,
                             const char *queue)
{
    struct server *s = q->w->srv;
    struct httperr_line h = {0};
    char uri[PATH_CAP + 64];

    snprintf(uri, sizeof(uri), "%.*s", (int)(q->uri_len > 4096 ? 4096 : q->uri_len), q->uri);
    h.c_ip = q->peer;
    h.c_port = q->peer_port;
    h.s_ip = s->s_ip;
    h.s_port = s->s_port;
    h.version = "HTTP/1.1";
    h.method = method_str(q->cmd);
    h.uri = uri;
    h.status = status;
    h.siteid = siteid;
    h.reason = reason;
    h.queue = queue;
    winlog_httperr(&q->w->wlb, q->now, &h);
}

static void windows_logs(struct rq *q, const struct reply *rep)
{
    struct worker *w = q->w;
    struct server *s = w->srv;
    unsigned ms = (unsigned)((util_now_ns() - q->t0) / 1000000);
    int i;

    if (s->winlog == NULL)
        return;
    if (q->rule) {
        for (i = 0; i < q->rule->nevents; i++)
            winlog_event(&w->wlb, q->now, q->rule->events[i].id, q->rule->events[i].source,
                         q->rule->events[i].level, q->rule->events[i].message);
        if (q->rule->extra_log.present) {
            struct w3c_line x = {0};
            x.s_ip = s->s_ip;
            x.method = q->rule->extra_log.method;
            x.stem = q->rule->extra_log.uri;
            x.s_port = s->s_port;
            x.c_ip = "127.0.0.1"; /* the policy module calls the connector locally */
            x.status = q->rule->extra_log.status;
            x.substatus = q->rule->extra_log.substatus;
            x.win32 = q->rule->extra_log.win32;
            winlog_w3c(&w->wlb, q->now, &x);
        }
    }
    if (q->rule && (q->rule->a.type == SC_ACT_CRASH ||
                    (q->rule->a.type == SC_ACT_DELAY && q->rule->a.then == SC_ACT_CRASH)))
        /* HTTP.sys logs the request the crashed worker abandoned. */
        httperr_line_for(q, 0, 1, "Connection_Abandoned_By_AppPool", "SCEP");
    if (rep == NULL || rep->no_log)
        return;
    if (rep->kind == RK_HTTPSYS) {
        httperr_line_for(q, rep->status, rep->status == 503 ? 1 : 0, rep->httperr_reason,
                         rep->status == 503 ? "SCEP" : NULL);
    } else if (rep->kind == RK_IIS) {
        struct w3c_line l = {0};
        l.s_ip = s->s_ip;
        l.method = method_str(q->cmd);
        l.stem = q->path;
        l.query = q->query;
        l.s_port = s->s_port;
        l.username = q->username;
        l.c_ip = q->peer;
        l.user_agent = rq_header(q, "User-Agent");
        l.referer = rq_header(q, "Referer");
        l.status = rep->status;
        l.substatus = rep->substatus;
        l.win32 = rep->win32;
        l.time_taken_ms = ms;
        winlog_w3c(&w->wlb, q->now, &l);
    }
}

/* The request as received (reconstructed from the parsed request: request
 * line, headers, body), capped. Returns a malloc'd block or NULL. */
static uint8_t *raw_request(struct rq *q, size_t cap, size_t *len)
{
    struct util_buf b;
    struct evbuffer *in = q->r ? evhttp_request_get_input_buffer(q->r) : NULL;
    size_t blen = in ? evbuffer_get_length(in) : 0;

    util_buf_init(&b);
    util_buf_puts(&b, method_str(q->cmd));
    util_buf_puts(&b, " ");
    util_buf_puts(&b, q->uri);
    util_buf_puts(&b, " HTTP/1.1\r\n");
    if (q->r) {
        struct evkeyvalq *h = evhttp_request_get_input_headers(q->r);
        struct evkeyval *kv;
        for (kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
            util_buf_puts(&b, kv->key);
            util_buf_puts(&b, ": ");
            util_buf_puts(&b, kv->value);
            util_buf_puts(&b, "\r\n");
        }
    } else {
        int i;
        for (i = 0; i < q->h1->nh; i++) {
            util_buf_puts(&b, q->h1->h[i].name);
            util_buf_puts(&b, ": ");
            util_buf_puts(&b, q->h1->h[i].value);
            util_buf_puts(&b, "\r\n");
        }
    }
    util_buf_append(&b, "\r\n", 2);
    if (blen) {
        uint8_t *p = util_buf_grow(&b, blen);
        if (p)
            evbuffer_copyout(in, p, blen);
    }
    if (b.failed) {
        util_buf_free(&b);
        return NULL;
    }
    if (b.len > cap)
        b.len = cap;
    return util_buf_steal(&b, len);
}

static void record(struct rq *q, const struct reply *rep, size_t bytes)
{
    struct server *s = q->w->srv;
    double secs = (double)(util_now_ns() - q->t0) / 1e9;
    struct journal_entry e;
    struct timespec ts;

    if (s->stats)
        stats_record(s->stats, q->op, rep ? rep->status : 0, secs,
                     q->have_o ? (q->o.kind == SCEP_OUT_IIS_500 ? -1 : q->o.status) : -1,
                     q->have_o);
    if (s->journal == NULL)
        return;
    memset(&e, 0, sizeof(e));
    clock_gettime(CLOCK_REALTIME, &ts);
    e.time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    util_strlcpy(e.method, method_str(q->cmd), sizeof(e.method));
    util_strlcpy(e.path, q->path, sizeof(e.path));
    util_strlcpy(e.query, q->query ? q->query : "", sizeof(e.query));
    util_strlcpy(e.operation, q->op ? q->op : "", sizeof(e.operation));
    util_strlcpy(e.peer, q->peer, sizeof(e.peer));
    util_strlcpy(e.user_agent, rq_header(q, "User-Agent"), sizeof(e.user_agent));
    util_strlcpy(e.scenario, q->sc ? q->sc->name : "", sizeof(e.scenario));
    if (q->rule) {
        util_strlcpy(e.rule, q->rule->name, sizeof(e.rule));
        util_strlcpy(e.action, sc_action_str(q->rule->a.type), sizeof(e.action));
    }
    e.status = rep ? rep->status : 0;
    e.substatus = rep ? rep->substatus : 0;
    e.bytes = bytes;
    e.duration_ms = secs * 1e3;
    e.pki_status = e.fail_info = -1;
    if (q->have_o) {
        const struct scep_outcome *o = &q->o;
        e.has_pki = 1;
        e.message_type = o->msg_type;
        util_strlcpy(e.transaction_id, o->tid, sizeof(e.transaction_id));
        util_strlcpy(e.sender_nonce, o->sender_nonce, sizeof(e.sender_nonce));
        util_strlcpy(e.cipher, o->cipher, sizeof(e.cipher));
        util_strlcpy(e.digest, o->digest, sizeof(e.digest));
        util_strlcpy(e.signer, o->signer, sizeof(e.signer));
        util_strlcpy(e.csr_subject, o->csr_subject, sizeof(e.csr_subject));
        util_strlcpy(e.sans, o->sans, sizeof(e.sans));
        util_strlcpy(e.key_type, o->key_type, sizeof(e.key_type));
        e.key_bits = o->key_bits;
        util_strlcpy(e.challenge, o->challenge, sizeof(e.challenge));
        e.has_challenge = o->has_challenge;
        e.pki_status = o->kind == SCEP_OUT_IIS_500 ? -1 : o->status;
        e.fail_info = o->fail_info;
        e.hresult = o->hresult;
        util_strlcpy(e.serial, o->serial, sizeof(e.serial));
        util_strlcpy(e.reason, o->reason, sizeof(e.reason));
    }
    e.raw = raw_request(q, journal_raw_cap(s->journal), &e.raw_len);
    journal_add(s->journal, &e);
}

/* ---- replies ---- */

static void reply_page(struct reply *rep, const struct iis_page *p, enum reply_kind kind)
{
    rep->body_static = 1;
    rep->kind = kind;
    rep->status = p->status;
    rep->reason = p->reason;
    rep->body = p->body;
    rep->len = p->len;
    rep->ctype = kind == RK_HTTPSYS ? "text/html; charset=us-ascii"
                 : kind == RK_PROXY ? "text/html; charset=utf-8"
                                    : "text/html";
}

static void reply_iis_error(struct reply *rep, int status, int substatus, long long win32)
{
    const struct iis_page *p = iis_custom_page(status);
    static const struct iis_page bare = {0, "Error", "", 0};

    if (p == NULL) {
        p = &bare;
        rep->status = status;
    }
    reply_page(rep, p, RK_IIS);
    rep->status = status;
    rep->substatus = substatus;
    rep->win32 = win32;
}

static void reply_httpsys(struct reply *rep, int status, const char *reason)
{
    reply_page(rep, iis_httpsys_page(status), RK_HTTPSYS);
    rep->httperr_reason = reason;
}

static void reply_ok(struct reply *rep, const char *ctype, const void *body, size_t len)
{
    rep->kind = RK_IIS;
    rep->status = 200;
    rep->reason = "OK";
    rep->ctype = ctype;
    rep->body = body;
    rep->len = len;
}

#define MAX_REPLY_HEADERS 10

/* The reply's headers in the order they go out (evhttp then appends
 * Content-Length). Returns their number; hv[i][0] is the name, hv[i][1] the value. */
static int reply_headers(struct worker *w, const struct reply *rep,
                         const char *hv[MAX_REPLY_HEADERS][2])
{
    int n = 0;

#define H(k, v) (hv[n][0] = (k), hv[n][1] = (v), n++)
    if (rep->ctype && *rep->ctype)
        H("Content-Type", rep->ctype);
    worker_clock(w, time(NULL));
    if (rep->kind == RK_HTTPSYS) {
        H("Server", "Microsoft-HTTPAPI/2.0");
        H("Date", w->http_date);
        H("Connection", "close");
        return n;
    }
    if (rep->kind == RK_IIS) {
        H("Server", rep->server ? rep->server : w->srv->cfg->server_header);
        if (w->srv->cfg->powered_by[0])
            H("X-Powered-By", w->srv->cfg->powered_by);
    }
    /* our own Date (cached) saves libevent formatting one per reply */
    H("Date", w->http_date);
    if (rep->location[0])
        H("Location", rep->location);
    if (rep->ntlm_challenge[0]) {
        H("WWW-Authenticate", rep->ntlm_challenge);
    } else if (rep->www_authenticate) {
        H("WWW-Authenticate", "Negotiate");
        H("WWW-Authenticate", "NTLM");
    }
#undef H
    return n;
}

/* evhttp_add_header() refuses a value with a line break not followed by
 * white space (folding); the fast lane drops the same headers. */
static int header_value_ok(const char *v)
{
    while ((v = strpbrk(v, "\r\n")) != NULL) {
        v += strspn(v, "\r\n");
        if (*v != ' ' && *v != '\t')
            return 0;
    }
    return 1;
}

/* The fast lane's rendering of what evhttp_send_reply() writes for a GET
 * HTTP/1.1 request without a Connection header: status line, our headers,
 * Content-Length (status codes that carry a body), blank line, body. */
static void render_h1(struct worker *w, const struct reply *rep, struct util_buf *out)
{
    const char *hv[MAX_REPLY_HEADERS][2];
    int i, n = reply_headers(w, rep, hv);

    util_buf_puts(out, "HTTP/1.1 ");
    util_buf_puti(out, rep->status);
    util_buf_puts(out, " ");
    util_buf_puts(out, rep->reason);
    util_buf_puts(out, "\r\n");
    for (i = 0; i < n; i++) {
        if (!header_value_ok(hv[i][1]))
            continue;
        util_buf_puts(out, hv[i][0]);
        util_buf_puts(out, ": ");
        util_buf_puts(out, hv[i][1]);
        util_buf_puts(out, "\r\n");
    }
    if (!(rep->status >= 100 && rep->status < 200) && rep->status != 204 && rep->status != 304) {
        util_buf_puts(out, "Content-Length: ");
        util_buf_putu(out, rep->len);
        util_buf_puts(out, "\r\n");
    }
    util_buf_puts(out, "\r\n");
    util_buf_append(out, rep->body, rep->len);
}

static void send_reply(struct rq *q, struct reply *rep)
{
    const char *hv[MAX_REPLY_HEADERS][2];
    struct evkeyvalq *h;
    struct evbuffer *b;
    int i, n;

    if (q->r == NULL) {
        render_h1(q->w, rep, &q->w->fast_out);
        q->close_after = rep->kind == RK_HTTPSYS;
        return;
    }
    h = evhttp_request_get_output_headers(q->r);
    n = reply_headers(q->w, rep, hv);
    for (i = 0; i < n; i++)
        evhttp_add_header(h, hv[i][0], hv[i][1]);
    if (q->cmd == EVHTTP_REQ_HEAD) {
        /* evhttp would send the body and no Content-Length; IIS sends the
         * length and no body */
        char len[24];
        snprintf(len, sizeof(len), "%zu", rep->len);
        evhttp_add_header(h, "Content-Length", len);
        evhttp_send_reply(q->r, rep->status, rep->reason, NULL);
        return;
    }
    b = evbuffer_new();
    if (b && rep->len) {
        if (rep->body_static) /* pages, GetCACert, caps: no copy */
            evbuffer_add_reference(b, rep->body, rep->len, NULL, NULL);
        else
            evbuffer_add(b, rep->body, rep->len);
    }
    evhttp_send_reply(q->r, rep->status, rep->reason, b);
    if (b)
        evbuffer_free(b);
}

/* The same reply as raw HTTP/1.1 bytes, for faults that play with the socket. */
static void render_raw(struct worker *w, const struct reply *rep, struct util_buf *out)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    util_buf_appendf(out, "HTTP/1.1 %d %s\r\n", rep->status, rep->reason);
    if (rep->ctype && *rep->ctype)
        util_buf_appendf(out, "Content-Type: %s\r\n", rep->ctype);
    if (rep->kind == RK_HTTPSYS) {
        util_buf_appendf(out, "Server: Microsoft-HTTPAPI/2.0\r\nDate: %s\r\n", date);
    } else {
        if (rep->kind == RK_IIS) {
            util_buf_appendf(out, "Server: %s\r\n",
                             rep->server ? rep->server : w->srv->cfg->server_header);
            if (w->srv->cfg->powered_by[0])
                util_buf_appendf(out, "X-Powered-By: %s\r\n", w->srv->cfg->powered_by);
        }
        util_buf_appendf(out, "Date: %s\r\n", date);
    }
    util_buf_appendf(out, "Connection: close\r\nContent-Length: %zu\r\n\r\n", rep->len);
    util_buf_append(out, rep->body, rep->len);
}

/* ---- raw connections (hijacked from evhttp for transport faults) ---- */

enum raw_phase { RAW_DELAY, RAW_SEND, RAW_DRIP, RAW_HANG, RAW_CLOSE, RAW_RESET, RAW_CRASH };

struct rawc {
    struct worker *w;
    int fd;
    struct event *io;
    struct event *timer;
    struct util_buf out;
    size_t pos;
    long limit;               /* PARTIAL: bytes to send before closing; -1 = all */
    long chunk;
    struct timeval interval;
    enum raw_phase phase, then;
    double hang_s;
    struct rawc *next, *prev;
};

static void free_evcon_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    evhttp_connection_free(arg);
}

static void raw_free(struct rawc *c)
{
    struct worker *w = c->w;

    if (c->prev)
        c->prev->next = c->next;
    else
        w->raws = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->io)
        event_free(c->io);
    if (c->timer)
        event_free(c->timer);
    if (c->fd >= 0)
        close(c->fd);
    util_buf_free(&c->out);
    free(c);
}

static void raw_reset(struct rawc *c)
{
    struct linger l = {1, 0};

    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    raw_free(c);
}

static void raw_step(struct rawc *c);

static void raw_io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rawc *c = arg;
    char sink[4096];

    if (what & EV_READ) {
        ssize_t n = recv(fd, sink, sizeof(sink), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            raw_free(c); /* the client gave up */
            return;
        }
        return;
    }
    if (what & EV_WRITE)
        raw_step(c);
}

static void raw_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rawc *c = arg;

    (void)fd;
    (void)what;
    if (c->phase == RAW_DELAY) {
        c->phase = c->then;
        raw_step(c);
    } else if (c->phase == RAW_DRIP) {
        raw_step(c);
    } else { /* hang deadline */
        raw_free(c);
    }
}

/* Sends what the phase allows; closes when done. */
static void raw_step(struct rawc *c)
{
    size_t want;
    ssize_t n;

    switch (c->phase) {
    case RAW_DELAY:
        return;
    case RAW_CLOSE:
    case RAW_CRASH:
        raw_free(c);
        return;
    case RAW_RESET:
        raw_reset(c);
        return;
    case RAW_HANG: {
        struct timeval tv;
        event_del(c->io);
        event_assign(c->io, c->w->base, c->fd, EV_READ | EV_PERSIST, raw_io_cb, c);
        event_add(c->io, NULL);
        tv.tv_sec = (time_t)c->hang_s;
        tv.tv_usec = (suseconds_t)((c->hang_s - (double)tv.tv_sec) * 1e6);
        evtimer_add(c->timer, &tv);
        return;
    }
    case RAW_SEND:
    case RAW_DRIP:
        break;
    }
    want = c->out.len - c->pos;
    if (c->limit >= 0 && (size_t)c->limit < c->out.len)
        want = (size_t)c->limit > c->pos ? (size_t)c->limit - c->pos : 0;
    if (c->phase == RAW_DRIP && (size_t)c->chunk < want)
        want = (size_t)c->chunk;
    if (want > 0) {
        n = send(c->fd, c->out.data + c->pos, want, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            raw_free(c);
            return;
        }
        if (n > 0)
            c->pos += (size_t)n;
    }
    if (c->pos >= c->out.len || (c->limit >= 0 && c->pos >= (size_t)c->limit)) {
        shutdown(c->fd, SHUT_WR);
        raw_free(c);
        return;
    }
    if (c->phase == RAW_DRIP) {
        evtimer_add(c->timer, &c->interval);
    } else {
        event_del(c->io);
        event_assign(c->io, c->w->base, c->fd, EV_WRITE, raw_io_cb, c);
        event_add(c->io, NULL);
    }
}

/* Takes the connection away from evhttp: the evhttp connection is freed from
 * a deferred event (never inside its own callback) and we keep the socket.
 * Returns the new raw connection, or NULL when the socket is already gone. */
static struct bufferevent *guard_bev(const struct guard *g);

static struct rawc *hijack(struct rq *q, enum raw_phase phase)
{
    struct worker *w = q->w;
    struct evhttp_connection *evcon = NULL;
    struct bufferevent *bev = NULL;
    struct timeval zero = {0, 0};
    struct rawc *c;
    int fd;

    if (q->r) {
        evcon = evhttp_request_get_connection(q->r);
        bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    } else if (q->g) {
        /* the fast lane: evhttp holds the connection, idle (see guard_learn_fd) */
        bufferevent_data_cb rcb = NULL;
        void *arg = NULL;
        bev = guard_bev(q->g);
        bufferevent_getcb(bev, &rcb, NULL, NULL, &arg);
        evcon = arg;
    }
    fd = bev && evcon ? bufferevent_getfd(bev) : -1;
    if (fd < 0)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->w = w;
    c->phase = phase;
    c->limit = -1;
    util_buf_init(&c->out);
    bufferevent_disable(bev, EV_READ | EV_WRITE);
    /* evhttp_connection_free() shuts the socket down for writing: give it a
     * placeholder under the same descriptor number and keep the real one. */
    c->fd = dup(fd);
    {
        int ph = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (ph >= 0) {
            dup2(ph, fd);
            close(ph);
        }
    }
    event_base_once(w->base, -1, EV_TIMEOUT, free_evcon_cb, evcon, &zero);
    if (q->r)
        w->inflight--; /* evhttp will not complete this request */
    q->taken = 1;
    c->io = event_new(w->base, c->fd, EV_READ, raw_io_cb, c);
    c->timer = evtimer_new(w->base, raw_timer_cb, c);
    c->next = w->raws;
    if (w->raws)
        w->raws->prev = c;
    w->raws = c;
    if (c->fd < 0 || c->io == NULL || c->timer == NULL) {
        raw_free(c);
        return NULL;
    }
    return c;
}

static struct timeval seconds_tv(double s)
{
    struct timeval tv;

    if (s < 0)
        s = 0;
    tv.tv_sec = (time_t)s;
    tv.tv_usec = (suseconds_t)((s - (double)tv.tv_sec) * 1e6);
    return tv;
}

/* ---- the healthy NDES ---- */

static enum route route_of(const char *path)
{
    static const char *const scep_paths[] = {
        "/certsrv/mscep/mscep.dll", "/certsrv/mscep/mscep.dll/pkiclient.exe",
        "/certsrv/mscep/", "/cgi-bin/pkiclient.exe",
    };
    size_t i;

    for (i = 0; i < sizeof(scep_paths) / sizeof(scep_paths[0]); i++)
        if (strcasecmp(path, scep_paths[i]) == 0)
            return ROUTE_SCEP;
    if (strcasecmp(path, "/certsrv/mscep") == 0)
        return ROUTE_REDIRECT;
    if (strcasecmp(path, "/certsrv/mscep_admin/") == 0 ||
        strcasecmp(path, "/certsrv/mscep_admin/mscep.dll") == 0)
        return ROUTE_ADMIN;
    if (strcasecmp(path, "/certsrv/mscep_admin") == 0)
        return ROUTE_ADMIN_REDIRECT;
    return ROUTE_NONE;
}

/* mscep_admin uses Windows authentication. In the lab ndesmock accepts the
 * configured challenge.admin_user/admin_password as Basic credentials or
 * through an NTLM handshake (NTLMv2; also inside "Negotiate" when the token is
 * raw NTLMSSP). The user may carry a DOMAIN\ prefix or an @domain suffix.
 * Returns 1 (authenticated, q->username set), 0 (no credentials), -1
 * (refused), or 2 (NTLM Type 2 challenge to send, in ntlm_out). */
static int admin_auth(struct rq *q, char *ntlm_out, size_t ntlm_cap)
{
    const struct config *cfg = q->w->srv->cfg;
    const char *h = rq_header(q, "Authorization");
    char dec[2048], *colon, *user;
    const char *want = cfg->admin_user, *bs, *b64;
    long n;

    if (h == NULL)
        return 0;
    if (strncasecmp(h, "NTLM ", 5) == 0 || strncasecmp(h, "Negotiate ", 10) == 0) {
        uint8_t chal[8];
        int r;
        /* NTLMv2's HMAC-MD5 is fetched from the default provider */
        if (scep_ctx_ready(q->w->srv->scep, NULL, 0) != 0)
            return -1;
        b64 = h + (h[0] == 'N' || h[0] == 'n' ? (h[1] == 'T' || h[1] == 't' ? 5 : 10) : 5);
        n = util_base64_decode(b64, strlen(b64), (uint8_t *)dec, sizeof(dec));
        if (n < 12 || memcmp(dec, "NTLMSSP", 8) != 0)
            return -1;
        ntlm_challenge_for(q->peer, q->peer_port, chal);
        if (dec[8] == 1) {
            memcpy(ntlm_out, "NTLM ", 5);
            if (ntlm_type2((const uint8_t *)dec, (size_t)n, chal, "LAB", cfg->pki.host_name,
                           ntlm_out + 5, ntlm_cap - 5) != 0)
                return -1;
            return 2;
        }
        r = ntlm_verify_type3((const uint8_t *)dec, (size_t)n, chal, cfg->admin_user,
                              cfg->admin_password, q->username, sizeof(q->username));
        if (r != 1)
            q->username[0] = '\0';
        return r == 1 ? 1 : -1;
    }
    if (strncasecmp(h, "Basic ", 6) != 0)
        return -1;
    n = util_base64_decode(h + 6, strlen(h + 6), (uint8_t *)dec, 511);
    if (n <= 0)
        return -1;
    dec[n] = '\0';
    colon = strchr(dec, ':');
    if (colon == NULL)
        return -1;
    *colon = '\0';
    user = dec;
    snprintf(q->username, sizeof(q->username), "%.159s", dec);
    if ((bs = strchr(user, '\\')) != NULL)
        user = (char *)bs + 1;
    if ((bs = strchr(want, '\\')) != NULL)
        want = bs + 1;
    {
        char *at = strchr(user, '@');
        if (at)
            *at = '\0';
    }
    if (strcasecmp(user, want) != 0 || strlen(colon + 1) != strlen(cfg->admin_password) ||
        CRYPTO_memcmp(colon + 1, cfg->admin_password, strlen(cfg->admin_password)) != 0) {
        q->username[0] = '\0';
        return -1;
    }
    return 1;
}

/* GET /certsrv/mscep_admin/: a fresh one-time password, or "cache full". */
static void admin_page(struct rq *q, struct reply *rep)
{
    struct server *s = q->w->srv;
    const struct config *cfg = s->cfg;
    char pw[160];

    util_buf_init(&rep->own);
    if (s->otp && otp_mint(s->otp, pw, sizeof(pw)) == 0) {
        iis_admin_password_page(&rep->own, s->scep->pki->ca_md5, pw, cfg->otp_validity_minutes);
        q->note = "one-time password issued";
    } else {
        iis_admin_cache_full_page(&rep->own, cfg->otp_max, cfg->otp_validity_minutes);
        q->note = "password cache full";
    }
    reply_ok(rep, "text/html", rep->own.data, rep->own.len);
}

/* Reads the PKIOperation message (POST body or GET message=) into q->der. */
static void read_message(struct rq *q)
{
    q->dlen = -1;
    if (q->cmd == EVHTTP_REQ_POST && q->r) {
        struct evbuffer *in = evhttp_request_get_input_buffer(q->r);
        size_t n = evbuffer_get_length(in);
        q->der = malloc(n ? n : 1);
        if (q->der && evbuffer_copyout(in, q->der, n) == (ev_ssize_t)n)
            q->dlen = (long)n;
    } else {
        const char *msg;
        size_t mlen;
        if (util_query_param(q->query, "message", &msg, &mlen) && mlen > 0) {
            q->der = malloc(mlen);
            if (q->der)
                q->dlen = scep_decode_get_message(msg, mlen, q->der, mlen);
        }
        if (q->dlen < 0)
            q->note = "message is not base64";
    }
}

static void caps_body(struct rq *q, struct reply *rep)
{
    const struct scep_ctx *sc = q->w->srv->scep;
    const struct scenario *s = q->sc;
    const struct config_caps *cc = &q->w->srv->cfg->caps;
    const char *ctype;
    int i, crlf;

    if (s == NULL || !s->caps_override) {
        reply_ok(rep, cc->content_type, sc->caps_body, sc->caps_len);
        rep->body_static = 1;
        return;
    }
    ctype = (s->caps_override & 2) ? s->caps.content_type : cc->content_type;
    crlf = (s->caps_override & 4) ? s->caps.crlf : cc->crlf;
    if (s->caps_override & 1) {
        util_buf_init(&rep->own);
        for (i = 0; i < s->caps.count; i++)
            util_buf_appendf(&rep->own, "%s%s", s->caps.items[i], crlf ? "\r\n" : "\n");
        reply_ok(rep, ctype, rep->own.data, rep->own.len);
    } else {
        reply_ok(rep, ctype, sc->caps_body, sc->caps_len);
    }
}

static void pkioperation(struct rq *q, struct reply *rep, const struct scep_opts *opts)
{
    char perr[700];

    if (q->der == NULL || q->dlen <= 0) {
        /* Nothing NDES could decode: mscep.dll fails and IIS answers 500. */
        reply_iis_error(rep, 500, 0, 0);
        if (!q->note)
            q->note = "empty PKIOperation message";
        return;
    }
    /* main.c makes the providers and algorithms right after listening
     * (SCEP_CTX_CRYPTO_LATER) and leaves the lab PKI's certificate objects and
     * keys to the first PKIOperation (pki_start(PKI_LOAD_LATER)): whichever
     * call comes first makes them (other workers wait), every later one is an
     * atomic load. */
    if (scep_ctx_ready(q->w->srv->scep, perr, sizeof(perr)) != 0 ||
        pki_ready(q->w->srv->scep->pki, perr, sizeof(perr)) != 0) {
        static atomic_int logged;
        if (atomic_exchange(&logged, 1) == 0)
            fprintf(stderr, "ndesmock: lab PKI: %s\n", perr);
        reply_iis_error(rep, 500, 0, 0);
        q->note = "lab PKI not loaded";
        return;
    }
    scep_pkioperation_ex(q->w->srv->scep, q->der, (size_t)q->dlen, opts, &q->o);
    q->have_o = 1;
    if (q->o.kind == SCEP_OUT_IIS_500) {
        reply_iis_error(rep, 500, 0, 0);
        return;
    }
    reply_ok(rep, "application/x-pki-message", q->o.body.data, q->o.body.len);
}

static void scenario_opts(struct rq *q, struct scep_opts *o)
{
    struct scep_ctx *ctx = q->w->srv->scep;

    memset(o, 0, sizeof(*o));
    o->force_status = SCEP_STATUS_NONE;
    /* the digests below are fetched by scep_ctx_ready (a failure: pkioperation answers 500) */
    if (q->sc == NULL || scep_ctx_ready(ctx, NULL, 0) != 0)
        return;
    o->force_des3 = q->sc->reply_des3;
    if (strcmp(q->sc->reply_digest, "sha1") == 0)
        o->md = ctx->algs.sha1;
    else if (strcmp(q->sc->reply_digest, "sha256") == 0)
        o->md = ctx->algs.sha256;
    else if (strcmp(q->sc->reply_digest, "sha512") == 0)
        o->md = ctx->algs.sha512;
}

/* What a healthy NDES answers (with the scenario's overrides, not its rules). */
static void healthy(struct rq *q, struct reply *rep)
{
    const struct scep_ctx *sc = q->w->srv->scep;
    struct scep_opts opts;

    switch (q->route) {
    case ROUTE_NONE:
        reply_iis_error(rep, 404, 0, 2);
        return;
    case ROUTE_ADMIN:
    case ROUTE_ADMIN_REDIRECT: {
        int a = admin_auth(q, rep->ntlm_challenge, sizeof(rep->ntlm_challenge));
        if (a != 1) {
            /* IIS logs the anonymous probe 401.2 (5), the NTLM challenge round
             * 401.1 (0x80090302), a refused logon 401.1 (1326) */
            reply_iis_error(rep, 401, a == 0 ? 2 : 1, a == 0 ? 5 : a == 2 ? 2148074242LL : 1326);
            rep->www_authenticate = 1;
            if (a != 2)
                rep->ntlm_challenge[0] = '\0';
            return;
        }
        if (q->route == ROUTE_ADMIN_REDIRECT) {
            rep->kind = RK_IIS;
            rep->status = 301;
            rep->reason = "Moved Permanently";
            rep->ctype = "text/html; charset=UTF-8";
            snprintf(rep->location, sizeof(rep->location), "%s/", q->path);
            return;
        }
        if (q->op == NULL || *q->op == '\0') {
            admin_page(q, rep);
            return;
        }
        break; /* SCEP operations on the admin application answer as on /mscep */
    }
    case ROUTE_REDIRECT:
        rep->kind = RK_IIS;
        rep->status = 301;
        rep->reason = "Moved Permanently";
        rep->ctype = "text/html; charset=UTF-8";
        snprintf(rep->location, sizeof(rep->location), "%s/%s%s", q->path, *q->query ? "?" : "",
                 q->query);
        return;
    case ROUTE_SCEP:
        break;
    }
    if (q->cmd != EVHTTP_REQ_GET && q->cmd != EVHTTP_REQ_POST && q->cmd != EVHTTP_REQ_HEAD) {
        reply_iis_error(rep, 405, 0, 0);
        return;
    }
    if (q->op == NULL || *q->op == '\0') {
        /* The Intune connector's policy module makes the bare URL answer 403.0. */
        reply_iis_error(rep, 403, 0, 0);
        return;
    }
    if (strcmp(q->op, "GetCACaps") == 0) {
        caps_body(q, rep);
    } else if (strcmp(q->op, "GetCACert") == 0) {
        reply_ok(rep, "application/x-x509-ca-ra-cert", sc->pki->getcacert_der,
                 sc->pki->getcacert_len);
        rep->body_static = 1;
    } else if (strcmp(q->op, "PKIOperation") == 0) {
        scenario_opts(q, &opts);
        pkioperation(q, rep, &opts);
    } else {
        /* Unknown operation: the policy module intercepts it like the bare URL. */
        reply_iis_error(rep, 403, 0, 0);
        q->note = "unknown operation";
    }
}

/* ---- scenario actions ---- */

static enum raw_phase phase_of(enum sc_action_type t)
{
    switch (t) {
    case SC_ACT_CRASH: return RAW_CRASH;
    case SC_ACT_CLOSE: return RAW_CLOSE;
    case SC_ACT_RESET: return RAW_RESET;
    case SC_ACT_DRIP: return RAW_DRIP;
    case SC_ACT_HANG: return RAW_HANG;
    default: return RAW_SEND;
    }
}

static int is_transport(enum sc_action_type t)
{
    return t == SC_ACT_CRASH || t == SC_ACT_CLOSE || t == SC_ACT_RESET || t == SC_ACT_PARTIAL ||
           t == SC_ACT_DRIP || t == SC_ACT_HANG || t == SC_ACT_DELAY;
}

/* Builds the reply an action gives (for the non-transport part). */
static void action_reply(struct rq *q, enum sc_action_type t, const struct sc_action *a,
                         int status, struct reply *rep)
{
    struct scep_opts opts;

    switch (t) {
    case SC_ACT_IIS:
        reply_iis_error(rep, status, a->substatus, a->win32);
        break;
    case SC_ACT_HTTPSYS:
        status = status == 400 || status == 414 ? status : 503;
        reply_httpsys(rep, status,
                      a->httperr_reason[0] ? a->httperr_reason
                      : status == 503      ? "AppOffline"
                      : status == 414      ? "URL_Length"
                                           : "RequestLength");
        break;
    case SC_ACT_PROXY:
        reply_page(rep, iis_proxy_page(a->proxy_page == SC_PROXY_CANT_DISPLAY), RK_PROXY);
        rep->status = status ? status : rep->status;
        rep->no_log = 1; /* App Proxy answers in front of IIS: no IIS line */
        break;
    case SC_ACT_LANDING: {
        const struct iis_page *p = iis_landing_page();
        reply_ok(rep, "text/html", p->body, p->len);
        break;
    }
    case SC_ACT_CAPS_EMPTY:
        reply_ok(rep, (q->sc->caps_override & 2) ? q->sc->caps.content_type
                                                 : q->w->srv->cfg->caps.content_type, "", 0);
        break;
    case SC_ACT_SCEP:
        if (q->op && strcmp(q->op, "PKIOperation") == 0) {
            scenario_opts(q, &opts);
            opts.force_status = a->pki_status;
            opts.fail_info = a->fail_info;
            opts.hresult = a->hresult;
            opts.pending_after_polls = (int)a->approve_after_polls;
            opts.pending_after_s =
                a->approve_after_s * scenario_engine_time_scale(q->w->srv->engine);
            if (a->pki_status == SCEP_STATUS_SUCCESS)
                opts.force_status = SCEP_STATUS_NONE;
            pkioperation(q, rep, &opts);
        } else {
            healthy(q, rep);
        }
        break;
    default:
        healthy(q, rep);
        break;
    }
}

/* Runs a transport fault on the hijacked socket. Returns 0 if it took over. */
static int transport_fault(struct rq *q, const struct sc_action *a, struct reply *rep)
{
    struct worker *w = q->w;
    double scale = scenario_engine_time_scale(w->srv->engine);
    enum sc_action_type t = a->type, then = a->then;
    struct rawc *c;

    if (t == SC_ACT_CRASH || (t == SC_ACT_DELAY && then == SC_ACT_CRASH)) {
        /* WAS counts the crash when the worker dies; rapid-fail may stop the pool. */
        if (t == SC_ACT_CRASH && scenario_record_crash(w->srv->engine))
            q->note = "rapid-fail protection stopped the application pool";
    }
    c = hijack(q, t == SC_ACT_DELAY ? RAW_DELAY : phase_of(t));
    if (c == NULL)
        return -1;
    if (q->tls) {
        /* the socket speaks TLS: faults that write raw bytes only close it */
        if (c->phase == RAW_SEND || c->phase == RAW_DRIP)
            c->phase = RAW_CLOSE;
        if (t == SC_ACT_DELAY && (phase_of(then) == RAW_SEND || phase_of(then) == RAW_DRIP))
            then = SC_ACT_CLOSE;
    }
    c->hang_s = (a->seconds > 0 ? a->seconds : w->srv->cfg->request_timeout_s) * scale;
    c->chunk = a->bytes > 0 ? a->bytes : 1;
    c->interval = seconds_tv((a->interval_s > 0 ? a->interval_s : 1.0) * scale);
    if (t == SC_ACT_PARTIAL)
        c->limit = a->bytes;
    if (t == SC_ACT_DELAY) {
        struct timeval tv = seconds_tv(a->seconds * scale);
        c->then = phase_of(then);
        if (then == SC_ACT_PARTIAL)
            c->limit = a->bytes;
        if (then == SC_ACT_CRASH && scenario_record_crash(w->srv->engine))
            q->note = "rapid-fail protection stopped the application pool";
        if (c->then == RAW_SEND || c->then == RAW_DRIP)
            render_raw(w, rep, &c->out);
        evtimer_add(c->timer, &tv);
        return 0;
    }
    if (c->phase == RAW_SEND || c->phase == RAW_DRIP)
        render_raw(w, rep, &c->out);
    raw_step(c);
    return 0;
}

/* ---- connection guard ----
 * libevent 2.1 has no per-request deadline, no connection cap and answers
 * non-HTTP bytes and oversized bodies itself. Every connection evhttp accepts
 * gets a guard: its bufferevent is made by us (evhttp_set_bevcb) and kept
 * referenced, so the guard can tell when evhttp has freed it (callbacks
 * cleared). A priority-0 event sees the first bytes before evhttp's reader
 * (priority 1) and answers as HTTP.sys (400 for bytes that are not HTTP, 503
 * over the connection cap) or IIS (404.13 for a declared body over the cap,
 * without reading it). A 100 ms sweep closes connections idle or stuck in a
 * request past the deadline (IIS connectionTimeout, scaled) and reclaims
 * guards. */

struct guard {
    struct worker *w;
    struct bufferevent *bev;  /* one reference held */
    struct event *watch;
    uint64_t last_ns;         /* accepted, or last request started/finished */
    int busy;                 /* a request is being answered: the deadline does not apply */
    int fd;
    int over_cap;
    /* the fast lane (see below) */
    int fast;                 /* 1: ours, evhttp's reading is off; 0: evhttp's */
    int fast_done;            /* handed to evhttp: never fast again */
    int handover_pending;     /* hand over once pending is sent */
    int close_pending;        /* ... and shut the socket down first */
    struct util_buf pending;  /* reply bytes the socket did not take yet */
    char peer[64];
    int peer_port;
    struct guard *next, *prev;
};

static struct bufferevent *guard_bev(const struct guard *g)
{
    return g->bev;
}

static void guard_map(struct worker *w, struct guard *g)
{
    if (g->fd < 0)
        return;
    if ((size_t)g->fd >= w->by_fd_cap) {
        size_t n = w->by_fd_cap ? w->by_fd_cap : 256;
        struct guard **m;
        while (n <= (size_t)g->fd)
            n *= 2;
        m = realloc(w->by_fd, n * sizeof(*m));
        if (m == NULL)
            return;
        memset(m + w->by_fd_cap, 0, (n - w->by_fd_cap) * sizeof(*m));
        w->by_fd = m;
        w->by_fd_cap = n;
    }
    w->by_fd[g->fd] = g;
}

static struct guard *guard_of(struct worker *w, struct evhttp_request *r)
{
    struct evhttp_connection *c = evhttp_request_get_connection(r);
    struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;
    int fd = bev ? bufferevent_getfd(bev) : -1;

    if (fd < 0 || (size_t)fd >= w->by_fd_cap || w->by_fd[fd] == NULL ||
        w->by_fd[fd]->bev != bev)
        return NULL;
    return w->by_fd[fd];
}

/* Keeps connections spread over the workers: the shared listening socket
 * wakes whichever loop wins, and with a few long-lived connections one worker
 * could end up with all the CPU-heavy enrollments. A worker holding more than
 * one connection above the least loaded stops accepting, but only while
 * another worker with fewer connections accepts, so someone always accepts;
 * a worker that stops wakes the others to re-check at once. */
static void balance(struct worker *w)
{
    struct server *s = w->srv;
    long mine = atomic_load(&w->nconns), least = mine;
    int i, want, other_accepting = 0;

    if (w->listener == NULL || s->nworkers < 2 || w->stopping)
        return;
    for (i = 0; i < s->nworkers; i++) {
        struct worker *o = &s->workers[i];
        long n = atomic_load(&o->nconns);
        if (n < least)
            least = n;
        if (o != w && n < mine && atomic_load(&o->accepting))
            other_accepting = 1;
    }
    want = mine <= least + 1 || !other_accepting;
    if (want != atomic_load(&w->accepting)) {
        if (want) {
            evconnlistener_enable(w->listener);
        } else {
            evconnlistener_disable(w->listener);
            for (i = 0; i < s->nworkers; i++)
                if (&s->workers[i] != w && s->workers[i].balance_ev)
                    event_active(s->workers[i].balance_ev, EV_READ, 0);
        }
        atomic_store(&w->accepting, want);
    }
}

static void balance_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    balance(arg);
}

static void guard_free(struct guard *g)
{
    struct worker *w = g->w;

    if (g->prev)
        g->prev->next = g->next;
    else
        w->guards = g->next;
    if (g->next)
        g->next->prev = g->prev;
    if (g->fd >= 0 && (size_t)g->fd < w->by_fd_cap && w->by_fd[g->fd] == g)
        w->by_fd[g->fd] = NULL;
    if (g->watch)
        event_free(g->watch);
    util_buf_free(&g->pending);
    bufferevent_decref(g->bev);
    atomic_fetch_sub(&w->srv->conns, 1);
    atomic_fetch_sub(&w->nconns, 1);
    free(g);
    balance(w);
}

/* The peer's numeric address into host ("-" when unknown, as evhttp names
 * it); returns its port (0 when unknown). */
static int socket_peer(int fd, char *host, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char port[16];

    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 &&
        getnameinfo((struct sockaddr *)&ss, sl, host, (socklen_t)cap, port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        return atoi(port);
    snprintf(host, cap, "-");
    return 0;
}

/* Answers on the raw socket and shuts it down; evhttp then sees EOF and frees
 * the connection (the guard is reclaimed by the sweep). */
static void guard_answer(struct guard *g, const struct reply *rep, const char *why)
{
    struct worker *w = g->w;
    struct util_buf out;
    struct rq q;

    util_buf_init(&out);
    render_raw(w, rep, &out);
    if (out.len)
        (void)!send(g->fd, out.data, out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    util_buf_free(&out);
    shutdown(g->fd, SHUT_RDWR);
    /* logs: HTTP.sys answers go to HTTPERR, IIS's to the W3C log */
    memset(&q, 0, sizeof(q));
    q.w = w;
    q.t0 = util_now_ns();
    q.now = time(NULL);
    q.uri = "-";
    q.uri_len = 1;
    q.query = "";
    q.note = why;
    q.peer_port = socket_peer(g->fd, q.peer, sizeof(q.peer));
    if (w->srv->cfg->access_log)
        util_buf_appendf(&w->log, "- %s - - status=%d.%d bytes=%zu note=\"%s\"\n", q.peer,
                         rep->status, rep->substatus, rep->len, why);
    if (w->srv->winlog && rep->kind == RK_HTTPSYS) {
        struct httperr_line h = {0};
        h.c_ip = q.peer;
        h.c_port = q.peer_port;
        h.s_ip = w->srv->s_ip;
        h.s_port = w->srv->s_port;
        h.status = rep->status;
        h.reason = rep->httperr_reason;
        winlog_httperr(&w->wlb, q.now, &h);
    }
}

static long declared_length(const char *hdr, size_t n)
{
    size_t i;

    for (i = 0; i + 16 < n; i++) {
        if ((i == 0 || hdr[i - 1] == '\n') && strncasecmp(hdr + i, "Content-Length:", 15) == 0) {
            const char *p = hdr + i + 15;
            while (*p == ' ' || *p == '\t')
                p++;
            return strtol(p, NULL, 10);
        }
    }
    return -1;
}

static void guard_watch_cb(evutil_socket_t fd, short what, void *arg);
static void fast_serve(struct guard *g, char *buf, size_t n);

static void guard_first_bytes(struct guard *g)
{
    struct worker *w = g->w;
    const struct config *cfg = w->srv->cfg;
    char buf[FAST_PEEK];
    ssize_t n;
    struct reply rep;
    const char *end;

    memset(&rep, 0, sizeof(rep));
    if (g->over_cap) {
        reply_httpsys(&rep, 503, "ConnLimit");
        guard_answer(g, &rep, "connection limit reached");
        return;
    }
    n = recv(g->fd, buf, sizeof(buf) - 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        event_assign(g->watch, w->base, g->fd, EV_READ, guard_watch_cb, g);
        event_priority_set(g->watch, 0);
        event_add(g->watch, NULL);
        return;
    }
    if (n <= 0)
        return;
    buf[n] = '\0';
    if (buf[0] < 'A' || buf[0] > 'Z') {
        /* a TLS ClientHello on the plain port, or any other non-HTTP bytes */
        reply_page(&rep, iis_httpsys_page(4000), RK_HTTPSYS);
        rep.httperr_reason = "BadRequest";
        guard_answer(g, &rep, "bytes that are not HTTP");
        return;
    }
    end = memmem(buf, (size_t)n, "\r\n\r\n", 4);
    if (end && declared_length(buf, (size_t)(end - buf) + 2) > cfg->max_body_bytes) {
        /* IIS request filtering maxAllowedContentLength: 404.13, body left unread */
        reply_iis_error(&rep, 404, 13, 0);
        guard_answer(g, &rep, "declared body over the cap (404.13)");
        return;
    }
    if (cfg->fast_lane && evbuffer_get_length(bufferevent_get_input(g->bev)) == 0)
        fast_serve(g, buf, (size_t)n);
}

/* ---- the fast lane ----
 * evhttp spends more on a keep-alive GET than the answer costs: it disables
 * reading while a request is answered, enables writing, then the reverse (4
 * epoll_ctl and ~3 epoll_wait per request), and copies every header. The
 * fast lane answers the simplest requests on a plain connection itself: a
 * connection whose first bytes are complete GET requests that h1.c accepts
 * is served from a persistent
 * priority-0 read event with evhttp's reading switched off: peek, parse,
 * serve() (the same code evhttp's requests go through), consume, one send().
 * Scenario rules apply as on evhttp's path; a transport fault takes the
 * socket the same way (hijack()). The first bytes that are anything else
 * (another method, a partial or unusual request, EOF, an error) hand the
 * connection to evhttp for good, those bytes still unread, once our replies
 * are sent.
 * The replies are byte for byte what evhttp sends (t_fastlane.sh compares
 * both lanes); server.fast_lane = false turns the lane off. */

static void fast_cb(evutil_socket_t fd, short what, void *arg);
static void serve(struct rq *q);

static void fast_arm(struct guard *g, short what)
{
    event_del(g->watch);
    event_assign(g->watch, g->w->base, g->fd, what | EV_PERSIST, fast_cb, g);
    event_priority_set(g->watch, 0);
    event_add(g->watch, NULL);
}

/* Gives the connection back to evhttp (its state is "reading the first
 * line": it never saw a request on this connection). */
static void fast_handover(struct guard *g)
{
    event_del(g->watch);
    if (g->close_pending)
        shutdown(g->fd, SHUT_RDWR); /* the reply said Connection: close */
    g->fast = 0;
    g->fast_done = 1;
    g->handover_pending = g->close_pending = 0;
    util_buf_free(&g->pending);
    bufferevent_enable(g->bev, EV_READ);
}

/* Sends what is pending. Returns 0 when all is sent, 1 when the socket is
 * full (the write event is armed), -1 on error. */
static int fast_flush(struct guard *g)
{
    while (g->pending.len) {
        ssize_t k = send(g->fd, g->pending.data, g->pending.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            fast_arm(g, EV_WRITE);
            return 1;
        }
        if (k <= 0)
            return -1;
        memmove(g->pending.data, g->pending.data + k, g->pending.len - (size_t)k);
        g->pending.len -= (size_t)k;
    }
    return 0;
}

/* Sends one batch's replies (w->fast_out), keeping what the socket does not
 * take. Returns as fast_flush(). */
static int fast_send(struct guard *g, const struct util_buf *out)
{
    size_t off = 0;

    while (off < out->len) {
        ssize_t k = send(g->fd, out->data + off, out->len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (k <= 0)
            return -1;
        off += (size_t)k;
    }
    if (off == out->len)
        return 0;
    if (util_buf_append(&g->pending, out->data + off, out->len - off) != 0)
        return -1;
    fast_arm(g, EV_WRITE);
    return 1;
}

/* Answers one parsed request; the reply goes to w->fast_out. Returns 1 if
 * the reply closes the connection, 2 if a transport fault took the socket. */
static int fast_request(struct guard *g, const struct h1_request *h, struct scenario *sc)
{
    struct worker *w = g->w;
    struct rq q;

    memset(&q, 0, sizeof(q));
    q.w = w;
    q.h1 = h;
    q.g = g;
    q.t0 = util_now_ns();
    q.now = time(NULL);
    q.cmd = EVHTTP_REQ_GET;
    q.uri = h->uri;
    q.uri_len = h->uri_len;
    memcpy(q.peer, g->peer, sizeof(q.peer));
    q.peer_port = g->peer_port;
    q.sc = sc;
    w->inflight++;
    serve(&q);
    w->inflight--;
    g->last_ns = util_now_ns(); /* the idle time starts after the reply */
    return q.taken ? 2 : q.close_after;
}

/* Serves the complete fast-lane requests at the start of buf[0 .. n) (bytes
 * peeked from the socket), consuming each before it is answered, and sends
 * the replies; hands the connection to evhttp at the first byte it does not
 * serve. Under a scenario with rules it serves one request per call, as
 * evhttp does (a rule may act on the socket, so earlier replies go out
 * first): the persistent read event brings the next one. */
static void fast_serve(struct guard *g, char *buf, size_t n)
{
    struct worker *w = g->w;
    size_t used = 0;
    int close = 0, more = 0, rc = 0;

    util_buf_reset(&w->fast_out);
    while (used < n && !close) {
        struct h1_request h;
        struct scenario *sc;
        ssize_t k;

        if (h1_parse_get(buf + used, n - used, &h) != H1_OK)
            break;
        sc = scenario_engine_acquire(w->srv->engine);
        if (sc->nrules && used > 0) {
            scenario_release(sc);
            more = 1;
            break;
        }
        if (!g->fast && !g->fast_done) {
            /* take the connection: evhttp stops reading, our event reads */
            g->peer_port = socket_peer(g->fd, g->peer, sizeof(g->peer));
            bufferevent_disable(g->bev, EV_READ);
            g->fast = 1;
            fast_arm(g, EV_READ);
        }
        /* consume the request before answering it, as evhttp has read it
         * (MSG_TRUNC: TCP discards the bytes without copying them) */
        while ((k = recv(g->fd, NULL, h.len, MSG_TRUNC | MSG_DONTWAIT)) < 0 && errno == EINTR)
            ;
        if (k != (ssize_t)h.len) {
            scenario_release(sc);
            close = -1;
            break;
        }
        used += h.len;
        close = fast_request(g, &h, sc); /* releases sc */
        if (close == 2) {
            /* a transport fault has the socket now (the descriptor number
             * holds a placeholder until evhttp frees its connection) */
            event_del(g->watch);
            g->fast = 0;
            g->fast_done = 1;
            return;
        }
    }
    if (close < 0) { /* the socket failed under us: evhttp finds out and frees it */
        g->close_pending = 0;
        fast_handover(g);
        return;
    }
    if (used == 0) {
        if (g->fast)
            fast_handover(g);
        return;
    }
    rc = fast_send(g, &w->fast_out);
    if (w->fast_out.cap > FAST_PEEK * 4)
        util_buf_free(&w->fast_out); /* a big reply does not stay with the worker */
    if (rc < 0) {
        g->close_pending = 0;
        fast_handover(g); /* evhttp sees the error or EOF and frees the connection */
        return;
    }
    if ((used < n && !more) || close) {
        g->close_pending = close;
        if (rc == 0)
            fast_handover(g);
        else
            g->handover_pending = 1;
    }
}

static void fast_cb(evutil_socket_t fd, short what, void *arg)
{
    struct guard *g = arg;
    char buf[FAST_PEEK];
    ssize_t n;

    (void)fd;
    if (what & EV_WRITE) {
        int rc = fast_flush(g);
        if (rc == 1)
            return;
        if (rc < 0 || g->handover_pending) {
            if (rc < 0)
                g->close_pending = 0;
            fast_handover(g);
            return;
        }
        fast_arm(g, EV_READ);
        return;
    }
    n = recv(g->fd, buf, sizeof(buf) - 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        fast_handover(g); /* EOF or an error: evhttp reads it and frees the connection */
        return;
    }
    buf[n] = '\0';
    fast_serve(g, buf, (size_t)n);
}

/* evhttp frees a connection it closes itself (after a reply that said
 * Connection: close) with its bufferevent still reading; our reference keeps
 * that bufferevent alive, and its read event would stay registered under the
 * descriptor number, which the next accepted connection gets: the stale
 * event would then read that connection's request into a buffer nobody
 * looks at. evhttp calls this just before it frees the connection: stop
 * every event on the socket and forget the descriptor. */
static void guard_closecb(struct evhttp_connection *evcon, void *arg)
{
    struct guard *g = arg;
    struct worker *w = g->w;

    (void)evcon;
    bufferevent_disable(g->bev, EV_READ | EV_WRITE);
    if (g->watch)
        event_del(g->watch);
    g->fast = 0;
    g->fast_done = 1;
    if (g->fd >= 0 && (size_t)g->fd < w->by_fd_cap && w->by_fd[g->fd] == g)
        w->by_fd[g->fd] = NULL;
    g->fd = -2; /* known and gone: the sweep must not look the socket up again */
}

/* The socket is known once evhttp has set the connection up. */
static void guard_learn_fd(struct guard *g)
{
    bufferevent_data_cb rcb = NULL;
    void *evcon = NULL;

    g->fd = bufferevent_getfd(g->bev);
    if (g->fd < 0) {
        g->fd = -1;
        return;
    }
    guard_map(g->w, g);
    /* evhttp gives its bufferevent the connection as callback argument */
    bufferevent_getcb(g->bev, &rcb, NULL, NULL, &evcon);
    if (rcb && evcon)
        evhttp_connection_set_closecb(evcon, guard_closecb, g);
}

static void guard_watch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct guard *g = arg;

    (void)what;
    if (g->fd == -2)
        return;
    if (g->fd == -1)
        guard_learn_fd(g);
    (void)fd;
    if (g->fd >= 0)
        guard_first_bytes(g);
}

static struct bufferevent *guard_bevcb(struct event_base *base, void *arg)
{
    struct worker *w = arg;
    struct guard *g = calloc(1, sizeof(*g));
    struct bufferevent *bev;
    struct timeval zero = {0, 0};

    /* no BEV_OPT_CLOSE_ON_FREE: evhttp then closes the socket itself when it
     * frees the connection, while our reference keeps the struct readable */
    bev = bufferevent_socket_new(base, -1, 0);
    if (g == NULL || bev == NULL) {
        free(g);
        return bev;
    }
    bufferevent_incref(bev);
    g->w = w;
    g->bev = bev;
    g->fd = -1;
    g->last_ns = util_now_ns();
    g->over_cap = atomic_fetch_add(&w->srv->conns, 1) + 1 > w->srv->cfg->max_connections;
    atomic_fetch_add(&w->nconns, 1);
    balance(w);
    g->watch = evtimer_new(base, guard_watch_cb, g);
    if (g->watch) {
        event_priority_set(g->watch, 0);
        evtimer_add(g->watch, &zero);
    }
    g->next = w->guards;
    if (w->guards)
        w->guards->prev = g;
    w->guards = g;
    return bev;
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct guard *g = w->guards, *next;
    uint64_t now = util_now_ns();
    double scale = scenario_engine_time_scale(w->srv->engine);
    uint64_t deadline = (uint64_t)(w->srv->cfg->request_timeout_s * scale * 1e9);
    bufferevent_data_cb rcb, wcb;
    bufferevent_event_cb ecb;

    (void)fd;
    (void)what;
    balance(w);
    for (; g; g = next) {
        next = g->next;
        rcb = wcb = NULL;
        ecb = NULL;
        bufferevent_getcb(g->bev, &rcb, &wcb, &ecb, NULL);
        /* evhttp freed the connection: it told us (guard_closecb), or it
         * cleared every callback (bufferevent_free). The read callback alone
         * is also NULL while evhttp writes a reply. */
        if (g->fd == -2 || (rcb == NULL && wcb == NULL && ecb == NULL)) {
            guard_free(g);
            continue;
        }
        if (g->fd == -1)
            guard_learn_fd(g);
        if (g->fd >= 0 && !g->busy && now - g->last_ns > deadline) {
            /* IIS connectionTimeout: a request not completed (or an idle
             * connection) past the deadline is closed, however slowly it
             * trickles in */
            if (w->srv->cfg->access_log)
                util_buf_appendf(&w->log, "- connection closed: no complete request within %.3f s\n",
                                 (double)deadline / 1e9);
            shutdown(g->fd, SHUT_RDWR);
            g->last_ns = now;
        }
    }
}

/* ---- TLS listener ---- */

static struct bufferevent *tls_bevcb(struct event_base *base, void *arg)
{
    struct worker *w = arg;
    struct scenario *sc = scenario_engine_acquire(w->srv->engine);
    int f = sc->tls_fault >= 0 && sc->tls_fault < SC_TLS_FAULTS ? sc->tls_fault : 0;
    SSL_CTX *ctx = w->srv->tls_ctx[f] ? w->srv->tls_ctx[f] : w->srv->tls_ctx[0];
    SSL *ssl = SSL_new(ctx);

    scenario_release(sc);
    /* the scenario active at accept time decides what the handshake shows */
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static SSL_CTX *tls_ctx_from(X509 *cert, EVP_PKEY *key, X509 *chain, int tls10)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL)
        return NULL;
    if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
        (chain && SSL_CTX_add1_chain_cert(ctx, chain) != 1)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (tls10) {
        /* OpenSSL 3 refuses TLS 1.0 above security level 0 */
        SSL_CTX_set_security_level(ctx, 0);
        SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
        SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
        SSL_CTX_set_max_proto_version(ctx, TLS1_VERSION);
    } else {
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    }
    return ctx;
}

static X509 *read_pem_cert(const char *dir, const char *file)
{
    char path[700];
    FILE *f;
    X509 *x = NULL;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    f = fopen(path, "r");
    if (f) {
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    return x;
}

/* The TLS contexts: the lab server certificate, and the faulty set's. */
static int tls_setup(struct server *s, char *err, size_t errlen)
{
    const struct pki *pki = s->scep->pki;
    char dir[700];
    FILE *f;
    EVP_PKEY *fkey = NULL;
    X509 *exp, *wrong, *untrusted;
    int rc = -1;

    snprintf(dir, sizeof(dir), "%s/faulty", pki->dir);
    s->tls_ctx[SC_TLS_OK] = tls_ctx_from(pki->tls_cert, pki->tls_key,
                                         pki->has_intermediate ? pki->ca_cert : NULL, 0);
    s->tls_ctx[SC_TLS_TLS10_ONLY] = tls_ctx_from(pki->tls_cert, pki->tls_key,
                                                 pki->has_intermediate ? pki->ca_cert : NULL, 1);
    snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/key.pem");
    f = fopen(dir, "r");
    if (f) {
        fkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
    }
    dir[strlen(dir) - strlen("/key.pem")] = '\0';
    exp = read_pem_cert(dir, "tls-expired.pem");
    wrong = read_pem_cert(dir, "tls-wrong-host.pem");
    untrusted = read_pem_cert(dir, "tls-untrusted.pem");
    if (fkey && exp && wrong && untrusted) {
        s->tls_ctx[SC_TLS_EXPIRED] = tls_ctx_from(exp, fkey, NULL, 0);
        s->tls_ctx[SC_TLS_WRONG_HOST] = tls_ctx_from(wrong, fkey, NULL, 0);
        s->tls_ctx[SC_TLS_UNTRUSTED] = tls_ctx_from(untrusted, fkey, NULL, 0);
    }
    if (s->tls_ctx[SC_TLS_OK] && s->tls_ctx[SC_TLS_TLS10_ONLY] && s->tls_ctx[SC_TLS_EXPIRED] &&
        s->tls_ctx[SC_TLS_WRONG_HOST] && s->tls_ctx[SC_TLS_UNTRUSTED])
        rc = 0;
    else
        snprintf(err, errlen, "cannot set up TLS from %s (server and faulty certificates)", pki->dir);
    ERR_clear_error();
    EVP_PKEY_free(fkey);
    X509_free(exp);
    X509_free(wrong);
    X509_free(untrusted);
    return rc;
}

/* ---- the request callback ---- */

static void on_complete(struct evhttp_request *r, void *arg)
{
    struct worker *w = arg;
    struct guard *g = guard_of(w, r);

    if (g) {
        g->last_ns = util_now_ns(); /* the idle time starts after the reply */
        g->busy = 0;
    }
    w->inflight--;
}

/* The request's header block as HTTP.sys counts it against MaxRequestBytes. */
static size_t header_bytes(const struct rq *q)
{
    size_t n = q->uri_len + 16;

    if (q->r) {
        struct evkeyvalq *h = evhttp_request_get_input_headers(q->r);
        struct evkeyval *kv;
        for (kv = h->tqh_first; kv; kv = kv->next.tqe_next)
            n += strlen(kv->key) + strlen(kv->value) + 4;
    } else {
        int i;
        for (i = 0; i < q->h1->nh; i++)
            n += strlen(q->h1->h[i].name) + strlen(q->h1->h[i].value) + 4;
    }
    return n;
}

static unsigned sc_method(enum evhttp_cmd_type c)
{
    return c == EVHTTP_REQ_GET ? SC_M_GET : c == EVHTTP_REQ_POST ? SC_M_POST
                                        : c == EVHTTP_REQ_HEAD  ? SC_M_HEAD
                                                                : SC_M_OTHER;
}

/* evhttp's request callback: the request as evhttp parsed it. */
static void on_request(struct evhttp_request *r, void *arg)
{
    struct worker *w = arg;
    struct rq q;
    struct evhttp_connection *evcon = evhttp_request_get_connection(r);
    char *addr = NULL;
    ev_uint16_t port = 0;

    memset(&q, 0, sizeof(q));
    q.w = w;
    q.r = r;
    q.t0 = util_now_ns();
    q.now = time(NULL);
    q.cmd = evhttp_request_get_command(r);
    q.uri = evhttp_request_get_uri(r);
    q.uri_len = strlen(q.uri);
    snprintf(q.peer, sizeof(q.peer), "-");
    if (evcon) {
        q.tls = bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(evcon)) != NULL;
        evhttp_connection_get_peer(evcon, &addr, &port);
        if (addr)
            snprintf(q.peer, sizeof(q.peer), "%s", addr);
        q.peer_port = port;
    }
    w->inflight++;
    evhttp_request_set_on_complete_cb(r, on_complete, w);
    {
        /* the request is complete: the deadline covered receiving it; its
         * answer (however long an enrollment takes) is evhttp's to write */
        struct guard *g = guard_of(w, r);
        if (g) {
            g->last_ns = q.t0;
            g->busy = 1;
        }
    }
    q.sc = scenario_engine_acquire(w->srv->engine);
    serve(&q);
}

/* Answers one request, whichever transport brought it: HTTP.sys limits, IIS
 * routing and filtering, the scenario's rules, the healthy NDES; then the
 * logs, the journal and the counters. Releases q->sc. A transport fault
 * takes the socket (hijack(): q->taken). */
static void serve(struct rq *q)
{
    struct worker *w = q->w;
    struct server *s = w->srv;
    const struct config *cfg = s->cfg;
    struct reply rep;
    const char *qm, *op;
    size_t rawpath_len, oplen, sent = 0;
    long max_url, max_req;
    enum sc_action_type act = SC_ACT_NONE;

    memset(&rep, 0, sizeof(rep));
    qm = strchr(q->uri, '?');
    rawpath_len = qm ? (size_t)(qm - q->uri) : q->uri_len;
    q->query = qm ? qm + 1 : "";

    /* HTTP.sys limits first: it answers before IIS sees anything. */
    max_url = q->sc->max_url_bytes ? q->sc->max_url_bytes : cfg->max_url_bytes;
    max_req = q->sc->max_request_bytes ? q->sc->max_request_bytes : cfg->max_header_bytes;
    if ((long)q->uri_len > max_url) {
        reply_httpsys(&rep, 414, "URL_Length");
        q->path[0] = '\0';
        goto send;
    }
    if ((long)header_bytes(q) > max_req) {
        reply_httpsys(&rep, 400, "RequestLength");
        goto send;
    }
    /* IIS request filtering maxUrl (404.14), where a scenario sets it. */
    if (q->sc->max_path && (long)rawpath_len > q->sc->max_path) {
        snprintf(q->path, sizeof(q->path), "%.*s", (int)(rawpath_len < 2047 ? rawpath_len : 2047),
                 q->uri);
        reply_iis_error(&rep, 404, 14, 0);
        goto send;
    }
    if (rawpath_len >= sizeof(q->path) ||
        util_percent_decode(q->uri, rawpath_len, q->path, sizeof(q->path)) < 0) {
        reply_iis_error(&rep, 404, 0, 2);
        goto send;
    }
    q->route = route_of(q->path);
    if (util_query_param(q->query, "operation", &op, &oplen) && oplen < sizeof(q->opbuf) &&
        util_percent_decode(op, oplen, q->opbuf, sizeof(q->opbuf)) >= 0)
        q->op = q->opbuf;

    /* The SCEP application pool stopped by rapid-fail protection: HTTP.sys 503. */
    if (fnmatch("/certsrv/mscep*", q->path, FNM_CASEFOLD) == 0 &&
        scenario_pool_stopped(s->engine)) {
        reply_httpsys(&rep, 503, "AppOffline");
        goto send;
    }
    /* IIS request filtering maxQueryString (404.15). */
    if (q->sc->max_query && (long)strlen(q->query) > q->sc->max_query) {
        reply_iis_error(&rep, 404, 15, 0);
        goto send;
    }
    if (q->route == ROUTE_SCEP && q->op && strcmp(q->op, "PKIOperation") == 0)
        read_message(q);
    if (q->sc->nrules) {
        struct sc_request sq;
        memset(&sq, 0, sizeof(sq));
        sq.path = q->path;
        sq.path_len = strlen(q->path);
        sq.method = sc_method(q->cmd);
        sq.operation = q->op;
        sq.uri_len = q->uri_len;
        sq.header = header_lookup;
        sq.header_arg = q;
        if (q->sc->needs_peek && q->der && q->dlen > 0) /* a second parse: only when a rule asks */
            sq.message_type = scep_peek_message_type(
                q->der, (size_t)q->dlen, q->sc->needs_key_type ? &sq.signer_key_type : NULL);
        q->rule = scenario_match(s->engine, q->sc, &sq);
    }
    if (q->rule) {
        const struct sc_action *a = &q->rule->a;
        act = a->type;
        if (act == SC_ACT_DELAY) {
            if (a->then == SC_ACT_NONE || a->then == SC_ACT_PARTIAL || a->then == SC_ACT_DRIP)
                healthy(q, &rep);
            else
                action_reply(q, a->then, a, a->then_status, &rep);
        } else if (act == SC_ACT_PARTIAL || act == SC_ACT_DRIP) {
            healthy(q, &rep);
        } else if (!is_transport(act)) {
            action_reply(q, act, a, a->status, &rep);
        }
        if (is_transport(act)) {
            if (q->sc->server_header[0])
                rep.server = q->sc->server_header;
            enum sc_action_type eff = act == SC_ACT_DELAY ? a->then : act;
            if (eff == SC_ACT_CRASH || eff == SC_ACT_CLOSE || eff == SC_ACT_RESET ||
                eff == SC_ACT_HANG)
                rep.no_log = 1;
            q->fault = sc_action_str(act);
            if (transport_fault(q, a, &rep) == 0) {
                windows_logs(q, rep.no_log ? NULL : &rep);
                access_log(q, rep.status && !rep.no_log ? &rep : NULL, 0);
                record(q, rep.status && !rep.no_log && act != SC_ACT_PARTIAL ? &rep : NULL, 0);
                goto done;
            }
            /* the socket was already gone: nothing to send */
            goto done;
        }
        goto send;
    }
    healthy(q, &rep);
send:
    if (q->sc->server_header[0])
        rep.server = q->sc->server_header;
    if (rep.status == 0)
        reply_iis_error(&rep, 500, 0, 0);
    sent = rep.len;
    send_reply(q, &rep);
    windows_logs(q, &rep);
    access_log(q, &rep, sent);
    record(q, &rep, sent);
done:
    if (q->have_o)
        scep_outcome_clear(&q->o);
    util_buf_free(&rep.own);
    free(q->der);
    scenario_release(q->sc);
}

/* ---- threads and lifecycle ---- */

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct timeval tv = {0, 20000};

    (void)fd;
    (void)what;
    /* Finish in-flight requests, bounded (5 s), then leave the loop. */
    if (w->inflight <= 0 || ++w->drain_ticks > 250) {
        log_flush(w);
        event_base_loopexit(w->base, NULL);
        return;
    }
    evtimer_add(w->drain_ev, &tv);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    w->stopping = 1;
    if (w->listener)
        evconnlistener_disable(w->listener);
    if (w->tls_listener)
        evconnlistener_disable(w->tls_listener);
    drain_cb(-1, 0, w);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    event_base_dispatch(w->base);
    while (w->raws)
        raw_free(w->raws);
    log_flush(w);
    return NULL;
}

static int worker_init(struct worker *w, char *err, size_t errlen)
{
    const struct config *cfg = w->srv->cfg;
    struct timeval flush_tv = {0, 200000};
    struct timeval to;
    double scale = scenario_engine_time_scale(w->srv->engine);
    size_t hdr_max = (size_t)(cfg->max_url_bytes > cfg->max_header_bytes ? cfg->max_url_bytes
                                                                         : cfg->max_header_bytes);

    util_buf_init(&w->log);
    w->base = event_base_new();
    if (w->base == NULL || event_base_priority_init(w->base, 2) != 0)
        goto fail;
    w->http = evhttp_new(w->base);
    if (w->http == NULL)
        goto fail;
    /* libevent's own limits sit above ours, so that we answer as HTTP.sys/IIS would. */
    evhttp_set_max_headers_size(w->http, hdr_max * 2 + 65536);
    evhttp_set_max_body_size(w->http, (ev_ssize_t)cfg->max_body_bytes);
    evhttp_set_default_content_type(w->http, NULL);
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    /* evhttp's own read timeout also runs while a request is being answered
     * and then drops the answer: the deadline for receiving a request is the
     * guard's (scaled); evhttp gets a floor of 60 s for stalled reads/writes */
    to = seconds_tv(cfg->request_timeout_s * scale > 60.0 ? cfg->request_timeout_s * scale : 60.0);
    evhttp_set_timeout_tv(w->http, &to);
    evhttp_set_gencb(w->http, on_request, w);
    evhttp_set_bevcb(w->http, guard_bevcb, w);
    w->listener = evconnlistener_new(w->base, NULL, NULL, LEV_OPT_CLOSE_ON_EXEC, 0, w->srv->fd);
    atomic_store(&w->accepting, 1);
    if (w->listener == NULL || evhttp_bind_listener(w->http, w->listener) == NULL)
        goto fail;
    if (w->srv->tls_fd >= 0) {
        w->https = evhttp_new(w->base);
        if (w->https == NULL)
            goto fail;
        evhttp_set_max_headers_size(w->https, hdr_max * 2 + 65536);
        evhttp_set_max_body_size(w->https, (ev_ssize_t)cfg->max_body_bytes);
        evhttp_set_default_content_type(w->https, NULL);
        evhttp_set_allowed_methods(w->https, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                                 EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                                 EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
        evhttp_set_timeout_tv(w->https, &to);
        evhttp_set_gencb(w->https, on_request, w);
        evhttp_set_bevcb(w->https, tls_bevcb, w);
        w->tls_listener = evconnlistener_new(w->base, NULL, NULL, LEV_OPT_CLOSE_ON_EXEC, 0,
                                             w->srv->tls_fd);
        if (w->tls_listener == NULL || evhttp_bind_listener(w->https, w->tls_listener) == NULL)
            goto fail;
    }
    w->flush_ev = event_new(w->base, -1, EV_PERSIST, flush_cb, w);
    w->stop_ev = event_new(w->base, -1, 0, stop_cb, w);
    w->drain_ev = evtimer_new(w->base, drain_cb, w);
    w->sweep_ev = event_new(w->base, -1, EV_PERSIST, sweep_cb, w);
    w->balance_ev = event_new(w->base, -1, 0, balance_cb, w);
    if (!w->flush_ev || !w->stop_ev || !w->drain_ev || !w->sweep_ev || !w->balance_ev ||
        event_add(w->flush_ev, &flush_tv) != 0)
        goto fail;
    {
        struct timeval sweep_tv = {0, 100000};
        event_priority_set(w->sweep_ev, 0);
        event_add(w->sweep_ev, &sweep_tv);
    }
    return 0;
fail:
    snprintf(err, errlen, "cannot set up worker %d", w->id);
    return -1;
}

/* Binds HOST:PORT (no SO_REUSEPORT: a busy port must fail). Sets *fd and the
 * bound address text. Returns 0 or -1 with err set. */
static int bind_listener(const char *hostport, int *fd, char *addr, size_t addrcap, char *ip,
                         size_t ipcap, int *pport, char *err, size_t errlen)
{
    struct addrinfo hints, *ai = NULL;
    char host[CONFIG_STR], portstr[16], hbuf[256];
    int port, one = 1, rc = -1;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    *fd = -1;
    if (config_parse_hostport(hostport, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "bad listen address '%s' (want HOST:PORT or [V6]:PORT)", hostport);
        return -1;
    }
    snprintf(portstr, sizeof(portstr), "%d", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(host, portstr, &hints, &ai) != 0 || ai == NULL) {
        snprintf(err, errlen, "cannot resolve listen address '%s'", hostport);
        goto out;
    }
    *fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (*fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        goto out;
    }
    /* SO_REUSEADDR only (TIME_WAIT); never SO_REUSEPORT: a busy port must fail. */
    setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(*fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", hostport, strerror(errno));
        goto out;
    }
    if (listen(*fd, 4096) != 0) {
        snprintf(err, errlen, "listen %s: %s", hostport, strerror(errno));
        goto out;
    }
    if (getsockname(*fd, (struct sockaddr *)&ss, &sl) != 0 ||
        getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof(hbuf), portstr, sizeof(portstr),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(err, errlen, "getsockname: %s", strerror(errno));
        goto out;
    }
    snprintf(addr, addrcap, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", hbuf, portstr);
    if (ip)
        snprintf(ip, ipcap, "%s", hbuf);
    if (pport)
        *pport = atoi(portstr);
    rc = 0;
out:
    if (ai)
        freeaddrinfo(ai);
    if (rc != 0 && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

struct server *server_new(const struct server_deps *deps, char *err, size_t errlen)
{
    struct server *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->fd = s->tls_fd = -1;
    s->cfg = deps->cfg;
    s->scep = deps->scep;
    s->engine = deps->engine;
    s->winlog = deps->winlog;
    s->journal = deps->journal;
    s->stats = deps->stats;
    s->otp = deps->otp;
    if (bind_listener(s->cfg->listen, &s->fd, s->address, sizeof(s->address), s->s_ip,
                      sizeof(s->s_ip), &s->s_port, err, errlen) != 0)
        goto fail;
    if (s->cfg->tls_listen[0] &&
        (bind_listener(s->cfg->tls_listen, &s->tls_fd, s->tls_address, sizeof(s->tls_address),
                       NULL, 0, NULL, err, errlen) != 0 ||
         tls_setup(s, err, errlen) != 0))
        goto fail;
    return s;
fail:
    server_free(s);
    return NULL;
}

const char *server_tls_address(const struct server *s)
{
    return s->tls_fd >= 0 ? s->tls_address : NULL;
}

const char *server_address(const struct server *s)
{
    return s->address;
}

int server_start(struct server *s, char *err, size_t errlen)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int i;

    s->nworkers = s->cfg->threads > 0 ? s->cfg->threads : (int)(ncpu > 0 ? ncpu : 1);
    if (s->nworkers > MAX_WORKERS)
        s->nworkers = MAX_WORKERS;
    for (i = 0; i < s->nworkers; i++) {
        s->workers[i].srv = s;
        s->workers[i].id = i;
        if (worker_init(&s->workers[i], err, errlen) != 0)
            return -1;
    }
    for (i = 0; i < s->nworkers; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
            snprintf(err, errlen, "pthread_create: %s", strerror(errno));
            return -1;
        }
        s->started = i + 1;
    }
    return 0;
}

void server_stop(struct server *s)
{
    int i;

    for (i = 0; i < s->started; i++)
        event_active(s->workers[i].stop_ev, EV_READ, 0);
    for (i = 0; i < s->started; i++)
        pthread_join(s->workers[i].thread, NULL);
    s->started = 0;
}

void server_free(struct server *s)
{
    int i;

    if (s == NULL)
        return;
    server_stop(s);
    for (i = 0; i < s->nworkers; i++)
        s->workers[i].stopping = 1; /* no balancing while things are freed */
    for (i = 0; i < s->nworkers; i++) {
        struct worker *w = &s->workers[i];
        if (w->flush_ev)
            event_free(w->flush_ev);
        if (w->stop_ev)
            event_free(w->stop_ev);
        if (w->drain_ev)
            event_free(w->drain_ev);
        if (w->sweep_ev)
            event_free(w->sweep_ev);
        if (w->balance_ev)
            event_free(w->balance_ev);
        if (w->http)
            evhttp_free(w->http); /* frees the listener and connections too */
        if (w->https)
            evhttp_free(w->https);
        while (w->guards)
            guard_free(w->guards);
        free(w->by_fd);
        if (w->base)
            event_base_free(w->base);
        util_buf_free(&w->log);
        util_buf_free(&w->fast_out);
        winlog_buf_free(&w->wlb);
    }
    if (s->fd >= 0)
        close(s->fd);
    if (s->tls_fd >= 0)
        close(s->tls_fd);
    for (i = 0; i < SC_TLS_FAULTS; i++)
        SSL_CTX_free(s->tls_ctx[i]);
    free(s);
}
