/* fuzz_scenario.c - the scenario loader, scenario_load_text(): libconfig parse,
 * @include refusal, rule/match/action validation, material paths confined to
 * the scenarios directory or the state directory ("state:" prefix), and the
 * certificates those paths name (the lab PKI in NDESMOCK_FUZZ_STATE, so that
 * "state:pki/ra-enc.pem" loads a real certificate).
 *
 * Oracles: a NUL-terminated error list of at most SC_MAX_ERRORS entries, a
 * line number in each; libconfig never got to open an include file (the
 * loader's @include filter is what keeps API-supplied text from reading files). */
#include "ndesmock/scenario.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FZ_MAX_INPUT (64 * 1024)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fz_state[512];
static char fz_scen[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *s = getenv("NDESMOCK_FUZZ_STATE");

    (void)argc;
    (void)argv;
    snprintf(fz_state, sizeof(fz_state), "%s", s && s[0] ? s : "/nonexistent-state");
    /* An empty scenarios directory: relative material paths resolve into it. */
    snprintf(fz_scen, sizeof(fz_scen), "/tmp/ndesmock-fuzz-scen-XXXXXX");
    if (mkdtemp(fz_scen) == NULL) {
        perror("mkdtemp");
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sc_errors errs;
    struct scenario *sc;
    char *text;
    int i;

    if (size > FZ_MAX_INPUT)
        return -1;
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    sc = scenario_load_text(text, "fuzz.cfg", fz_scen, fz_state, &errs);
    if (sc) {
        scenario_release(sc);
    } else {
        char out[SC_MAX_ERRORS * 300];
        if (errs.n < 1 || errs.n > SC_MAX_ERRORS)
            abort();
        for (i = 0; i < errs.n; i++) {
            if (memchr(errs.e[i].message, '\0', sizeof(errs.e[i].message)) == NULL)
                abort();
            /* libconfig's own messages, which the loader passes on whole; a
             * message of the loader's own may quote the input's strings, and
             * libconfig joins adjacent literals ("...inc" "lude file..."), so
             * a substring test mistook a material file name for one (found by
             * a long campaign, 2026-12-08) */
            if (strcmp(errs.e[i].message, "cannot open include file") == 0 ||
                strcmp(errs.e[i].message, "include file nesting too deep") == 0) {
                fprintf(stderr, "fuzz oracle: libconfig processed an @include: %s\n",
                        errs.e[i].message);
                abort();
            }
        }
        scenario_errors_format(&errs, out, sizeof(out));
    }
    free(text);
    return 0;
}
