/* admin.h - the admin API: JSON over HTTP on its own listener, run on the
 * main thread's event loop. Routes are documented in docs/admin-api.md. */
#ifndef NDESMOCK_ADMIN_H
#define NDESMOCK_ADMIN_H

#include <event2/event.h>
#include <stddef.h>

#include "ndesmock/challenge.h"
#include "ndesmock/config.h"
#include "ndesmock/journal.h"
#include "ndesmock/scenario.h"
#include "ndesmock/scep.h"

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

struct admin;

/* Binds listen (HOST:PORT, port 0 allowed) on base. Returns NULL with err. */
struct admin *admin_new(struct event_base *base, const struct admin_deps *deps,
                        const char *listen, char *err, size_t errlen);
const char *admin_address(const struct admin *a);
void admin_free(struct admin *a);

#endif
