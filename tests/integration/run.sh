#!/usr/bin/env bash
# run.sh - integration tests: the real binary on 127.0.0.1:0, driven by curl,
# openssl, micromdm scepclient, strongSwan pki, certmonger (scep-submit and the
# daemon) and our own request maker (build/scepreq). Prints one line per test
# and a closing "N passed, N failed". Usage: run.sh [TEST_NAME_GLOB]
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
: "${NDESMOCK_BIN:?}" "${SCEPREQ:?}"
FILTER=${1:-*}
WORK=$(mktemp -d /tmp/ndesmock-it.XXXXXX)
SHARED_STATE=$WORK/shared-state
export SHARED_STATE SCEP_CLIENT_TIMEOUT=${SCEP_CLIENT_TIMEOUT:-30}
# shellcheck source=lib/server.sh
. "$HERE/lib/server.sh"
# shellcheck source=lib/clients.sh
. "$HERE/lib/clients.sh"

cleanup() { for p in ${ALL_PIDS:-}; do kill -9 "$p" 2>/dev/null; done; [ -n "${KEEP:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT

"$NDESMOCK_BIN" --generate-pki --state-dir "$SHARED_STATE" >/dev/null || { echo "cannot generate the lab PKI"; exit 1; }
RA_ENC=$WORK/ra-enc.pem RA_SIGN=$WORK/ra-sign.pem
openssl x509 -in "$SHARED_STATE/pki/ra-enc.pem" -out "$RA_ENC"
openssl x509 -in "$SHARED_STATE/pki/ra-sign.pem" -out "$RA_SIGN"
CA_PEM=$SHARED_STATE/pki/ca.pem

PASS=0 FAIL=0 FAILED=()
fail() { echo "    $*" >&2; exit 1; }
check() { local what=$1; shift; "$@" || fail "check failed: $what"; }

# Ends the servers a test started (in its subshell, at exit).
reap_servers() {
    local rc=$? p prc
    for p in ${ALL_PIDS:-}; do
        if [ -n "${NDESMOCK_WRAP:-}" ] && kill -TERM "$p" 2>/dev/null; then
            wait "$p"; prc=$?
            if [ "$prc" = 99 ]; then echo "    server $p: ${NDESMOCK_WRAP%% *} reported errors"; rc=1; fi
        else
            kill -9 "$p" 2>/dev/null
        fi
    done
    exit "$rc"
}

# run_one NAME: runs a test in its own subshell and directory; writes
# $dir/result ("PASS|FAIL seconds") and keeps its output in $dir/test.log.
run_one() {
    local name=$1 dir=$WORK/$1 t0=$SECONDS rc
    mkdir -p "$dir"
    # servers a test starts are killed when its subshell ends, pass or fail
    # (under NDESMOCK_WRAP, e.g. valgrind, they get SIGTERM and their exit status counts:
    # valgrind's --error-exitcode makes a leak or memory error fail the test)
    ( trap 'reap_servers' EXIT
      cd "$dir" && T=$dir && "$name" ) >"$dir/test.log" 2>&1
    rc=$?
    echo "$([ $rc -eq 0 ] && echo PASS || echo FAIL) $((SECONDS - t0))" >"$dir/result"
}

report() {
    local name=$1 dir=$WORK/$1 res secs
    read -r res secs <"$dir/result"
    printf '%s %-40s %3ss\n' "$res" "$name" "$secs"
    if [ "$res" = PASS ]; then
        PASS=$((PASS + 1))
    else
        FAIL=$((FAIL + 1)); FAILED+=("$name")
        sed 's/^/    | /' "$dir/test.log" | tail -25
        [ -f "$dir/srv/server.log" ] && sed 's/^/    srv| /' "$dir/srv/server.log" | tail -8
    fi
}

# Runs `curl` and saves headers/body: http_get NAME URL [curl args]
http() { local n=$1; shift; curl -s -D "$T/$n.h" -o "$T/$n.b" "$@"; }
status_of() { head -1 "$T/$1.h" | awk '{print $2}'; }
header_of() { grep -i "^$2:" "$T/$1.h" | head -1 | cut -d' ' -f2- | tr -d '\r'; }

# scepreq make + POST/GET + reply check. enroll_raw MODE (post|get-escaped|get-raw|get-nl|get-url) [make args]
make_req() { "$SCEPREQ" make --ra "$RA_ENC" --out "$T/req.der" --key-out "$T/key.pem" --cert-out "$T/self.pem" "$@"; }
send_req() {
    local mode=$1 b64
    case $mode in
    post) curl -s -o "$T/reply.der" -D "$T/reply.h" --data-binary @"$T/req.der" -H 'Content-Type: application/x-pki-message' "$SRV_URL?operation=PKIOperation" ;;
    post-noctype) curl -s -o "$T/reply.der" -D "$T/reply.h" --data-binary @"$T/req.der" -H 'Content-Type:' "$SRV_URL?operation=PKIOperation" ;;
    get-escaped) b64=$(base64 -w0 "$T/req.der" | python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.stdin.read().strip(),safe=""))')
        curl -s -o "$T/reply.der" -D "$T/reply.h" "$SRV_URL?operation=PKIOperation&message=$b64" ;;
    get-raw) b64=$(base64 -w0 "$T/req.der")
        curl -s -o "$T/reply.der" -D "$T/reply.h" "$SRV_URL?operation=PKIOperation&message=$b64" ;;
    get-nl) b64=$(base64 -w64 "$T/req.der" | sed 's/+/%2B/g; s/\//%2F/g; s/=/%3D/g' | awk 'BEGIN{ORS="%0A"}{print}')
        curl -s -o "$T/reply.der" -D "$T/reply.h" "$SRV_URL?operation=PKIOperation&message=$b64" ;;
    get-url) b64=$(base64 -w0 "$T/req.der" | tr '+/' '-_' | tr -d '=')
        curl -s -o "$T/reply.der" -D "$T/reply.h" "$SRV_URL?operation=PKIOperation&message=$b64" ;;
    esac
}
reply_line() { "$SCEPREQ" reply --in "$T/reply.der" --ra-sign "$RA_SIGN" --key "$T/key.pem" --cert "$T/self.pem" --issued-out "$T/issued.pem"; }
expect_success() {
    local line; line=$(reply_line) || fail "reply is not a CertRep: $(head -1 "$T/reply.h")"
    echo "$line"
    [[ $line == *"status=SUCCESS"* && $line == *"sig_ok=1"* && $line == *"certs=1"* ]] || fail "not a verified SUCCESS: $line"
    openssl verify -CAfile "$CA_PEM" "$T/issued.pem" || fail "issued cert does not verify"
}
expect_failure() { # expect_failure FAILINFO
    local line; line=$(reply_line) || fail "reply is not a CertRep"
    echo "$line"
    [[ $line == *"status=FAILURE fail_info=$1 "* && $line == *"sig_ok=1"* && $line == *"content_len=1 "* ]] || fail "want FAILURE $1: $line"
}

# Each t_*.sh file defines test functions and appends their names to TESTS.
TESTS=()
for f in "$HERE"/t_*.sh; do
    # shellcheck disable=SC1090
    . "$f"
done
# Tests are independent (own server on port 0, own directory): run JOBS at a
# time (default 3), report in the order they finish.
JOBS=${JOBS:-3}
declare -A RUNNING=()
selected=()
for t in "${TESTS[@]}"; do
    # shellcheck disable=SC2053
    [[ $t == $FILTER ]] && selected+=("$t")
done
for t in "${selected[@]}"; do
    while [ "${#RUNNING[@]}" -ge "$JOBS" ]; do
        wait -n 2>/dev/null
        for n in "${!RUNNING[@]}"; do
            if [ -f "$WORK/$n/result" ]; then report "$n"; unset "RUNNING[$n]"; fi
        done
    done
    run_one "$t" &
    RUNNING[$t]=$!
done
wait
for n in "${!RUNNING[@]}"; do report "$n"; done

echo
[ $FAIL -eq 0 ] || echo "failed: ${FAILED[*]}"
echo "integration: $PASS passed, $FAIL failed"
[ $FAIL -eq 0 ]
