/* admin.c - admin API routes (JSON via jansson: user-controlled strings such
 * as CSR subjects and user agents are never escaped by hand). */
#include "ndesmock/admin.h"
#include "ndesmock/store.h"
#include "ndesmock/util.h"

#include <dirent.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define MAX_SEGS 6

struct admin {
    struct admin_deps d;
    struct evhttp *http;
    char address[300];
};

/* ---- replies ---- */

/* Sets status, reason phrase and Content-Type; the body is appended by the caller. */
static void set_reply(struct admin_reply *rep, int status, const char *content_type)
{
    rep->status = status;
    rep->reason = status == 200 ? "OK" : status == 400 ? "Bad Request"
                : status == 401 ? "Unauthorized" : status == 404 ? "Not Found"
                : status == 405 ? "Method Not Allowed" : status == 409 ? "Conflict"
                : "Error";
    rep->content_type = content_type;
}

/* Takes the reference to body (NULL allowed: an empty body, as before). */
static void send_json(struct admin_reply *rep, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);

    set_reply(rep, status, "application/json");
    util_buf_reset(&rep->body);
    if (text) {
        util_buf_append(&rep->body, text, strlen(text));
        util_buf_append(&rep->body, "\n", 1);
    }
    free(text);
    json_decref(body);
}

static void send_error(struct admin_reply *rep, int status, const char *msg)
{
    send_json(rep, status, json_pack("{s:s}", "error", msg));
}

/* ---- helpers ---- */

/* A NUL-terminated copy of the body (malloc'd, caller frees), or NULL when it
 * is over the cap or could not be read (body NULL with len > 0). */
static char *body_text(const uint8_t *body, size_t n)
{
    char *t;

    if (n > ADMIN_MAX_BODY || (body == NULL && n > 0))
        return NULL;
    t = malloc(n + 1);
    if (t == NULL)
        return NULL;
    if (n)
        memcpy(t, body, n);
    t[n] = '\0';
    return t;
}

static const char *qparam(const char *query, const char *name, char *buf, size_t cap)
{
    const char *v;
    size_t vl;

    if (!util_query_param(query, name, &v, &vl) || vl >= cap)
        return NULL;
    if (util_percent_decode(v, vl, buf, cap) < 0)
        return NULL;
    return buf;
}

/* Length of the valid UTF-8 sequence at s, or 0 (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n, i;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    for (i = 1; i < n; i++, lo = 0x80, hi = 0xBF)
        if (s[i] < lo || s[i] > hi)
            return 0; /* also stops at the terminating NUL */
    return n;
}

/* A JSON string (new reference; NULL only when out of memory) from text that
 * comes from files and clients (scenario summaries, user agents, subjects, IDs)
 * and may not be UTF-8: jansson refuses it, and json_pack() would then fail and
 * drop the whole reply. Each byte that does not start a valid sequence becomes
 * U+FFFD; valid text is passed through unchanged. */
static json_t *json_text(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    struct util_buf b;
    json_t *j = json_string(s);

    if (j)
        return j;
    util_buf_init(&b);
    while (*p) {
        size_t n = utf8_seq(p);
        if (n) {
            util_buf_append(&b, p, n);
            p += n;
        } else {
            util_buf_append(&b, "\xEF\xBF\xBD", 3);
            p++;
        }
    }
    util_buf_append(&b, "", 1);
    j = b.failed ? NULL : json_string((const char *)b.data);
    util_buf_free(&b);
    return j;
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_text(s) : json_null();
}

/* ---- /scenario, /scenarios ---- */

static json_t *scenario_json(const struct admin_deps *d)
{
    struct scenario *sc = scenario_engine_acquire(d->engine);
    json_t *o = json_pack("{s:o,s:o,s:o,s:i,s:b,s:I}", "name", json_text(sc->name), "summary",
                          json_text(sc->summary), "source", json_text(sc->source), "rules",
                          sc->nrules, "pool_stopped", scenario_pool_stopped(d->engine),
                          "requests", (json_int_t)scenario_requests(d->engine));
    scenario_release(sc);
    return o;
}

