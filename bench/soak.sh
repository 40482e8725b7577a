#!/usr/bin/env bash
# shellcheck disable=SC2317  # the cleanup functions run from traps
# bench/soak.sh - load and soak test (issue 6, item 4).
#
#   bash bench/soak.sh            (after `make build/ndesmock build/scepreq`)
#
# For SOAK_SECONDS (default 300) the server gets, all at once:
#   - enrollments from SOAK_CLIENTS clients (bounded loops over pre-made PKCSReq
#     corpora, SOAK_RATE requests/s each, a new connection per request);
#   - fault scenarios switched on and off through the admin API every few
#     seconds: apppool-crash-503 (+ POST /reset half-way), iis-impersonation-500,
#     gateway-timeout-504 (85 s played in 0.85 s: --time-scale 0.01),
#     uri-too-long-414, each followed by a healthy window; each fault is checked
#     to answer as it should (closed/503, 500, 504, 414 for a 20 KB URL);
#   - SOAK_KEEPALIVE (1000) keep-alive connections, each sending GetCACaps now
#     and then (reconnecting when a fault closes it);
#   - SOAK_SLOWLORIS (500) slowloris connections (request line, then one header
#     line a second, never finished), reopened when the server closes them;
#   - a probe loop (GetCACaps, GetCACert, a 20 KB-URL GET, an enrollment) that
#     runs only in healthy windows and records latency and failures.
# The per-request deadline is SOAK_DEADLINE seconds (default 15: the config's
# server.request_timeout is set to SOAK_DEADLINE / 0.01, the time scale), so
# slowloris connections must be closed SOAK_DEADLINE s after they opened.
#
# A warm-up of SOAK_WARMUP seconds (default 60) runs the same load first; the
# server's RSS and open fds are sampled once that load has stopped and its
# connections have closed, and again the same way after the soak: growth must be
# <= 5 %. (Under this load the RSS climbs for the first ~40 s, into glibc's
# arenas, then stays flat: with a 20 s warm-up the baseline is taken below that
# plateau and the check reports +16 %; with 150 s it reports -0.1 %.) Then SIGTERM: exit status 0 within 15 s. Finally every reply is checked
# with scepreq; every certificate a client received as SUCCESS must be in the
# store: STATE/certs/[XX/]SERIAL.pem exists, parses (openssl), is byte-identical to
# the client's copy, and STATE/index.txt has exactly one line for the serial.
#
# Prints PASS/FAIL lines and a last line `soak: N passed, N failed`; exits 1 on
# any failure. Everything runs on loopback inside a private network + PID
# namespace (unshare --net --pid --fork --kill-child --mount-proc): when the
# script ends or is killed, the kernel kills whatever it started. The whole run
# is bounded by 600 s (SOAK_SECONDS is capped at 360).
#
# Environment (all optional):
#   NDESMOCK_BIN=build/ndesmock  SCEPREQ=build/scepreq
#   SOAK_SECONDS=300 SOAK_WARMUP=60 SOAK_CLIENTS=4 SOAK_RATE=3 SOAK_KEEPALIVE=1000
#   SOAK_SLOWLORIS=500 SOAK_DEADLINE=15 SOAK_FAULT_SECONDS=3 SOAK_HEALTHY_SECONDS=4
#   SOAK_SERVER_ARGS=    more ndesmock options (e.g. "--threads 1")
#   SOAK_KEEP=1          keep the work directory (it is kept anyway on failure)
#   SOAK_OUT=FILE        also write the summary there
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
: "${NDESMOCK_BIN:=$ROOT/build/ndesmock}"
: "${SCEPREQ:=$ROOT/build/scepreq}"
SOAK_SECONDS=${SOAK_SECONDS:-300}
case "$SOAK_SECONDS" in '' | *[!0-9]*) echo "soak: SOAK_SECONDS must be a number" >&2; exit 2 ;; esac
[ "$SOAK_SECONDS" -gt 360 ] && SOAK_SECONDS=360
[ "$SOAK_SECONDS" -lt 20 ] && SOAK_SECONDS=20
export SOAK_SECONDS

# --- outside the namespace: work directory, hard time bound, cleanup --------
if [ -z "${SOAK_NS:-}" ]; then
    for t in python3 openssl timeout unshare; do
        command -v "$t" >/dev/null || { echo "soak: $t not found" >&2; exit 2; }
    done
    if [ ! -x "$NDESMOCK_BIN" ] || [ ! -x "$SCEPREQ" ]; then
        echo "soak: build first: make build/ndesmock build/scepreq" >&2
        exit 2
    fi
    W=$(mktemp -d /tmp/ndesmock-soak.XXXXXX)
    # private copies: a rebuild during the soak must not change the binaries
    cp "$NDESMOCK_BIN" "$W/ndesmock" && cp "$SCEPREQ" "$W/scepreq" || exit 2
    INNER=''
    outer_cleanup() {
        [ -n "$INNER" ] && kill -TERM "$INNER" 2>/dev/null
        wait 2>/dev/null
        if [ "${SOAK_KEEP:-0}" = 1 ] || [ -e "$W/keep" ]; then
            echo "soak: work directory kept: $W" >&2
        else
            rm -rf "$W"
        fi
    }
    trap outer_cleanup EXIT
    trap 'exit 130' INT TERM HUP
    ns=(--net --pid --fork --kill-child --mount-proc)
    if unshare "${ns[@]}" true 2>/dev/null; then
        pre=(unshare "${ns[@]}")
    elif unshare --user --map-root-user "${ns[@]}" true 2>/dev/null; then
        pre=(unshare --user --map-root-user "${ns[@]}")
    else
        echo "soak: warning: no private namespace (no root, no user namespaces); loopback only" >&2
        pre=()
    fi
    # 600 s in all; the kernel kills the namespace's processes if this expires
    timeout -k 5 600 "${pre[@]}" env SOAK_NS=1 SOAK_W="$W" \
        NDESMOCK_BIN="$W/ndesmock" SCEPREQ="$W/scepreq" ROOT="$ROOT" bash "$0" &
    INNER=$!
    wait "$INNER"
    rc=$?
    INNER=''
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "soak: FAIL the run did not finish within 600 s"
        echo "soak: 0 passed, 1 failed"
        touch "$W/keep"
    fi
    [ "$rc" = 0 ] || touch "$W/keep"
    exit "$rc"
