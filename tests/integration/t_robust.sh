# t_robust.sh - hostile and broken input: every case gets a defined answer, is logged with its
# reason, and the server keeps serving others.

alive() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$SRV_URL?operation=GetCACaps")" = 200 ] || fail "server stopped serving after: $1"; }
pyraw() { python3 - "$SRV_BASE" "$@"; }

t_rob_bad_messages() {
    start_server "$T/srv" || fail "start"
    local f
    head -c 3000 /dev/urandom >"$T/garbage"
    make_req --challenge "$SRV_CHALLENGE"; head -c 200 "$T/req.der" >"$T/truncated"
    curl -s -o "$T/gcc" "$SRV_URL?operation=GetCACert"            # CMS of the wrong type
    printf '\x30\x84\x7f\xff\xff\xff\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02' >"$T/hugelen"
    for f in garbage truncated gcc hugelen; do
        http "r_$f" "$SRV_URL?operation=PKIOperation" --data-binary @"$T/$f"
        [ "$(status_of "r_$f")" = 500 ] || fail "$f: $(status_of "r_$f")"
        alive "$f"
    done
    http nb64 "$SRV_URL?operation=PKIOperation&message=%%%not-base64***"
    [ "$(status_of nb64)" = 500 ] || fail "not base64"
    # absurd PKCS#10 extensions: 300 SAN entries
    local san; san=$(python3 -c "print(','.join('DNS:h%d.example' % i for i in range(300)))")
    make_req --challenge "$SRV_CHALLENGE" --san "$san"; send_req post
    reply_line | grep -q "status=SUCCESS" || fail "300 SANs: $(reply_line)"
    alive "absurd extensions"
    sleep 0.3
    grep -q 'reason="not a CMS SignedData"' "$SRV_LOG" || fail "reason not logged"
}

t_rob_replayed_tid_other_key() {
    start_server "$T/srv" || fail "start"
    make_req --challenge "$SRV_CHALLENGE" --tid REPLAY-1; send_req post; expect_success
    send_req post; expect_success    # the same request again (a client retry) is fine
    make_req --challenge "$SRV_CHALLENGE" --tid REPLAY-1; send_req post; expect_failure badRequest
    sleep 0.3; grep -q "transactionID already used with a different key" "$SRV_LOG" || fail "reason"
}

t_rob_body_cap_404_13() {
    start_server "$T/srv" || fail "start"
    pyraw <<'PY' || fail "10 MB POST"
import socket, sys, time
host, port = sys.argv[1].split("//")[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=5)
s.sendall(b"POST /certsrv/mscep/mscep.dll?operation=PKIOperation HTTP/1.1\r\nHost: x\r\n"
          b"Content-Length: 10485760\r\n\r\n" + b"\0" * 65536)
t = time.time(); data = b""
try:
    while True:
        b = s.recv(65536)
        if not b: break
        data += b
except (ConnectionResetError, socket.timeout):
    pass
head = data.split(b"\r\n\r\n", 1)[0]
assert head.startswith(b"HTTP/1.1 404 Not Found"), head
assert b"Server: Microsoft-IIS/10.0" in head and b"Connection: close" in head, head
assert time.time() - t < 2, "the server read the body"
PY
    alive "10 MB POST"
    sleep 0.3
    grep -q " 404 13 0 " "$SHARED_STATE"/logs/W3SVC1/u_ex*.log 2>/dev/null || grep -q "404.13" "$SRV_LOG" || fail "404.13 not logged"
}

t_rob_big_headers_400() {
    start_server "$T/srv" || fail "start"
    local big; big=$(head -c 66000 /dev/zero | tr '\0' a)
    http big "$SRV_URL?operation=GetCACaps" -H "X-Big: $big"
    [ "$(status_of big)" = 400 ] || fail "64 KB header: $(status_of big)"
    [ "$(wc -c <"$T/big.b")" = 346 ] || fail "HTTP.sys 400 Request Too Long page"
    grep -q "Server: Microsoft-HTTPAPI/2.0" "$T/big.h" || fail "HTTPAPI"
    alive "big header"
}

t_rob_not_http() {
    start_server "$T/srv" || fail "start"
    pyraw <<'PY' || fail "TLS on the plain port"
import socket, ssl, sys, time
host, port = sys.argv[1].split("//")[1].rsplit(":", 1)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
i, o = ssl.MemoryBIO(), ssl.MemoryBIO(); obj = ctx.wrap_bio(i, o)
try: obj.do_handshake()
except ssl.SSLWantReadError: pass
s = socket.create_connection((host, int(port)), timeout=3)
t = time.time(); s.sendall(o.read()); d = s.recv(4096)
assert d.startswith(b"HTTP/1.1 400 Bad Request\r\n"), d[:60]
assert b"Server: Microsoft-HTTPAPI/2.0" in d and b"HTTP Error 400. The request is badly formed." in d, d
assert time.time() - t < 0.5
PY
    alive "TLS bytes"
    sleep 0.3; grep -q "400 - BadRequest" "$SHARED_STATE/logs/HTTPERR/httperr1.log" || fail "HTTPERR line"
}

