# t_admin.sh - the admin API over real HTTP (docs/admin-api.md), the journal, one-time passwords
# from the API and mscep_admin, reset, metrics.

jget() { # jget URL PYEXPR: fetch JSON and print a python expression over it (d)
    curl -s "$1" | python3 -c "import json,sys; d=json.load(sys.stdin); print($2)"
}
acode() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

t_adm_scenario_switch() {
    start_server "$T/srv" || fail "start"
    [ "$(jget "$SRV_ADMIN/healthz" "d['status']")" = ok ] || fail "healthz"
    [ "$(jget "$SRV_ADMIN/scenario" "d['name']")" = healthy ] || fail "GET /scenario"
    [ "$(jget "$SRV_ADMIN/scenarios" "len(d['scenarios'])")" -ge 22 ] || fail "GET /scenarios"
    [ "$(jget "$SRV_ADMIN/scenarios" "[s['name'] for s in d['scenarios']].count('apppool-crash-503')")" = 1 ] || fail "scenario list"
    curl -s -X PUT -d '{"name": "iis-impersonation-500"}' "$SRV_ADMIN/scenario" >"$T/put"
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['name']=='iis-impersonation-500' and d['source'].endswith('iis-impersonation-500.cfg'), d" "$T/put" || fail "PUT by name: $(cat "$T/put")"
    [ "$(acode "$SRV_URL?operation=GetCACaps")" = 500 ] || fail "switch did not take effect"
    [ "$(acode -X PUT -d '{"name": "no-such-thing"}' "$SRV_ADMIN/scenario")" = 404 ] || fail "unknown name"
    [ "$(acode -X PUT -d '{"name": "../../etc/passwd"}' "$SRV_ADMIN/scenario")" = 404 ] || fail "escaping name"
    # a scenario body; errors come back as JSON with line numbers
    printf 'summary = "from the API";\nrules = ( { match = { operation = "GetCACert"; }; action = { type = "iis"; status = 403; }; } );\n' >"$T/s.cfg"
    [ "$(acode -X PUT --data-binary @"$T/s.cfg" "$SRV_ADMIN/scenario")" = 200 ] || fail "PUT text"
    [ "$(acode "$SRV_URL?operation=GetCACert")" = 403 ] || fail "text scenario not active"
    [ "$(acode "$SRV_URL?operation=GetCACaps")" = 200 ] || fail "text scenario: healthy otherwise"
    printf 'summary = "bad";\nrules = (\n  { action = { type = "bogus"; }; }\n);\n' >"$T/bad.cfg"
    curl -s -o "$T/err.json" -w '%{http_code}' -X PUT --data-binary @"$T/bad.cfg" "$SRV_ADMIN/scenario" >"$T/code"
    [ "$(cat "$T/code")" = 400 ] || fail "bad text: $(cat "$T/code")"
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); e=d['errors'][0]; assert e['line']==3 and 'bogus' in e['message'], d" "$T/err.json" || fail "errors JSON: $(cat "$T/err.json")"
    [ "$(acode "$SRV_URL?operation=GetCACert")" = 403 ] || fail "an invalid body replaced the scenario"
    curl -s -X PUT -d '{"text": "@include \"/etc/passwd\""}' "$SRV_ADMIN/scenario" | grep -q "@include is not allowed" || fail "@include over the API"
    printf 'material = { policy_cert = "/etc/ssl/certs/ca-certificates.crt"; };\n' >"$T/esc.cfg"
    curl -s -X PUT --data-binary @"$T/esc.cfg" "$SRV_ADMIN/scenario" | grep -q "outside the scenarios folder" || fail "material outside"
    [ "$(acode -X POST "$SRV_ADMIN/scenario")" = 405 ] || fail "405"
    [ "$(acode "$SRV_ADMIN/nothing")" = 404 ] || fail "404"
}

