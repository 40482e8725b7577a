/* server.h - the HTTP front end: one libevent loop per core sharing one
 * listening socket (no SO_REUSEPORT: a busy port is an error), IIS-shaped
 * routing of the NDES URLs, access log. */
#ifndef NDESMOCK_SERVER_H
#define NDESMOCK_SERVER_H

#include <stddef.h>

#include "ndesmock/config.h"
#include "ndesmock/scep.h"

struct server;

/* Binds cfg->listen (port 0 picks a free port). cfg and scep must outlive the
 * server. Returns a new server (server_free) or NULL with err set. */
struct server *server_new(const struct config *cfg, const struct scep_ctx *scep, char *err,
                          size_t errlen);

/* The bound address, e.g. "127.0.0.1:41234" or "[::1]:8080". */
const char *server_address(const struct server *s);

/* Starts the worker threads. Returns 0 or -1 with err set. */
int server_start(struct server *s, char *err, size_t errlen);

/* Blocks until SIGTERM/SIGINT, then stops accepting, lets in-flight requests
 * finish (bounded) and joins the workers. Returns 0. */
int server_wait(struct server *s);

void server_free(struct server *s);

#endif
