# t_fastlane.sh - the fast lane (plain keep-alive GETs answered without evhttp)
# against evhttp: the same raw requests, under scenarios with and without rules,
# must give the same bytes, the same connection handling, the same log lines
# and the same journal entries whether the lane is on or off.

t_fastlane_same_as_evhttp() {
    local sf=$T/state-fast ss=$T/state-slow fb fa
    cp -a "$SHARED_STATE" "$sf" && cp -a "$SHARED_STATE" "$ss" || fail "copy state"
    rm -rf "$sf/logs" "$ss/logs"
    printf 'server = { fast_lane = false; };\n' >"$T/slow.cfg"
    # one worker each: log lines and journal entries then come in request order
    start_server "$T/fast" --state-dir "$sf" --threads 1 || fail "start fast"
    fb=$SRV_BASE fa=$SRV_ADMIN
    start_server "$T/slow" --state-dir "$ss" -c "$T/slow.cfg" --threads 1 || fail "start slow"
    python3 "$HERE/fastlane_diff.py" "$fb" "$fa" "$sf" "$SRV_BASE" "$SRV_ADMIN" "$ss" \
        "$T/fast/server.log" "$T/slow/server.log" || fail "the fast lane and evhttp differ"
}

# Keep-alive GETs really take the fast lane: evhttp is out of the loop, so
# the server makes no epoll_ctl call per request (strace counts them).
t_fastlane_no_epoll_churn() {
    command -v strace >/dev/null || fail "strace is missing (.ci/install-deps test installs it)"
    start_server "$T/srv" --threads 1 || fail "start"
    local url="$SRV_URL?operation=GetCACaps"
    curl -s -o /dev/null "$url" || fail "warm-up"
    timeout 20 strace -f -c -e trace=epoll_ctl,sendto -o "$T/strace.txt" -p "$SRV_PID" &
    local st=$!
    sleep 1
    # 200 requests on one keep-alive connection
    python3 - "$SRV_BASE" <<'PY' || fail "keep-alive run"
import socket, sys
host, port = sys.argv[1].split("//")[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=5)
req = b"GET /certsrv/mscep/mscep.dll?operation=GetCACaps HTTP/1.1\r\nHost: x\r\n\r\n"
for i in range(200):
    s.sendall(req)
    data = b""
    while b"SCEPStandard" not in data:
        b = s.recv(4096)
        assert b, "closed"
        data += b
PY
    sleep 0.3
    kill -INT "$st"; wait "$st" 2>/dev/null
    cat "$T/strace.txt"
    if grep -q "Operation not permitted" "$T/strace.txt"; then
        echo "SKIP: this environment does not allow ptrace"; return 0
    fi
    local ctl send
    ctl=$(awk '$NF == "epoll_ctl" {print $4}' "$T/strace.txt"); ctl=${ctl:-0}
    send=$(awk '$NF == "sendto" {print $4}' "$T/strace.txt"); send=${send:-0}
    [ "$send" -ge 200 ] || fail "expected >= 200 sendto calls, got $send"
    [ "$ctl" -le 10 ] || fail "$ctl epoll_ctl calls for 200 keep-alive requests (evhttp makes 4 per request)"
}
TESTS+=(t_fastlane_same_as_evhttp t_fastlane_no_epoll_churn)

# A connection the server closes (its reply said Connection: close) and a new
# one right after, which gets the same descriptor number: its requests must be
# answered. evhttp frees such connections with their read event enabled, and
# the connection guard's reference kept that bufferevent, so its read event
# stayed registered under the number; when the fast lane handed the new
# connection to evhttp, the stale event ran first and read the POST into a
# buffer nobody looked at (found by t_fastlane_same_as_evhttp).
t_close_then_reconnect() {
    local lane
    printf 'server = { fast_lane = false; };\n' >"$T/slow.cfg"
    for lane in fast slow; do
        if [ $lane = fast ]; then start_server "$T/$lane" --threads 1 || fail "start"
        else start_server "$T/$lane" --threads 1 -c "$T/slow.cfg" || fail "start"; fi
        python3 - "$SRV_BASE" <<'PY' || fail "$lane lane: a request after a server-closed connection was lost"
import socket, sys
host, port = sys.argv[1].split("//")[1].rsplit(":", 1)
P = b"/certsrv/mscep/mscep.dll?operation=GetCACaps"
for i in range(30):
    a = socket.create_connection((host, int(port)), timeout=3)
    a.sendall(b"GET " + P + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    while a.recv(4096):
        pass
    a.close()
    b = socket.create_connection((host, int(port)), timeout=3)
    # a GET the fast lane answers, then a POST it hands to evhttp
    b.sendall(b"GET " + P + b" HTTP/1.1\r\nHost: x\r\n\r\n"
              b"POST " + P + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    data = b""
    while data.count(b"SCEPStandard\n") < 2:
        try:
            d = b.recv(65536)
        except socket.timeout:
            sys.exit("round %d: %d of 2 answers within 3 s" % (i, data.count(b"HTTP/1.1 ")))
        assert d, data
        data += d
    b.close()
PY
        stop_server
    done
}

# HEAD: the length of what GET would send, and no body (evhttp alone sends the
# body without a length).
t_head_has_length_no_body() {
    start_server "$T/srv" || fail "start"
    python3 - "$SRV_BASE" <<'PY' || fail "HEAD"
import socket, sys
host, port = sys.argv[1].split("//")[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=3)
P = b"/certsrv/mscep/mscep.dll?operation=GetCACaps"
s.sendall(b"HEAD " + P + b" HTTP/1.1\r\nHost: x\r\n\r\nGET " + P + b" HTTP/1.1\r\nHost: x\r\n\r\n")
data = b""
while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"SCEPStandard\n"):
    b = s.recv(4096)
    assert b, data
    data += b
head1, rest = data.split(b"\r\n\r\n", 1)
assert b"\r\nContent-Length: 77" in head1, head1
assert rest.startswith(b"HTTP/1.1 200 OK"), rest[:60]   # no body after the HEAD reply
PY
}
TESTS+=(t_close_then_reconnect t_head_has_length_no_body)
