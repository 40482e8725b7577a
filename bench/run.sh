#!/usr/bin/env bash
# bench/run.sh - ndesmock against nginx, micromdm scepserver and the RSA bound
# (issue 5). `make bench` installs the tools and runs this with NDESMOCK_BIN and
# SCEPREQ set. Prints one table (figure, ndesmock, peer, ratio, target,
# pass/fail) and writes it, with notes, to bench/out/results.md; raw tool output
# goes to bench/out/raw/.
#
# Everything runs on loopback inside a private network + PID namespace
# (`unshare --net --pid --kill-child`): micromdm scepserver binds every interface
# and has no listen-address flag, so it must never run in the host namespace,
# and when this script dies the kernel kills whatever it started. Without a
# namespace (no root, no user namespaces) the micromdm rows print "n/a".
#
# Environment (all optional):
#   BENCH_GET_SECONDS=4      wrk duration of each GetCACaps/GetCACert run
#   BENCH_ENROLL_SECONDS=4   wrk duration of each PKIOperation run
#   BENCH_REPS=3             runs of each throughput figure (servers alternate; best kept)
#   BENCH_STARTUP_RUNS=20    start-up samples per server
#   BENCH_STORE_CERTS=100000 certificates pre-filled for the store-growth figure
#   BENCH_STORE_REPS=3       empty/full pairs (alternated; the best of each compared)
#   BENCH_STORE_CLIENTS=4    concurrency of the store-growth runs
#   BENCH_CONNS=1000         keep-alive connections held for the memory figure
#   BENCH_SERVER_NOFILE=1024 soft open-file limit the servers start with (Debian's
#                            default; a server that holds more must raise it itself)
#   BENCH_CIPHER=des3 BENCH_DIGEST=sha256   corpus request algorithms
#   BENCH_SAMPLES=3          replies per wrk thread checked with `scepreq reply`
#   BENCH_THREADS=           ndesmock --threads (default: its own, one per core)
#   BENCH_MICROMDM=1         0 skips every scepserver run
#   BENCH_SCENARIO=1         0 skips the 20-rule scenario rows (bench/rules20.cfg)
#   BENCH_OUT=bench/out      where results.md and raw/ go
#   BENCH_KEEP=0             1 keeps the work directory (corpora, states, logs)
set -uo pipefail

: "${NDESMOCK_BIN:?NDESMOCK_BIN must name build/ndesmock}"
: "${SCEPREQ:?SCEPREQ must name build/scepreq}"
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
NDESMOCK_BIN=$(readlink -f "$NDESMOCK_BIN")
SCEPREQ=$(readlink -f "$SCEPREQ")

# --- private namespace ------------------------------------------------------
if [ -z "${BENCH_NS:-}" ]; then
    ns="--net --pid --fork --kill-child --mount-proc"
    # shellcheck disable=SC2086
    if unshare $ns true 2>/dev/null; then
        exec unshare $ns env BENCH_NS=1 bash "$0" "$@"
    elif unshare --user --map-root-user $ns true 2>/dev/null; then
        exec unshare --user --map-root-user $ns env BENCH_NS=1 bash "$0" "$@"
    fi
    echo "bench: warning: cannot create a network namespace; micromdm runs skipped" >&2
    BENCH_NS=none
fi
if [ "$BENCH_NS" = 1 ]; then
    ip link set lo up || { echo "bench: cannot bring up lo" >&2; exit 1; }
fi

GET_S=${BENCH_GET_SECONDS:-4}
ENR_S=${BENCH_ENROLL_SECONDS:-4}
REPS=${BENCH_REPS:-3}
START_RUNS=${BENCH_STARTUP_RUNS:-20}
STORE_CERTS=${BENCH_STORE_CERTS:-100000}
STORE_REPS=${BENCH_STORE_REPS:-3}
STORE_C=${BENCH_STORE_CLIENTS:-4}
CONNS=${BENCH_CONNS:-1000}
SRV_NOFILE=${BENCH_SERVER_NOFILE:-1024}
CIPHER=${BENCH_CIPHER:-des3}
DIGEST=${BENCH_DIGEST:-sha256}
SAMPLES=${BENCH_SAMPLES:-3}
OUT=${BENCH_OUT:-$BENCH_DIR/out}
MICROMDM=${BENCH_MICROMDM:-1}
SCENARIO=${BENCH_SCENARIO:-1}
ND_THREADS=()
[ -n "${BENCH_THREADS:-}" ] && ND_THREADS=(--threads "$BENCH_THREADS")
SCEP_PATH=/certsrv/mscep/mscep.dll
MM_PASS=benchcapass
MM_CHALLENGE=benchchallenge

for t in wrk nginx curl openssl python3 timeout; do
    command -v "$t" >/dev/null || { echo "bench: $t not found (make bench installs it)" >&2; exit 1; }
done
if [ "$MICROMDM" = 1 ]; then
    if [ "$BENCH_NS" != 1 ]; then
        MICROMDM=0
    elif ! command -v scepserver >/dev/null; then
        echo "bench: scepserver not found (Debian package scep); micromdm rows skipped" >&2
        MICROMDM=0
    elif [ "$(ip -o link show | wc -l)" != 1 ]; then
        echo "bench: namespace has more than loopback; refusing to run scepserver" >&2
        MICROMDM=0
    fi
