# t_engine.sh - the scenario engine itself: rule matching, counters, seeded draws, windows,
# transport faults, SIGHUP reload. Custom scenarios are written into the test directory.

codes() { # codes N URL [curl args]: N requests, HTTP codes (000 = no reply) on one line
    local i out=""
    for i in $(seq 1 "$1"); do out="$out $(curl -s -o /dev/null -w '%{http_code}' "$2" "${@:3}")"; done
    echo "${out# }"
}

t_eng_counters() {
    cat >"$T/c.cfg" <<'CFG'
summary = "counters";
rules = (
  { name = "third"; match = { operation = "GetCACert"; nth = 3; }; action = { type = "iis"; status = 500; }; },
  { name = "first2"; match = { operation = "GetCACaps"; first = 2; }; action = { type = "iis"; status = 403; }; },
  { name = "every3"; match = { path = "/cgi-bin/*"; every = 3; }; action = { type = "httpsys"; status = 503; }; },
  { name = "global5"; match = { request_nth = 5; }; action = { type = "iis"; status = 404; }; }
);
CFG
    start_server "$T/srv" --scenario "$T/c.cfg" || fail "start"
    [ "$(codes 4 "$SRV_URL?operation=GetCACert")" = "200 200 500 200" ] || fail "nth=3"
    # request 5 overall -> global5
    [ "$(codes 1 "$SRV_URL?operation=GetCACert")" = "404" ] || fail "request_nth=5"
    [ "$(codes 4 "$SRV_URL?operation=GetCACaps")" = "403 403 200 200" ] || fail "first=2"
    [ "$(codes 6 "$SRV_BASE/cgi-bin/pkiclient.exe?operation=GetCACaps")" = "200 200 503 200 200 503" ] || fail "every=3"
}

t_eng_probability_seeded() {
    printf 'rules = ( { match = { probability = 0.5; }; action = { type = "iis"; status = 500; }; } );\n' >"$T/p.cfg"
    start_server "$T/s1" --scenario "$T/p.cfg" --seed 42 || fail "start 1"
    local a b c; a=$(codes 30 "$SRV_URL?operation=GetCACaps"); stop_server
    start_server "$T/s2" --scenario "$T/p.cfg" --seed 42 || fail "start 2"
    b=$(codes 30 "$SRV_URL?operation=GetCACaps"); stop_server
    start_server "$T/s3" --scenario "$T/p.cfg" --seed 43 || fail "start 3"
    c=$(codes 30 "$SRV_URL?operation=GetCACaps"); stop_server
    [ "$a" = "$b" ] || fail "same seed, different runs: $a / $b"
    [ "$a" != "$c" ] || fail "different seeds, same run"
    local n500; n500=$(tr ' ' '\n' <<<"$a" | grep -c 500)
    [ "$n500" -ge 5 ] && [ "$n500" -le 25 ] || fail "p=0.5 gave $n500/30"
}

t_eng_time_window() {
    # window 100..200 scenario seconds = 10..20 s after activation at --time-scale 0.1.
    # Activation happens somewhere between t0 (before exec) and t1 (ready file seen); each check
    # is placed so that it holds for any activation instant in [t0, t1], and the test says so
    # instead of failing when the machine was too slow to place it (CI once needed 4 s to start).
    printf 'rules = ( { match = { after = 100.0; before = 200.0; }; action = { type = "iis"; status = 500; }; } );\n' >"$T/w.cfg"
    local t0 t1 tc
    t0=$(_ms_now)
    start_server "$T/srv" --scenario "$T/w.cfg" --time-scale 0.1 || fail "start"
    t1=$(_ms_now)
    [ $((t1 - t0)) -lt 8000 ] || fail "start-up took $((t1 - t0)) ms: the window checks cannot be placed"
    local c; c=$(codes 1 "$SRV_URL?operation=GetCACaps"); tc=$(_ms_now)
    [ $((tc - t0)) -lt 10000 ] || fail "first request answered $((tc - t0)) ms after exec: too late to check 'before'"
    [ "$c" = 200 ] || fail "before the window ($((tc - t0)) ms after exec): $c"
    _sleep_until_ms $((t1 + 11000))    # >= 11 s after any activation, <= 19 s after t0
    [ "$(codes 1 "$SRV_URL?operation=GetCACaps")" = 500 ] || fail "inside the window ($(( $(_ms_now) - t0 )) ms after exec)"
    _sleep_until_ms $((t1 + 21000))    # >= 21 s after t0
    [ "$(codes 1 "$SRV_URL?operation=GetCACaps")" = 200 ] || fail "after the window ($(( $(_ms_now) - t1 )) ms after ready)"
}

