#!/usr/bin/env python3
"""hold_conns.py - open N keep-alive connections, send one GetCACaps on each,
wait for the answers, then report the server's RSS while all are held open.

    hold_conns.py --port P --path /scep --pid SERVER_PID [--count 1000] [--timeout 20]

Raises its own open-file limit (not the server's). Prints one line:
    answered=N opened=N rss_kb=N rss_before_kb=N
Every wait is bounded by --timeout; all sockets are closed on exit.
"""
import argparse
import resource
import selectors
import socket
import sys
import time


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=20.0)
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    req = ("GET %s?operation=GetCACaps HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
           "Connection: keep-alive\r\n\r\n" % (a.path, a.port)).encode()
    before = rss_kb(a.pid)
    sel = selectors.DefaultSelector()
    socks, state = [], {}
    deadline = time.monotonic() + a.timeout
    opened = 0
    for _ in range(a.count):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError:
            break
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", a.port))
        socks.append(s)
        state[s] = ["connecting", b""]
        sel.register(s, selectors.EVENT_WRITE)
        opened += 1
    answered = 0
    pending = opened
    while pending > 0 and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=0.2):
            s = key.fileobj
            st = state[s]
            if st[0] == "connecting":
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    sel.unregister(s)
                    st[0] = "dead"
                    pending -= 1
                    continue
                try:
                    s.send(req)
                except OSError:
                    sel.unregister(s)
                    st[0] = "dead"
                    pending -= 1
                    continue
                st[0] = "reading"
                sel.modify(s, selectors.EVENT_READ)
            elif st[0] == "reading":
                try:
                    chunk = s.recv(65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    sel.unregister(s)
                    st[0] = "dead"
                    pending -= 1
                    continue
                st[1] += chunk
                head, sep, body = st[1].partition(b"\r\n\r\n")
                if sep:
                    clen = 0
                    for line in head.split(b"\r\n")[1:]:
                        k, _, v = line.partition(b":")
                        if k.strip().lower() == b"content-length":
                            clen = int(v.strip())
                    if len(body) >= clen:
                        sel.unregister(s)
                        st[0] = "held"
                        pending -= 1
                        if head.startswith(b"HTTP/1.1 200"):
                            answered += 1
    time.sleep(1.0)  # let the server settle with every connection idle
    rss = rss_kb(a.pid)
    still = 0
    for s in socks:  # a held connection the server closed reads EOF
        if state[s][0] != "held":
            continue
        try:
            s.setblocking(False)
            d = s.recv(1, socket.MSG_PEEK)
            if d:
                still += 1
        except BlockingIOError:
            still += 1
        except OSError:
            pass
    print("answered=%d opened=%d still_open=%d rss_kb=%d rss_before_kb=%d"
          % (answered, opened, still, rss, before))
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
