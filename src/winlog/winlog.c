/* winlog.c - IIS W3C log, HTTPERR log and the simulated event log. */
#include "ndesmock/winlog.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct winlog {
    pthread_mutex_t mu;
    char dir[512];
    int w3c_fd;
    int w3c_day;            /* yymmdd of the open W3C file */
    int httperr_fd;
    int events_fd;
};

static int mkdirs(const char *a, const char *b, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", a, b);
    if (mkdir(out, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int open_with_header(const char *path, const char *software, const char *fields)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    struct stat st;

    if (fd < 0)
        return -1;
    if (fstat(fd, &st) == 0 && st.st_size == 0 && software) {
        char hdr[600], date[32];
        time_t now = time(NULL);
        struct tm tm;
        int n;
        gmtime_r(&now, &tm);
        strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
        n = snprintf(hdr, sizeof(hdr), "#Software: %s\r\n#Version: 1.0\r\n#Date: %s\r\n#Fields: %s\r\n",
                     software, date, fields);
        if (write(fd, hdr, (size_t)n) != n) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

static const char W3C_FIELDS[] =
    "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
    "cs(Referer) sc-status sc-substatus sc-win32-status time-taken";
static const char HTTPERR_FIELDS[] =
    "date time c-ip c-port s-ip s-port cs-version cs-method cs-uri streamid sc-status s-siteid "
    "s-reason s-queuename";

static int today(void)
{
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    return (tm.tm_year % 100) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

static int open_w3c(struct winlog *l)
{
    char path[600];
    int day = today();

    snprintf(path, sizeof(path), "%s/W3SVC1/u_ex%06d.log", l->dir, day);
    if (l->w3c_fd >= 0)
        close(l->w3c_fd);
    l->w3c_fd = open_with_header(path, "Microsoft Internet Information Services 10.0", W3C_FIELDS);
    l->w3c_day = day;
    return l->w3c_fd < 0 ? -1 : 0;
}

struct winlog *winlog_open(const char *state_dir, char *err, size_t errlen)
{
    struct winlog *l = calloc(1, sizeof(*l));
    char p[600];

    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->w3c_fd = l->httperr_fd = l->events_fd = -1;
    pthread_mutex_init(&l->mu, NULL);
    if (mkdirs(state_dir, "logs", l->dir, sizeof(l->dir)) != 0 ||
        mkdirs(l->dir, "W3SVC1", p, sizeof(p)) != 0 || mkdirs(l->dir, "HTTPERR", p, sizeof(p)) != 0)
        goto fail;
    if (open_w3c(l) != 0)
        goto fail;
    snprintf(p, sizeof(p), "%s/HTTPERR/httperr1.log", l->dir);
    l->httperr_fd = open_with_header(p, "Microsoft HTTP API 2.0", HTTPERR_FIELDS);
    snprintf(p, sizeof(p), "%s/events.log", l->dir);
    l->events_fd = open_with_header(p, NULL, NULL);
    if (l->httperr_fd < 0 || l->events_fd < 0)
        goto fail;
    return l;
fail:
    snprintf(err, errlen, "%s/logs: cannot create the Windows logs: %s", state_dir, strerror(errno));
    winlog_free(l);
    return NULL;
}

void winlog_free(struct winlog *l)
{
    if (l == NULL)
        return;
    if (l->w3c_fd >= 0)
        close(l->w3c_fd);
    if (l->httperr_fd >= 0)
        close(l->httperr_fd);
    if (l->events_fd >= 0)
        close(l->events_fd);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void winlog_buf_free(struct winlog_buf *b)
{
    util_buf_free(&b->w3c);
    util_buf_free(&b->httperr);
    util_buf_free(&b->events);
}

static void stamp(char *out, size_t cap, time_t when)
{
    struct tm tm;

    gmtime_r(&when, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
}

/* A W3C field: "-" when empty; spaces become '+'; control characters '?'. */
static void field(struct util_buf *b, const char *s, size_t cap)
{
    size_t i;

    if (s == NULL || *s == '\0') {
        util_buf_append(b, "-", 1);
        return;
    }
    {
        size_t n = strnlen(s, cap);
        uint8_t *p = util_buf_grow(b, n);
        if (p == NULL)
            return;
        memcpy(p, s, n);
        for (i = 0; i < n; i++) {
            if (p[i] == ' ')
                p[i] = '+';
            else if (p[i] < 0x20 || p[i] == 0x7f)
                p[i] = '?';
        }
    }
}

static const char *cached_stamp(struct winlog_buf *b, time_t when)
{
    if (when != b->stamp_sec || b->stamp[0] == '\0') {
        stamp(b->stamp, sizeof(b->stamp), when);
        b->stamp_sec = when;
    }
    return b->stamp;
}

void winlog_w3c(struct winlog_buf *b, time_t when, const struct w3c_line *l)
{
    const char *ts = cached_stamp(b, when);

    util_buf_append(&b->w3c, ts, strlen(ts));
    util_buf_append(&b->w3c, " ", 1);
    field(&b->w3c, l->s_ip, 64);
    util_buf_append(&b->w3c, " ", 1);
    field(&b->w3c, l->method, 16);
    util_buf_append(&b->w3c, " ", 1);
    field(&b->w3c, l->stem, 2048);
    util_buf_append(&b->w3c, " ", 1);
    field(&b->w3c, l->query, 4096);
    util_buf_append(&b->w3c, " ", 1);
    util_buf_puti(&b->w3c, l->s_port);
    util_buf_append(&b->w3c, " ", 1);
    field(&b->w3c, l->username, 128);
    util_buf_append(&b->w3c, " ", 1);
    field(&b->w3c, l->c_ip, 64);
    util_buf_append(&b->w3c, " ", 1);
    field(&b->w3c, l->user_agent, 512);
    util_buf_append(&b->w3c, " ", 1);
    field(&b->w3c, l->referer, 512);
    util_buf_append(&b->w3c, " ", 1);
    util_buf_puti(&b->w3c, l->status);
    util_buf_append(&b->w3c, " ", 1);
    util_buf_puti(&b->w3c, l->substatus);
    util_buf_append(&b->w3c, " ", 1);
    util_buf_puti(&b->w3c, l->win32);
    util_buf_append(&b->w3c, " ", 1);
    util_buf_putu(&b->w3c, l->time_taken_ms);
    util_buf_append(&b->w3c, "\r\n", 2);
}

void winlog_httperr(struct winlog_buf *b, time_t when, const struct httperr_line *l)
{
    char ts[32];

    stamp(ts, sizeof(ts), when);
    util_buf_appendf(&b->httperr, "%s %s %d %s %d ", ts, l->c_ip ? l->c_ip : "-", l->c_port,
                     l->s_ip ? l->s_ip : "-", l->s_port);
    field(&b->httperr, l->version, 16);
    util_buf_append(&b->httperr, " ", 1);
    field(&b->httperr, l->method, 16);
    util_buf_append(&b->httperr, " ", 1);
    field(&b->httperr, l->uri, 4096);
    if (l->status)
        util_buf_appendf(&b->httperr, " - %d ", l->status);
    else
        util_buf_append(&b->httperr, " - - ", 5);
    if (l->siteid)
        util_buf_appendf(&b->httperr, "%d ", l->siteid);
    else
        util_buf_append(&b->httperr, "- ", 2);
    field(&b->httperr, l->reason, 64);
    util_buf_append(&b->httperr, " ", 1);
    field(&b->httperr, l->queue, 64);
    util_buf_append(&b->httperr, "\r\n", 2);
}

void winlog_event(struct winlog_buf *b, time_t when, int id, const char *source,
                  const char *level, const char *message)
{
    char ts[32];
    struct tm tm;

    gmtime_r(&when, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    util_buf_appendf(&b->events, "%s\t%d\t%s\t%s\t%s\n", ts, id, source, level, message);
}

static void write_all(int fd, struct util_buf *u)
{
    size_t off = 0;

    while (fd >= 0 && off < u->len) {
        ssize_t n = write(fd, u->data + off, u->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    util_buf_reset(u);
}

void winlog_flush(struct winlog *l, struct winlog_buf *b)
{
    if (l == NULL || (b->w3c.len == 0 && b->httperr.len == 0 && b->events.len == 0))
        return;
    pthread_mutex_lock(&l->mu);
    if (b->w3c.len && l->w3c_day != today())
        open_w3c(l);
    write_all(l->w3c_fd, &b->w3c);
    write_all(l->httperr_fd, &b->httperr);
    write_all(l->events_fd, &b->events);
    pthread_mutex_unlock(&l->mu);
}

void winlog_w3c_path(struct winlog *l, char *out, size_t outcap)
{
    snprintf(out, outcap, "%s/W3SVC1/u_ex%06d.log", l->dir, today());
}
