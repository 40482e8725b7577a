/* server.c - worker threads, listener, IIS-shaped routing and replies. */
#include "ndesmock/server.h"
#include "ndesmock/iis.h"
#include "ndesmock/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
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

struct worker {
    struct server *srv;
    int id;
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    struct evconnlistener *listener;
    struct event *flush_ev;
    struct event *stop_ev;
    struct event *drain_ev;
    struct util_buf log;
    long inflight;
    int drain_ticks;
};

struct server {
    const struct config *cfg;
    const struct scep_ctx *scep;
    int fd;
    char address[300];
    int nworkers;
    struct worker workers[MAX_WORKERS];
    int started;
};

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
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    log_flush(arg);
}

struct access {
    const char *method;
    const char *path;
    const char *operation;
    int status;
    int substatus;
    size_t bytes;
    const struct scep_outcome *scep;
    const char *note;
};

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

static void access_log(struct worker *w, struct evhttp_request *r, const struct access *a,
                       uint64_t t0)
{
    char ts[32], peer[64] = "-";
    time_t now = time(NULL);
    struct tm tm;
    struct evhttp_connection *c = evhttp_request_get_connection(r);
    char *addr = NULL;
    ev_uint16_t port = 0;
    double ms = (double)(util_now_ns() - t0) / 1e6;
    const struct scep_outcome *o = a->scep;

    if (!w->srv->cfg->access_log)
        return;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (c) {
        evhttp_connection_get_peer(c, &addr, &port);
        if (addr)
            snprintf(peer, sizeof(peer), "%s", addr);
    }
    util_buf_appendf(&w->log, "%s %s %s %s op=%s status=%d.%d bytes=%zu ms=%.2f", ts, peer,
                     a->method, a->path, a->operation ? a->operation : "-", a->status,
                     a->substatus, a->bytes, ms);
    if (o)
        util_buf_appendf(&w->log, " msg=%s tid=%s scep=%s fail=%s serial=%s reason=\"%s\"",
                         scep_msg_type_str(o->msg_type), o->tid[0] ? o->tid : "-",
                         scep_pki_status_str(o->status), scep_fail_info_str(o->fail_info),
                         o->serial[0] ? o->serial : "-", o->reason);
    if (a->note)
        util_buf_appendf(&w->log, " note=\"%s\"", a->note);
    util_buf_append(&w->log, "\n", 1);
    if (w->log.len >= LOG_FLUSH_BYTES)
        log_flush(w);
}

/* ---- replies ---- */

static void iis_headers(struct worker *w, struct evhttp_request *r, const char *ctype)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r);

    if (ctype && *ctype)
        evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Server", w->srv->cfg->server_header);
    if (w->srv->cfg->powered_by[0])
        evhttp_add_header(h, "X-Powered-By", w->srv->cfg->powered_by);
}

static void send_body(struct evhttp_request *r, int status, const char *reason, const void *body,
                      size_t len)
{
    struct evbuffer *b = evbuffer_new();

    if (b && len)
        evbuffer_add(b, body, len);
    evhttp_send_reply(r, status, reason, b);
    if (b)
        evbuffer_free(b);
}

/* An IIS custom error page (status.substatus is only logged, as IIS does). */
static size_t send_iis_error(struct worker *w, struct evhttp_request *r, int status)
{
    const struct iis_page *p = iis_custom_page(status);

    iis_headers(w, r, "text/html");
    if (p == NULL) {
        send_body(r, status, "Error", NULL, 0);
        return 0;
    }
    send_body(r, status, p->reason, p->body, p->len);
    return p->len;
}

/* HTTP.sys answers itself and closes the connection. */
static size_t send_httpsys_error(struct evhttp_request *r, int status)
{
    const struct iis_page *p = iis_httpsys_page(status);
    struct evkeyvalq *h = evhttp_request_get_output_headers(r);

    evhttp_add_header(h, "Content-Type", "text/html; charset=us-ascii");
    evhttp_add_header(h, "Server", "Microsoft-HTTPAPI/2.0");
    evhttp_add_header(h, "Connection", "close");
    if (p == NULL) {
        send_body(r, status, "Error", NULL, 0);
        return 0;
    }
    send_body(r, status, p->reason, p->body, p->len);
    return p->len;
}

/* ---- routing ---- */

enum route { ROUTE_NONE, ROUTE_SCEP, ROUTE_REDIRECT };

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
    return ROUTE_NONE;
}

static void on_complete(struct evhttp_request *r, void *arg)
{
    struct worker *w = arg;

    (void)r;
    w->inflight--;
}

static void handle_pkioperation(struct worker *w, struct evhttp_request *r, const char *query,
                                struct access *a, struct scep_outcome *o)
{
    const struct config *cfg = w->srv->cfg;
    uint8_t *der = NULL;
    long dlen = -1;

