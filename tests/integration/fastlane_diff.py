#!/usr/bin/env python3
"""fastlane_diff.py FAST_BASE FAST_ADMIN FAST_STATE SLOW_BASE SLOW_ADMIN SLOW_STATE

Sends the same raw requests to two ndesmock servers, one with the fast lane
(server.fast_lane = true) and one without (every request through evhttp),
under the same scenarios, and compares what comes back byte for byte (Date
normalised), whether the connection was closed, and the W3C lines, access
log lines and journal entries the two servers wrote (times normalised).
Exits 1 with a diff of the first difference. Also checks that the fast server
did serve requests through the fast lane (its journal shows them like any
other, so this looks at the access log order of pipelined requests)."""
import concurrent.futures
import glob
import json
import re
import socket
import sys
import time
import urllib.request

FAST = sys.argv[1:4]
SLOW = sys.argv[4:7]

P = "/certsrv/mscep/mscep.dll"
H = "Host: 127.0.0.1\r\n"


def get(uri, extra=""):
    return "GET %s HTTP/1.1\r\n%s%s\r\n" % (uri, H, extra)


# (name, raw request bytes, number of complete replies expected[, indices of HEAD replies])
CASES = [
    ("caps", get(P + "?operation=GetCACaps", "User-Agent: diff/1.0\r\nAccept: */*\r\n"), 1),
    ("cacert", get(P + "?operation=GetCACert&message=ca"), 1),
    ("bare", get(P), 1),
    ("unknown-op", get(P + "?operation=GetNextCACert"), 1),
    ("redirect", get("/certsrv/mscep"), 1),
    ("redirect-query", get("/certsrv/mscep?operation=GetCACaps"), 1),
    ("admin-401", get("/certsrv/mscep_admin/"), 1),
    ("admin-basic-wrong", get("/certsrv/mscep_admin/", "Authorization: Basic eDp5\r\n"), 1),
    ("not-found", get("/nothere.aspx?x=1"), 1),
    ("cgi", get("/cgi-bin/pkiclient.exe?operation=GetCACaps"), 1),
    ("mixed-case", get("/CertSrv/MSCEP/mscep.dll?operation=GetCACaps"), 1),
    ("percent-path", get("/certsrv/mscep/mscep%2Edll?operation=GetCACaps"), 1),
    ("percent-op", get(P + "?operation=Get%43ACaps"), 1),
    ("pkiop-not-b64", get(P + "?operation=PKIOperation&message=%25%25%25***"), 1),
    ("pkiop-empty", get(P + "?operation=PKIOperation"), 1),
    ("trailing-spaces", get(P + "?operation=GetCACaps", "User-Agent:   spaced ua   \r\nReferer: r\r\n"), 1),
    ("many-headers", get(P + "?operation=GetCACaps", "".join("X-H%d: v%d\r\n" % (i, i) for i in range(30))), 1),
    ("pipelined", get(P + "?operation=GetCACaps") + get(P + "?operation=GetCACert"), 2),
    ("pipelined-3", get(P + "?operation=GetCACaps") + get("/nothere") + get(P), 3),
    ("pipelined-then-close", get(P + "?operation=GetCACaps") + get(P + "?operation=GetCACert", "Connection: close\r\n"), 2),
    ("pipelined-then-post", get(P + "?operation=GetCACaps") +
     "POST %s?operation=PKIOperation HTTP/1.1\r\n%sContent-Length: 3\r\n\r\nabc" % (P, H), 2),
    ("pipelined-then-head", get(P + "?operation=GetCACaps") + "HEAD %s?operation=GetCACaps HTTP/1.1\r\n%s\r\n" % (P, H), 2, {1}),
    ("connection-close", get(P + "?operation=GetCACaps", "Connection: close\r\n"), 1),
    ("keep-alive-1.0", "GET %s?operation=GetCACaps HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % P, 1),
    ("http-1.0", "GET %s?operation=GetCACaps HTTP/1.0\r\n\r\n" % P, 1),
    ("no-host", "GET %s?operation=GetCACaps HTTP/1.1\r\n\r\n" % P, 1),
    ("two-hosts", get(P + "?operation=GetCACaps", H), 1),
    ("tab-in-value", get(P + "?operation=GetCACaps", "User-Agent:\tx\ty\r\n"), 1),
    ("head", "HEAD %s?operation=GetCACaps HTTP/1.1\r\n%s\r\n" % (P, H), 1, {0}),
    ("long-url", get(P + "?operation=GetCACaps&pad=" + "a" * 300), 1),
    ("utf8-ua", get(P + "?operation=GetCACaps", "User-Agent: caf\xc3\xa9\r\n"), 1),
]

# Scenarios without rules, with IIS-level rules, and with every transport fault (the fast
# lane hands the socket to the fault as evhttp's path does).
SCENARIOS = [
    ("healthy", {"name": "healthy"}),
    ("short-limits", {"text": 'summary = "diff"; ndes = { max_url_bytes = 200; max_request_bytes = 600; '
                              'max_url = 40; max_query_string = 60; caps = [ "SHA-1", "DES3" ]; '
                              'caps_content_type = ""; server_header = "Microsoft-IIS/8.5"; };'}),
    ("legacy-caps", {"name": "legacy-caps"}),
    ("with-rules", {"name": "policy-cert-no-client-auth-eku-403"}),
    ("transport-faults", {"text": 'summary = "diff faults"; rules = ('
        '{ name = "part"; match = { operation = "GetCACert"; }; action = { type = "partial"; bytes = 100; }; },'
        '{ name = "cls"; match = { path = "/nothere*"; }; action = { type = "close"; }; },'
        '{ name = "rst"; match = { operation = "-"; path = "/certsrv/mscep/mscep.dll"; }; action = { type = "reset"; }; },'
        '{ name = "dly"; match = { header = "User-Agent"; header_contains = "diff"; }; '
        '  action = { type = "delay"; seconds = 0.05; then = "iis"; then_status = 503; }; },'
        '{ name = "hng"; match = { header = "Referer"; }; action = { type = "hang"; seconds = 0.3; }; },'
        '{ name = "drp"; match = { path = "/cgi-bin/*"; }; action = { type = "drip"; bytes = 100; interval = 0.02; }; },'
        '{ name = "long"; match = { min_uri_length = 250; }; action = { type = "httpsys"; status = 414; }; },'
        '{ name = "crash"; match = { operation = "PKIOperation"; }; action = { type = "crash"; }; } );'}),
]


def put_scenario(admin, body):
    req = urllib.request.Request(admin + "/scenario", data=json.dumps(body).encode(), method="PUT",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200, r.status


def replies(base, raw, n, heads):
    """Sends raw on a new connection; returns (list of replies, closed?)."""
    host, port = base.split("//")[1].rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=3)
    s.sendall(raw.encode("latin-1"))
    data, out, closed = b"", [], False
    deadline = time.time() + 3
    while time.time() < deadline:
        # parse what is there
        while True:
            head_end = data.find(b"\r\n\r\n")
            if head_end < 0:
                break
            head = data[:head_end].decode("latin-1")
            m = re.search(r"\r\nContent-Length: (\d+)", head)
            blen = int(m.group(1)) if m else 0
            if len(out) in heads:
                blen = 0  # the reply to a HEAD request
            if len(data) < head_end + 4 + blen:
                break
            out.append(data[:head_end + 4 + blen])
            data = data[head_end + 4 + blen:]
        if len(out) >= n:
            s.settimeout(0.4)  # is the connection closed after the last reply? (ASan builds are slow)
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            break
        if not b:
            closed = True
            break
        data += b
    if data:
        out.append(data)  # an incomplete reply: keep it for the comparison
    s.close()
    return [re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: D", r) for r in out], closed


def norm_w3c(path_glob):
    lines = []
    for f in sorted(glob.glob(path_glob)):
        for l in open(f, encoding="latin-1"):
            if l.startswith("#"):
                continue
            p = l.split(" ")
            del p[6]  # s-port (the two servers listen on different ports)
            lines.append(" ".join(p[2:-1]))  # date, time, time-taken out
    return lines


def norm_access(path):
    out = []
    for l in open(path, encoding="latin-1"):
        if " op=" not in l and "status=" not in l:
            continue
        l = re.sub(r"^\S+ ", "", l)
        l = re.sub(r" ms=[0-9.]+", "", l)
        out.append(l.rstrip("\n"))
    return out


def journal(admin):
    with urllib.request.urlopen(admin + "/requests", timeout=5) as r:
        reqs = json.load(r)["requests"]
    out = []
    for e in reqs:
        with urllib.request.urlopen("%s/requests/%s/raw" % (admin, e["id"]), timeout=5) as r:
            raw = r.read().decode("latin-1")
        e = {k: v for k, v in e.items() if k not in ("id", "time", "duration_ms")}
        out.append(json.dumps(e, sort_keys=True) + " raw=" + json.dumps(raw))
    return out


def main():
    bad = 0
    for sname, body in SCENARIOS:
        put_scenario(FAST[1], body)
        put_scenario(SLOW[1], body)
        for case in CASES:
            cname, raw, n = case[:3]
            heads = case[3] if len(case) > 3 else set()
            with concurrent.futures.ThreadPoolExecutor(2) as ex:
                fa = ex.submit(replies, FAST[0], raw, n, heads)
                fb = ex.submit(replies, SLOW[0], raw, n, heads)
                a, b = fa.result(), fb.result()
            if a != b:
                bad += 1
                print("DIFFERENT: scenario %s case %s" % (sname, cname))
                print("  fast lane: closed=%s %r" % (a[1], a[0]))
                print("  evhttp:    closed=%s %r" % (b[1], b[0]))
            elif len(a[0]) != n and not cname.startswith("http-1.0") and sname != "transport-faults":
                # (1.0: body until EOF; transport faults: fewer replies, as configured)
                bad += 1
                print("COUNT: scenario %s case %s: %d replies, want %d: %r" % (sname, cname, len(a[0]), n, a[0]))
    time.sleep(0.6)  # the logs are flushed every 200 ms
    pairs = [("W3C log", norm_w3c(FAST[2] + "/logs/W3SVC1/*.log"), norm_w3c(SLOW[2] + "/logs/W3SVC1/*.log")),
             ("access log", norm_access(sys.argv[7]), norm_access(sys.argv[8])),
             ("journal", journal(FAST[1]), journal(SLOW[1]))]
    for what, a, b in pairs:
        if a != b:
            bad += 1
            print("DIFFERENT %s (%d vs %d lines)" % (what, len(a), len(b)))
            for x, y in zip(a, b):
                if x != y:
                    print("  fast lane: %s\n  evhttp:    %s" % (x, y))
                    break
        elif not a:
            bad += 1
            print("EMPTY %s" % what)
    print("compared %d scenarios x %d cases; %d differences" % (len(SCENARIOS), len(CASES), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
