/* server.h - the HTTP front end: one libevent loop per core sharing one
 * listening socket (no SO_REUSEPORT: a busy port is an error), IIS-shaped
 * routing of the NDES URLs, access log. */
#ifndef NDESMOCK_SERVER_H
#define NDESMOCK_SERVER_H

#include <stddef.h>

#include "ndesmock/challenge.h"
#include "ndesmock/config.h"
#include "ndesmock/journal.h"
#include "ndesmock/scenario.h"
#include "ndesmock/scep.h"
#include "ndesmock/winlog.h"

struct server;

/* What the server borrows; everything must outlive it. */
struct server_deps {
    const struct config *cfg;
    struct scep_ctx *scep;          /* read-only but for scep_ctx_ready() */
    struct scenario_engine *engine; /* active scenario, counters, rapid-fail */
    struct winlog *winlog;          /* IIS / HTTPERR / event logs; may be NULL */
    struct journal *journal;        /* request journal; may be NULL */
    struct stats *stats;            /* counters for /metrics; may be NULL */
    struct otp_cache *otp;          /* mscep_admin passwords; may be NULL */
};

/* Binds cfg->listen (port 0 picks a free port). Returns a new server
 * (server_free) or NULL with err set. */
struct server *server_new(const struct server_deps *deps, char *err, size_t errlen);

/* The bound address, e.g. "127.0.0.1:41234" or "[::1]:8080". */
const char *server_address(const struct server *s);

/* The bound HTTPS address, or NULL without --tls-listen. */
const char *server_tls_address(const struct server *s);

/* Starts the worker threads. Returns 0 or -1 with err set. */
int server_start(struct server *s, char *err, size_t errlen);

/* Stops accepting, lets in-flight requests finish (bounded), joins the
 * workers. Safe to call twice. */
void server_stop(struct server *s);

void server_free(struct server *s);

#endif