/* A name as GET /scenarios lists it. Not "NAME.cfg": scenario_resolve() reads
 * that as a path relative to the working directory (found with fuzz_admin:
 * {"name": "ndesmock.cfg"} loaded ./ndesmock.cfg as a scenario). */
static int valid_name(const char *n)
{
    size_t l = strlen(n);

    return l > 0 && l <= 64 && n[0] != '.' &&
           strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789-_.") == l && !strstr(n, "..") &&
           !(l > 4 && strcmp(n + l - 4, ".cfg") == 0);
}

static void put_scenario(const struct admin_deps *d, struct admin_reply *rep,
                         const uint8_t *body, size_t body_len)
{
    char *text = body_text(body, body_len), path[1100];
    json_t *j = NULL, *errs;
    struct sc_errors e = {0};
    struct scenario *sc = NULL;
    const char *name = NULL;
    int i;

    if (text == NULL) {
        send_error(rep, 400, "body too large or unreadable");
        return;
    }
    j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    if (j && json_is_object(j) && json_is_string(json_object_get(j, "name"))) {
        name = json_string_value(json_object_get(j, "name"));
        /* only shipped scenarios: files inside the scenarios folder, by name */
        if (!valid_name(name)) {
            send_error(rep, 404, "not a shipped scenario name");
            goto out;
        }
        if (scenario_resolve(name, d->scenarios_dir, path, sizeof(path)) != 0) {
            send_error(rep, 404, "unknown scenario");
            goto out;
        }
        if (path[0] == '\0') {
            sc = scenario_healthy();
        } else {
            FILE *f = fopen(path, "r");
            if (f == NULL) {
                send_error(rep, 404, "unknown scenario");
                goto out;
            }
            fclose(f);
            sc = scenario_load_file(path, d->scenarios_dir, d->state_dir, &e);
        }
    } else {
        const char *src = text;
        if (j && json_is_object(j) && json_is_string(json_object_get(j, "text")))
            src = json_string_value(json_object_get(j, "text"));
        path[0] = '\0';
        /* a scenario body from the API: @include refused, material only inside
         * the scenarios folder and the state directory */
        sc = scenario_load_text(src, "request-body", d->scenarios_dir, d->state_dir, &e);
    }
    if (sc == NULL) {
        errs = json_array();
        for (i = 0; i < e.n; i++)
            json_array_append_new(errs, json_pack("{s:i,s:o}", "line", e.e[i].line, "message",
                                                  json_text(e.e[i].message)));
        send_json(rep, 400, json_pack("{s:o}", "errors", errs));
        goto out;
    }
    snprintf(d->slot->path, sizeof(d->slot->path), "%s", path);
    send_json(rep, 200, json_pack("{s:o,s:o}", "name", json_text(sc->name), "source",
                                  json_text(sc->source)));
    scenario_engine_switch(d->engine, sc); /* takes the reference */
out:
    json_decref(j);
    free(text);
}

static int cmpstr(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void list_scenarios(const struct admin_deps *ad, struct admin_reply *rep)
{
    DIR *d = opendir(ad->scenarios_dir);
    struct dirent *de;
    json_t *arr = json_array();
    char *names[512];
    int n = 0, i, have_healthy = 0;

    while (d && (de = readdir(d)) != NULL && n < 512) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".cfg") == 0 &&
            (names[n] = strdup(de->d_name)) != NULL)
            n++;
    }
    if (d)
        closedir(d);
    qsort(names, (size_t)n, sizeof(names[0]), cmpstr);
    for (i = 0; i < n; i++) {
        char path[1400];
        struct sc_errors e = {0};
        struct scenario *sc;
        snprintf(path, sizeof(path), "%s/%s", ad->scenarios_dir, names[i]);
        sc = scenario_load_file(path, ad->scenarios_dir, ad->state_dir, &e);
        names[i][strlen(names[i]) - 4] = '\0';
        if (strcmp(names[i], "healthy") == 0)
            have_healthy = 1;
        json_array_append_new(arr, json_pack("{s:o,s:o,s:b}", "name", json_text(names[i]),
                                             "summary", json_text(sc ? sc->summary : ""), "valid",
                                             sc != NULL));
        scenario_release(sc);
        free(names[i]);
    }
    if (!have_healthy)
        json_array_append_new(arr, json_pack("{s:s,s:s,s:b}", "name", "healthy", "summary",
                                             "built in", 1));
    send_json(rep, 200, json_pack("{s:i,s:o}", "count", (int)json_array_size(arr), "scenarios", arr));
}