fi

# --- inside the namespace ---------------------------------------------------
W=$SOAK_W
ip link set lo up 2>/dev/null || true
WARM=${SOAK_WARMUP:-60}
CLIENTS=${SOAK_CLIENTS:-4}
RATE=${SOAK_RATE:-3}
KA=${SOAK_KEEPALIVE:-1000}
SL=${SOAK_SLOWLORIS:-500}
DEADLINE=${SOAK_DEADLINE:-15}
FAULT_S=${SOAK_FAULT_SECONDS:-3}
HEALTHY_S=${SOAK_HEALTHY_SECONDS:-4}
SCALE=0.01
T_START=$(date +%s)
PY=$W/soak.py
SRV=''
LOADPIDS=()

log() { echo "soak: [$(($(date +%s) - T_START))s] $*" >&2; }
stop_load() {
    local p
    for p in "${LOADPIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${LOADPIDS[@]}"; do wait "$p" 2>/dev/null; done
    LOADPIDS=()
}
cleanup() {
    stop_load
    if [ -n "$SRV" ]; then
        kill -KILL "$SRV" 2>/dev/null
        wait "$SRV" 2>/dev/null
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

cat >"$PY" <<'PYEOF'
"""soak.py - the load generators and the checks of bench/soak.sh (stdlib only)."""
import argparse
import base64
import concurrent.futures
import glob
import http.client
import json
import os
import random
import resource
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

now = time.monotonic
STOP = threading.Event()


def on_term(*_):
    STOP.set()


signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)