_ms_now() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
_sleep_until_ms() { local d=$(( $1 - $(_ms_now) )); [ "$d" -le 0 ] || sleep "$((d / 1000)).$(printf %03d $((d % 1000)))"; }

t_eng_match_filters() {
    cat >"$T/f.cfg" <<'CFG'
rules = (
  { match = { header = "User-Agent"; header_contains = "Darwin"; }; action = { type = "iis"; status = 403; }; },
  { match = { method = "POST"; operation = "PKIOperation"; message_type = "GetCRL"; }; action = { type = "iis"; status = 500; substatus = 7; }; },
  { match = { min_uri_length = 200; }; action = { type = "httpsys"; status = 414; }; }
);
CFG
    start_server "$T/srv" --scenario "$T/f.cfg" || fail "start"
    [ "$(codes 1 "$SRV_URL?operation=GetCACaps" -A "profiled/1.0 CFNetwork Darwin/16.6.0")" = 403 ] || fail "header match"
    [ "$(codes 1 "$SRV_URL?operation=GetCACaps" -A "curl")" = 200 ] || fail "header no match"
    make_req --type 22; send_req post
    grep -q "^HTTP/1.1 500" "$T/reply.h" || fail "message_type GetCRL match"
    make_req --challenge "$SRV_CHALLENGE"; send_req post; expect_success
    [ "$(codes 1 "$SRV_URL?operation=GetCACaps&message=$(head -c 250 /dev/zero | tr '\0' x)")" = 414 ] || fail "min_uri_length"
}

t_eng_transport_faults() {
    cat >"$T/t.cfg" <<'CFG'
rules = (
  { match = { operation = "reset"; }; action = { type = "reset"; }; },
  { match = { operation = "partial"; }; action = { type = "partial"; bytes = 20; }; },
  { match = { operation = "drip"; }; action = { type = "drip"; bytes = 100; interval = 5.0; }; },
  { match = { operation = "hang"; }; action = { type = "hang"; seconds = 30.0; }; },
  { match = { operation = "delayed"; }; action = { type = "delay"; seconds = 40.0; then = "iis"; then_status = 500; }; }
);
CFG
    start_server "$T/srv" --scenario "$T/t.cfg" --time-scale 0.01 || fail "start"
    curl -s -o /dev/null "$SRV_URL?operation=reset"; local rc=$?
    [ $rc = 56 ] || fail "reset: curl exit $rc (want 56, connection reset)"
    curl -s -o /dev/null "$SRV_URL?operation=partial"; rc=$?
    [ $rc != 0 ] || fail "partial: curl exit 0"
    printf 'GET /certsrv/mscep/mscep.dll?operation=partial HTTP/1.1\r\nHost: x\r\n\r\n' >"$T/preq"
    python3 - "$SRV_BASE" "$T/preq" "$T/pout" <<'PY' || fail "partial bytes"
import socket, sys
host, port = sys.argv[1].split("//")[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=5)
s.sendall(open(sys.argv[2], "rb").read())
data = b""
while True:
    b = s.recv(4096)
    if not b: break
    data += b
open(sys.argv[3], "wb").write(data)
assert len(data) == 20, len(data)
assert data.startswith(b"HTTP/1.1 403"), data
PY
    local t0 ms; t0=$(date +%s%N)
    curl -s -o "$T/drip" "$SRV_URL?operation=drip"; rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ $rc = 0 ] || fail "drip: exit $rc"
    [ "$(wc -c <"$T/drip")" = 1233 ] || fail "drip body"
    [ $ms -ge 400 ] || fail "drip too fast: $ms ms (1.4 KB at 100 B / 50 ms)"
    t0=$(date +%s%N)
    curl -s -o /dev/null -m 5 "$SRV_URL?operation=hang"; rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ $rc = 52 ] && [ $ms -ge 250 ] || fail "hang: exit $rc after $ms ms (want 52 after ~300 ms)"
    t0=$(date +%s%N)
    [ "$(codes 1 "$SRV_URL?operation=delayed")" = 500 ] || fail "delay then iis 500"
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ $ms -ge 350 ] || fail "delay too short: $ms"
    # a client that gives up during a hang does not disturb the server
    curl -s -o /dev/null -m 0.2 "$SRV_URL?operation=hang"
    [ "$(codes 1 "$SRV_URL?operation=GetCACaps")" = 200 ] || fail "server still serving"
}