/* ---- /requests ---- */

struct rfilter {
    const char *operation, *tid, *method, *path, *message_type, *pki_status;
    int status;
    json_t *arr;
    size_t limit;
};

static json_t *entry_json(const struct journal_entry *e)
{
    json_t *o = json_object();

    json_object_set_new(o, "id", json_integer((json_int_t)e->id));
    json_object_set_new(o, "time", json_real(e->time));
    json_object_set_new(o, "method", json_text(e->method));
    json_object_set_new(o, "path", json_text(e->path));
    json_object_set_new(o, "query", json_text(e->query));
    json_object_set_new(o, "operation", str_or_null(e->operation));
    json_object_set_new(o, "client", json_text(e->peer));
    json_object_set_new(o, "user_agent", str_or_null(e->user_agent));
    json_object_set_new(o, "scenario", json_text(e->scenario));
    json_object_set_new(o, "rule", str_or_null(e->rule));
    json_object_set_new(o, "action", str_or_null(e->action));
    json_object_set_new(o, "status", e->status ? json_integer(e->status) : json_null());
    json_object_set_new(o, "substatus", json_integer(e->substatus));
    json_object_set_new(o, "bytes", json_integer((json_int_t)e->bytes));
    json_object_set_new(o, "duration_ms", json_real(e->duration_ms));
    json_object_set_new(o, "request_bytes", json_integer((json_int_t)e->raw_len));
    if (e->has_pki) {
        json_object_set_new(o, "message_type", json_string(scep_msg_type_str(e->message_type)));
        json_object_set_new(o, "transaction_id", str_or_null(e->transaction_id));
        json_object_set_new(o, "sender_nonce", str_or_null(e->sender_nonce));
        json_object_set_new(o, "content_cipher", str_or_null(e->cipher));
        json_object_set_new(o, "digest", str_or_null(e->digest));
        json_object_set_new(o, "signer", str_or_null(e->signer));
        json_object_set_new(o, "csr_subject", str_or_null(e->csr_subject));
        json_object_set_new(o, "sans", str_or_null(e->sans));
        json_object_set_new(o, "key_type", str_or_null(e->key_type));
        json_object_set_new(o, "key_bits", e->key_bits ? json_integer(e->key_bits) : json_null());
        json_object_set_new(o, "challenge", e->has_challenge ? json_text(e->challenge)
                                                             : json_null());
        json_object_set_new(o, "pki_status", e->pki_status >= 0
                                                 ? json_string(scep_pki_status_str(e->pki_status))
                                                 : json_null());
        json_object_set_new(o, "fail_info", e->fail_info >= 0
                                                ? json_string(scep_fail_info_str(e->fail_info))
                                                : json_null());
        json_object_set_new(o, "hresult", e->hresult ? json_integer(e->hresult) : json_null());
        json_object_set_new(o, "serial", str_or_null(e->serial));
        json_object_set_new(o, "reason", str_or_null(e->reason));
    }
    return o;
}

static int match(const struct rfilter *f, const struct journal_entry *e)
{
    if (f->operation && strcmp(f->operation, e->operation) != 0)
        return 0;
    if (f->tid && strcmp(f->tid, e->transaction_id) != 0)
        return 0;
    if (f->method && strcasecmp(f->method, e->method) != 0)
        return 0;
    if (f->path && strcasecmp(f->path, e->path) != 0)
        return 0;
    if (f->status && f->status != e->status)
        return 0;
    if (f->message_type && (!e->has_pki ||
                            strcmp(f->message_type, scep_msg_type_str(e->message_type)) != 0))
        return 0;
    if (f->pki_status && (!e->has_pki || e->pki_status < 0 ||
                          strcmp(f->pki_status, scep_pki_status_str(e->pki_status)) != 0))
        return 0;
    return 1;
}

static void collect(const struct journal_entry *e, void *arg)
{
    struct rfilter *f = arg;

    if (match(f, e))
        json_array_append_new(f->arr, entry_json(e));
}

