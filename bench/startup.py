#!/usr/bin/env python3
"""startup.py - time from exec to the first answered GetCACaps, N runs.

    startup.py --runs N --port P --path /scep [--timeout S] -- CMD ARGS...

Each run: take the clock, spawn CMD (stdout/stderr to /dev/null), then try
every 0.5 ms to connect to 127.0.0.1:P and GET PATH?operation=GetCACaps; the
first complete 200 answer stops the clock. The server then gets SIGTERM
(SIGKILL after 5 s). Prints one line: "median_ms=.. min_ms=.. max_ms=.. runs=.."
or "failed=..." on stderr when a run never got an answer within --timeout.
"""
import argparse
import socket
import statistics
import subprocess
import sys
import time


def try_once(port, req):
    s = socket.create_connection(("127.0.0.1", port), timeout=1.0)
    try:
        s.sendall(req)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                clen = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        clen = int(v.strip())
                if len(body) >= clen:
                    break
        return data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200")
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    req = ("GET %s?operation=GetCACaps HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
           "Connection: close\r\n\r\n" % (a.path, a.port)).encode()
    times = []
    for _ in range(a.runs):
        t0 = time.perf_counter_ns()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        ok = False
        try:
            while time.perf_counter_ns() - t0 < a.timeout * 1e9:
                try:
                    if try_once(a.port, req):
                        ok = True
                        break
                except OSError:
                    pass
                if p.poll() is not None:
                    break
                time.sleep(0.0005)
            t1 = time.perf_counter_ns()
        finally:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if not ok:
            print("failed=1 exit=%s" % p.returncode, file=sys.stderr)
            return 1
        times.append((t1 - t0) / 1e6)
        time.sleep(0.05)
    print("median_ms=%.2f min_ms=%.2f max_ms=%.2f runs=%d"
          % (statistics.median(times), min(times), max(times), len(times)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
