# shellcheck shell=bash
# server.sh - start and stop build/ndesmock for integration tests.
#
# start_server DIR [ndesmock args...]
#   Starts $NDESMOCK_BIN on 127.0.0.1:0 with state dir $SHARED_STATE (unless
#   --state-dir is among the args) and ready file DIR/ready.json, waits (10 s
#   at most, READY_TRIES x 50 ms) for the ready file, and sets SRV_PID, SRV_URL, SRV_CHALLENGE,
#   SRV_CA, SRV_BASE (http://host:port), SRV_ADMIN (admin API base URL),
#   SRV_LOG (DIR/server.log).
# stop_server   SIGTERM, wait (10 s at most), set SRV_RC to the exit status.

: "${NDESMOCK_BIN:?NDESMOCK_BIN must name the ndesmock binary}"

_json_field() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2"; }

start_server() {
    local dir=$1; shift
    local state=(--state-dir "$SHARED_STATE")
    local a
    for a in "$@"; do [ "$a" = --state-dir ] && state=(); done
    mkdir -p "$dir"
    rm -f "$dir/ready.json"
    SRV_LOG=$dir/server.log
    # NDESMOCK_WRAP (e.g. valgrind ...) runs the server under a tool.
    # shellcheck disable=SC2086
    ${NDESMOCK_WRAP:-} "$NDESMOCK_BIN" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 "${state[@]}" --ready-file "$dir/ready.json" "$@" \
        >"$dir/server.out" 2>"$SRV_LOG" &
    SRV_PID=$!
    local i
    for i in $(seq 1 "${READY_TRIES:-200}"); do
        [ -s "$dir/ready.json" ] && break
        kill -0 "$SRV_PID" 2>/dev/null || { wait "$SRV_PID"; SRV_RC=$?; return 1; }
        sleep 0.05
    done
    [ -s "$dir/ready.json" ] || { kill -9 "$SRV_PID"; return 1; }
    SRV_URL=$(_json_field "$dir/ready.json" scep_url)
    SRV_CHALLENGE=$(_json_field "$dir/ready.json" challenge)
    SRV_CA=$(_json_field "$dir/ready.json" ca_cert_path)
    SRV_BASE=${SRV_URL%/certsrv/*}
    SRV_ADMIN=$(_json_field "$dir/ready.json" admin_url)
    ALL_PIDS="${ALL_PIDS:-} $SRV_PID"
}

stop_server() {
    [ -n "${SRV_PID:-}" ] || return 0
    kill -TERM "$SRV_PID" 2>/dev/null
    local i
    for i in $(seq 1 100); do
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$SRV_PID" 2>/dev/null
    wait "$SRV_PID" 2>/dev/null
    SRV_RC=$?
    SRV_PID=
}