fi

mkdir -p "$OUT/raw"
rm -f "$OUT"/raw/*
W=$(mktemp -d /tmp/ndesmock-bench.XXXXXX)
chmod 755 "$W"   # nginx workers read the static files
PIDS=()

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for _ in $(seq 1 50); do
        local alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: work directory kept: $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM HUP

log() { printf '== %s\n' "$*" >&2; }
note() { printf -- '- %s\n' "$*" >>"$W/notes"; printf '   note: %s\n' "$*" >&2; }

# stop PID: SIGTERM, 5 s grace, SIGKILL.
stop() {
    local p=$1
    [ -n "$p" ] || return 0
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    return 0
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http URL [tries]: until URL answers 200 (tries x 50 ms).
wait_http() {
    for _ in $(seq 1 "${2:-200}"); do
        curl -s -o /dev/null -f --max-time 1 "$1" && return 0
        sleep 0.05
    done
    return 1
}

kb() { awk '/^'"$2"':/ {print $2}' "/proc/$1/status" 2>/dev/null; }
mb() { awk -v k="$1" 'BEGIN { if (k == "") print ""; else printf "%.1f", k / 1024 }'; }

# --- servers ---------------------------------------------------------------
ND_PID='' ND_URL=''
# start_nd STATE LOGNAME [ndesmock args]
start_nd() {
    local st=$1 name=$2; shift 2
    rm -f "$W/ready.json"
    (ulimit -Sn "$SRV_NOFILE" 2>/dev/null
     exec "$NDESMOCK_BIN" --listen 127.0.0.1:0 --state-dir "$st" --ready-file "$W/ready.json" \
        "${ND_THREADS[@]}" "$@") >"$W/$name.out" 2>"$W/$name.log" &
    ND_PID=$!
    PIDS+=("$ND_PID")
    for _ in $(seq 1 200); do
        [ -s "$W/ready.json" ] && break
        kill -0 "$ND_PID" 2>/dev/null || break
        sleep 0.05
    done
    if [ ! -s "$W/ready.json" ]; then
        echo "bench: ndesmock did not start (see $W/$name.log)" >&2
        stop "$ND_PID"; ND_PID=
        return 1
    fi
    ND_URL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["scep_url"])' "$W/ready.json")
    wait_http "$ND_URL?operation=GetCACaps"
}

# fresh_nd_state DIR: a state directory with the pre-generated PKI and no store.
fresh_nd_state() { rm -rf "$1"; mkdir -p "$1"; cp -r "$W/nd-base/pki" "$1/pki"; }

MM_PID='' MM_URL='' MM_PORT=''
# start_mm DEPOT LOGNAME: scepserver on a fresh copy of the initialised depot.
start_mm() {
    local d=$1 name=$2
    rm -rf "$d"; cp -r "$W/mm-base" "$d"
    MM_PORT=$(free_port)
    (ulimit -Sn "$SRV_NOFILE" 2>/dev/null
     exec scepserver -depot "$d" -capass "$MM_PASS" -challenge "$MM_CHALLENGE" -port "$MM_PORT") \
        >"$W/$name.out" 2>"$W/$name.log" &
    MM_PID=$!
    PIDS+=("$MM_PID")
    MM_URL=http://127.0.0.1:$MM_PORT/scep
    if ! wait_http "$MM_URL?operation=GetCACaps"; then
        echo "bench: scepserver did not start (see $W/$name.log)" >&2
        stop "$MM_PID"; MM_PID=
        return 1
    fi
}

NG_PID='' NG_PORT=''
start_nginx() {
    local d=$W/nginx user=""
    [ "$(id -u)" = 0 ] && user="user root;"
    mkdir -p "$d/www" "$d/tmp"
    NG_PORT=$(free_port)
    cat >"$d/nginx.conf" <<EOF
# same bytes and Content-Type as ndesmock's answers, as static files
$user
worker_processes 2;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 120s;
    keepalive_requests 100000000;   # as IIS: no per-connection request cap
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    server {
        listen 127.0.0.1:$NG_PORT;
        root $d/www;
        location = /GetCACaps { types { } default_type "$CAPS_CT"; }
        location = /GetCACert { types { } default_type "$CERT_CT"; }
    }
}
EOF
    nginx -p "$d" -c "$d/nginx.conf" >"$W/nginx.out" 2>&1 &
    NG_PID=$!
    PIDS+=("$NG_PID")
    wait_http "http://127.0.0.1:$NG_PORT/GetCACaps" || { echo "bench: nginx did not start" >&2; cat "$W/nginx.out" "$d/error.log" >&2; return 1; }
}

# --- load ------------------------------------------------------------------
# wrk_get NAME URL -> req/s on stdout (raw output in $OUT/raw/NAME.txt)
wrk_get() {
    local name=$1 url=$2 f=$OUT/raw/$1.txt
    timeout $((GET_S + 30)) wrk -t2 -c32 -d"${GET_S}s" --timeout 5s --latency "$url" >"$f" 2>&1
    local bad
    bad=$(awk '/Non-2xx|Socket errors/' "$f")
    [ -n "$bad" ] && note "$name: $(echo "$bad" | tr '\n' ' ')"
    awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$f"
}

# cpu_ticks PID -> utime + stime of PID in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# wrk_enroll NAME URL CLIENTS SAMPLEDIR CORPUSDIR... -> sets E_RATE E_BAD E_REQ and
# E_CPU (server CPU ms per completed PKIOperation; the server is $CPU_PID)
CPU_PID=''
wrk_enroll() {
    local name=$1 url=$2 c=$3 sd=$4 t=2 f=$OUT/raw/$1.txt line cpu0 cpu1
    shift 4
    [ "$c" -lt 2 ] && t=1
    [ "$sd" != - ] && mkdir -p "$sd"
    E_CPU=''
    cpu0=$(cpu_ticks "$CPU_PID")
    timeout $((ENR_S + 60)) wrk -t$t -c"$c" -d"${ENR_S}s" --timeout 10s --latency \
        -s "$BENCH_DIR/replay.lua" "$url?operation=PKIOperation" -- "$t" "$sd" "$SAMPLES" "$@" >"$f" 2>&1
    cpu1=$(cpu_ticks "$CPU_PID")
    line=$(grep '^RESULT ' "$f")
    E_RATE="" E_BAD=0 E_REQ=0
    if [ -z "$line" ]; then
        note "$name: wrk gave no result (see raw/$name.txt)"
        return 1
    fi
    eval "local $(echo "$line" | sed 's/^RESULT //; s/\([a-z_0-9]*\)=/r_\1=/g')"
    # shellcheck disable=SC2154
    {
        E_REQ=$r_requests
        # requests wrk completed that are not a SUCCESS CertRep, plus socket errors/timeouts
        E_BAD=$((r_fail + r_pending + r_unknown + r_non200 + r_errors))
        E_RATE=$(awk -v n="$r_ok" -v us="$r_duration_us" 'BEGIN { printf "%.1f", n / (us / 1e6) }')
        [ -n "$cpu0" ] && [ -n "$cpu1" ] && [ "$r_requests" -gt 0 ] &&
            E_CPU=$(awk -v d=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v n="$r_requests" 'BEGIN { printf "%.2f", d * 1000 / hz / n }')
        [ "$r_exhausted" != 0 ] && note "$name: corpus exhausted before ${ENR_S}s: the rate is a lower bound"
        [ "$E_BAD" != 0 ] && note "$name: $E_BAD of $r_requests not SUCCESS (CertRep FAILURE $r_fail, PENDING $r_pending, unreadable $r_unknown, non-200 $r_non200, socket errors/timeouts $r_errors)"
    }
    return 0
}

# check_samples DIR RA_SIGN KEY CERT -> "ok/total" of replies that decrypt, verify and say SUCCESS
check_samples() {
    local d=$1 ra=$2 k=$3 c=$4 n=0 ok=0 r
    for r in "$d"/reply-*.der; do
        [ -e "$r" ] || continue
        n=$((n + 1))
        if timeout 10 "$SCEPREQ" reply --in "$r" --ra-sign "$ra" --key "$k" --cert "$c" 2>/dev/null |
            grep -q 'status=SUCCESS .*sig_ok=1'; then
            ok=$((ok + 1))
        fi
    done
    echo "$ok/$n"
}

# make_corpus DIR RA_CERT CHALLENGE COUNT PREFIX: two generators in parallel,
# one RSA-2048 key and signer certificate (DIR/key.pem, DIR/cert.pem) for all.
make_corpus() {
    local d=$1 ra=$2 pw=$3 n=$4 pfx=$5 half p pids=() rc=0
    mkdir -p "$d/seed" "$d/p0" "$d/p1"
    timeout 60 "$SCEPREQ" make --ra "$ra" --challenge "$pw" --count 1 --out-dir "$d/seed" \
        --key-out "$d/key.pem" --cert-out "$d/cert.pem" --cn "$pfx-seed" || return 1
    half=$(((n + 1) / 2))
    for p in 0 1; do
        timeout 600 "$SCEPREQ" make --ra "$ra" --challenge "$pw" --count "$half" --out-dir "$d/p$p" \
            --key "$d/key.pem" --cert "$d/cert.pem" --cn "$pfx-p$p" \
            --cipher "$CIPHER" --digest "$DIGEST" &
        pids+=($!)
        PIDS+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    return $rc
}

# --- table -----------------------------------------------------------------
ROWS=$W/rows.tsv
: >"$ROWS"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
# verdict VALUE OP LIMIT -> pass | FAIL | n/a
verdict() {
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        if (v == "" || v == "-" || v == "n/a") { print "n/a"; exit }
        if (op == ">=") print (v + 0 >= l + 0) ? "pass" : "FAIL"
        else if (op == "<=") print (v + 0 <= l + 0) ? "pass" : "FAIL"
        else print (v + 0 == l + 0) ? "pass" : "FAIL" }'
}
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "${2:-n/a}" "${3:-n/a}" "${4:--}" "$5" "$6" >>"$ROWS"; }
# rrow FIGURE ND PEER OP TARGET: a ratio row (ndesmock / peer against TARGET)
rrow() {
    local r
    r=$(ratio "$2" "$3")
    row "$1" "$2" "$3" "$r" "$4 $5×" "$(verdict "$r" "$4" "$5")"
}

T0=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
log "ndesmock $($NDESMOCK_BIN --version 2>&1 | head -1); $(nproc) cores; namespace: $BENCH_NS"

# --- 0. RSA bound ----------------------------------------------------------
# rsa_signs NAME -> RSA-2048 signs/s of `openssl speed -multi 2` (both cores)
rsa_signs() {
    timeout 120 openssl speed -multi 2 -seconds 3 rsa2048 >"$OUT/raw/$1.txt" 2>&1
    awk '/^rsa 2048 bits/ {print $6}' "$OUT/raw/$1.txt" | tail -1
}
# max / mean of the arguments ("" when none)
max() { printf '%s\n' "$@" | awk 'NF && (m == "" || $1 + 0 > m + 0) { m = $1 } END { print m }'; }
mean() { printf '%s\n' "$@" | awk 'NF { s += $1; n++ } END { if (n) printf "%.1f", s / n }'; }

log "RSA bound: openssl speed -multi 2 -seconds 3 rsa2048"
SIGNS1=$(rsa_signs openssl-speed-1)
log "  $SIGNS1 signs/s"

# --- PKI, corpora ----------------------------------------------------------
log "lab PKI (ndesmock --generate-pki)"
mkdir -p "$W/nd-base"
timeout 120 "$NDESMOCK_BIN" --generate-pki --state-dir "$W/nd-base" >"$W/genpki.log" 2>&1 ||
    { cat "$W/genpki.log" >&2; exit 1; }
ND_CHALLENGE=$(tr -d '\r\n' <"$W/nd-base/pki/challenge")
openssl x509 -in "$W/nd-base/pki/ra-enc.pem" -out "$W/nd-ra-enc.crt"
openssl x509 -in "$W/nd-base/pki/ra-sign.pem" -out "$W/nd-ra-sign.crt"

# Enough bodies for ENR_S seconds at 1.3x the RSA bound (at least 1,000/s: the
# bound itself is measured on a noisy machine). Every server run gets a fresh
# store, so each run sees every body at most once.
CORPUS_N=$(awk -v sg="${SIGNS1:-3000}" -v s="$ENR_S" 'BEGIN { b = sg / 3; if (b < 1000) b = 1000
    n = int(b * s * 1.3) + 200; print n }')
log "corpus: $CORPUS_N PKCSReq (RSA-2048, $CIPHER/$DIGEST) for ndesmock"
make_corpus "$W/nd-corpus" "$W/nd-ra-enc.crt" "$ND_CHALLENGE" "$CORPUS_N" nd ||
    { echo "bench: corpus generation failed" >&2; exit 1; }
ND_CORPUS=("$W/nd-corpus/p0" "$W/nd-corpus/p1")

if [ "$MICROMDM" = 1 ]; then
    log "micromdm: scepserver ca -init (RSA-2048, encrypted legacy-PEM key)"
    if timeout 120 scepserver ca -init -depot "$W/mm-base" -keySize 2048 -key-password "$MM_PASS" \
        >"$W/mm-init.log" 2>&1; then
        openssl x509 -in "$W/mm-base/ca.pem" -out "$W/mm-ca.crt"
        log "corpus: $CORPUS_N PKCSReq for scepserver (recipient = its CA)"
        make_corpus "$W/mm-corpus" "$W/mm-ca.crt" "$MM_CHALLENGE" "$CORPUS_N" mm || MICROMDM=0
    else
        cat "$W/mm-init.log" >&2
        MICROMDM=0
    fi
fi
MM_CORPUS=("$W/mm-corpus/p0" "$W/mm-corpus/p1")

# Throughput figures are the best of REPS runs, the servers alternating: load
# from other processes on a shared machine only ever lowers a figure.
# --- 1. GetCACaps / GetCACert ------------------------------------------------
ND_RSS_IDLE='' MM_RSS_IDLE='' CAPS_CT='' CERT_CT=''
A_ND_CAPS=() A_ND_CERT=() A_NG_CAPS=() A_NG_CERT=() A_MM_CAPS=() A_MM_CERT=()
for rep in $(seq 1 "$REPS"); do
    log "GetCACaps/GetCACert, run $rep/$REPS: ndesmock (wrk -t2 -c32 -d${GET_S}s)"
    fresh_nd_state "$W/nd-get"
    if start_nd "$W/nd-get" "nd-get$rep"; then
        if [ "$rep" = 1 ]; then
            curl -s -o "$W/caps.body" -D "$W/caps.hdr" "$ND_URL?operation=GetCACaps"
            curl -s -o "$W/cert.body" -D "$W/cert.hdr" "$ND_URL?operation=GetCACert"
            sleep 0.5
            ND_RSS_IDLE=$(kb "$ND_PID" VmRSS)
            CAPS_CT=$(awk -F': *' 'tolower($1) == "content-type" {gsub("\r", "", $2); print $2}' "$W/caps.hdr")
            CERT_CT=$(awk -F': *' 'tolower($1) == "content-type" {gsub("\r", "", $2); print $2}' "$W/cert.hdr")
        fi
        A_ND_CAPS+=("$(wrk_get "nd-caps-$rep" "$ND_URL?operation=GetCACaps")")
        A_ND_CERT+=("$(wrk_get "nd-cert-$rep" "$ND_URL?operation=GetCACert")")
        stop "$ND_PID"
    fi
    log "  ndesmock: GetCACaps ${A_ND_CAPS[*]: -1}/s, GetCACert ${A_ND_CERT[*]: -1}/s"

    log "GetCACaps/GetCACert, run $rep/$REPS: nginx, the same bytes as static files"
    if [ -s "$W/caps.body" ]; then
        mkdir -p "$W/nginx/www"
        cp "$W/caps.body" "$W/nginx/www/GetCACaps"
        cp "$W/cert.body" "$W/nginx/www/GetCACert"
        if start_nginx; then
            A_NG_CAPS+=("$(wrk_get "nginx-caps-$rep" "http://127.0.0.1:$NG_PORT/GetCACaps")")
            A_NG_CERT+=("$(wrk_get "nginx-cert-$rep" "http://127.0.0.1:$NG_PORT/GetCACert")")
            stop "$NG_PID"
        fi
    fi
    log "  nginx: GetCACaps ${A_NG_CAPS[*]: -1}/s, GetCACert ${A_NG_CERT[*]: -1}/s"

    if [ "$MICROMDM" = 1 ]; then
        log "GetCACaps/GetCACert, run $rep/$REPS: micromdm scepserver"
        if start_mm "$W/mm-get" "mm-get$rep"; then
            if [ "$rep" = 1 ]; then
                sleep 0.5
                MM_RSS_IDLE=$(kb "$MM_PID" VmRSS)
            fi
            A_MM_CAPS+=("$(wrk_get "mm-caps-$rep" "$MM_URL?operation=GetCACaps")")
            A_MM_CERT+=("$(wrk_get "mm-cert-$rep" "$MM_URL?operation=GetCACert")")
            stop "$MM_PID"
        fi
        log "  scepserver: GetCACaps ${A_MM_CAPS[*]: -1}/s, GetCACert ${A_MM_CERT[*]: -1}/s"
    fi
done
ND_CAPS=$(max "${A_ND_CAPS[@]}") ND_CERT=$(max "${A_ND_CERT[@]}")
NG_CAPS=$(max "${A_NG_CAPS[@]}") NG_CERT=$(max "${A_NG_CERT[@]}")
MM_CAPS=$(max "${A_MM_CAPS[@]}") MM_CERT=$(max "${A_MM_CERT[@]}")
note "GetCACaps req/s per run: ndesmock ${A_ND_CAPS[*]}; nginx ${A_NG_CAPS[*]}; scepserver ${A_MM_CAPS[*]:-n/a}"
note "GetCACert req/s per run: ndesmock ${A_ND_CERT[*]}; nginx ${A_NG_CERT[*]}; scepserver ${A_MM_CERT[*]:-n/a}"
note "GetCACert bodies: ndesmock/nginx $(wc -c <"$W/cert.body" 2>/dev/null) bytes (CA + RA certs, PKCS#7); scepserver answers its bare CA certificate"

# --- 2. PKIOperation ---------------------------------------------------------
declare -A NDR MMR NDCPU MMCPU
ND_FAIL=0 ND_TOTAL=0 MM_FAIL=0 MM_TOTAL=0 ND_HWM32='' MM_HWM32=''
ND_SAMPLE_OK=0 ND_SAMPLE_N=0 MM_SAMPLE_OK=0 MM_SAMPLE_N=0
add_samples() { # add_samples ND|MM "ok/n"
    local ok=${2%/*} n=${2#*/}
    if [ "$1" = ND ]; then ND_SAMPLE_OK=$((ND_SAMPLE_OK + ok)); ND_SAMPLE_N=$((ND_SAMPLE_N + n))
    else MM_SAMPLE_OK=$((MM_SAMPLE_OK + ok)); MM_SAMPLE_N=$((MM_SAMPLE_N + n)); fi
}
for rep in $(seq 1 "$REPS"); do
    for c in 1 4 32; do
        log "PKIOperation, run $rep/$REPS, $c client(s): ndesmock"
        fresh_nd_state "$W/nd-enr"
        if start_nd "$W/nd-enr" "nd-enr$c-$rep"; then
            rm -rf "$W/samples"
            CPU_PID=$ND_PID
            if wrk_enroll "nd-enroll-c$c-$rep" "$ND_URL" "$c" "$W/samples" "${ND_CORPUS[@]}"; then
                NDR[$c]="${NDR[$c]:-} $E_RATE"
                NDCPU[$c]="${NDCPU[$c]:-} $E_CPU"
                ND_FAIL=$((ND_FAIL + E_BAD)); ND_TOTAL=$((ND_TOTAL + E_REQ))
            fi
            [ "$c" = 32 ] && ND_HWM32=$(max "$ND_HWM32" "$(kb "$ND_PID" VmHWM)")
            stop "$ND_PID"
            add_samples ND "$(check_samples "$W/samples" "$W/nd-ra-sign.crt" "$W/nd-corpus/key.pem" "$W/nd-corpus/cert.pem")"
        fi
        log "  ndesmock: ${E_RATE:-?}/s"
        if [ "$MICROMDM" = 1 ]; then
            log "PKIOperation, run $rep/$REPS, $c client(s): micromdm scepserver"
            if start_mm "$W/mm-enr" "mm-enr$c-$rep"; then
                rm -rf "$W/samples"
                CPU_PID=$MM_PID
                if wrk_enroll "mm-enroll-c$c-$rep" "$MM_URL" "$c" "$W/samples" "${MM_CORPUS[@]}"; then
                    MMR[$c]="${MMR[$c]:-} $E_RATE"
                    MMCPU[$c]="${MMCPU[$c]:-} $E_CPU"
                    MM_FAIL=$((MM_FAIL + E_BAD)); MM_TOTAL=$((MM_TOTAL + E_REQ))
                fi
                [ "$c" = 32 ] && MM_HWM32=$(max "$MM_HWM32" "$(kb "$MM_PID" VmHWM)")
                stop "$MM_PID"
                add_samples MM "$(check_samples "$W/samples" "$W/mm-ca.crt" "$W/mm-corpus/key.pem" "$W/mm-corpus/cert.pem")"
            fi
            log "  scepserver: ${E_RATE:-?}/s"
        fi
    done