static void get_requests(const struct admin_deps *d, struct admin_reply *rep, const char *query)
{
    char b1[160], b2[300], b3[16], b4[600], b5[32], b6[16], b7[16], b8[16];
    struct rfilter f;
    const char *st, *lim;
    json_t *arr;

    memset(&f, 0, sizeof(f));
    f.operation = qparam(query, "operation", b1, sizeof(b1));
    f.tid = qparam(query, "transaction_id", b2, sizeof(b2));
    f.method = qparam(query, "method", b3, sizeof(b3));
    f.path = qparam(query, "path", b4, sizeof(b4));
    f.message_type = qparam(query, "message_type", b5, sizeof(b5));
    f.pki_status = qparam(query, "pki_status", b8, sizeof(b8));
    st = qparam(query, "status", b6, sizeof(b6));
    f.status = st ? atoi(st) : 0;
    lim = qparam(query, "limit", b7, sizeof(b7));
    f.arr = json_array();
    journal_each(d->journal, collect, &f);
    arr = f.arr;
    if (lim && atoi(lim) > 0 && json_array_size(arr) > (size_t)atoi(lim)) {
        /* keep the newest */
        size_t drop = json_array_size(arr) - (size_t)atoi(lim);
        while (drop--)
            json_array_remove(arr, 0);
    }
    send_json(rep, 200, json_pack("{s:i,s:o}", "count", (int)json_array_size(arr), "requests", arr));
}

static void get_raw(const struct admin_deps *d, struct admin_reply *rep, const char *idtext)
{
    char *end;
    unsigned long long id = strtoull(idtext, &end, 10);
    uint8_t *raw;
    size_t len;

    if (*end || *idtext == '\0' || journal_raw(d->journal, id, &raw, &len) != 0) {
        send_error(rep, 404, "no such request");
        return;
    }
    set_reply(rep, 200, "application/octet-stream");
    util_buf_append(&rep->body, raw, len);
    free(raw);
}

/* ---- /certs ---- */

static void get_certs(const struct admin_deps *d, struct admin_reply *rep, const char *query)
{
    char path[1100], line[2048], b1[16], b2[16];
    const char *o = qparam(query, "offset", b1, sizeof(b1)), *l = qparam(query, "limit", b2, sizeof(b2));
    long offset = o ? atol(o) : 0, limit = l ? atol(l) : 100, n = 0;
    FILE *f;
    json_t *arr = json_array();

    if (offset < 0)
        offset = 0;
    if (limit <= 0 || limit > 1000)
        limit = 100;
    snprintf(path, sizeof(path), "%s/index.txt", d->state_dir);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        char *fld[6], *p = line;
        int k;
        line[strcspn(line, "\n")] = '\0';
        for (k = 0; k < 6; k++) {
            fld[k] = p;
            p = p ? strchr(p, '\t') : NULL;
            if (p)
                *p++ = '\0';
        }
        if (fld[5] == NULL)
            continue;
        if (n >= offset && n < offset + limit)
            json_array_append_new(arr, json_pack("{s:o,s:o,s:o,s:s}", "serial", json_text(fld[3]),
                                                 "subject", json_text(fld[5]), "not_after",
                                                 json_text(fld[1]), "status",
                                                 fld[0][0] == 'V' ? "valid" : "revoked"));
        n++;
    }
    if (f)
        fclose(f);
    send_json(rep, 200, json_pack("{s:I,s:I,s:I,s:o}", "total", (json_int_t)n, "offset",
                                (json_int_t)offset, "limit", (json_int_t)limit, "certs", arr));
}

static void get_cert(const struct admin_deps *d, struct admin_reply *rep, const char *serial)
{
    char path[1200], up[80];
    size_t i, l = strlen(serial);
    FILE *f;
    char buf[8192];
    size_t n;

    if (l == 0 || l >= sizeof(up) || strspn(serial, "0123456789abcdefABCDEF") != l) {
        send_error(rep, 404, "no such certificate");
        return;
    }
    for (i = 0; i <= l; i++)
        up[i] = (char)((serial[i] >= 'a' && serial[i] <= 'f') ? serial[i] - 32 : serial[i]);
    f = store_cert_path(d->certs_dir, up, path, sizeof(path)) == 0 ? fopen(path, "r") : NULL;
    if (f == NULL) {
        send_error(rep, 404, "no such certificate");
        return;
    }
    set_reply(rep, 200, "application/x-pem-file");
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        util_buf_append(&rep->body, buf, n);
    fclose(f);
}

