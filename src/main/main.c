/* main.c - command line, start-up order, ready file, exit codes. Only main exits. */
#include "ndesmock/admin.h"
#include "ndesmock/challenge.h"
#include "ndesmock/config.h"
#include "ndesmock/journal.h"
#include "ndesmock/iis.h"
#include "ndesmock/pki.h"
#include "ndesmock/scenario.h"
#include "ndesmock/scep.h"
#include "ndesmock/server.h"
#include "ndesmock/store.h"
#include "ndesmock/winlog.h"

#include <dirent.h>
#include <libgen.h>

#include <errno.h>
#include <event2/thread.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <jansson.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef NDESMOCK_VERSION
#define NDESMOCK_VERSION "0.1.0"
#endif

enum exit_code { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static void usage(FILE *f)
{
    fprintf(f,
"Usage: ndesmock [OPTIONS]\n"
"A mock Microsoft NDES (mscep.dll on IIS 10) SCEP server for labs and CI.\n"
"\n"
"Options:\n"
"  -c, --config FILE       read settings from a libconfig FILE over the embedded\n"
"                          defaults (see ndesmock.cfg for every key)\n"
"  -l, --listen HOST:PORT  SCEP listener (default 127.0.0.1:8080; port 0 picks a\n"
"                          free port; IPv6 as [::1]:0)\n"
"  -s, --state-dir DIR     lab PKI, issued certificates and logs (default ./state)\n"
"  -r, --ready-file FILE   once listening, write a JSON object with scep_url,\n"
"                          challenge, pid, state_dir, ca_cert_path,\n"
"                          ca_md5_thumbprint, scenario and version\n"
"      --tls-listen HOST:PORT  also serve SCEP over HTTPS with the lab TLS\n"
"                          certificate (SANs localhost, 127.0.0.1, ::1)\n"
"  -a, --admin-listen HOST:PORT  admin API listener (default 127.0.0.1:8081;\n"
"                          port 0 picks a free port); see docs/admin-api.md\n"
"  -t, --threads N         worker threads (default: one per core)\n"
"      --log-format text|json  access log lines on stderr (default text)\n"
"      --user NAME         after binding, switch to this user (and its group)\n"
"  -S, --scenario NAME|PATH  start with this scenario (default healthy); a value\n"
"                          with '/' or ending in .cfg is a file, otherwise NAME.cfg\n"
"                          in the scenarios directory ('healthy' is also built in)\n"
"      --scenarios-dir DIR where scenario names are looked up (default: the\n"
"                          scenarios/ folder of the installation)\n"
"      --time-scale F      multiply every scenario delay and server timeout by F\n"
"                          (e.g. 0.01 plays an 85 s gateway timeout in 0.85 s)\n"
"      --seed N            seed for scenario probabilities (same seed, same run)\n"
"      --check FILE        validate a scenario file and exit (0 valid, 2 invalid);\n"
"                          like --list-scenarios it creates the lab PKI in the\n"
"                          state directory if missing (material lives there)\n"
"      --list-scenarios    print the shipped scenarios with a one-line summary\n"
"      --generate-pki      create the lab PKI in the state directory and exit\n"
"  -h, --help              show this help and exit\n"
"  -V, --version           show the version and exit\n"
"\n"
"Endpoints: /certsrv/mscep/mscep.dll[/pkiclient.exe], /certsrv/mscep/ and\n"
"/cgi-bin/pkiclient.exe with operation=GetCACaps, GetCACert or PKIOperation\n"
"(GET or POST). Paths are case-insensitive, as on IIS.\n"
"\n"
"Signals: SIGTERM or SIGINT finish in-flight requests and exit 0; SIGHUP\n"
"reloads the current scenario file (an invalid file keeps the old one).\n"
"Logs: one access line per request on stderr; IIS W3C log in\n"
"STATE/logs/W3SVC1/, HTTP.sys errors in STATE/logs/HTTPERR/, simulated\n"
"Windows events in STATE/logs/events.log.\n"
"Exit status: 0 clean stop; 1 runtime failure (e.g. the port is busy, the\n"
"state directory is unwritable); 2 usage or configuration error (reported\n"
"as FILE:LINE: reason).\n");
}

static int write_ready_file(const char *path, const char *url, const char *challenge,
                            const struct config *cfg, const struct pki *pki, const char *scenario,
                            const char *admin_url, const char *admin_page_url,
                            const char *tls_url)
{
    char tmp[PATH_MAX + 16], absstate[PATH_MAX];
    json_t *o = json_object();
    int rc = -1;

    if (realpath(cfg->state_dir, absstate) == NULL)
        snprintf(absstate, sizeof(absstate), "%s", cfg->state_dir);
    json_object_set_new(o, "scep_url", json_string(url));
    json_object_set_new(o, "challenge", challenge ? json_string(challenge) : json_null());
    json_object_set_new(o, "pid", json_integer((json_int_t)getpid()));
    json_object_set_new(o, "state_dir", json_string(absstate));
    {
        char abs[PATH_MAX];
        json_object_set_new(o, "ca_cert_path",
                            json_string(realpath(pki->ca_cert_path, abs) ? abs : pki->ca_cert_path));
    }
    json_object_set_new(o, "ca_md5_thumbprint", json_string(pki->ca_md5));
    json_object_set_new(o, "scenario", json_string(scenario));
    json_object_set_new(o, "admin_url", json_string(admin_url));
    json_object_set_new(o, "admin_page_url", json_string(admin_page_url));
    json_object_set_new(o, "scep_tls_url", tls_url ? json_string(tls_url) : json_null());
    json_object_set_new(o, "version", json_string(NDESMOCK_VERSION));
    snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
    if (json_dump_file(o, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) == 0 && rename(tmp, path) == 0)
        rc = 0;
    else
        unlink(tmp);
    json_decref(o);
    return rc;
}

/* The scenarios folder of the installation: next to the binary's parent
 * (build/ndesmock -> scenarios/), else ./scenarios. */
static void default_scenarios_dir(char *out, size_t cap)
{
    char exe[PATH_MAX], probe[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    struct stat st;

    if (n > 0) {
        exe[n] = '\0';
        snprintf(probe, sizeof(probe), "%s/../scenarios", dirname(exe));
        if (stat(probe, &st) == 0 && S_ISDIR(st.st_mode) && realpath(probe, out)) {
            (void)cap;
            return;
        }
    }
    snprintf(out, cap, "scenarios");
}

static struct scenario *load_scenario(const char *arg, const char *dir, const char *state,
                                      char *path, size_t pathcap)
{
    struct sc_errors errs = {0};
    struct scenario *sc;
    char msg[4096];

    if (scenario_resolve(arg, dir, path, pathcap) != 0) {
        fprintf(stderr, "ndesmock: bad scenario name '%s'\n", arg);
        return NULL;
    }
    if (path[0] == '\0')
        return scenario_healthy();
    sc = scenario_load_file(path, dir, state, &errs);
    if (sc == NULL) {
        scenario_errors_format(&errs, msg, sizeof(msg));
        fprintf(stderr, "%s\n", msg);
    }
    return sc;
}

static int list_scenarios(const char *dir, const char *state)
{
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, alphasort), i, rc = 0;

    if (n < 0) {
        fprintf(stderr, "ndesmock: %s: %s\n", dir, strerror(errno));
        return EXIT_RUNTIME;
    }
    for (i = 0; i < n; i++) {
        size_t l = strlen(ents[i]->d_name);
        if (l > 4 && strcmp(ents[i]->d_name + l - 4, ".cfg") == 0) {
            char path[PATH_MAX + 300];
            struct sc_errors errs = {0};
            struct scenario *sc;
            snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
            sc = scenario_load_file(path, dir, state, &errs);
            printf("%-42s %s\n", sc ? sc->name : ents[i]->d_name,
                   sc ? sc->summary : "(invalid: run --check)");
            if (sc == NULL)
                rc = EXIT_USAGE;
            scenario_release(sc);
        }
        free(ents[i]);
    }
    free(ents);
    return rc;
}

/* What the main loop's signal handlers need. */
struct main_ctx {
    struct event_base *base;
    struct scenario_engine *engine;
    struct scenario_slot *slot;
    const char *scenarios_dir, *state_dir;
};

static struct scenario *load_scenario(const char *arg, const char *dir, const char *state,
                                      char *path, size_t pathcap);

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    struct main_ctx *mc = arg;

