#!/usr/bin/env bash
# bench/profile.sh - where ndesmock spends its time (perf, DWARF call graphs).
#
#   NDESMOCK_BIN=build/ndesmock SCEPREQ=build/scepreq bash bench/profile.sh [enroll|get|startup]...
#
#   enroll   PKIOperation replayed by wrk (PROFILE_CLIENTS=4) for PROFILE_SECONDS=4
#   get      GetCACaps and GetCACert, wrk -t2 -c32, PROFILE_SECONDS each
#   startup  10 starts to the first answered GetCACaps (bench/startup.py)
#
# PROFILE_ARGS="--scenario bench/rules20.cfg" passes extra options to ndesmock,
# PROFILE_TAG=-rules20 names the reports profile-<what>-rules20.txt.
#
# Writes bench/out/profile-<what>.txt: time per shared object, self time per
# symbol, and the inclusive call graph under ndesmock's own functions. Debian's
# libcrypto has no symbols for its internal (hidden) functions: those show as
# addresses, and the inclusive figures of the exported functions above them
# (BN_mod_exp_mont_consttime, OSSL_DECODER_CTX_new_for_pkey, ...) tell the story.
# ndesmock binds loopback only, so no namespace is needed. Every wait is bounded
# and the server is stopped on exit.
set -uo pipefail
: "${NDESMOCK_BIN:?NDESMOCK_BIN must name build/ndesmock}"
: "${SCEPREQ:?SCEPREQ must name build/scepreq}"
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
OUT=${BENCH_OUT:-$BENCH_DIR/out}
TAG=${PROFILE_TAG:-}   # suffix for the report names, e.g. -rules20
SECS=${PROFILE_SECONDS:-4}
CLIENTS=${PROFILE_CLIENTS:-4}
for t in perf wrk python3 openssl timeout; do
    command -v "$t" >/dev/null || { echo "profile: $t not found" >&2; exit 1; }
done
mkdir -p "$OUT"
W=$(mktemp -d /tmp/ndesmock-profile.XXXXXX)
SRV=''
cleanup() {
    if [ -n "$SRV" ]; then
        kill -TERM "$SRV" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$SRV" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SRV" 2>/dev/null
    fi
    wait 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

timeout 120 "$NDESMOCK_BIN" --generate-pki --state-dir "$W/base" >/dev/null 2>&1 || exit 1
fresh() { rm -rf "$1"; mkdir -p "$1"; cp -r "$W/base/pki" "$1/pki"; }

start() {
    fresh "$W/st"
    rm -f "$W/ready.json"
    # shellcheck disable=SC2086
    "$NDESMOCK_BIN" --listen 127.0.0.1:0 --state-dir "$W/st" --ready-file "$W/ready.json" \
        ${PROFILE_ARGS:-} >/dev/null 2>"$W/server.log" &
    SRV=$!
    for _ in $(seq 1 200); do [ -s "$W/ready.json" ] && break; sleep 0.05; done
    [ -s "$W/ready.json" ] || { echo "profile: ndesmock did not start" >&2; exit 1; }
    URL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["scep_url"])' "$W/ready.json")
}
stop() {
    kill -TERM "$SRV" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$SRV" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SRV" 2>/dev/null
    wait "$SRV" 2>/dev/null
    SRV=''
}
# record SECONDS LOADCMD...: perf on the running server while LOADCMD runs
record() {
    local s=$1; shift
    timeout $((s + 30)) perf record -q -F 999 --call-graph dwarf,16384 -p "$SRV" -o "$W/perf.data" \
        -- sleep "$((s + 1))" 2>/dev/null &
    local perf=$!
    sleep 0.5
    "$@"
    wait "$perf"
}
report() { # report FILE ROOT_SYMBOL
    {
        echo "## time per shared object (self)"
        perf report -i "$W/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep '%' | head -12
        echo
        echo "## self time per symbol (top 25)"
        perf report -i "$W/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep '%' | head -25
        echo
        echo "## inclusive time (top 70 symbols)"
        perf report -i "$W/perf.data" --children --sort sym --stdio -g none 2>/dev/null | grep '%' |
            grep -v ' 0x0000' | head -70
        echo
        echo "## call graph under $2 (callees >= 1.5 %)"
        perf report -i "$W/perf.data" --children --stdio -g caller,1.5 --symbol-filter="$2" 2>/dev/null |
            grep -v '^#' | grep -v '^ *| *$' | grep -v '^$' | head -300
    } >"$1"
    echo "profile: wrote $1" >&2
}

for what in "${@:-enroll}"; do
    case "$what" in
    enroll)
        start
        mkdir -p "$W/corpus"
        openssl x509 -in "$W/st/pki/ra-enc.pem" -out "$W/ra.crt"
        timeout 300 "$SCEPREQ" make --ra "$W/ra.crt" --challenge "$(tr -d '\n' <"$W/st/pki/challenge")" \
            --count "$((SECS * 1200))" --out-dir "$W/corpus" --cn profile || exit 1
        record "$SECS" timeout $((SECS + 60)) wrk -t2 -c"$CLIENTS" -d"${SECS}s" --timeout 10s \
            -s "$BENCH_DIR/replay.lua" "$URL?operation=PKIOperation" -- 2 - 0 "$W/corpus" >"$W/wrk.txt"
        grep -E '^RESULT|Requests/sec' "$W/wrk.txt" >&2
        stop
        report "$OUT/profile-enroll$TAG.txt" on_request
        ;;
    get)
        start
        record "$((2 * SECS))" bash -c "timeout $((SECS + 30)) wrk -t2 -c32 -d${SECS}s '$URL?operation=GetCACaps' &&
            timeout $((SECS + 30)) wrk -t2 -c32 -d${SECS}s '$URL?operation=GetCACert'" >"$W/wrk.txt"
        grep 'Requests/sec' "$W/wrk.txt" >&2
        stop
        report "$OUT/profile-get$TAG.txt" on_request
        ;;
    startup)
        fresh "$W/st"
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        timeout 120 perf record -q -F 20000 --call-graph dwarf,16384 -o "$W/perf.data" -- \
            python3 "$BENCH_DIR/startup.py" --runs 10 --port "$port" --path /certsrv/mscep/mscep.dll -- \
            "$NDESMOCK_BIN" --listen "127.0.0.1:$port" --state-dir "$W/st" 2>/dev/null >&2
        {
            echo "## ndesmock processes only: time per shared object"
            perf report -i "$W/perf.data" --comm ndesmock --percentage relative --no-children --sort dso \
                --stdio -g none 2>/dev/null | grep '%' | head -12
            echo
            echo "## inclusive time, ndesmock processes (top 60)"
            perf report -i "$W/perf.data" --comm ndesmock --percentage relative --children --sort sym \
                --stdio -g none 2>/dev/null | grep '%' | grep -v ' 0x0000' | head -60
        } >"$OUT/profile-startup.txt"
        echo "profile: wrote $OUT/profile-startup.txt" >&2
        ;;
    *) echo "usage: profile.sh [enroll|get|startup]..." >&2; exit 2 ;;
    esac
done