/* ---- /pending ---- */

static void pending_item(const struct scep_pending_info *i, void *arg)
{
    json_array_append_new(arg, json_pack("{s:o,s:o,s:f,s:i,s:s}", "transaction_id",
                                         json_text(i->tid), "csr_subject", json_text(i->subject),
                                         "age_s", i->age_s, "polls", i->polls, "state", i->state));
}

/* ---- /metrics ---- */

static void get_metrics(const struct admin_deps *d, struct admin_reply *rep)
{
    static const char *const ops[STAT_OPS] = {"GetCACaps", "GetCACert", "PKIOperation", "other"};
    static const char *const res[4] = {"SUCCESS", "FAILURE", "PENDING", "error"};
    struct stats *s = d->stats;
    struct scenario *sc = scenario_engine_acquire(d->engine);
    struct util_buf *b = &rep->body;
    unsigned long cum = 0;
    int i, k;

    set_reply(rep, 200, "text/plain; version=0.0.4");
    util_buf_appendf(b, "# HELP ndesmock_requests_total Requests by SCEP operation and HTTP status (0 = no reply).\n"
                         "# TYPE ndesmock_requests_total counter\n");
    for (i = 0; i < STAT_OPS; i++)
        for (k = 0; k < STAT_CODES; k++) {
            unsigned long v = atomic_load(&s->requests[i][k]);
            if (v)
                util_buf_appendf(b, "ndesmock_requests_total{operation=\"%s\",status=\"%s%d\"} %lu\n",
                                 ops[i], stat_codes[k] == 999 ? "other:" : "",
                                 stat_codes[k] == 999 ? 0 : stat_codes[k], v);
        }
    util_buf_appendf(b, "# HELP ndesmock_enrollments_total PKIOperation results.\n"
                         "# TYPE ndesmock_enrollments_total counter\n");
    for (i = 0; i < 4; i++)
        util_buf_appendf(b, "ndesmock_enrollments_total{result=\"%s\"} %lu\n", res[i],
                         (unsigned long)atomic_load(&s->enrollments[i]));
    util_buf_appendf(b, "# HELP ndesmock_request_duration_seconds Time to answer.\n"
                         "# TYPE ndesmock_request_duration_seconds histogram\n");
    for (i = 0; i < STAT_BUCKETS; i++) {
        cum += atomic_load(&s->latency[i]);
        if (i == STAT_BUCKETS - 1)
            util_buf_appendf(b, "ndesmock_request_duration_seconds_bucket{le=\"+Inf\"} %lu\n", cum);
        else
            util_buf_appendf(b, "ndesmock_request_duration_seconds_bucket{le=\"%g\"} %lu\n",
                             stat_buckets[i], cum);
    }
    util_buf_appendf(b, "ndesmock_request_duration_seconds_sum %.6f\n",
                     (double)atomic_load(&s->latency_sum_us) / 1e6);
    util_buf_appendf(b, "ndesmock_request_duration_seconds_count %lu\n",
                     (unsigned long)atomic_load(&s->latency_count));
    util_buf_appendf(b, "# HELP ndesmock_scenario_info The active scenario.\n"
                         "# TYPE ndesmock_scenario_info gauge\n"
                         "ndesmock_scenario_info{name=\"%s\"} 1\n"
                         "# HELP ndesmock_app_pool_stopped 1 while rapid-fail protection has stopped the pool.\n"
                         "# TYPE ndesmock_app_pool_stopped gauge\n"
                         "ndesmock_app_pool_stopped %d\n",
                     sc->name, scenario_pool_stopped(d->engine));
    scenario_release(sc);
}

/* ---- dispatch ---- */

static int authorized(const struct admin_deps *d, const char *h)
{
    const char *tok = d->cfg->admin_token;
    size_t l;

    if (tok[0] == '\0')
        return 1;
    l = strlen(tok);
    /* constant time in the token's length */
    return h && strncmp(h, "Bearer ", 7) == 0 && strlen(h + 7) == l &&
           CRYPTO_memcmp(h + 7, tok, l) == 0;
}