t_adm_journal() {
    start_server "$T/srv" || fail "start"
    curl -s -o /dev/null -A 'Weird "agent" \ with <stuff>' "$SRV_URL?operation=GetCACaps&message=ca"
    make_req --challenge "$SRV_CHALLENGE" --cn 'journal "quoted" \ subject' --san "DNS:j.example" --tid 'AB/CD+EF=='
    send_req post; expect_success
    sleep 0.1
    curl -s "$SRV_ADMIN/requests" >"$T/all.json"
    python3 - "$T/all.json" "$SRV_CHALLENGE" <<'PY' || fail "journal content: $(head -c 1500 "$T/all.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["count"] == len(d["requests"]) == 2, d["count"]
caps, pki = d["requests"]
assert caps["operation"] == "GetCACaps" and caps["status"] == 200 and caps["method"] == "GET"
assert caps["user_agent"] == 'Weird "agent" \\ with <stuff>', caps["user_agent"]
assert pki["operation"] == "PKIOperation" and pki["method"] == "POST"
assert pki["message_type"] == "PKCSReq"
assert pki["transaction_id"] == "AB/CD+EF=="
assert len(pki["sender_nonce"]) == 32 and all(c in "0123456789ABCDEF" for c in pki["sender_nonce"])
assert pki["content_cipher"] == "DES-EDE3-CBC", pki["content_cipher"]
assert pki["digest"] == "SHA256", pki["digest"]
assert pki["csr_subject"] == '/CN=journal "quoted" \\ subject', pki["csr_subject"]
assert "DNS:j.example" in pki["sans"]
assert pki["key_type"] == "RSA" and pki["key_bits"] == 2048
assert pki["challenge"] == sys.argv[2]
assert pki["pki_status"] == "SUCCESS" and pki["fail_info"] is None
assert len(pki["serial"]) == 32 and pki["serial"].upper() == pki["serial"]
assert pki["duration_ms"] > 0 and pki["bytes"] > 0 and pki["request_bytes"] > 1000
PY
    # filters; the transaction ID is a path/query parameter that needs escaping
    [ "$(jget "$SRV_ADMIN/requests?operation=PKIOperation" "d['count']")" = 1 ] || fail "filter operation"
    [ "$(jget "$SRV_ADMIN/requests?transaction_id=AB%2FCD%2BEF%3D%3D" "d['count']")" = 1 ] || fail "filter transaction_id"
    [ "$(jget "$SRV_ADMIN/requests?transaction_id=nope" "d['count']")" = 0 ] || fail "filter miss"
    [ "$(jget "$SRV_ADMIN/requests?status=200&method=GET" "d['count']")" = 1 ] || fail "filter status+method"
    local id; id=$(jget "$SRV_ADMIN/requests?operation=PKIOperation" "d['requests'][0]['id']")
    curl -s "$SRV_ADMIN/requests/$id/raw" -o "$T/raw"
    head -1 "$T/raw" | grep -q "^POST /certsrv/mscep/mscep.dll?operation=PKIOperation HTTP/1.1" || fail "raw request line"
    python3 -c "
import sys
raw=open(sys.argv[1],'rb').read(); body=open(sys.argv[2],'rb').read()
assert raw.endswith(body), 'raw does not end with the body sent'" "$T/raw" "$T/req.der" || fail "raw body"
    [ "$(acode "$SRV_ADMIN/requests/999999/raw")" = 404 ] || fail "raw 404"
    [ "$(acode -X DELETE "$SRV_ADMIN/requests")" = 200 ] || fail "DELETE"
    [ "$(jget "$SRV_ADMIN/requests" "d['count']")" = 0 ] || fail "journal not cleared"
    # logs never carry the challenge
    sleep 0.3
    if grep -q "$SRV_CHALLENGE" <(tail -n +5 "$SRV_LOG"); then fail "challenge in the access log"; fi
}

t_adm_journal_secrets_off() {
    printf 'admin: { journal_secrets = false; journal_size = 3; };\n' >"$T/c.cfg"
    start_server "$T/srv" --config "$T/c.cfg" || fail "start"
    make_req --challenge "$SRV_CHALLENGE"; send_req post; expect_success
    [ "$(jget "$SRV_ADMIN/requests" "d['requests'][0]['challenge']")" = None ] || fail "secret kept"
    local i; for i in 1 2 3 4 5; do curl -s -o /dev/null "$SRV_URL?operation=GetCACaps"; done
    [ "$(jget "$SRV_ADMIN/requests" "d['count']")" = 3 ] || fail "ring size 3"
    [ "$(jget "$SRV_ADMIN/requests" "d['requests'][0]['id']")" = 4 ] || fail "oldest kept should be id 4"
}

t_adm_token() {
    printf 'admin: { token = "s3cret-token"; };\n' >"$T/c.cfg"
    start_server "$T/srv" --config "$T/c.cfg" || fail "start"
    [ "$(acode "$SRV_ADMIN/scenario")" = 401 ] || fail "no token"
    [ "$(acode -H 'Authorization: Bearer wrong' "$SRV_ADMIN/scenario")" = 401 ] || fail "wrong token"
    [ "$(acode -H 'Authorization: Bearer s3cret-token' "$SRV_ADMIN/scenario")" = 200 ] || fail "right token"
}

