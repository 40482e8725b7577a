#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] - build the libFuzzer targets (clang, ASan + UBSan),
# make seed corpora, run each target for SECONDS (default 60) and exit non-zero
# on any crash, leak, timeout or sanitizer report.
#
#   FUZZ_TARGETS="fuzz_get_message fuzz_config"   run only these
#   FUZZ_BUILD=build/fuzz                         build and work directory
#   FUZZ_ARGS="-jobs=2 -workers=2"                extra libFuzzer flags
#   CLANG=clang-14                                compiler
#
# Layout (all git-ignored): build/fuzz/obj (instrumented library), build/fuzz/bin
# (targets), build/fuzz/state (the lab PKI the targets load and the seeds are
# encrypted to), build/fuzz/seeds/TARGET (generated seeds, remade when the PKI
# changes), fuzz/corpus-TARGET (what the fuzzer found; kept between runs),
# build/fuzz/artifacts (crashing inputs), build/fuzz/logs.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_TARGET=${1:-60}
case $SECONDS_PER_TARGET in '' | *[!0-9]*) echo "usage: fuzz/run.sh [SECONDS]" >&2; exit 2 ;; esac
FB=${FUZZ_BUILD:-build/fuzz}
CLANG=${CLANG:-clang}
ALL_TARGETS="fuzz_pkioperation fuzz_envelope fuzz_get_message fuzz_config"
# The scenario loader, when this revision has it.
[ -f include/ndesmock/scenario.h ] && grep -q scenario_load_text include/ndesmock/scenario.h &&
    ALL_TARGETS="$ALL_TARGETS fuzz_scenario"
# The admin API below HTTP, when this revision has admin_handle().
grep -q admin_handle include/ndesmock/admin.h 2>/dev/null && ALL_TARGETS="$ALL_TARGETS fuzz_admin"
# The fast lane's request parser, when this revision has it.
[ -f src/http/h1.h ] && ALL_TARGETS="$ALL_TARGETS fuzz_h1"
TARGETS=${FUZZ_TARGETS:-$ALL_TARGETS}
PKGS="libevent libevent_pthreads openssl libconfig jansson"
JOBS=$(nproc 2>/dev/null || echo 2)

die() { echo "fuzz: $*" >&2; exit 2; }

command -v "$CLANG" >/dev/null || die "$CLANG not found (apt-get install clang libclang-rt-dev)"
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){(void)d;(void)n;return 0;}' \
    >"${TMPDIR:-/tmp}/fz-probe-$$.c"
if ! "$CLANG" -fsanitize=fuzzer,address,undefined -o "${TMPDIR:-/tmp}/fz-probe-$$" \
    "${TMPDIR:-/tmp}/fz-probe-$$.c" 2>/dev/null; then
    rm -f "${TMPDIR:-/tmp}/fz-probe-$$"*
    die "$CLANG cannot link -fsanitize=fuzzer (apt-get install libclang-rt-dev)"
fi
rm -f "${TMPDIR:-/tmp}/fz-probe-$$"*
mkdir -p "$FB/bin" "$FB/seeds" "$FB/artifacts" "$FB/logs" "$FB/state"

# ---- build ---------------------------------------------------------------
# The library with coverage instrumentation and sanitizers, through the
# project's Makefile (CFLAGS from the environment: the Makefile appends its own).
FUZZ_CFLAGS="-O1 -g -fsanitize=fuzzer-no-link -fno-sanitize-recover=all"
echo "== building the instrumented library in $FB/obj"
CFLAGS="$FUZZ_CFLAGS" make --no-print-directory -j"$JOBS" BUILD="$FB/obj" CC="$CLANG" \
    SANITIZE=address,undefined "$FB/obj/libndesmock.a" >"$FB/logs/build.log" 2>&1 ||
    { tail -30 "$FB/logs/build.log"; die "library build failed"; }
# scepreq (seed maker) and ndesmock (for the real clients' seeds): a plain build of their own.
make --no-print-directory -j"$JOBS" BUILD="$FB/tools" "$FB/tools/scepreq" "$FB/tools/ndesmock" >>"$FB/logs/build.log" 2>&1 ||
    { tail -30 "$FB/logs/build.log"; die "scepreq/ndesmock build failed"; }
# Parsers that not every revision has.
TDEFS=""
if grep -q 'scep_peek_message_type(.*int \*' include/ndesmock/scep.h 2>/dev/null; then
    TDEFS="$TDEFS -DHAVE_SCEP_PEEK=3"
elif grep -q scep_peek_message_type include/ndesmock/scep.h 2>/dev/null; then
    TDEFS="$TDEFS -DHAVE_SCEP_PEEK=2"
fi
# fuzz_pkioperation is always built: it creates the lab PKI the seeds need.
for t in $(echo fuzz_pkioperation $TARGETS | tr ' ' '\n' | awk '!seen[$0]++'); do
    [ -f "fuzz/$t.c" ] || die "no target fuzz/$t.c"
    src="fuzz/$t.c"
    if [ ! -x "$FB/bin/$t" ] || [ -n "$(find "$src" fuzz/fuzz_common.h fuzz/fuzz_diff.h "$FB/obj/libndesmock.a" -newer "$FB/bin/$t" 2>/dev/null)" ]; then
        echo "== building $t"
        # shellcheck disable=SC2046,SC2086
        "$CLANG" -std=c11 -D_GNU_SOURCE $TDEFS -Iinclude -Ifuzz $FUZZ_CFLAGS -fsanitize=fuzzer,address,undefined \
            -fno-omit-frame-pointer -Wall -Wextra $(pkg-config --cflags $PKGS) -o "$FB/bin/$t" "$src" \
            "$FB/obj/libndesmock.a" $(pkg-config --libs $PKGS) -pthread ||
            die "cannot build $t"
    fi
