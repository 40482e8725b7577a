#!/usr/bin/env bash
# fuzz/record-clients.sh NDESMOCK_BIN PKIDIR OUTDIR - seeds from real clients.
#
# Starts ndesmock on loopback with the fuzz lab PKI (PKIDIR, so the fuzz targets
# can decrypt what was recorded), lets the real clients of the integration
# tests enroll (micromdm scepclient, strongSwan pki --scep aes and des3,
# certmonger scep-submit; tests/integration/lib/clients.sh drives them), then
# takes every PKIOperation they sent from the admin API's request journal:
#   OUTDIR/real-<n>-<client>.der   a POST body (the DER pkiMessage)
#   OUTDIR/real-<n>-<client>.txt   a GET's still-escaped message= value
# (fuzz_pkioperation reads anything not starting with 0x30 as the latter).
# Clients that are not installed are skipped; the script never fails the
# caller for a client (exit 0 unless the server cannot start). Every wait is
# bounded; the server is stopped on exit.
set -u
BIN=$1
PKI=$2
OUT=$3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d /tmp/ndesmock-record.XXXXXX)
SRV=''
cleanup() {
    if [ -n "$SRV" ]; then
        kill -TERM "$SRV" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$SRV" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SRV" 2>/dev/null
        wait "$SRV" 2>/dev/null
    fi
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$W/st" "$OUT"
cp -r "$PKI" "$W/st/pki"
"$BIN" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --state-dir "$W/st" \
    --ready-file "$W/ready.json" >/dev/null 2>"$W/server.log" &
SRV=$!
for _ in $(seq 1 200); do [ -s "$W/ready.json" ] && break; sleep 0.05; done
[ -s "$W/ready.json" ] || { echo "record-clients: ndesmock did not start" >&2; exit 1; }
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$W/ready.json" "$1"; }
URL=$(field scep_url)
CH=$(field challenge)
ADMIN=$(field admin_url)

# shellcheck source=../tests/integration/lib/clients.sh
. "$ROOT/tests/integration/lib/clients.sh"
SCEP_CLIENT_TIMEOUT=30
if command -v scepclient >/dev/null; then
    scep_micromdm "$URL" "$CH" "$W/micromdm" >/dev/null 2>&1 || echo "record-clients: micromdm failed" >&2
fi
if command -v pki >/dev/null; then
    scep_strongswan "$URL" "$CH" "$W/ss-aes" aes >/dev/null 2>&1 || echo "record-clients: strongSwan aes failed" >&2
    scep_strongswan "$URL" "$CH" "$W/ss-des3" des3 >/dev/null 2>&1 || echo "record-clients: strongSwan des3 failed" >&2
fi
if [ -x /usr/lib/certmonger/scep-submit ]; then
    scep_certmonger_submit "$URL" "$CH" "$W/certmonger" >/dev/null 2>&1 || echo "record-clients: certmonger failed" >&2
fi

# The journal: every PKIOperation, by user agent; the raw request as received.
curl -sS --max-time 10 "$ADMIN/requests?operation=PKIOperation" >"$W/requests.json" || exit 0
python3 - "$W/requests.json" "$ADMIN" "$OUT" <<'EOF'
import json, re, sys, urllib.request
reqs = json.load(open(sys.argv[1]))["requests"]
admin, out = sys.argv[2], sys.argv[3]
n = 0
for r in reqs:
    # micromdm sends Go's user agent; strongSwan and certmonger send none
    ua = (r.get("user_agent") or "").lower()
    who = "micromdm" if "go-http-client" in ua else \
        f"{r.get('method', 'x').lower()}-{(r.get('content_cipher') or 'x').lower()}"
    raw = urllib.request.urlopen(f"{admin}/requests/{r['id']}/raw", timeout=10).read()
    head, _, body = raw.partition(b"\r\n\r\n")
    if head.startswith(b"POST") and body[:1] == b"\x30":
        path, data = f"{out}/real-{n:02d}-{who}.der", body
    else:
        m = re.search(rb"[?&]message=([^& ]*)", head.split(b"\r\n")[0])
        if not m:
            continue
        path, data = f"{out}/real-{n:02d}-{who}.txt", m.group(1)
    open(path, "wb").write(data)
    n += 1
print(f"record-clients: {n} PKIOperation messages from real clients")
EOF
exit 0