    if (evhttp_request_get_command(r) == EVHTTP_REQ_POST) {
        struct evbuffer *in = evhttp_request_get_input_buffer(r);
        size_t n = evbuffer_get_length(in);
        der = malloc(n ? n : 1);
        if (der && evbuffer_remove(in, der, n) == (int)n)
            dlen = (long)n;
    } else {
        const char *msg;
        size_t mlen;
        if (util_query_param(query, "message", &msg, &mlen) && mlen > 0) {
            der = malloc(mlen);
            if (der)
                dlen = scep_decode_get_message(msg, mlen, der, mlen);
        }
        if (dlen < 0)
            a->note = "message is not base64";
    }
    if (der == NULL || dlen <= 0) {
        /* Nothing NDES could decode: mscep.dll fails and IIS answers 500. */
        free(der);
        a->status = 500;
        a->bytes = send_iis_error(w, r, 500);
        if (!a->note)
            a->note = "empty PKIOperation message";
        return;
    }
    scep_pkioperation(w->srv->scep, der, (size_t)dlen, o);
    free(der);
    a->scep = o;
    if (o->kind == SCEP_OUT_IIS_500) {
        a->status = 500;
        a->bytes = send_iis_error(w, r, 500);
        return;
    }
    (void)cfg;
    iis_headers(w, r, "application/x-pki-message");
    a->status = 200;
    a->bytes = o->body.len;
    send_body(r, 200, "OK", o->body.data, o->body.len);
}

static void on_request(struct evhttp_request *r, void *arg)
{
    struct worker *w = arg;
    const struct config *cfg = w->srv->cfg;
    const struct scep_ctx *sc = w->srv->scep;
    uint64_t t0 = util_now_ns();
    const char *uri = evhttp_request_get_uri(r);
    const char *q = strchr(uri, '?');
    size_t rawpath_len = q ? (size_t)(q - uri) : strlen(uri);
    const char *query = q ? q + 1 : "";
    char path[1024], opbuf[64];
    const char *op = NULL;
    size_t oplen;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(r);
    struct access a;
    struct scep_outcome o;
    int scep_used = 0;

    memset(&a, 0, sizeof(a));
    memset(&o, 0, sizeof(o));
    a.method = method_str(cmd);
    a.path = "-";
    w->inflight++;
    evhttp_request_set_on_complete_cb(r, on_complete, w);

    if ((long)strlen(uri) > cfg->max_url_bytes) {
        a.path = "(too long)";
        a.status = 414;
        a.bytes = send_httpsys_error(r, 414);
        goto log;
    }
    if (rawpath_len >= sizeof(path) ||
        util_percent_decode(uri, rawpath_len, path, sizeof(path)) < 0) {
        a.status = 404;
        a.bytes = send_iis_error(w, r, 404);
        goto log;
    }
    a.path = path;
    switch (route_of(path)) {
    case ROUTE_NONE:
        a.status = 404;
        a.bytes = send_iis_error(w, r, 404);
        goto log;
    case ROUTE_REDIRECT: {
        char loc[1200];
        snprintf(loc, sizeof(loc), "%s/%s%s", path, *query ? "?" : "", query);
        evhttp_add_header(evhttp_request_get_output_headers(r), "Location", loc);
        a.status = 301;
        iis_headers(w, r, "text/html; charset=UTF-8");
        send_body(r, 301, "Moved Permanently", NULL, 0);
        goto log;
    }
    case ROUTE_SCEP:
        break;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_POST && cmd != EVHTTP_REQ_HEAD) {
        a.status = 405;
        a.bytes = send_iis_error(w, r, 405);
        goto log;
    }
    if (util_query_param(query, "operation", &op, &oplen) && oplen < sizeof(opbuf) &&
        util_percent_decode(op, oplen, opbuf, sizeof(opbuf)) >= 0) {
        op = opbuf;
        a.operation = opbuf;
    } else {
        op = NULL;
    }
    if (op == NULL || *op == '\0') {
        /* The Intune connector's policy module makes the bare URL answer 403.0. */
        a.status = 403;
        a.bytes = send_iis_error(w, r, 403);
        goto log;
    }
    if (strcmp(op, "GetCACaps") == 0) {
        iis_headers(w, r, cfg->caps.content_type);
        a.status = 200;
        a.bytes = sc->caps_len;
        send_body(r, 200, "OK", sc->caps_body, sc->caps_len);
    } else if (strcmp(op, "GetCACert") == 0) {
        iis_headers(w, r, "application/x-x509-ca-ra-cert");
        a.status = 200;
        a.bytes = sc->pki->getcacert_len;
        send_body(r, 200, "OK", sc->pki->getcacert_der, sc->pki->getcacert_len);
    } else if (strcmp(op, "PKIOperation") == 0) {
        handle_pkioperation(w, r, query, &a, &o);
        scep_used = 1;
    } else {
        /* Unknown operation: the policy module intercepts it like the bare URL. */
        a.status = 403;
        a.bytes = send_iis_error(w, r, 403);
        a.note = "unknown operation";
    }
log:
    access_log(w, r, &a, t0);
    if (scep_used)
        scep_outcome_clear(&o);
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
    if (w->listener)
        evconnlistener_disable(w->listener);
    drain_cb(-1, 0, w);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    event_base_dispatch(w->base);
    log_flush(w);
    return NULL;
}

