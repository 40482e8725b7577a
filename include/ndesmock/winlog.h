/* winlog.h - what Windows writes beside the wire: the IIS W3C site log
 * (STATE/logs/W3SVC1/u_exYYMMDD.log), the HTTP.sys error log
 * (STATE/logs/HTTPERR/httperr1.log) and a simulated event log
 * (STATE/logs/events.log, one event per line). Lines are formatted into a
 * per-thread buffer and written by winlog_flush(): no system call per request. */
#ifndef NDESMOCK_WINLOG_H
#define NDESMOCK_WINLOG_H

#include <stddef.h>
#include <time.h>

#include "ndesmock/util.h"

struct winlog;

struct winlog_buf {   /* one per worker thread; owned by the worker */
    struct util_buf w3c, httperr, events;
    time_t stamp_sec;     /* cached "YYYY-MM-DD HH:MM:SS" for stamp_sec */
    char stamp[24];
};

/* Opens (creating) STATE/logs/... Returns NULL with err set. */
struct winlog *winlog_open(const char *state_dir, char *err, size_t errlen);
void winlog_free(struct winlog *l);
void winlog_buf_free(struct winlog_buf *b);

struct w3c_line {
    const char *s_ip, *method, *stem, *query, *username, *c_ip, *user_agent, *referer;
    int s_port, status, substatus;
    long long win32;
    unsigned time_taken_ms;
};
void winlog_w3c(struct winlog_buf *b, time_t when, const struct w3c_line *l);

struct httperr_line {
    const char *c_ip, *s_ip, *version, *method, *uri, *reason, *queue;
    int c_port, s_port, status, siteid; /* status 0, siteid 0 = "-" */
};
void winlog_httperr(struct winlog_buf *b, time_t when, const struct httperr_line *l);

void winlog_event(struct winlog_buf *b, time_t when, int id, const char *source,
                  const char *level, const char *message);

/* Appends the buffered lines to the files (one write per file), thread-safe. */
void winlog_flush(struct winlog *l, struct winlog_buf *b);

/* Path of today's W3C log, for tests and the ready file. */
void winlog_w3c_path(struct winlog *l, char *out, size_t outcap);

#endif