done
for c in 1 4 32; do
    note "PKIOperation/s per run, $c client(s): ndesmock${NDR[$c]:-}; scepserver${MMR[$c]:- n/a}"
    note "server CPU ms per PKIOperation, $c client(s), per run (less sensitive to other load than rates): ndesmock${NDCPU[$c]:-}; scepserver${MMCPU[$c]:- n/a}"
    # shellcheck disable=SC2086
    { NDR[$c]=$(max ${NDR[$c]:-}); MMR[$c]=$(max ${MMR[$c]:-}); }
done
note "full cryptographic check of sampled replies (scepreq reply: decrypt, verify, status=SUCCESS): ndesmock $ND_SAMPLE_OK/$ND_SAMPLE_N, scepserver $MM_SAMPLE_OK/$MM_SAMPLE_N"
[ "$ND_SAMPLE_OK" != "$ND_SAMPLE_N" ] && ND_FAIL=$((ND_FAIL + ND_SAMPLE_N - ND_SAMPLE_OK))

log "RSA bound again, after the enrollment runs"
SIGNS2=$(rsa_signs openssl-speed-2)
SIGNS=$(max "$SIGNS1" "$SIGNS2")
BOUND=$(awk -v s="$SIGNS" 'BEGIN { if (s == "") print ""; else printf "%.1f", s / 3 }')
note "openssl speed -multi 2 rsa2048 signs/s: $SIGNS1 (start), $SIGNS2 (after the enrollment runs); the bound uses the higher"
log "  $SIGNS2 signs/s; bound = $SIGNS / 3 = $BOUND enrollments/s"