t_adm_certs() {
    start_server "$T/srv" --state-dir "$T/st" || fail "start"
    # a state directory of its own (so the counts are this test's): its own RA certs
    local RA_ENC=$T/ra-enc.pem RA_SIGN=$T/ra-sign.pem CA_PEM=$T/st/pki/ca.pem
    openssl x509 -in "$T/st/pki/ra-enc.pem" -out "$RA_ENC"; openssl x509 -in "$T/st/pki/ra-sign.pem" -out "$RA_SIGN"
    local i; for i in 1 2 3; do make_req --challenge "$SRV_CHALLENGE" --cn "c$i"; send_req post; expect_success >/dev/null; done
    [ "$(jget "$SRV_ADMIN/certs" "d['total']")" = 3 ] || fail "total"
    [ "$(jget "$SRV_ADMIN/certs?offset=1&limit=1" "len(d['certs'])")" = 1 ] || fail "pagination"
    [ "$(jget "$SRV_ADMIN/certs?offset=1&limit=1" "d['certs'][0]['subject']")" = /CN=c2 ] || fail "page content"
    local serial; serial=$(openssl x509 -in "$T/issued.pem" -noout -serial | cut -d= -f2)
    curl -s "$SRV_ADMIN/certs/$serial" -o "$T/got.pem"
    cmp -s <(openssl x509 -in "$T/got.pem" -outform DER) <(openssl x509 -in "$T/issued.pem" -outform DER) || fail "GET /certs/{serial}"
    [ "$(acode "$SRV_ADMIN/certs/00FF")" = 404 ] || fail "unknown serial"
    [ "$(acode "$SRV_ADMIN/certs/..%2F..%2Fpki%2Fra-sign")" = 404 ] || fail "path in serial"
}

t_adm_reset_metrics() {
    start_server "$T/srv" --scenario apppool-crash-503 || fail "start"
    local i; for i in 1 2 3 4 5; do curl -s -o /dev/null "$SRV_URL?operation=GetCACaps"; done
    [ "$(acode "$SRV_URL?operation=GetCACaps")" = 503 ] || fail "pool not stopped"
    [ "$(jget "$SRV_ADMIN/scenario" "d['pool_stopped']")" = True ] || fail "pool_stopped"
    curl -s "$SRV_ADMIN/metrics" >"$T/m"
    grep -q '^ndesmock_requests_total{operation="GetCACaps",status="0"} 5$' "$T/m" || fail "metrics: crashes as status 0: $(grep requests_total "$T/m")"
    grep -q '^ndesmock_requests_total{operation="GetCACaps",status="503"} 1$' "$T/m" || fail "metrics 503"
    grep -q '^ndesmock_scenario_info{name="apppool-crash-503"} 1$' "$T/m" || fail "scenario_info"
    grep -q '^ndesmock_app_pool_stopped 1$' "$T/m" || fail "app_pool_stopped"
    grep -q '^ndesmock_request_duration_seconds_count 6$' "$T/m" || fail "histogram count"
    [ "$(acode -X POST "$SRV_ADMIN/reset")" = 200 ] || fail "reset"
    [ "$(acode "$SRV_URL?operation=GetCACaps")" = 000 ] || fail "after reset the pool runs (and crashes) again"
    # switch to healthy and enroll: enrollments counted
    curl -s -X PUT -d '{"name":"healthy"}' "$SRV_ADMIN/scenario" >/dev/null
    make_req --challenge "$SRV_CHALLENGE"; send_req post; expect_success >/dev/null
    curl -s "$SRV_ADMIN/metrics" | grep -q '^ndesmock_enrollments_total{result="SUCCESS"} 1$' || fail "enrollments"
}

