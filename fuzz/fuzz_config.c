/* fuzz_config.c - config_load_file() (libconfig parse, then the table-driven
 * validation walk) on arbitrary text. The input goes to a memfd and is read
 * through /proc/self/fd/N, so nothing touches the disk.
 *
 * Inputs holding "@include" are skipped: the main configuration is the
 * operator's own file, and libconfig would read whatever path the fuzzer
 * invents (/dev/zero, /dev/stdin: endless reads, not bugs in our code). Text
 * that arrives over an API must never reach config_load_file() for that reason. */
#include "ndesmock/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FZ_MAX_INPUT (64 * 1024)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fz_fd = -1;
static char fz_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_fd = memfd_create("ndesmock-fuzz-config", MFD_CLOEXEC);
    if (fz_fd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(fz_path, sizeof(fz_path), "/proc/self/fd/%d", fz_fd);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config cfg;
    char err[512], host[CONFIG_STR];
    int port;

    if (size > FZ_MAX_INPUT || memmem(data, size, "@include", 8) != NULL)
        return -1;
    if (ftruncate(fz_fd, 0) != 0 || pwrite(fz_fd, data, size, 0) != (ssize_t)size)
        abort();
    config_defaults(&cfg);
    err[0] = '\0';
    if (config_load_file(&cfg, fz_path, err, sizeof(err)) == 0) {
        /* What main does next with the values. */
        if (memchr(cfg.listen, '\0', sizeof(cfg.listen)) == NULL ||
            memchr(cfg.state_dir, '\0', sizeof(cfg.state_dir)) == NULL ||
            memchr(cfg.challenge, '\0', sizeof(cfg.challenge)) == NULL)
            abort();
        if (cfg.caps.count < 0 || cfg.caps.count > CONFIG_MAX_CAPS ||
            cfg.tmpl.eku_count < 0 || cfg.tmpl.eku_count > CONFIG_MAX_EKU)
            abort();
        (void)config_parse_hostport(cfg.listen, host, sizeof(host), &port);
    } else if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0') {
        abort(); /* every failure says why */
    }
    /* The host:port parser on its own, with the raw input. */
    if (size < CONFIG_STR) {
        char s[CONFIG_STR];
        memcpy(s, data, size);
        s[size] = '\0';
        (void)config_parse_hostport(s, host, sizeof(host), &port);
    }
    return 0;
}