t_eng_sighup_reload() {
    printf 'summary = "one";\nrules = ( { action = { type = "iis"; status = 500; }; } );\n' >"$T/r.cfg"
    start_server "$T/srv" --scenario "$T/r.cfg" || fail "start"
    [ "$(codes 1 "$SRV_URL?operation=GetCACaps")" = 500 ] || fail "initial"
    printf 'summary = "two";\nrules = ( { action = { type = "iis"; status = 404; }; } );\n' >"$T/r.cfg"
    kill -HUP "$SRV_PID"; sleep 0.3
    [ "$(codes 1 "$SRV_URL?operation=GetCACaps")" = 404 ] || fail "after reload"
    printf 'rules = ( { action = { type = "nonsense"; }; } );\n' >"$T/r.cfg"
    kill -HUP "$SRV_PID"; sleep 0.3
    [ "$(codes 1 "$SRV_URL?operation=GetCACaps")" = 404 ] || fail "an invalid file replaced a valid one"
    grep -q "reload failed, keeping the current scenario" "$SRV_LOG" || fail "reload failure not logged"
    grep -q 'r.cfg:1: unknown action type "nonsense"' "$SRV_LOG" || fail "reload error has no file:line"
    # rapid-fail state and counters restart on reload
    printf 'rules = ( { match = { first = 1; }; action = { type = "iis"; status = 500; }; } );\n' >"$T/r.cfg"
    kill -HUP "$SRV_PID"; sleep 0.3
    [ "$(codes 2 "$SRV_URL?operation=GetCACaps")" = "500 200" ] || fail "first=1 after reload"
    kill -HUP "$SRV_PID"; sleep 0.3
    [ "$(codes 2 "$SRV_URL?operation=GetCACaps")" = "500 200" ] || fail "counters did not restart on reload"
}

t_eng_iis_log_format() {
    start_server "$T/srv" --state-dir "$T/st" || fail "start"
    curl -s -o /dev/null -A "Mozilla/4.0 (compatible; Win32; NDES client)" "$SRV_BASE/certsrv/mscep/mscep.dll/pkiclient.exe?operation=GetCACaps&message=default"
    curl -s -o /dev/null -A "" "$SRV_BASE/certsrv/mscep/mscep.dll"
    sleep 0.4
    local log; log=$(ls "$T"/st/logs/W3SVC1/u_ex??????.log) || fail "no u_exYYMMDD.log"
    [[ $(basename "$log") == u_ex$(date -u +%y%m%d).log ]] || fail "file name $(basename "$log")"
    sed -n 1p "$log" | grep -q "^#Software: Microsoft Internet Information Services 10.0" || fail "#Software"
    sed -n 2p "$log" | grep -q "^#Version: 1.0" || fail "#Version"
    sed -n 3p "$log" | grep -Eq "^#Date: [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}" || fail "#Date"
    sed -n 4p "$log" | grep -q "^#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken" || fail "#Fields"
    grep -Eq "^[0-9-]{10} [0-9:]{8} 127.0.0.1 GET /certsrv/mscep/mscep.dll/pkiclient.exe operation=GetCACaps&message=default [0-9]+ - 127.0.0.1 Mozilla/4.0\+\(compatible;\+Win32;\+NDES\+client\) - 200 0 0 [0-9]+"$'\r'"$" "$log" || fail "GetCACaps line: $(tail -2 "$log")"
    grep -Eq " GET /certsrv/mscep/mscep.dll - [0-9]+ - 127.0.0.1 - - 403 0 0 " "$log" || fail "bare URL line"
}

TESTS+=(t_eng_counters t_eng_probability_seeded t_eng_time_window t_eng_match_filters
        t_eng_transport_faults t_eng_sighup_reload t_eng_iis_log_format)