t_adm_otp() {
    printf 'challenge: { policy = "otp"; otp_max = 2; };\n' >"$T/c.cfg"
    start_server "$T/srv" --config "$T/c.cfg" || fail "start"
    [ -z "$SRV_CHALLENGE" ] || fail "otp policy has no static challenge in the ready file"
    http noauth "$SRV_BASE/certsrv/mscep_admin/"
    check "401" [ "$(status_of noauth)" = 401 ]
    grep -q "^WWW-Authenticate: Negotiate" "$T/noauth.h" && grep -q "^WWW-Authenticate: NTLM" "$T/noauth.h" || fail "challenges"
    check "401 page" [ "$(sha noauth)" = f02487f5c4b3f915572549270547145f9d93fe805b290f936e8dff7163105a4c ]
    [ "$(acode -u NDESADMIN:wrong "$SRV_BASE/certsrv/mscep_admin/")" = 401 ] || fail "bad password"
    http page "$SRV_BASE/certsrv/mscep_admin/" -u 'LAB\ndesadmin:ndesmock'
    check "200" [ "$(status_of page)" = 200 ]
    iconv -f UTF-16LE -t UTF-8 "$T/page.b" >"$T/page.txt" || fail "UTF-16LE"
    local pw; pw=$(grep -o 'The enrollment challenge password is: <B> [0-9A-F]* </B>' "$T/page.txt" | awk '{print $7}')
    [[ $pw =~ ^[0-9A-F]{16}$ ]] || fail "password format: $pw"
    grep -q "The thumbprint (hash value) for the CA certificate is: <B> [0-9A-F]\{8\} [0-9A-F]\{8\} [0-9A-F]\{8\} [0-9A-F]\{8\} </B>" "$T/page.txt" || fail "thumbprint"
    local pw2; pw2=$(jget "$SRV_ADMIN/challenges" "1" >/dev/null; curl -s -X POST "$SRV_ADMIN/challenges" | python3 -c "import json,sys; print(json.load(sys.stdin)['password'])" 2>/dev/null)
    [[ $pw2 =~ ^[0-9A-F]{16}$ ]] && [ "$pw2" != "$pw" ] || fail "POST /challenges: $pw2"
    http full "$SRV_BASE/certsrv/mscep_admin/" -u NDESADMIN:ndesmock
    iconv -f UTF-16LE -t UTF-8 "$T/full.b" | grep -q "The password cache is full." || fail "cache full page"
    [ "$(acode -X POST "$SRV_ADMIN/challenges")" = 409 ] || fail "API cache full"
    make_req --challenge "$pw" --cn otp1; send_req post; expect_success
    make_req --challenge "$pw" --cn otp1-again; send_req post; expect_failure badMessageCheck
    make_req --challenge "$pw2" --cn otp2; send_req post; expect_success
    curl -s -o /dev/null -X POST "$SRV_ADMIN/challenges"
    [ "$(acode -X POST "$SRV_ADMIN/reset")" = 200 ] || fail "reset"
    [ "$(acode -X POST "$SRV_ADMIN/challenges")" = 200 ] || fail "reset did not clear the cache"
    sleep 0.4
    cat "$SHARED_STATE"/logs/W3SVC1/u_ex*.log | grep -q "GET /certsrv/mscep_admin/ - [0-9]* - 127.0.0.1 curl/[0-9.]* - 401 2 5 " || fail "W3C 401 2 5"
    cat "$SHARED_STATE"/logs/W3SVC1/u_ex*.log | grep -q 'GET /certsrv/mscep_admin/ - [0-9]* LAB\\ndesadmin 127.0.0.1 ' || fail "W3C cs-username"
}

TESTS+=(t_adm_scenario_switch t_adm_journal t_adm_journal_secrets_off t_adm_token t_adm_certs
        t_adm_reset_metrics t_adm_otp)

t_adm_docs_ci_example() {
    NDESMOCK="$NDESMOCK_BIN" timeout 120 bash "$HERE/../../docs/examples/ci-example.sh" >"$T/out" 2>&1 || { cat "$T/out"; fail "docs/examples/ci-example.sh"; }
    grep -q "^PASS" "$T/out" || fail "example did not pass"
}
TESTS+=(t_adm_docs_ci_example)

t_adm_ntlm() {
    start_server "$T/srv" || fail "start"
    local page=$SRV_BASE/certsrv/mscep_admin/
    [ "$(curl -s --ntlm -u 'LAB\NDESADMIN:ndesmock' -o "$T/p.b" -w '%{http_code}' "$page")" = 200 ] || fail "NTLM logon"
    iconv -f UTF-16LE -t UTF-8 "$T/p.b" | grep -q "The enrollment challenge password is: <B> [0-9A-F]\{16\} </B>" || fail "password page"
    [ "$(curl -s --ntlm -u 'LAB\NDESADMIN:wrong' -o /dev/null -w '%{http_code}' "$page")" = 401 ] || fail "wrong NTLM password"
    [ "$(curl -s --ntlm -u 'someoneelse:ndesmock' -o /dev/null -w '%{http_code}' "$page")" = 401 ] || fail "wrong NTLM user"
    sleep 0.4
    cat "$SHARED_STATE"/logs/W3SVC1/u_ex*.log | grep -q 'GET /certsrv/mscep_admin/ - [0-9]* LAB\\NDESADMIN 127.0.0.1 curl/' || fail "W3C cs-username after NTLM"
}
TESTS+=(t_adm_ntlm)