    (void)sig;
    (void)what;
    event_base_loopbreak(mc->base);
}

/* SIGHUP: reload the current scenario file now; an invalid file keeps the old one. */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct main_ctx *mc = arg;
    char p2[PATH_MAX];
    struct scenario *n;

    (void)sig;
    (void)what;
    if (mc->slot->path[0] == '\0') {
        /* built in, or sent as text over the admin API: no file to read again */
        scenario_engine_reset(mc->engine);
        fprintf(stderr, "ndesmock: SIGHUP: the current scenario has no file; counters and "
                        "rapid-fail state reset\n");
        return;
    }
    n = load_scenario(mc->slot->path, mc->scenarios_dir, mc->state_dir, p2, sizeof(p2));
    if (n) {
        fprintf(stderr, "ndesmock: SIGHUP: scenario '%s' reloaded from %s\n", n->name,
                mc->slot->path);
        scenario_engine_switch(mc->engine, n);
    } else {
        fprintf(stderr, "ndesmock: SIGHUP: reload failed, keeping the current scenario\n");
    }
}

/* Switches the whole process (all threads: setgid/setuid apply process-wide
 * through glibc) to user, after every listener is bound. */
static int drop_privileges(const char *user, const char *state, struct winlog *wl, char *err,
                           size_t errlen)
{
    struct passwd *pw = getpwnam(user);
    static const char *const owned[] = {"", "/certs", "/index.txt", "/logs", "/logs/W3SVC1",
                                        "/logs/HTTPERR", "/logs/HTTPERR/httperr1.log",
                                        "/logs/events.log"};
    char path[PATH_MAX + 64];
    size_t i;

    if (pw == NULL) {
        snprintf(err, errlen, "no such user");
        return -1;
    }
    /* what the server writes at run time must belong to the user */
    for (i = 0; i < sizeof(owned) / sizeof(owned[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", state, owned[i]);
        if (chown(path, pw->pw_uid, pw->pw_gid) != 0 && errno != ENOENT) {
            snprintf(err, errlen, "%.300s: chown: %s", path, strerror(errno));
            return -1;
        }
    }
    winlog_w3c_path(wl, path, sizeof(path));
    if (chown(path, pw->pw_uid, pw->pw_gid) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "%.300s: chown: %s", path, strerror(errno));
        return -1;
    }
    if (setgroups(0, NULL) != 0 && geteuid() == 0) {
        snprintf(err, errlen, "setgroups: %s", strerror(errno));
        return -1;
    }
    if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        snprintf(err, errlen, "cannot switch: %s", strerror(errno));
        return -1;
    }
    if (pw->pw_uid != 0 && setuid(0) == 0) {
        snprintf(err, errlen, "privileges could be regained");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},  {"listen", required_argument, NULL, 'l'},
        {"state-dir", required_argument, NULL, 's'}, {"ready-file", required_argument, NULL, 'r'},
        {"threads", required_argument, NULL, 't'}, {"generate-pki", no_argument, NULL, 'G'},
        {"help", no_argument, NULL, 'h'},          {"version", no_argument, NULL, 'V'},
        {"scenario", required_argument, NULL, 'S'}, {"scenarios-dir", required_argument, NULL, 'D'},
        {"time-scale", required_argument, NULL, 'T'}, {"seed", required_argument, NULL, 'E'},
        {"check", required_argument, NULL, 'C'},   {"list-scenarios", no_argument, NULL, 'L'},
        {"admin-listen", required_argument, NULL, 'a'},
        {"log-format", required_argument, NULL, 'F'}, {"user", required_argument, NULL, 'U'},
        {"tls-listen", required_argument, NULL, 'X'},
        {NULL, 0, NULL, 0},
    };
    struct config cfg;
    struct pki pki;
    struct store store;
    struct scep_ctx sctx;
    struct server *srv = NULL;
    const char *config_path = NULL, *listen_arg = NULL, *state_arg = NULL, *ready = NULL;
    const char *admin_arg = NULL, *log_format = NULL, *user_arg = NULL, *tls_arg = NULL;
    int threads_arg = -1, generate_only = 0, c, rc = EXIT_RUNTIME;
    char err[512], url[400];
    const char *challenge = NULL, *scenario_arg = "healthy", *check_file = NULL;
    char scenarios_dir[PATH_MAX], scenario_path[PATH_MAX];
    double time_scale = 1.0;
    unsigned long long seed = 0;
    int list_only = 0;
    struct scenario *sc = NULL;
    struct scenario_engine *engine = NULL;
    struct winlog *wl = NULL;
    struct server_deps deps;
    struct admin_deps adeps;
    struct admin *admin = NULL;
    struct journal *journal = NULL;
    struct stats *stats = NULL;
    struct otp_cache *otp = NULL;
    struct scep_pending *pending = NULL;
    struct scep_tids *tids = NULL;
    struct event_base *base = NULL;
    struct event *ev_term = NULL, *ev_int = NULL, *ev_hup = NULL;
    struct main_ctx mc;
    struct scenario_slot slot;
    char admin_url[400], admin_page_url[400], tls_url[400];
    sigset_t set;

    memset(&pki, 0, sizeof(pki));
    scenarios_dir[0] = '\0';
    memset(&sctx, 0, sizeof(sctx));
    store.index_fd = -1;
    while ((c = getopt_long(argc, argv, "c:l:s:r:t:a:S:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'l': listen_arg = optarg; break;
        case 'a': admin_arg = optarg; break;
        case 'F':
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0) {
                fprintf(stderr, "ndesmock: --log-format wants text or json\n");
                return EXIT_USAGE;
            }
            log_format = optarg;
            break;
        case 'U': user_arg = optarg; break;
        case 'X': tls_arg = optarg; break;
        case 's': state_arg = optarg; break;
        case 'r': ready = optarg; break;
        case 't': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 64) {
                fprintf(stderr, "ndesmock: --threads wants a number from 1 to 64\n");
                return EXIT_USAGE;
            }
            threads_arg = (int)v;
            break;
        }
        case 'G': generate_only = 1; break;
        case 'S': scenario_arg = optarg; break;
        case 'D':
            if (strlen(optarg) >= sizeof(scenarios_dir)) {
                fprintf(stderr, "ndesmock: --scenarios-dir path too long\n");
                return EXIT_USAGE;
            }
            snprintf(scenarios_dir, sizeof(scenarios_dir), "%s", optarg);
            break;
        case 'T': {
            char *end;
            time_scale = strtod(optarg, &end);
            if (*end || !(time_scale > 0) || time_scale > 1000) {
                fprintf(stderr, "ndesmock: --time-scale wants a number > 0 (at most 1000)\n");
                return EXIT_USAGE;
            }
            break;
        }
        case 'E': {
            char *end;
            seed = strtoull(optarg, &end, 10);
            if (*end || *optarg == '\0') {
                fprintf(stderr, "ndesmock: --seed wants a non-negative integer\n");
                return EXIT_USAGE;
            }
            break;
        }
        case 'C': check_file = optarg; break;
        case 'L': list_only = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        case 'V': printf("ndesmock %s\n", NDESMOCK_VERSION); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ndesmock: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return EXIT_USAGE;
    }

    config_defaults(&cfg);
    if (config_path && config_load_file(&cfg, config_path, err, sizeof(err)) != 0) {
        fprintf(stderr, "ndesmock: %s\n", err);
        return EXIT_USAGE;
    }
    if (admin_arg) {
        char host[CONFIG_STR];
        int port;
        if (config_parse_hostport(admin_arg, host, sizeof(host), &port) != 0 ||
            strlen(admin_arg) >= sizeof(cfg.admin_listen)) {
            fprintf(stderr, "ndesmock: --admin-listen wants HOST:PORT or [V6]:PORT, not '%s'\n",
                    admin_arg);
            return EXIT_USAGE;
        }
        snprintf(cfg.admin_listen, sizeof(cfg.admin_listen), "%s", admin_arg);
    }
    if (listen_arg) {
        char host[CONFIG_STR];
        int port;
        if (config_parse_hostport(listen_arg, host, sizeof(host), &port) != 0 ||
            strlen(listen_arg) >= sizeof(cfg.listen)) {
            fprintf(stderr, "ndesmock: --listen wants HOST:PORT or [V6]:PORT, not '%s'\n",
                    listen_arg);
            return EXIT_USAGE;
        }
        snprintf(cfg.listen, sizeof(cfg.listen), "%s", listen_arg);
    }
    if (state_arg) {
        if (strlen(state_arg) >= sizeof(cfg.state_dir) - 64) {
            fprintf(stderr, "ndesmock: --state-dir path too long\n");
            return EXIT_USAGE;
        }
        snprintf(cfg.state_dir, sizeof(cfg.state_dir), "%s", state_arg);
    }
    if (threads_arg > 0)
        cfg.threads = threads_arg;
    if (tls_arg) {
        char host[CONFIG_STR];
        int port;
        if (config_parse_hostport(tls_arg, host, sizeof(host), &port) != 0 ||
            strlen(tls_arg) >= sizeof(cfg.tls_listen)) {
            fprintf(stderr, "ndesmock: --tls-listen wants HOST:PORT or [V6]:PORT, not '%s'\n",
                    tls_arg);
            return EXIT_USAGE;
        }
        snprintf(cfg.tls_listen, sizeof(cfg.tls_listen), "%s", tls_arg);
    }
    if (log_format)
        cfg.log_json = strcmp(log_format, "json") == 0;
    if (scenarios_dir[0] == '\0')
        default_scenarios_dir(scenarios_dir, sizeof(scenarios_dir));
    if (check_file || list_only) {
        /* Material scenarios point at the faulty set in the state directory:
         * make sure the lab PKI (and that set) exists before checking. */
        if ((mkdir(cfg.state_dir, 0755) != 0 && errno != EEXIST) ||
            pki_load_or_create(&pki, &cfg, err, sizeof(err)) != 0) {
            fprintf(stderr, "ndesmock: lab PKI in %s: %s\n", cfg.state_dir, err);
            return EXIT_RUNTIME;
        }
        pki_free(&pki);
        if (list_only)
            return list_scenarios(scenarios_dir, cfg.state_dir);
        sc = load_scenario(check_file, scenarios_dir, cfg.state_dir, scenario_path,
                           sizeof(scenario_path));
        if (sc == NULL)
            return EXIT_USAGE;
        printf("%s: valid scenario '%s' (%d rules)\n", scenario_path[0] ? scenario_path : check_file,
               sc->name, sc->nrules);
        scenario_release(sc);
        return EXIT_OK;
    }

    signal(SIGPIPE, SIG_IGN);
    /* One malloc arena: journal entries and buffers are freed by whichever
     * worker recycles them, and per-thread arenas then grow apart (RSS creeps
     * up for minutes before it levels off). The allocation rate is modest.
     * GLIBC_TUNABLES (e.g. glibc.malloc.arena_max=8) takes precedence. */
    if (getenv("GLIBC_TUNABLES") == NULL)
        mallopt(M_ARENA_MAX, 1);
    {
        /* the soft open-file limit is often 1024: raise it to the hard limit */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    /* Block the signals here so the worker threads inherit the mask; the main
     * event loop unblocks and takes them once the workers run. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    if (evthread_use_pthreads() != 0 || iis_pages_init(cfg.pki.host_name) != 0) {
        fprintf(stderr, "ndesmock: initialisation failed\n");
        return EXIT_RUNTIME;
    }
    if (mkdir(cfg.state_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "ndesmock: %s: cannot create state directory: %s\n", cfg.state_dir,
                strerror(errno));
        return EXIT_RUNTIME;
    }
    /* The files are read and the keys checked now; the certificate objects and
     * provider keys are made by the first PKIOperation (pki_ready() in
     * server.c): GetCACaps and GetCACert do not need them (2 ms of start-up,
     * 0.3 MB of RSS while no enrollment came). */
    if (pki_start(&pki, &cfg,
                  (cfg.tls_listen[0] || generate_only ? PKI_LOAD_TLS : 0) |
                      (generate_only ? 0 : PKI_LOAD_LATER),
                  err, sizeof(err)) != 0) {
        fprintf(stderr, "ndesmock: lab PKI: %s\n", err);
        goto out;
    }
    if (generate_only) {
        printf("lab PKI in %s (CA thumbprint MD5 %s)\n", pki.dir, pki.ca_md5);
        rc = EXIT_OK;
        goto out;
    }
    otp = otp_new(cfg.otp_max, (double)cfg.otp_validity_minutes * 60.0, cfg.otp_length_bytes);
    pending = scep_pending_new(4096);
    tids = scep_tids_new(4096);
    journal = journal_new((size_t)cfg.journal_size, (size_t)cfg.journal_raw_bytes,
                          cfg.journal_secrets);
    stats = calloc(1, sizeof(*stats));
    if (!otp || !pending || !tids || !journal || !stats) {
        fprintf(stderr, "ndesmock: out of memory\n");
        goto out;
    }
    if (store_open(&store, cfg.state_dir, err, sizeof(err)) != 0 ||
        scep_ctx_init_ex(&sctx, &cfg, &pki, &store, SCEP_CTX_CRYPTO_LATER, err, sizeof(err)) != 0 ||
        (wl = winlog_open(cfg.state_dir, err, sizeof(err))) == NULL) {
        fprintf(stderr, "ndesmock: %s\n", err);
        goto out;
    }
    sc = load_scenario(scenario_arg, scenarios_dir, cfg.state_dir, scenario_path,
                       sizeof(scenario_path));
    if (sc == NULL) {
        rc = EXIT_USAGE;
        goto out;
    }
    engine = scenario_engine_new(sc, time_scale, seed);
    if (engine == NULL) {
        scenario_release(sc);
        goto out;
    }
    deps.cfg = &cfg;
    deps.scep = &sctx;
    deps.engine = engine;
    deps.winlog = wl;
    deps.journal = journal;
    deps.stats = stats;
    deps.otp = otp;
    sctx.otp = otp;
    sctx.pending = pending;
    sctx.tids = tids;
    sctx.details = 1;
    /* the HTTPS listener's contexts are made from the TLS pair: now */
    if (cfg.tls_listen[0] && (scep_ctx_ready(&sctx, err, sizeof(err)) != 0 ||
                              pki_ready(&pki, err, sizeof(err)) != 0)) {
        fprintf(stderr, "ndesmock: lab PKI: %s\n", err);
        goto out;
    }
    srv = server_new(&deps, err, sizeof(err));
    if (srv == NULL || server_start(srv, err, sizeof(err)) != 0) {
        fprintf(stderr, "ndesmock: %s\n", err);
        goto out;
    }
    /* Workers keep the signals blocked; the main loop takes them. */
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    base = event_base_new();
    if (base == NULL) {
        fprintf(stderr, "ndesmock: cannot create the main event loop\n");
        goto out;
    }
    snprintf(slot.path, sizeof(slot.path), "%s", scenario_path);
    adeps.cfg = &cfg;
    adeps.engine = engine;
    adeps.slot = &slot;
    adeps.journal = journal;
    adeps.stats = stats;
    adeps.otp = otp;
    adeps.pending = pending;
    adeps.scenarios_dir = scenarios_dir;
    adeps.state_dir = cfg.state_dir;
    adeps.certs_dir = store.certs_dir;
    admin = admin_new(base, &adeps, cfg.admin_listen, err, sizeof(err));
    if (admin == NULL) {
        fprintf(stderr, "ndesmock: %s\n", err);
        goto out;
    }
    if (cfg.challenge_policy == CHALLENGE_STATIC)
        challenge = cfg.challenge[0] ? cfg.challenge : pki.challenge;
    snprintf(url, sizeof(url), "http://%s/certsrv/mscep/mscep.dll", server_address(srv));
    snprintf(admin_url, sizeof(admin_url), "http://%s", admin_address(admin));
    snprintf(admin_page_url, sizeof(admin_page_url), "http://%s/certsrv/mscep_admin/",
             server_address(srv));
    fprintf(stderr,
            "ndesmock %s: SCEP at %s\n"
            "  admin API %s, password page %s%s%s\n"
            "  challenge policy %s%s%s\n"
            "  state %s, CA %s (MD5 %s)\n"
            "  scenario %s (%s)\n",
            NDESMOCK_VERSION, url, admin_url, admin_page_url,
            server_tls_address(srv) ? ", HTTPS at " : "",
            server_tls_address(srv) ? server_tls_address(srv) : "",
            challenge_policy_str(cfg.challenge_policy),
            challenge ? ", static challenge " : "", challenge ? challenge : "", cfg.state_dir,
            pki.ca_cert_path, pki.ca_md5, sc->name, sc->source);
    if (server_tls_address(srv))
        snprintf(tls_url, sizeof(tls_url), "https://%s/certsrv/mscep/mscep.dll",
                 server_tls_address(srv));
    if (ready && write_ready_file(ready, url, challenge, &cfg, &pki, sc->name, admin_url,
                                  admin_page_url, server_tls_address(srv) ? tls_url : NULL) != 0) {
        fprintf(stderr, "ndesmock: %s: cannot write ready file: %s\n", ready, strerror(errno));
        goto out;
    }
    /* OpenSSL's providers and the algorithms, now that the fast lane answers
     * (about 5 ms of start-up); a PKIOperation or NTLM logon that comes first
     * makes them itself, and this call waits for it. */
    if (scep_ctx_ready(&sctx, err, sizeof(err)) != 0) {
        fprintf(stderr, "ndesmock: %s\n", err);
        if (ready)
            unlink(ready);
        goto out;
    }
    /* The ready file is written like a pid file, before privileges go. */
    if (user_arg && drop_privileges(user_arg, cfg.state_dir, wl, err, sizeof(err)) != 0) {
        fprintf(stderr, "ndesmock: --user %s: %s\n", user_arg, err);
        if (ready)
            unlink(ready);
        goto out;
    }
    mc.base = base;
    mc.engine = engine;
    mc.slot = &slot;
    mc.scenarios_dir = scenarios_dir;
    mc.state_dir = cfg.state_dir;
    ev_term = evsignal_new(base, SIGTERM, on_stop_signal, &mc);
    ev_int = evsignal_new(base, SIGINT, on_stop_signal, &mc);
    ev_hup = evsignal_new(base, SIGHUP, on_hup, &mc);
    if (!ev_term || !ev_int || !ev_hup || evsignal_add(ev_term, NULL) || evsignal_add(ev_int, NULL) ||
        evsignal_add(ev_hup, NULL)) {
        fprintf(stderr, "ndesmock: cannot install signal handlers\n");
        goto out;
    }
    event_base_dispatch(base);
    server_stop(srv);
    rc = EXIT_OK;
out:
    if (ev_term)
        event_free(ev_term);
    if (ev_int)
        event_free(ev_int);
    if (ev_hup)
        event_free(ev_hup);
    admin_free(admin);
    server_free(srv);
    if (base)
        event_base_free(base);
    scenario_engine_free(engine);
    journal_free(journal);
    free(stats);
    otp_free(otp);
    scep_pending_free(pending);
    scep_tids_free(tids);
    winlog_free(wl);
    scep_ctx_free(&sctx);
    if (store.index_fd >= 0)
        store_close(&store);
    pki_free(&pki);
    return rc;
}