def dump(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def split_url(url):
    u = urllib.parse.urlsplit(url)
    return u.hostname, u.port, u.path


def one_request(host, port, method, target, body=None, headers=None, timeout=10.0):
    """-> (status or 0, error name or '', body bytes, headers dict, seconds)"""
    t0 = now()
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, target, body, headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, "", data, {k.lower(): v for k, v in r.getheaders()}, now() - t0
    except Exception as e:  # noqa: BLE001 - every failure is a data point
        return 0, type(e).__name__, b"", {}, now() - t0
    finally:
        c.close()


def pct(xs, p):
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


# ---------------------------------------------------------------- hold
class Conn:
    __slots__ = ("kind", "sock", "state", "buf", "t_open", "t_req", "next_at", "got", "n")


def cmd_hold(a):
    """keep-alive and slowloris connections in one selector loop"""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.keepalive + a.slowloris + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    host, port, path = split_url(a.url)
    req = ("GET %s?operation=GetCACaps HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: soak-keepalive\r\n"
           "Connection: keep-alive\r\n\r\n" % (path, host, port)).encode()
    slow_head = ("GET %s?operation=GetCACaps HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: soak-slowloris\r\n"
                 % (path, host, port)).encode()
    sel = selectors.DefaultSelector()
    conns = []
    end = now() + a.seconds
    st = {"ka_requests": [], "ka_connect_fail": 0, "ka_idle_closed": 0, "ka_reconnects": 0,
          "sl_holds": [], "sl_connect_fail": 0, "sl_reconnects": 0, "sl_answers": {},
          "timeline": [], "ka_target": a.keepalive, "sl_target": a.slowloris}
    for i in range(a.keepalive + a.slowloris):
        c = Conn()
        c.kind = "ka" if i < a.keepalive else "sl"
        c.sock = None
        c.state = "dead"
        c.buf = b""
        c.t_open = c.t_req = 0.0
        c.next_at = now() + (i // 100) * 0.05   # ramp up: 100 connections per 50 ms
        c.got = b""
        c.n = 0
        conns.append(c)

    def close(c, again_in):
        if c.sock is not None:
            try:
                sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            c.sock.close()
            c.sock = None
        c.state = "dead"
        c.buf = b""
        c.next_at = now() + again_in

    def connect(c):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError:
            c.next_at = now() + 1.0
            return
        s.setblocking(False)
        s.connect_ex((host, port))
        c.sock = s
        c.state = "connecting"
        c.buf = b""
        c.got = b""
        c.n = 0
        c.t_req = now()
        c.next_at = c.t_req + a.req_timeout   # connect timeout
        sel.register(s, selectors.EVENT_WRITE, c)

    def send(c, data):
        try:
            return c.sock.send(data) == len(data)
        except OSError:
            return False

    def ka_request(c):
        c.t_req = now()
        c.next_at = c.t_req + a.req_timeout   # when the tick looks again: the answer's deadline
        c.buf = b""
        if send(c, req):
            c.state = "wait"
        else:
            st["ka_requests"].append((round(c.t_req, 3), round(now(), 3), -1))
            st["ka_reconnects"] += 1
            close(c, 0.2)

    def ka_parse(c):
        """-> None (incomplete) or (status, keep_alive)"""
        h = c.buf.find(b"\r\n\r\n")
        if h < 0:
            return None
        head = c.buf[:h].decode("latin-1").split("\r\n")
        try:
            status = int(head[0].split()[1])
        except (IndexError, ValueError):
            return (-2, False)
        hdrs = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip().lower()
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            if len(c.buf) - h - 4 < n:
                return None
        elif "chunked" in hdrs.get("transfer-encoding", ""):
            if not c.buf.endswith(b"0\r\n\r\n"):
                return None
        else:
            return None  # body to EOF
        return (status, hdrs.get("connection", "") != "close")

    def on_event(c, ev):
        t = now()
        if c.state == "connecting":
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                st[c.kind + "_connect_fail"] += 1
                close(c, 0.5)
                return
            c.t_open = t
            sel.modify(c.sock, selectors.EVENT_READ, c)
            if c.kind == "ka":
                ka_request(c)
            else:
                if send(c, slow_head):
                    c.state = "drip"
                    c.n = 0
                    c.next_at = t + random.uniform(0.5, 1.5)
                else:
                    st["sl_connect_fail"] += 1
                    close(c, 0.5)
            return
        try:
            d = c.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            d = b""
        if c.kind == "sl":
            if d:
                if len(c.got) < 200:
                    c.got += d[:200]
                return
            ans = c.got.split(b"\r\n", 1)[0].decode("latin-1") if c.got else "closed, no answer"
            st["sl_answers"][ans] = st["sl_answers"].get(ans, 0) + 1
            st["sl_holds"].append((round(c.t_open, 3), round(t, 3), c.n))
            st["sl_reconnects"] += 1
            close(c, 0.05)
            return
        if c.state == "idle":
            if not d:
                st["ka_idle_closed"] += 1
                st["ka_reconnects"] += 1
                close(c, 0.05)
            return
        # waiting for an answer
        if not d:
            r = ka_parse(c) if c.buf else None
            st["ka_requests"].append((round(c.t_req, 3), round(t, 3), r[0] if r else 0))
            st["ka_reconnects"] += 1
            close(c, 0.2)
            return
        c.buf += d
        r = ka_parse(c)
        if r is None:
            return
        st["ka_requests"].append((round(c.t_req, 3), round(t, 3), r[0]))
        c.n += 1
        if not r[1]:
            st["ka_reconnects"] += 1
            close(c, 0.05)
            return
        c.state = "idle"
        c.buf = b""
        c.next_at = t + a.interval * random.uniform(0.5, 1.0)

    last_tl = 0.0
    while not STOP.is_set() and now() < end:
        for key, ev in sel.select(timeout=0.05):
            on_event(key.data, ev)
        t = now()
        for c in conns:
            if t < c.next_at:
                continue
            if c.state == "dead":
                connect(c)
            elif c.state == "idle":
                ka_request(c)
            elif c.state == "wait":
                st["ka_requests"].append((round(c.t_req, 3), round(t, 3), -3))
                st["ka_reconnects"] += 1
                close(c, 0.2)
            elif c.state == "connecting":
                st[c.kind + "_connect_fail"] += 1
                close(c, 0.5)
            elif c.state == "drip":
                c.n += 1
                if send(c, b"X-Drip-%d: %d\r\n" % (c.n, c.n)):
                    c.next_at = t + random.uniform(0.7, 1.3)
                else:
                    st["sl_holds"].append((round(c.t_open, 3), round(t, 3), c.n))
                    st["sl_answers"]["send failed"] = st["sl_answers"].get("send failed", 0) + 1
                    st["sl_reconnects"] += 1
                    close(c, 0.05)
        if t - last_tl >= 1.0:
            last_tl = t
            # a keep-alive connection counts once the server has answered on it (a
            # connection waiting in the accept queue is established for the client)
            ka = sum(1 for c in conns if c.kind == "ka" and c.n > 0 and c.state in ("idle", "wait"))
            sl = sum(1 for c in conns if c.kind == "sl" and c.state == "drip")
            st["timeline"].append((round(t, 3), ka, sl))
    st["end"] = now()
    for c in conns:
        if c.sock is not None:
            c.sock.close()
    dump(a.out, st)


# ---------------------------------------------------------------- enroll
def cmd_enroll(a):
    host, port, path = split_url(a.url)
    files = sorted(glob.glob(os.path.join(a.corpus, "req-*.der")))
    os.makedirs(a.replies, exist_ok=True)
    end = now() + a.seconds
    recs = []
    for i, f in enumerate(files):
        if STOP.is_set() or now() >= end:
            break
        t0 = now()
        with open(f, "rb") as fh:
            body = fh.read()
        s, err, data, hdrs, _ = one_request(host, port, "POST", path + "?operation=PKIOperation", body,
                                            {"Content-Type": "application/x-pki-message",
                                             "User-Agent": "soak-enroll"}, a.timeout)
        t1 = now()
        saved = False
        if s == 200 and data:
            with open(os.path.join(a.replies, "rep-%06d.der" % i), "wb") as fh:
                fh.write(data)
            saved = True
        recs.append((i, round(t0, 3), round(t1, 3), s, err, saved))
        pause = t0 + 1.0 / a.rate - now()
        if pause > 0:
            STOP.wait(pause)
    dump(a.out, {"corpus": len(files), "requests": recs})


# ---------------------------------------------------------------- chaos + probe
FAULTS = ["apppool-crash-503", "iis-impersonation-500", "gateway-timeout-504", "uri-too-long-414"]


def cmd_chaos(a):
    host, port, path = split_url(a.url)
    ahost, aport, _ = split_url(a.admin)
    long_q = "?operation=GetCACaps&message=" + "A" * 20000
    os.makedirs(a.replies, exist_ok=True)
    probe_files = sorted(glob.glob(os.path.join(a.corpus, "req-*.der")))
    cv = threading.Condition()
    state = {"open": False, "busy": False, "window": -1}
    windows, admin_errors, fault_checks = [], [], []
    probes = []   # (window, kind, t0, seconds, ok, detail)
    end = now() + a.seconds

    def admin(method, route, body=None):
        s, err, data, _, _ = one_request(ahost, aport, method, route, body,
                                         {"Content-Type": "application/json"}, 10.0)
        if s != 200:
            admin_errors.append("%s %s %s -> %s %s %s" % (method, route, body, s, err, data[:100]))
        return s == 200

    def probe_loop():
        k = 0
        n_enroll = 0
        while not STOP.is_set():
            with cv:
                while not state["open"] and not STOP.is_set():
                    cv.wait(0.2)
                if STOP.is_set():
                    return
                state["busy"] = True
                win = state["window"]
            try:
                kind = ("caps", "cacert", "enroll", "longurl")[k % 4]
                k += 1
                t0 = now()
                if kind == "caps":
                    s, err, data, h, dt = one_request(host, port, "GET", path + "?operation=GetCACaps")
                    ok = s == 200 and b"POSTPKIOperation" in data
                elif kind == "cacert":
                    s, err, data, h, dt = one_request(host, port, "GET",
                                                      path + "?operation=GetCACert&message=ca")
                    ok = s == 200 and h.get("content-type", "").startswith("application/x-x509-ca")
                elif kind == "longurl":
                    s, err, data, h, dt = one_request(host, port, "GET", path + long_q)
                    ok = s == 200 and b"POSTPKIOperation" in data
                else:
                    if n_enroll >= len(probe_files):
                        continue
                    with open(probe_files[n_enroll], "rb") as fh:
                        body = fh.read()
                    s, err, data, h, dt = one_request(
                        host, port, "POST", path + "?operation=PKIOperation", body,
                        {"Content-Type": "application/x-pki-message", "User-Agent": "soak-probe"})
                    ok = s == 200 and h.get("content-type") == "application/x-pki-message"
                    if s == 200 and data:
                        with open(os.path.join(a.replies, "rep-%06d.der" % n_enroll), "wb") as fh:
                            fh.write(data)
                    n_enroll += 1
                probes.append((win, kind, round(t0, 3), round(dt, 4), ok, "%s %s" % (s, err)))
            finally:
                with cv:
                    state["busy"] = False
                    cv.notify_all()
            STOP.wait(a.probe_pause)

    def close_window():
        with cv:
            state["open"] = False
            while state["busy"]:
                cv.wait(0.5)
        if windows:
            windows[-1]["end"] = round(now(), 3)

    def open_window(name):
        windows.append({"name": name, "start": round(now(), 3), "end": None})
        if name == "healthy":
            with cv:
                state["window"] = len(windows) - 1
                state["open"] = True
                cv.notify_all()

    def check(name):
        """one request that must show the fault"""
        if name == "apppool-crash-503":
            s, err, _, _, dt = one_request(host, port, "GET", path + "?operation=GetCACaps")
            ok = s == 503 or (s == 0 and err in ("RemoteDisconnected", "ConnectionResetError",
                                                  "BadStatusLine"))
        elif name == "iis-impersonation-500":
            s, err, _, _, dt = one_request(host, port, "GET", path + "?operation=GetCACert&message=ca")
            ok = s == 500
        elif name == "gateway-timeout-504":
            s, err, _, _, dt = one_request(host, port, "GET", path + "?operation=GetCACaps")
            ok = s == 504 and dt >= 0.8
        else:
            s, err, _, _, dt = one_request(host, port, "GET", path + long_q)
            ok = s == 414
        fault_checks.append({"scenario": name, "ok": ok, "got": "%s %s" % (s, err), "s": round(dt, 3)})

    th = threading.Thread(target=probe_loop, daemon=True)
    th.start()
    i = 0
    if admin("PUT", "/scenario", json.dumps({"name": "healthy"})):
        open_window("healthy")
    STOP.wait(min(a.healthy, 1.0))
    while not STOP.is_set() and now() + a.fault + a.healthy <= end:
        name = FAULTS[i % len(FAULTS)]
        i += 1
        close_window()
        if not admin("PUT", "/scenario", json.dumps({"name": name})):
            break
        open_window(name)
        check(name)
        if name == "apppool-crash-503":
            STOP.wait(a.fault / 2)
            admin("POST", "/reset")            # iisreset: the pool starts (and crashes) again
            check(name)
            STOP.wait(a.fault / 2)
        else:
            STOP.wait(a.fault)
        close_window()
        if not admin("PUT", "/scenario", json.dumps({"name": "healthy"})):
            break
        open_window("healthy")
        if i % 3 == 0:
            admin("POST", "/reset")            # a reset in a healthy window is harmless
        STOP.wait(a.healthy)
    close_window()
    if not windows or windows[-1]["name"] != "healthy":
        admin("PUT", "/scenario", json.dumps({"name": "healthy"}))
    STOP.set()
    th.join(15)
    dump(a.out, {"windows": windows, "admin_errors": admin_errors, "fault_checks": fault_checks,
                 "probes": probes, "probe_corpus": len(probe_files)})


# ---------------------------------------------------------------- proc sampling
def proc_sample(pid):
    rss = -1
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir("/proc/%d/fd" % pid))


def cmd_settle(a):
    """wait until the server's fd count stops changing, then print 'rss_kb fds' (median of 3)"""
    end = now() + a.max_wait
    last, stable_since = None, now()
    while now() < end:
        _, fds = proc_sample(a.pid)
        if fds != last:
            last, stable_since = fds, now()
        elif now() - stable_since >= a.stable:
            break
        time.sleep(0.25)
    s = []
    for _ in range(3):
        s.append(proc_sample(a.pid))
        time.sleep(0.5)
    print(sorted(x[0] for x in s)[1], sorted(x[1] for x in s)[1])


def cmd_sampler(a):
    out = []
    while not STOP.is_set():
        try:
            r, f = proc_sample(a.pid)
        except OSError:
            out.append((round(now(), 3), -1, -1))
            break
        out.append((round(now(), 3), r, f))
        dump(a.out, out)
        STOP.wait(a.interval)
    dump(a.out, out)


# ---------------------------------------------------------------- verify
def der_tlv(b, i):
    tag = b[i]
    n = b[i + 1]
    j = i + 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(b[j:j + k], "big")
        j += k
    return tag, j, j + n


def cert_serial(der):
    """serial number (int) of a DER certificate; raises on a malformed one"""
    tag, s, e = der_tlv(der, 0)
    if tag != 0x30 or e != len(der):
        raise ValueError("not one whole DER SEQUENCE")
    tag, s, _ = der_tlv(der, s)   # tbsCertificate
    if tag != 0x30:
        raise ValueError("no tbsCertificate")
    tag, s2, e2 = der_tlv(der, s)
    if tag == 0xA0:               # [0] version
        tag, s2, e2 = der_tlv(der, e2)
    if tag != 0x02:
        raise ValueError("no serial INTEGER")
    return int.from_bytes(der[s2:e2], "big")


def pem_certs(text):
    out = []
    for part in text.split("-----BEGIN CERTIFICATE-----")[1:]:
        if "-----END CERTIFICATE-----" not in part:
            raise ValueError("PEM block without END")
        b64 = part.split("-----END CERTIFICATE-----")[0]
        out.append(base64.b64decode("".join(b64.split()), validate=True))
    return out


def cmd_verify(a):
    """check every saved reply with scepreq; every SUCCESS must be whole in the store"""
    jobs = []
    for cdir in sorted(glob.glob(os.path.join(a.work, "clients", "*"))):
        for rep in sorted(glob.glob(os.path.join(cdir, "replies", "rep-*.der"))):
            jobs.append((cdir, rep))

    def run(job):
        cdir, rep = job
        issued = rep[:-4] + ".issued.pem"
        p = subprocess.run([a.scepreq, "reply", "--in", rep, "--ra-sign", a.ra_sign,
                            "--key", os.path.join(cdir, "key.pem"),
                            "--cert", os.path.join(cdir, "cert.pem"), "--issued-out", issued],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
        line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
        return cdir, rep, issued, p.returncode, line

    res = {"replies": len(jobs), "status": {}, "success": 0, "bad_replies": [],
           "problems": [], "checked_in_store": 0}
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as ex:
        results = list(ex.map(run, jobs))
    # the store
    index = {}
    index_lines = 0
    with open(os.path.join(a.state, "index.txt")) as f:
        for line in f:
            if not line.strip():
                continue
            index_lines += 1
            fields = line.rstrip("\n").split("\t")
            try:
                sn = int(fields[3], 16)
            except (IndexError, ValueError):
                res["problems"].append("torn index.txt line: %r" % line[:120])
                continue
            index.setdefault(sn, []).append(fields)
    files = {}
    # STATE/certs/SERIAL.pem, or sharded as STATE/certs/XX/SERIAL.pem
    for p in glob.glob(os.path.join(a.state, "certs", "**", "*.pem"), recursive=True):
        try:
            files[int(os.path.basename(p)[:-4], 16)] = p
        except ValueError:
            res["problems"].append("odd file in certs/: %s" % p)
    res["index_lines"] = index_lines
    res["store_files"] = len(files)
    res["index_duplicates"] = sum(1 for v in index.values() if len(v) > 1)
    res["index_without_file"] = sum(1 for sn in index if sn not in files)
    res["files_without_index"] = sum(1 for sn in files if sn not in index)
    bundle = []
    seen = set()
    for cdir, rep, issued, rc, line in results:
        st = line.split()[0] if line.startswith("status=") else "unparsable"
        res["status"][st] = res["status"].get(st, 0) + 1
        if rc != 0 or not line.startswith("status="):
            res["bad_replies"].append("%s: rc=%s %s" % (rep, rc, line[:150]))
            continue
        if st != "status=SUCCESS":
            continue
        res["success"] += 1
        try:
            with open(issued) as f:
                got = pem_certs(f.read())
            sn = cert_serial(got[0])
        except (OSError, ValueError, IndexError) as e:
            res["problems"].append("%s: SUCCESS but the issued cert is unreadable: %s" % (rep, e))
            continue
        if sn in seen:
            res["problems"].append("%s: serial %X handed out twice" % (rep, sn))
        seen.add(sn)
        p = files.get(sn)
        if p is None:
            res["problems"].append("%s: serial %X not in the store (lost)" % (rep, sn))
            continue
        if os.path.basename(p)[:-4].upper() != os.path.basename(p)[:-4] or \
                int(os.path.basename(p)[:-4], 16) != sn:
            res["problems"].append("%s: store file name %s" % (rep, p))
        try:
            with open(p) as f:
                stored = pem_certs(f.read())
        except (OSError, ValueError) as e:
            res["problems"].append("%s: torn: %s" % (p, e))
            continue
        if len(stored) != 1 or stored[0] != got[0]:
            res["problems"].append("%s: differs from the certificate the client received (torn)" % p)
            continue
        n = len(index.get(sn, []))
        if n != 1:
            res["problems"].append("serial %X: %d index.txt lines" % (sn, n))
            continue
        if index[sn][0][0] != "V":
            res["problems"].append("serial %X: index status %s" % (sn, index[sn][0][0]))
        res["checked_in_store"] += 1
        bundle.append(p)
    # one openssl pass over every stored certificate a client received
    res["openssl_parsed"] = 0
    if bundle:
        bpath = os.path.join(a.work, "bundle.pem")
        with open(bpath, "w") as out:
            for p in bundle:
                with open(p) as f:
                    out.write(f.read())
        p = subprocess.run("openssl crl2pkcs7 -nocrl -certfile %s | openssl pkcs7 -print_certs -noout"
                           " | grep -c '^subject='" % bpath, shell=True, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=300)
        try:
            res["openssl_parsed"] = int(p.stdout.strip() or 0)
        except ValueError:
            res["openssl_parsed"] = 0
        if res["openssl_parsed"] != len(bundle):
            res["problems"].append("openssl parsed %d of %d stored certificates: %s" %
                                   (res["openssl_parsed"], len(bundle), p.stderr[:300]))
    dump(a.out, res)


# ---------------------------------------------------------------- summary
def cmd_summary(a):
    W = a.work
    load = lambda p: json.load(open(os.path.join(W, p)))  # noqa: E731
    lines, passed, failed = [], [0], [0]

    def res(ok, text):
        lines.append(("PASS " if ok else "FAIL ") + text)
        (passed if ok else failed)[0] += 1

    def info(text):
        lines.append("     " + text)

    facts = load("facts.json")
    lines.append("soak: %d s load (+%d s warm-up), %d enrollment clients at %s/s, %d keep-alive, "
                 "%d slowloris, deadline %.1f s, faults %.0f s / healthy %.0f s"
                 % (facts["seconds"], facts["warmup"], facts["clients"], facts["rate"],
                    facts["keepalive"], facts["slowloris"], facts["deadline"], facts["fault_s"],
                    facts["healthy_s"]))
    phases = ["warm", "main"]
    windows, probes, fchecks, admin_err = [], [], [], []
    holds = []
    enrolls = []
    for ph in phases:
        try:
            ch = load("%s-chaos.json" % ph)
            base = len(windows)
            windows += ch["windows"]
            probes += [[p[0] + base] + list(p[1:]) for p in ch["probes"]]
            fchecks += ch["fault_checks"]
            admin_err += ch["admin_errors"]
        except (OSError, ValueError) as e:
            res(False, "%s: chaos/probe results missing (%s)" % (ph, e))
        try:
            holds.append((ph, load("%s-hold.json" % ph)))
        except (OSError, ValueError) as e:
            res(False, "%s: connection holder results missing (%s)" % (ph, e))
        for p in sorted(glob.glob(os.path.join(W, "%s-enroll-*.json" % ph))):
            enrolls.append((ph, json.load(open(p))))
    healthy = [(w["start"], w["end"]) for w in windows if w["name"] == "healthy" and w["end"]]

    def in_healthy(t0, t1, settle=0.0):
        return any(s + settle <= t0 and t1 <= e for s, e in healthy)

    # 1. server up and stopping cleanly
    res(facts["alive_until_end"], "server process alive through the whole run")
    res(facts["exit_status"] == 0, "SIGTERM: exit status %s after %.1f s"
        % (facts["exit_status"], facts["exit_seconds"]))
    # 2. probes in healthy windows
    lat = [p[3] for p in probes]
    bad = [p for p in probes if not p[4]]
    res(len(probes) > 0 and not bad,
        "healthy windows: %d probe requests, %d failed; latency p50 %.1f ms, p99 %.1f ms, max %.1f ms"
        % (len(probes), len(bad), pct(lat, 50) * 1e3, pct(lat, 99) * 1e3, max(lat or [0]) * 1e3))
    for kind in ("caps", "cacert", "longurl", "enroll"):
        l = [p[3] for p in probes if p[1] == kind]
        if l:
            info("probe %-7s n=%-5d p50 %6.1f ms  p99 %7.1f ms  max %7.1f ms"
                 % (kind, len(l), pct(l, 50) * 1e3, pct(l, 99) * 1e3, max(l) * 1e3))
    for p in bad[:10]:
        info("failed probe: window %d %s at %.3f: %s" % (p[0], p[1], p[2], p[5]))
    # 3. client enrollments inside healthy windows
    tot = {}
    hbad = []
    hn = 0
    for ph, e in enrolls:
        for i, t0, t1, s, err, saved in e["requests"]:
            k = str(s) if s else err
            tot[k] = tot.get(k, 0) + 1
            if in_healthy(t0, t1):
                hn += 1
                if s != 200:
                    hbad.append((ph, i, t0, s, err))
    res(hn > 0 and not hbad, "healthy windows: %d client enrollments, %d not answered 200"
        % (hn, len(hbad)))
    info("client enrollments, all windows: %s" % ", ".join("%s x%d" % kv for kv in sorted(tot.items())))
    for x in hbad[:10]:
        info("failed enrollment: %s #%d at %.3f: %s %s" % x)
    # 4. the faults took effect, the admin API answered
    fbad = [f for f in fchecks if not f["ok"]]
    res(fchecks and not fbad, "fault scenarios answered as configured: %d checks, %d wrong"
        % (len(fchecks), len(fbad)))
    by = {}
    for f in fchecks:
        by.setdefault(f["scenario"], []).append(f["got"])
    for k, v in sorted(by.items()):
        vals = {}
        for g in v:
            vals[g] = vals.get(g, 0) + 1
        info("%-22s %s" % (k, ", ".join("%s x%d" % kv for kv in sorted(vals.items()))))
    for f in fbad[:10]:
        info("wrong fault answer: %s" % f)
    nsw = sum(1 for w in windows if w["name"] != "healthy")
    res(not admin_err, "admin API: %d scenario windows switched, %d admin errors" % (nsw, len(admin_err)))
    for e in admin_err[:5]:
        info(e)
    # 5. connections held
    for ph, h in holds:
        if ph != "main":
            continue
        tl = h["timeline"]
        ka_peak = max((x[1] for x in tl), default=0)
        sl_peak = max((x[2] for x in tl), default=0)
        # samples inside healthy windows, 1 s after the window opened (reconnects done)
        ka_h = [x[1] for x in tl if in_healthy(x[0], x[0], 1.0)]
        ka_all = [x[1] for x in tl[10:]]
        res(ka_peak >= h["ka_target"] and ka_h and min(ka_h) >= 0.98 * h["ka_target"],
            "keep-alive: %d held at peak (target %d); in healthy windows min %d, mean %.0f; "
            "overall mean %.0f" % (ka_peak, h["ka_target"], min(ka_h or [0]),
                                   statistics.mean(ka_h or [0]), statistics.mean(ka_all or [0])))
        kr = h["ka_requests"]
        kh = [r for r in kr if in_healthy(r[0], r[1])]
        khbad = [r for r in kh if r[2] != 200]
        codes = {}
        for r in kr:
            codes[r[2]] = codes.get(r[2], 0) + 1
        res(kh and not khbad, "keep-alive requests in healthy windows: %d, %d not 200"
            % (len(kh), len(khbad)))
        info("keep-alive requests, all windows: %s (0 = closed without answer, -1 send failed, "
             "-3 no answer in time); %d reconnects, %d closed while idle"
             % (", ".join("%s x%d" % kv for kv in sorted(codes.items())), h["ka_reconnects"],
                h["ka_idle_closed"]))
        for r in khbad[:5]:
            info("keep-alive failure %s" % (r,))
        hs = [x[1] - x[0] for x in h["sl_holds"] if x[1] - x[0] > 0]
        dl = facts["deadline"]
        early = [x for x in hs if x < dl - 1.0]
        late = [x for x in hs if x > dl + 3.0]
        res(sl_peak >= h["sl_target"] and hs and not late,
            "slowloris: %d held at peak (target %d); %d closed by the server after %.1f..%.1f s "
            "(median %.1f, deadline %.1f); %d later than deadline+3 s"
            % (sl_peak, h["sl_target"], len(hs), min(hs or [0]), max(hs or [0]),
               statistics.median(hs or [0]), dl, len(late)))
        info("slowloris endings: %s; %d closed before deadline-1 s (faults close nothing "
             "half-read, so expect 0)" % (h["sl_answers"], len(early)))
        res(not early, "slowloris: none closed before the deadline (%d early)" % len(early))
    # 6. memory and fds
    b, f = facts["baseline"], facts["final"]
    g_rss = 100.0 * (f[0] - b[0]) / b[0] if b[0] > 0 and f[0] > 0 else 999.0
    g_fd = 100.0 * (f[1] - b[1]) / b[1] if b[1] > 0 and f[1] > 0 else 999.0
    res(g_rss <= 5.0, "RSS after warm-up %d kB, after the soak %d kB: %+.1f %% (limit 5 %%)"
        % (b[0], f[0], g_rss))
    res(g_fd <= 5.0, "open fds after warm-up %d, after the soak %d: %+.1f %% (limit 5 %%)"
        % (b[1], f[1], g_fd))
    try:
        smp = load("main-samples.json")
        rs = [x[1] for x in smp if x[1] > 0]
        fs = [x[2] for x in smp if x[2] > 0]
        info("under load: RSS %d..%d kB, fds %d..%d (%d samples)"
             % (min(rs), max(rs), min(fs), max(fs), len(rs)))
        want = facts["keepalive"] + facts["slowloris"]
        res(max(fs) - b[1] >= 0.98 * want, "server side: %d connections open at the peak (fds above "
            "the quiet count; keep-alive + slowloris = %d)" % (max(fs) - b[1], want))
    except (OSError, ValueError):
        pass
    # 7. the store
    v = load("verify.json")
    info("replies checked with scepreq: %d (%s); index.txt %d lines, %d certificate files"
         % (v["replies"], ", ".join("%s x%d" % kv for kv in sorted(v["status"].items())),
            v["index_lines"], v["store_files"]))
    res(not v["bad_replies"], "every 200 reply is a CertRep scepreq can check (%d bad)"
        % len(v["bad_replies"]))
    for x in v["bad_replies"][:5]:
        info(x)
    res(v["success"] > 0 and v["checked_in_store"] == v["success"] and not v["problems"],
        "every SUCCESS certificate is in the store: %d received, %d present, byte-identical and "
        "on exactly one index line; openssl parsed %d" % (v["success"], v["checked_in_store"],
                                                          v["openssl_parsed"]))
    for x in v["problems"][:10]:
        info(x)
    res(v["index_duplicates"] == 0 and v["index_without_file"] == 0 and v["files_without_index"] == 0,
        "store consistent: %d duplicate serials, %d index lines without a file, %d files without a line"
        % (v["index_duplicates"], v["index_without_file"], v["files_without_index"]))
    info("issued but not received as SUCCESS by a client (e.g. answer lost to a fault): %d"
         % (v["index_lines"] - v["success"]))
    # 8. the server's own log
    res(not facts["log_alarms"], "server log: no crash/abort/sanitizer lines (%d found)"
        % len(facts["log_alarms"]))
    for x in facts["log_alarms"][:5]:
        info(x)
    lines.append("soak: %d passed, %d failed" % (passed[0], failed[0]))
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(W, "summary.txt"), "w") as fh:
        fh.write(text)
    return 1 if failed[0] else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("hold")
    p.add_argument("--url", required=True)
    p.add_argument("--keepalive", type=int, default=1000)
    p.add_argument("--slowloris", type=int, default=500)
    p.add_argument("--interval", type=float, default=6.0)
    p.add_argument("--req-timeout", type=float, default=10.0)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("enroll")
    for k in ("--url", "--corpus", "--replies", "--out"):
        p.add_argument(k, required=True)
    p.add_argument("--rate", type=float, default=3.0)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--seconds", type=float, required=True)
    p = sub.add_parser("chaos")
    for k in ("--url", "--admin", "--corpus", "--replies", "--out"):
        p.add_argument(k, required=True)
    p.add_argument("--fault", type=float, default=3.0)
    p.add_argument("--healthy", type=float, default=4.0)
    p.add_argument("--probe-pause", type=float, default=0.1)
    p.add_argument("--seconds", type=float, required=True)
    p = sub.add_parser("settle")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--stable", type=float, default=2.0)
    p.add_argument("--max-wait", type=float, default=30.0)
    p = sub.add_parser("sampler")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument("--out", required=True)
    p = sub.add_parser("verify")
    for k in ("--work", "--state", "--scepreq", "--ra-sign", "--out"):
        p.add_argument(k, required=True)
    p.add_argument("--jobs", type=int, default=2)
    p = sub.add_parser("summary")
    p.add_argument("--work", required=True)
    a = ap.parse_args()
    return {"hold": cmd_hold, "enroll": cmd_enroll, "chaos": cmd_chaos, "settle": cmd_settle,
            "sampler": cmd_sampler, "verify": cmd_verify, "summary": cmd_summary}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
PYEOF

jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# --- server -----------------------------------------------------------------
log "generating the lab PKI"
timeout 120 "$NDESMOCK_BIN" --generate-pki --state-dir "$W/state" >/dev/null 2>&1 ||
    { echo "soak: FAIL --generate-pki"; echo "soak: 0 passed, 1 failed"; exit 1; }
TIMEOUT_CFG=$(python3 -c "print($DEADLINE / $SCALE)")
printf 'server: { request_timeout = %s; };\n' "$TIMEOUT_CFG" >"$W/soak.cfg"
ulimit -Sn 1024   # Debian's default: the server must raise its own limit
# shellcheck disable=SC2086  # SOAK_SERVER_ARGS: options, split on purpose
"$NDESMOCK_BIN" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --state-dir "$W/state" \
    --ready-file "$W/ready.json" --time-scale "$SCALE" --config "$W/soak.cfg" ${SOAK_SERVER_ARGS:-} \
    >"$W/server.out" 2>"$W/server.log" &
SRV=$!
ulimit -Sn "$(ulimit -Hn)"
for _ in $(seq 1 200); do [ -s "$W/ready.json" ] && break; sleep 0.05; done
[ -s "$W/ready.json" ] || { echo "soak: FAIL server did not start: $(tail -3 "$W/server.log")"; echo "soak: 0 passed, 1 failed"; exit 1; }
URL=$(jget "$W/ready.json" scep_url)
ADMIN=$(jget "$W/ready.json" admin_url)
CHAL=$(jget "$W/ready.json" challenge)
log "server pid $SRV at $URL, admin $ADMIN; deadline ${DEADLINE}s (request_timeout $TIMEOUT_CFG x $SCALE)"
openssl x509 -in "$W/state/pki/ra-enc.pem" -out "$W/ra-enc.crt" || exit 1
openssl x509 -in "$W/state/pki/ra-sign.pem" -out "$W/ra-sign.crt" || exit 1

# --- corpora: one key per client and phase ------------------------------------
mkcorpus() { # NAME COUNT
    local d=$W/clients/$1
    mkdir -p "$d/corpus" "$d/replies"
    timeout 300 "$SCEPREQ" make --ra "$W/ra-enc.crt" --challenge "$CHAL" --count "$2" \
        --out-dir "$d/corpus" --cn "soak-$1" --key-out "$d/key.pem" --cert-out "$d/cert.pem" >/dev/null
}
n_main=$(python3 -c "import math; print(math.ceil($RATE * $SOAK_SECONDS * 1.05) + 5)")
n_warm=$(python3 -c "import math; print(math.ceil($RATE * $WARM * 1.05) + 5)")
n_probe=$((SOAK_SECONDS * 3 + 20))
log "making corpora: $CLIENTS clients x ($n_warm + $n_main) PKCSReq, probe $n_probe"
jobs_spec=()
for c in $(seq 0 $((CLIENTS - 1))); do
    jobs_spec+=("warm-c$c $n_warm" "main-c$c $n_main")
done
jobs_spec+=("warm-probe $((WARM * 3 + 10))" "main-probe $n_probe")
# two at a time (wait names the pids: a bare wait would wait for the server too)
mkpids=()
for js in "${jobs_spec[@]}"; do
    # shellcheck disable=SC2086
    mkcorpus $js &
    mkpids+=($!)
    if [ "${#mkpids[@]}" -ge 2 ]; then
        wait "${mkpids[0]}"
        mkpids=("${mkpids[@]:1}")
    fi
done
for p in "${mkpids[@]}"; do wait "$p"; done
for js in "${jobs_spec[@]}"; do
    [ -s "$W/clients/${js%% *}/key.pem" ] || { echo "soak: FAIL corpus ${js%% *}"; echo "soak: 0 passed, 1 failed"; exit 1; }
done

# --- one phase of load -------------------------------------------------------
phase() { # NAME SECONDS FAULT_S HEALTHY_S
    local ph=$1 secs=$2 c
    python3 "$PY" hold --url "$URL" --keepalive "$KA" --slowloris "$SL" \
        --interval "$(python3 -c "print($DEADLINE * 0.5)")" --seconds "$((secs + 4))" \
        --out "$W/$ph-hold.json" 2>>"$W/py.log" &
    LOADPIDS+=($!)
    sleep 2   # let the connections ramp up
    for c in $(seq 0 $((CLIENTS - 1))); do
        python3 "$PY" enroll --url "$URL" --corpus "$W/clients/$ph-c$c/corpus" \
            --replies "$W/clients/$ph-c$c/replies" --rate "$RATE" --seconds "$secs" \
            --out "$W/$ph-enroll-$c.json" 2>>"$W/py.log" &
        LOADPIDS+=($!)
    done
    python3 "$PY" sampler --pid "$SRV" --interval 1 --out "$W/$ph-samples.json" 2>>"$W/py.log" &
    local sampler=$!
    python3 "$PY" chaos --url "$URL" --admin "$ADMIN" --corpus "$W/clients/$ph-probe/corpus" \
        --replies "$W/clients/$ph-probe/replies" --fault "$3" --healthy "$4" --seconds "$secs" \
        --out "$W/$ph-chaos.json" 2>>"$W/py.log"
    # chaos ends on a healthy window; the others end on their own clocks
    for c in "${LOADPIDS[@]}"; do wait "$c" 2>/dev/null; done
    LOADPIDS=()
    kill -TERM "$sampler" 2>/dev/null
    wait "$sampler" 2>/dev/null
}

alive=true
log "warm-up: ${WARM}s of the full load"
phase warm "$WARM" 1 1.5
kill -0 "$SRV" 2>/dev/null || alive=false
read -r b_rss b_fd < <(python3 "$PY" settle --pid "$SRV")
log "after warm-up: RSS ${b_rss} kB, ${b_fd} fds"
log "soak: ${SOAK_SECONDS}s"
phase main "$SOAK_SECONDS" "$FAULT_S" "$HEALTHY_S"
kill -0 "$SRV" 2>/dev/null || alive=false
read -r f_rss f_fd < <(python3 "$PY" settle --pid "$SRV")
log "after the soak: RSS ${f_rss} kB, ${f_fd} fds"

# --- SIGTERM ----------------------------------------------------------------
t0=$(date +%s.%N)
kill -TERM "$SRV"
exit_status=timeout
for _ in $(seq 1 150); do kill -0 "$SRV" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SRV" 2>/dev/null; then
    kill -KILL "$SRV"
    wait "$SRV" 2>/dev/null
else
    wait "$SRV"
    exit_status=$?
fi
SRV=''
exit_secs=$(python3 -c "import time; print(time.time() - $t0)")
log "server exit status $exit_status after ${exit_secs%.*}s; checking replies and the store"

# --- the store ----------------------------------------------------------------
timeout 240 python3 "$PY" verify --work "$W" --state "$W/state" --scepreq "$SCEPREQ" \
    --ra-sign "$W/ra-sign.crt" --out "$W/verify.json" 2>>"$W/py.log" ||
    echo '{"replies":0,"status":{},"success":0,"bad_replies":["verify did not finish"],"problems":["verify did not finish"],"checked_in_store":0,"index_lines":0,"store_files":0,"index_duplicates":0,"index_without_file":0,"files_without_index":0,"openssl_parsed":0}' >"$W/verify.json"

python3 - "$W" <<PYEOF
import json, re, sys
W = sys.argv[1]
alarms = []
for f in ("server.log", "server.out"):
    try:
        for line in open(W + "/" + f, errors="replace"):
            if re.search(r"AddressSanitizer|UndefinedBehavior|runtime error|Segmentation|abort|assert|fatal|double free|corrupt", line, re.I):
                alarms.append(f + ": " + line.strip()[:200])
    except OSError:
        pass
st = "$exit_status"
json.dump({"seconds": $SOAK_SECONDS, "warmup": $WARM, "clients": $CLIENTS, "rate": "$RATE",
           "keepalive": $KA, "slowloris": $SL, "deadline": float($DEADLINE), "fault_s": float($FAULT_S),
           "healthy_s": float($HEALTHY_S), "alive_until_end": "$alive" == "true",
           "exit_status": int(st) if st.isdigit() else st, "exit_seconds": float("$exit_secs"),
           "baseline": [${b_rss:-0}, ${b_fd:-0}], "final": [${f_rss:-0}, ${f_fd:-0}], "log_alarms": alarms},
          open(W + "/facts.json", "w"))
PYEOF

python3 "$PY" summary --work "$W"
rc=$?
[ -s "$W/py.log" ] && { echo "soak: python stderr (py.log):" >&2; tail -20 "$W/py.log" >&2; }
[ -n "${SOAK_OUT:-}" ] && cp "$W/summary.txt" "$SOAK_OUT"
[ "$rc" = 0 ] || touch "$W/keep"
exit "$rc"
