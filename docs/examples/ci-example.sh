#!/usr/bin/env bash
# ci-example.sh - ndesmock as a CI fixture: start on free ports, enroll, flip to
# apppool-crash-503 mid-test, assert what the device saw and what the journal recorded.
# Usage: NDESMOCK=path/to/ndesmock bash ci-example.sh   (needs curl, python3, scepclient)
set -euo pipefail
NDESMOCK=${NDESMOCK:-build/ndesmock}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT

"$NDESMOCK" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --state-dir "$work/state" \
    --ready-file "$work/ready.json" 2>"$work/ndesmock.log" &
pid=$!
# the first start in a fresh state directory generates the lab PKI (a few seconds)
for _ in $(seq 600); do [ -s "$work/ready.json" ] && break; sleep 0.05; done
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$work/ready.json" "$1"; }
scep=$(field scep_url); admin=$(field admin_url); challenge=$(field challenge)

# 1. healthy: the device enrolls
scepclient -server-url "$scep" -challenge "$challenge" -private-key "$work/key.pem" \
    -certificate "$work/cert.pem" -cn device-1 >/dev/null 2>&1
openssl verify -CAfile "$(field ca_cert_path)" "$work/cert.pem"

# 2. flip the server into the app-pool crash loop
curl -sf -X PUT -d '{"name": "apppool-crash-503"}' "$admin/scenario" >/dev/null
rm -f "$work/cert.pem"
if scepclient -server-url "$scep" -challenge "$challenge" -private-key "$work/key.pem" \
    -certificate "$work/cert.pem" -cn device-1 >"$work/client.out" 2>&1; then
    echo "FAIL: the device enrolled against a crashing server"; exit 1
fi
# the device gave up; after 5 crashes every request gets HTTP.sys 503
for _ in 1 2 3 4 5; do curl -s -o /dev/null "$scep?operation=GetCACaps" || true; done
code=$(curl -s -o /dev/null -w '%{http_code}' "$scep?operation=GetCACaps")
[ "$code" = 503 ] || { echo "FAIL: want 503, got $code"; exit 1; }

# 3. assert on the journal: one successful PKCSReq, then requests with no reply
curl -sf "$admin/requests" | python3 -c '
import json, sys
reqs = json.load(sys.stdin)["requests"]
ok = [r for r in reqs if r.get("message_type") == "PKCSReq" and r.get("pki_status") == "SUCCESS"]
crashed = [r for r in reqs if r["scenario"] == "apppool-crash-503" and r["status"] is None]
assert len(ok) == 1, ok
assert len(crashed) == 5, [(r["id"], r["status"]) for r in reqs]
assert reqs[-1]["status"] == 503
print("journal ok:", len(reqs), "requests")'
echo "PASS"