t_rob_slowloris_and_halfway() {
    start_server "$T/srv" --time-scale 0.01 || fail "start"   # deadline 1.2 s
    pyraw <<'PY' || fail "slow clients"
import socket, sys, time, threading
host, port = sys.argv[1].split("//")[1].rsplit(":", 1)
def slowloris(res):
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(b"GET /certsrv/mscep/mscep.dll?operation=GetCACaps HTTP/1.1\r\n")
    t = time.time()
    try:
        for _ in range(60):
            s.sendall(b"X-Dribble: 1\r\n"); time.sleep(0.1)
        res.append(("open", time.time() - t))
    except OSError:
        res.append(("closed", time.time() - t))
def halfway(res):
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(b"POST /certsrv/mscep/mscep.dll?operation=PKIOperation HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"a" * 100)
    t = time.time()
    d = s.recv(100)
    res.append(("closed" if d == b"" else "answered", time.time() - t))
res = []
th = [threading.Thread(target=f, args=(res,)) for f in (slowloris,) * 5 + (halfway,) * 5]
[x.start() for x in th]
# meanwhile, healthy requests are served
for _ in range(10):
    c = socket.create_connection((host, int(port)), timeout=2)
    c.sendall(b"GET /certsrv/mscep/mscep.dll?operation=GetCACaps HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.recv(20).startswith(b"HTTP/1.1 200"), "healthy request not served"
    time.sleep(0.1)
[x.join() for x in th]
assert all(r[0] == "closed" and r[1] < 4 for r in res), res
PY
    alive "slowloris"
}

t_rob_vanishing_clients() {
    start_server "$T/srv" || fail "start"
    make_req --challenge "$SRV_CHALLENGE"
    pyraw "$T/req.der" <<'PY' || fail "vanishing clients"
import socket, sys
host, port = sys.argv[1].split("//")[1].rsplit(":", 1)
body = open(sys.argv[2], "rb").read()
for i in range(50):
    s = socket.create_connection((host, int(port)), timeout=2)
    s.sendall(b"POST /certsrv/mscep/mscep.dll?operation=PKIOperation HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    if i % 2:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
PY
    sleep 0.5
    alive "clients that vanish mid-reply"
    kill -0 "$SRV_PID" || fail "server died"
}

t_rob_connection_cap() {
    printf 'server: { max_connections = 3; };\n' >"$T/c.cfg"
    start_server "$T/srv" --config "$T/c.cfg" || fail "start"
    pyraw <<'PY' || fail "connection cap"
import socket, sys, time
host, port = sys.argv[1].split("//")[1].rsplit(":", 1)
held = [socket.create_connection((host, int(port)), timeout=2) for _ in range(3)]
time.sleep(0.2)
s = socket.create_connection((host, int(port)), timeout=2)
s.sendall(b"GET /certsrv/mscep/mscep.dll?operation=GetCACaps HTTP/1.1\r\nHost: x\r\n\r\n")
d = s.recv(400)
assert d.startswith(b"HTTP/1.1 503"), d[:80]
for h in held: h.close()
time.sleep(0.3)
s = socket.create_connection((host, int(port)), timeout=2)
s.sendall(b"GET /certsrv/mscep/mscep.dll?operation=GetCACaps HTTP/1.1\r\nHost: x\r\n\r\n")
assert s.recv(20).startswith(b"HTTP/1.1 200"), "not served after the others closed"
PY
    sleep 0.3; grep -q "503 - ConnLimit" "$SHARED_STATE/logs/HTTPERR/httperr1.log" || fail "HTTPERR ConnLimit"
}

TESTS+=(t_rob_bad_messages t_rob_replayed_tid_other_key t_rob_body_cap_404_13 t_rob_big_headers_400
        t_rob_not_http t_rob_slowloris_and_halfway t_rob_vanishing_clients t_rob_connection_cap)

t_rob_user_and_json_logs() {
    # a state directory the unprivileged user can write; the PKI is made by root first (0600 keys)
    mkdir -p "$T/st"; "$NDESMOCK_BIN" --generate-pki --state-dir "$T/st" >/dev/null || fail "pki"
    chown -R nobody "$T/st"; chmod 755 "$T" "$(dirname "$T")"
    start_server "$T/srv" --state-dir "$T/st" --user nobody --log-format json || fail "start as nobody: $(cat "$T/srv/server.log")"
    [ "$(ps -o user= -p "$SRV_PID" | tr -d ' ')" = nobody ] || fail "not running as nobody"
    local RA_ENC=$T/ra-enc.pem RA_SIGN=$T/ra-sign.pem CA_PEM=$T/st/pki/ca.pem
    openssl x509 -in "$T/st/pki/ra-enc.pem" -out "$RA_ENC"; openssl x509 -in "$T/st/pki/ra-sign.pem" -out "$RA_SIGN"
    make_req --challenge "$SRV_CHALLENGE" --cn 'json "line"'; send_req post; expect_success
    sleep 0.4
    grep '"operation":"PKIOperation"' "$SRV_LOG" | python3 -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin]
assert lines and lines[-1]["pki_status"] == "SUCCESS" and lines[-1]["message_type"] == "PKCSReq", lines' || fail "JSON access line"
    if grep '"operation"' "$SRV_LOG" | grep -q "$SRV_CHALLENGE"; then fail "challenge in a JSON log line"; fi
    "$NDESMOCK_BIN" --user no-such-user-xyz --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --state-dir "$T/st" 2>"$T/e"; [ $? = 1 ] || fail "unknown user must fail"
}
TESTS+=(t_rob_user_and_json_logs)

t_rob_slow_answer_not_cut() {
    # the deadline bounds receiving a request, not answering it: with a 5 ms deadline an
    # enrollment (several ms of RSA) must still get its answer
    printf 'server: { request_timeout = 0.005; };\n' >"$T/c.cfg"
    start_server "$T/srv" --config "$T/c.cfg" || fail "start"
    local i
    for i in 1 2 3 4 5; do
        make_req --challenge "$SRV_CHALLENGE" --cn "slow-$i"; send_req post; expect_success >/dev/null
    done
}
TESTS+=(t_rob_slow_answer_not_cut)