# --- 3. store growth ---------------------------------------------------------
log "store growth: $STORE_CERTS pre-filled certificates vs empty, $STORE_C clients, $STORE_REPS pair(s)"
fresh_nd_state "$W/nd-full"
timeout 300 python3 "$BENCH_DIR/fill_store.py" --state "$W/nd-full" --count "$STORE_CERTS" \
    --pem "$W/nd-ra-enc.crt" || note "store pre-fill failed"
STORE_EMPTY=() STORE_FULL=()
for rep in $(seq 1 "$STORE_REPS"); do
    for kind in empty full; do
        st=$W/nd-full
        if [ $kind = empty ]; then st=$W/nd-empty; fresh_nd_state "$st"; fi
        if start_nd "$st" "nd-store-$kind$rep"; then
            if wrk_enroll "nd-store-$kind-$rep" "$ND_URL" "$STORE_C" - "${ND_CORPUS[@]}"; then
                if [ $kind = empty ]; then STORE_EMPTY+=("$E_RATE"); else STORE_FULL+=("$E_RATE"); fi
                ND_FAIL=$((ND_FAIL + E_BAD)); ND_TOTAL=$((ND_TOTAL + E_REQ))
            fi
            stop "$ND_PID"
        fi
    done
done
S_EMPTY=$(max "${STORE_EMPTY[@]}")
S_FULL=$(max "${STORE_FULL[@]}")
note "store growth runs (enrollments/s): empty ${STORE_EMPTY[*]}; $STORE_CERTS stored ${STORE_FULL[*]} (best of each compared; means $(mean "${STORE_FULL[@]}") vs $(mean "${STORE_EMPTY[@]}"))"
log "  empty $S_EMPTY/s, full $S_FULL/s"
rm -rf "$W/nd-full"

