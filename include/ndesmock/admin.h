/* admin.h - the admin API: JSON over HTTP on its own listener, run on the
 * main thread's event loop. Routes are documented in docs/admin-api.md. */
#ifndef NDESMOCK_ADMIN_H
#define NDESMOCK_ADMIN_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "ndesmock/challenge.h"
#include "ndesmock/config.h"
#include "ndesmock/journal.h"
#include "ndesmock/scenario.h"
#include "ndesmock/scep.h"
#include "ndesmock/util.h"

/* Request bodies over this are refused (libevent answers 413 before the
 * handler runs; admin_handle() answers 400). */
#define ADMIN_MAX_BODY (256 * 1024)

/* The current scenario's file, shared with SIGHUP handling in main. */
struct scenario_slot {
    char path[4096];        /* "" = built-in healthy */
};

struct admin_deps {
    const struct config *cfg;
    struct scenario_engine *engine;
    struct scenario_slot *slot;
    struct journal *journal;
    struct stats *stats;
    struct otp_cache *otp;
    struct scep_pending *pending;
    const char *scenarios_dir;
    const char *state_dir;
    const char *certs_dir;
};

/* One reply of the admin API. reason and content_type point to static
 * strings; body belongs to the reply (util_buf_free). */
struct admin_reply {
    int status;                 /* 200, 400, 401, 404, 405 or 409 */
    const char *reason;         /* "OK", "Not Found", ... */
    const char *content_type;   /* "application/json", or the route's own type */
    struct util_buf body;
};

/* Handles one admin API request below the HTTP layer (the listener's evhttp
 * callback is a thin adapter around it; fuzz/fuzz_admin.c drives it directly).
 *   method         "GET", "POST", "PUT" or "DELETE" (anything else: 405 on a known
 *                  route, 404 otherwise)
 *   uri            the request-URI as received: path, then optionally '?' and the
 *                  raw query (NUL-terminated; a path of 1024 bytes or more is 404)
 *   authorization  the Authorization header's value, NULL when absent
 *   body, body_len the request body; NULL with 0 when empty, NULL with body_len > 0
 *                  when it could not be read; over ADMIN_MAX_BODY is refused
 * All arguments are borrowed for the call. Always fills *rep (any previous
 * content is overwritten, not freed): the caller frees rep->body with
 * util_buf_free(). May switch the scenario, write deps->slot, clear the journal,
 * decide PENDING requests, mint passwords and reset counters, as the routes say.
 * Not thread-safe with itself: call it from one thread (the main loop).
 * Returns rep->status. */
int admin_handle(const struct admin_deps *d, const char *method, const char *uri,
                 const char *authorization, const uint8_t *body, size_t body_len,
                 struct admin_reply *rep);

struct admin;

/* Binds listen (HOST:PORT, port 0 allowed) on base. Returns NULL with err. */
struct admin *admin_new(struct event_base *base, const struct admin_deps *deps,
                        const char *listen, char *err, size_t errlen);
const char *admin_address(const struct admin *a);
void admin_free(struct admin *a);

#endif