done

# ---- lab PKI and seeds ------------------------------------------------------
export NDESMOCK_FUZZ_STATE=$ROOT/$FB/state
# fuzz_admin copies the shipped scenarios into a scenarios folder of its own.
export NDESMOCK_FUZZ_SCENARIOS=$ROOT/scenarios
# Creates the PKI on first use (any target that loads it will do).
if [ ! -f "$FB/state/pki/ra-enc.pem" ]; then
    echo "== creating the lab PKI in $FB/state"
    mkdir -p "$FB/empty"
    "$FB/bin/fuzz_pkioperation" -runs=0 "$FB/empty" >"$FB/logs/pki.log" 2>&1 ||
        { cat "$FB/logs/pki.log"; die "cannot create the lab PKI"; }
fi
PKI=$FB/state/pki
# Seeds are remade when the PKI or the seed script changes.
FP=$( (openssl x509 -in "$PKI/ra-enc.pem" -noout -fingerprint -sha256; cat fuzz/seeds.sh fuzz/record-clients.sh) | sha256sum | cut -c1-64)
SEEDS=$FB/seeds
if [ "$(cat "$SEEDS/.pki" 2>/dev/null)" != "$FP" ]; then
    echo "== making seeds in $SEEDS"
    rm -rf "$SEEDS"
    mkdir -p "$SEEDS"/{fuzz_pkioperation,fuzz_envelope,fuzz_get_message,fuzz_config,fuzz_scenario,fuzz_admin} "$SEEDS/tmp"
    bash fuzz/seeds.sh "$FB/tools/scepreq" "$PKI" "$SEEDS" "$(cd "$FB/tools" && pwd)/ndesmock" >"$FB/logs/seeds.log" 2>&1 ||
        { tail -20 "$FB/logs/seeds.log"; die "cannot make seeds"; }
    echo "$FP" >"$SEEDS/.pki"
fi

# fuzz_h1 seeds: requests as the real clients and wrk send them (cheap: made every run).
if echo " $TARGETS " | grep -q " fuzz_h1 "; then
    H=$SEEDS/fuzz_h1
    mkdir -p "$H"
    P=/certsrv/mscep/mscep.dll
    printf 'GET %s?operation=GetCACaps HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n' $P >"$H/wrk"
    printf 'GET %s?operation=GetCACert&message=ca HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n' $P >"$H/curl"
    printf 'GET %s?operation=GetCACaps&message= HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n' $P >"$H/micromdm"
    printf 'GET /cgi-bin/pkiclient.exe?operation=GetCACaps HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: y\r\n\r\n' >"$H/pipelined"
    printf 'GET %s?operation=PKIOperation&message=MIIB%%2Babc%%3D HTTP/1.1\r\nHost: x\r\nX-A:   spaced   \r\nX-B:\r\n\r\n' $P >"$H/pkiop"
    printf 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >"$H/close"
fi

# ---- run --------------------------------------------------------------------
status=0
summary=""
for t in $TARGETS; do
    corpus=fuzz/corpus-${t#fuzz_}
    mkdir -p "$corpus" "$SEEDS/$t"
    log=$FB/logs/$t.log
    extra=""
    case $t in fuzz_config | fuzz_scenario | fuzz_admin) extra="-detect_leaks=0" ;; esac
    echo "== $t for ${SECONDS_PER_TARGET}s (corpus $corpus, log $log)"
    # shellcheck disable=SC2086
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/fuzz/lsan.supp:print_suppressions=0} \
        "$FB/bin/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=30 -rss_limit_mb=2048 $extra \
        -print_final_stats=1 -artifact_prefix="$FB/artifacts/$t-" ${FUZZ_ARGS:-} \
        "$corpus" "$SEEDS/$t" >"$log" 2>&1
    rc=$?
    # Leak check of everything the corpus holds: each input run once, LSan at exit.
    # (fuzz_config, fuzz_scenario and fuzz_admin (PUT /scenario bodies) fuzz with -detect_leaks=0:
    # libconfig 1.5 leaks on syntax errors, suppressed, but every such input would still trigger a
    # slow LSan scan: fuzz_admin runs 3x slower with it.)
    if [ "$rc" -eq 0 ]; then
        find "$corpus" "$SEEDS/$t" -type f ! -name '.*' -print0 |
            ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
            LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/fuzz/lsan.supp:print_suppressions=0} \
            xargs -0 -r -n 2000 "$FB/bin/$t" -timeout=30 >"$log.replay" 2>&1 || rc=$?
        [ "$rc" -eq 0 ] || { echo "!! $t: corpus replay failed (leak check), see $log.replay"; cat "$log.replay" >>"$log"; }
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
    if [ "$rc" -ne 0 ] || grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|fuzz oracle:' "$log"; then
        status=1
        echo "!! $t FAILED (exit $rc):"
        grep -E 'ERROR:|runtime error:|fuzz oracle:|SUMMARY:|Test unit written' "$log" | head -20
        line="$t: FAILED exit=$rc execs=${execs:-?} exec/s=${eps:-?}"
    else
        line="$t: ok execs=${execs:-?} exec/s=${eps:-?} $cov"
    fi
    echo "$line"
    summary="$summary$line"$'\n'
done
echo "== summary (${SECONDS_PER_TARGET}s per target)"
printf '%s' "$summary"
exit $status