# --- 4. start-up -------------------------------------------------------------
log "start-up to first answered GetCACaps: $START_RUNS runs each"
fresh_nd_state "$W/nd-start"
P=$(free_port)
ND_START=$(timeout 300 python3 "$BENCH_DIR/startup.py" --runs "$START_RUNS" --port "$P" --path "$SCEP_PATH" -- \
    "$NDESMOCK_BIN" --listen "127.0.0.1:$P" --state-dir "$W/nd-start" "${ND_THREADS[@]}" 2>&1 | tee "$OUT/raw/nd-startup.txt")
ND_START_MS=$(echo "$ND_START" | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p')
MM_START_MS=
if [ "$MICROMDM" = 1 ]; then
    rm -rf "$W/mm-start"; cp -r "$W/mm-base" "$W/mm-start"
    P=$(free_port)
    MM_START=$(timeout 300 python3 "$BENCH_DIR/startup.py" --runs "$START_RUNS" --port "$P" --path /scep -- \
        scepserver -depot "$W/mm-start" -capass "$MM_PASS" -challenge "$MM_CHALLENGE" -port "$P" 2>&1 |
        tee "$OUT/raw/mm-startup.txt")
    MM_START_MS=$(echo "$MM_START" | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p')
fi
note "start-up (ms): ndesmock $ND_START; scepserver ${MM_START:-n/a}"

# --- 5. memory with many keep-alive connections --------------------------------
log "RSS with $CONNS open keep-alive connections"
ND_RSS_CONNS='' MM_RSS_CONNS='' ND_CONN_OK=''
fresh_nd_state "$W/nd-conns"
if start_nd "$W/nd-conns" nd-conns; then
    port=${ND_URL#http://127.0.0.1:}; port=${port%%/*}
    res=$(timeout 120 python3 "$BENCH_DIR/hold_conns.py" --port "$port" --path "$SCEP_PATH" --pid "$ND_PID" --count "$CONNS")
    echo "$res" >"$OUT/raw/nd-conns.txt"
    ND_RSS_CONNS=$(echo "$res" | sed -n 's/.* rss_kb=\([0-9]*\).*/\1/p')
    ND_CONN_OK=$(echo "$res" | sed -n 's/.*answered=\([0-9]*\).*/\1/p')
    still=$(echo "$res" | sed -n 's/.*still_open=\([0-9]*\).*/\1/p')
    [ "$ND_CONN_OK" != "$CONNS" ] || [ "$still" != "$CONNS" ] &&
        note "ndesmock answered $ND_CONN_OK of $CONNS keep-alive connections, $still still open after 1 s"
    stop "$ND_PID"
fi
if [ "$MICROMDM" = 1 ] && start_mm "$W/mm-conns" mm-conns; then
    res=$(timeout 120 python3 "$BENCH_DIR/hold_conns.py" --port "$MM_PORT" --path /scep --pid "$MM_PID" --count "$CONNS")
    echo "$res" >"$OUT/raw/mm-conns.txt"
    MM_RSS_CONNS=$(echo "$res" | sed -n 's/.* rss_kb=\([0-9]*\).*/\1/p')
    stop "$MM_PID"
fi

# --- 6. scenario with 20 rules --------------------------------------------------
# bench/rules20.cfg: 20 rules evaluated on every request, none fires. Compared
# with the healthy default on GetCACaps (where per-request work is smallest, so
# rule evaluation shows most) and on PKIOperation with 4 clients.
SC_CAPS='' SC_CAPS_H='' SC_ENR='' SC_ENR_H=''
# (--check creates a lab PKI in its state directory: give it a throw-away one)
if [ "$SCENARIO" = 1 ] && "$NDESMOCK_BIN" --state-dir "$W/check-state" --check "$BENCH_DIR/rules20.cfg" \
    >"$W/check.log" 2>&1; then
    log "scenario with 20 rules vs healthy: GetCACaps and PKIOperation (4 clients), $REPS pair(s)"
    A_SC_CAPS=() A_SCH_CAPS=() A_SC_ENR=() A_SCH_ENR=()
    for rep in $(seq 1 "$REPS"); do
        for kind in healthy rules20; do
            args=()
            [ $kind = rules20 ] && args=(--scenario "$BENCH_DIR/rules20.cfg")
            fresh_nd_state "$W/nd-sc"
            if start_nd "$W/nd-sc" "nd-sc-$kind$rep" "${args[@]}"; then
                caps=$(wrk_get "nd-$kind-caps-$rep" "$ND_URL?operation=GetCACaps")
                enr=''
                if wrk_enroll "nd-$kind-enroll-$rep" "$ND_URL" 4 - "${ND_CORPUS[@]}"; then
                    enr=$E_RATE
                    ND_FAIL=$((ND_FAIL + E_BAD)); ND_TOTAL=$((ND_TOTAL + E_REQ))
                fi
                if [ $kind = healthy ]; then A_SCH_CAPS+=("$caps"); A_SCH_ENR+=("$enr")
                else A_SC_CAPS+=("$caps"); A_SC_ENR+=("$enr"); fi
                stop "$ND_PID"
            fi
        done
    done
    SC_CAPS=$(max "${A_SC_CAPS[@]}") SC_CAPS_H=$(max "${A_SCH_CAPS[@]}")
    SC_ENR=$(max "${A_SC_ENR[@]}") SC_ENR_H=$(max "${A_SCH_ENR[@]}")
    note "scenario rules20 vs healthy, per run: GetCACaps ${A_SC_CAPS[*]} vs ${A_SCH_CAPS[*]}; PKIOperation/s (4 clients) ${A_SC_ENR[*]} vs ${A_SCH_ENR[*]}"
elif [ "$SCENARIO" = 1 ]; then
    note "scenario rows n/a: ndesmock --check bench/rules20.cfg failed: $(head -3 "$W/check.log" | tr '\n' ' ')"
fi

# --- table -------------------------------------------------------------------
rrow "GetCACaps req/s vs nginx (static file)" "$ND_CAPS" "$NG_CAPS" ">=" 0.9
rrow "GetCACaps req/s vs micromdm" "$ND_CAPS" "$MM_CAPS" ">=" 1.8
rrow "GetCACert req/s vs nginx (static file)" "$ND_CERT" "$NG_CERT" ">=" 0.9
rrow "GetCACert req/s vs micromdm" "$ND_CERT" "$MM_CERT" ">=" 1.8
rrow "PKIOperation/s, 1 client vs micromdm" "${NDR[1]:-}" "${MMR[1]:-}" ">=" 1.6
rrow "PKIOperation/s, 4 clients vs RSA bound" "${NDR[4]:-}" "$BOUND" ">=" 0.65
rrow "PKIOperation/s, 4 clients vs micromdm" "${NDR[4]:-}" "${MMR[4]:-}" ">=" 2.5
rrow "PKIOperation/s, 32 clients vs RSA bound" "${NDR[32]:-}" "$BOUND" ">=" 0.65
rrow "PKIOperation/s, 32 clients vs micromdm" "${NDR[32]:-}" "${MMR[32]:-}" ">=" 2.5
mmfail=n/a
[ "$MICROMDM" = 1 ] && mmfail="$MM_FAIL/$MM_TOTAL"
row "Failed enrollments (all runs)" "$ND_FAIL/$ND_TOTAL" "$mmfail" - "= 0" "$(verdict "$ND_FAIL" "=" 0)"
rrow "PKIOperation/s, $STORE_CERTS stored vs empty store" "$S_FULL" "$S_EMPTY" ">=" 0.95
rrow "Start-up to ready, ms (median of $START_RUNS)" "$ND_START_MS" "$MM_START_MS" "<=" 0.75
row "RSS idle, MB" "$(mb "$ND_RSS_IDLE")" "$(mb "$MM_RSS_IDLE")" "$(ratio "$ND_RSS_IDLE" "$MM_RSS_IDLE")" "<= 7 MB" \
    "$(verdict "$(mb "$ND_RSS_IDLE")" "<=" 7)"
rrow "RSS peak under 32 enrollments, MB" "$(mb "$ND_HWM32")" "$(mb "$MM_HWM32")" "<=" 0.5
v=$(verdict "$(mb "$ND_RSS_CONNS")" "<=" 48)
[ "$v" = pass ] && [ "$ND_CONN_OK" != "$CONNS" ] && v="FAIL ($ND_CONN_OK answered)"
row "RSS with $CONNS keep-alive connections, MB" "$(mb "$ND_RSS_CONNS")" "$(mb "$MM_RSS_CONNS")" \
    "$(ratio "$ND_RSS_CONNS" "$MM_RSS_CONNS")" "<= 48 MB" "$v"
rrow "Scenario with 20 rules: GetCACaps req/s vs healthy" "$SC_CAPS" "$SC_CAPS_H" ">=" 0.97
rrow "Scenario with 20 rules: PKIOperation/s (4 clients) vs healthy" "$SC_ENR" "$SC_ENR_H" ">=" 0.97

TABLE=$(
    printf '| figure | ndesmock | peer | ratio | target | pass/fail |\n'
    printf '|---|---:|---:|---:|---|---|\n'
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' "$ROWS"
)
ELAPSED=$(($(date +%s) - T0))
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
{
    echo "# ndesmock benchmark results"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)),"
    echo "ndesmock $($NDESMOCK_BIN --version 2>&1 | head -1 | awk '{print $NF}'), $(nginx -v 2>&1 | sed 's/.*: //'),"
    echo "scep $(dpkg-query -W -f='${Version}' scep 2>/dev/null || echo '?'), $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}'); run took ${ELAPSED}s;"
    echo "load average $LOAD0 at the start, $LOAD1 at the end (other work on the machine skews every figure)."
    echo "GET runs: wrk -t2 -c32 -d${GET_S}s; PKIOperation runs: ${ENR_S}s each, corpus $CORPUS_N PKCSReq"
    echo "(RSA-2048, $CIPHER/$DIGEST); RSA bound = $SIGNS signs/s (openssl speed -multi 2) / 3 = $BOUND/s."
    echo "Peer column: nginx for the nginx rows, the RSA bound for the bound rows, the empty store for the"
    echo "store row, healthy (no rules) for the scenario rows, micromdm scepserver otherwise. Throughput"
    echo "figures are the best of $REPS alternating runs; every run is listed in the notes."
    echo
    echo "$TABLE"
    echo
    echo "Notes:"
    cat "$W/notes" 2>/dev/null
} >"$OUT/results.md"
echo
echo "$TABLE"
echo
echo "(details: $OUT/results.md, raw output: $OUT/raw/; ${ELAPSED}s)"