int admin_handle(const struct admin_deps *d, const char *method, const char *uri,
                 const char *authorization, const uint8_t *body, size_t body_len,
                 struct admin_reply *rep)
{
    const char *q = strchr(uri, '?');
    const char *query = q ? q + 1 : "";
    size_t plen = q ? (size_t)(q - uri) : strlen(uri);
    char raw[1024], *seg[MAX_SEGS], dec[MAX_SEGS][512], *p, *save = NULL;
    int nseg = 0;

    memset(rep, 0, sizeof(*rep));
    util_buf_init(&rep->body);
    if (!authorized(d, authorization)) {
        send_error(rep, 401, "unauthorized");
        goto out;
    }
    if (plen >= sizeof(raw)) {
        send_error(rep, 404, "not found");
        goto out;
    }
    memcpy(raw, uri, plen);
    raw[plen] = '\0';
    /* split first, then percent-decode each segment: IDs may hold '/', '+', '=' */
    for (p = strtok_r(raw, "/", &save); p && nseg < MAX_SEGS; p = strtok_r(NULL, "/", &save)) {
        if (util_percent_decode(p, strlen(p), dec[nseg], sizeof(dec[nseg])) < 0) {
            send_error(rep, 404, "not found");
            goto out;
        }
        seg[nseg] = dec[nseg];
        nseg++;
    }
    if (p) {
        send_error(rep, 404, "not found");
        goto out;
    }
#define IS(i, s) (nseg > (i) && strcmp(seg[i], s) == 0)
#define IS_METHOD(x) (strcmp(method, x) == 0)
#define METHOD(x)                                                                                  \
    do {                                                                                           \
        if (!IS_METHOD(x)) {                                                                       \
            send_error(rep, 405, "method not allowed");                                            \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)
    if (nseg == 1 && IS(0, "healthz")) {
        METHOD("GET");
        send_json(rep, 200, json_pack("{s:s}", "status", "ok"));
    } else if (nseg == 1 && IS(0, "scenario")) {
        if (IS_METHOD("GET"))
            send_json(rep, 200, scenario_json(d));
        else if (IS_METHOD("PUT"))
            put_scenario(d, rep, body, body_len);
        else
            send_error(rep, 405, "method not allowed");
    } else if (nseg == 1 && IS(0, "scenarios")) {
        METHOD("GET");
        list_scenarios(d, rep);
    } else if (nseg == 1 && IS(0, "requests")) {
        if (IS_METHOD("GET"))
            get_requests(d, rep, query);
        else if (IS_METHOD("DELETE")) {
            journal_clear(d->journal);
            send_json(rep, 200, json_pack("{s:i}", "count", 0));
        } else
            send_error(rep, 405, "method not allowed");
    } else if (nseg == 3 && IS(0, "requests") && IS(2, "raw")) {
        METHOD("GET");
        get_raw(d, rep, seg[1]);
    } else if (nseg == 1 && IS(0, "certs")) {
        METHOD("GET");
        get_certs(d, rep, query);
    } else if (nseg == 2 && IS(0, "certs")) {
        METHOD("GET");
        get_cert(d, rep, seg[1]);
    } else if (nseg == 1 && IS(0, "pending")) {
        json_t *arr;
        METHOD("GET");
        arr = json_array();
        scep_pending_each(d->pending, pending_item, arr);
        send_json(rep, 200, json_pack("{s:i,s:o}", "count", (int)json_array_size(arr), "pending", arr));
    } else if (nseg == 3 && IS(0, "pending") && (IS(2, "approve") || IS(2, "reject"))) {
        int approve = IS(2, "approve");
        METHOD("POST");
        if (scep_pending_decide(d->pending, seg[1], approve) != 0)
            send_error(rep, 404, "no pending request with that transaction_id");
        else
            send_json(rep, 200, json_pack("{s:o,s:s}", "transaction_id", json_text(seg[1]),
                                          "state", approve ? "approved" : "rejected"));
    } else if (nseg == 1 && IS(0, "challenges")) {
        char pw[160];
        METHOD("POST");
        if (otp_mint(d->otp, pw, sizeof(pw)) != 0)
            send_error(rep, 409, "the password cache is full");
        else
            send_json(rep, 200, json_pack("{s:s,s:f}", "password", pw, "expires_in",
                                          otp_validity(d->otp)));
    } else if (nseg == 1 && IS(0, "reset")) {
        METHOD("POST");
        /* as iisreset: rapid-fail state, password cache, counters */
        scenario_engine_reset(d->engine);
        otp_clear(d->otp);
        stats_reset(d->stats);
        send_json(rep, 200, json_pack("{s:s}", "status", "reset"));
    } else if (nseg == 1 && IS(0, "metrics")) {
        METHOD("GET");
        get_metrics(d, rep);
    } else {
        send_error(rep, 404, "not found");
    }
#undef IS
#undef IS_METHOD
#undef METHOD
out:
    return rep->status;
}

/* The evhttp adapter: the request's method, URI, Authorization header and
 * body go to admin_handle(), its reply goes back with one Content-Type header
 * (libevent adds Date and Content-Length). */
static void on_admin(struct evhttp_request *r, void *arg)
{
    struct admin *a = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(r), *out = evbuffer_new();
    size_t n = evbuffer_get_length(in);
    /* contiguous body (NULL when empty or when pulling it up failed) */
    const uint8_t *body = n ? evbuffer_pullup(in, -1) : NULL;
    const char *method;
    struct admin_reply rep;

    switch (evhttp_request_get_command(r)) {
    case EVHTTP_REQ_GET: method = "GET"; break;
    case EVHTTP_REQ_POST: method = "POST"; break;
    case EVHTTP_REQ_PUT: method = "PUT"; break;
    case EVHTTP_REQ_DELETE: method = "DELETE"; break;
    default: method = "OTHER"; break; /* not delivered: evhttp_set_allowed_methods */
    }
    admin_handle(&a->d, method, evhttp_request_get_uri(r),
                 evhttp_find_header(evhttp_request_get_input_headers(r), "Authorization"), body,
                 n, &rep);
    evhttp_add_header(evhttp_request_get_output_headers(r), "Content-Type", rep.content_type);
    if (out && rep.body.len)
        evbuffer_add(out, rep.body.data, rep.body.len);
    evhttp_send_reply(r, rep.status, rep.reason, out);
    if (out)
        evbuffer_free(out);
    util_buf_free(&rep.body);
}

struct admin *admin_new(struct event_base *base, const struct admin_deps *deps,
                        const char *listen, char *err, size_t errlen)
{
    struct admin *a = calloc(1, sizeof(*a));
    char host[CONFIG_STR], hbuf[256], pbuf[16];
    int port;
    struct evhttp_bound_socket *bs;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    evutil_socket_t fd;

    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->d = *deps;
    if (config_parse_hostport(listen, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "bad admin listen address '%s'", listen);
        goto fail;
    }
    a->http = evhttp_new(base);
    if (a->http == NULL)
        goto fail;
    evhttp_set_max_body_size(a->http, ADMIN_MAX_BODY);
    evhttp_set_max_headers_size(a->http, 65536);
    evhttp_set_default_content_type(a->http, NULL);
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE);
    evhttp_set_gencb(a->http, on_admin, a);
    bs = evhttp_bind_socket_with_handle(a->http, host, (ev_uint16_t)port);
    if (bs == NULL) {
        snprintf(err, errlen, "cannot bind admin listener %s: %s", listen, strerror(errno));
        goto fail;
    }
    fd = evhttp_bound_socket_get_fd(bs);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
        getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof(hbuf), pbuf, sizeof(pbuf),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(err, errlen, "admin getsockname: %s", strerror(errno));
        goto fail;
    }
    snprintf(a->address, sizeof(a->address), ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
             hbuf, pbuf);
    return a;
fail:
    if (err[0] == '\0')
        snprintf(err, errlen, "cannot set up the admin API");
    admin_free(a);
    return NULL;
}

const char *admin_address(const struct admin *a)
{
    return a->address;
}

void admin_free(struct admin *a)
{
    if (a == NULL)
        return;
    if (a->http)
        evhttp_free(a->http);
    free(a);
}