static int worker_init(struct worker *w, char *err, size_t errlen)
{
    const struct config *cfg = w->srv->cfg;
    struct timeval flush_tv = {0, 200000};
    struct timeval to;
    size_t hdr_max = (size_t)(cfg->max_url_bytes > cfg->max_header_bytes ? cfg->max_url_bytes
                                                                         : cfg->max_header_bytes);

    util_buf_init(&w->log);
    w->base = event_base_new();
    if (w->base == NULL)
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
    to.tv_sec = (time_t)cfg->request_timeout_s;
    to.tv_usec = (suseconds_t)((cfg->request_timeout_s - (double)to.tv_sec) * 1e6);
    evhttp_set_timeout_tv(w->http, &to);
    evhttp_set_gencb(w->http, on_request, w);
    w->listener = evconnlistener_new(w->base, NULL, NULL, LEV_OPT_CLOSE_ON_EXEC, 0, w->srv->fd);
    if (w->listener == NULL || evhttp_bind_listener(w->http, w->listener) == NULL)
        goto fail;
    w->flush_ev = event_new(w->base, -1, EV_PERSIST, flush_cb, w);
    w->stop_ev = event_new(w->base, -1, 0, stop_cb, w);
    w->drain_ev = evtimer_new(w->base, drain_cb, w);
    if (!w->flush_ev || !w->stop_ev || !w->drain_ev || event_add(w->flush_ev, &flush_tv) != 0)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "cannot set up worker %d", w->id);
    return -1;
}

struct server *server_new(const struct config *cfg, const struct scep_ctx *scep, char *err,
                          size_t errlen)
{
    struct server *s = calloc(1, sizeof(*s));
    struct addrinfo hints, *ai = NULL;
    char host[CONFIG_STR], portstr[16], hbuf[256];
    int port, one = 1;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->fd = -1;
    s->cfg = cfg;
    s->scep = scep;
    if (config_parse_hostport(cfg->listen, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "bad listen address '%s' (want HOST:PORT or [V6]:PORT)", cfg->listen);
        goto fail;
    }
    snprintf(portstr, sizeof(portstr), "%d", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(host, portstr, &hints, &ai) != 0 || ai == NULL) {
        snprintf(err, errlen, "cannot resolve listen address '%s'", cfg->listen);
        goto fail;
    }
    s->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        goto fail;
    }
    /* SO_REUSEADDR only (TIME_WAIT); never SO_REUSEPORT: a busy port must fail. */
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", cfg->listen, strerror(errno));
        goto fail;
    }
    if (listen(s->fd, 4096) != 0) {
        snprintf(err, errlen, "listen %s: %s", cfg->listen, strerror(errno));
        goto fail;
    }
    if (getsockname(s->fd, (struct sockaddr *)&ss, &sl) != 0 ||
        getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof(hbuf), portstr, sizeof(portstr),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(err, errlen, "getsockname: %s", strerror(errno));
        goto fail;
    }
    snprintf(s->address, sizeof(s->address), ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", hbuf,
             portstr);
    freeaddrinfo(ai);
    return s;
fail:
    if (ai)
        freeaddrinfo(ai);
    server_free(s);
    return NULL;
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
            s->nworkers = i;
            return -1;
        }
        s->started = i + 1;
    }
    return 0;
}

int server_wait(struct server *s)
{
    sigset_t set;
    int sig = 0, i;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    while (sigwait(&set, &sig) != 0)
        ;
    for (i = 0; i < s->started; i++)
        event_active(s->workers[i].stop_ev, EV_READ, 0);
    for (i = 0; i < s->started; i++)
        pthread_join(s->workers[i].thread, NULL);
    s->started = 0;
    return 0;
}

void server_free(struct server *s)
{
    int i;

    if (s == NULL)
        return;
    for (i = 0; i < s->started; i++) {
        event_active(s->workers[i].stop_ev, EV_READ, 0);
        pthread_join(s->workers[i].thread, NULL);
    }
    for (i = 0; i < s->nworkers; i++) {
        struct worker *w = &s->workers[i];
        if (w->flush_ev)
            event_free(w->flush_ev);
        if (w->stop_ev)
            event_free(w->stop_ev);
        if (w->drain_ev)
            event_free(w->drain_ev);
        if (w->http)
            evhttp_free(w->http); /* frees the listener too */
        if (w->base)
            event_base_free(w->base);
        util_buf_free(&w->log);
    }
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}
