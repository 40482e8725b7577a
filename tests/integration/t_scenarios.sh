# t_scenarios.sh - every shipped scenario, started from its file, asserted on the wire, in the
# IIS/HTTPERR/event logs and (where a real client is involved) on how the client fails.
# Sourced by run.sh. Scenario delays run under --time-scale 0.01.

SCEN_DIR=$HERE/../../scenarios
W3C() { sleep 0.35; cat "$SHARED_STATE"/logs/W3SVC1/u_ex*.log; }
HTTPERR() { sleep 0.35; cat "$SHARED_STATE/logs/HTTPERR/httperr1.log"; }
EVENTS() { sleep 0.35; cat "$SHARED_STATE/logs/events.log"; }
# a marker User-Agent per test so shared log files can be grepped for this test's lines
ua() { echo "ndesmock-test/$1"; }
sha() { sha256sum <"$T/$1.b" | cut -c1-64; }
start_scn() { start_server "$T/srv" --scenario "$1" --time-scale 0.01 --seed 7 "${@:2}" || fail "server did not start with $1: $(cat "$T/srv/server.log")"; }

t_scn_all_files_valid() {
    local f n=0
    for f in "$SCEN_DIR"/*.cfg; do
        "$NDESMOCK_BIN" --check "$f" --state-dir "$SHARED_STATE" >/dev/null 2>"$T/err" || fail "$f: $(cat "$T/err")"
        grep -q '^# Symptom:' "$f" && grep -q '^# Root cause:' "$f" && grep -q '^# Fix:' "$f" || fail "$f lacks its header comment"
        n=$((n + 1))
    done
    [ $n -ge 22 ] || fail "only $n scenario files"
    "$NDESMOCK_BIN" --list-scenarios --state-dir "$SHARED_STATE" >"$T/list" || fail "--list-scenarios"
    [ "$(wc -l <"$T/list")" = $n ] || fail "--list-scenarios lists $(wc -l <"$T/list") of $n"
    grep -q "^apppool-crash-503 " "$T/list" || fail "list format"
}

t_scn_check_errors() {
    printf 'summary = "x";\nrules = (\n  { match = { operation = "GetCACaps"; bogus = 1; };\n    action = { type = "iis"; }; }\n);\n' >"$T/a.cfg"
    "$NDESMOCK_BIN" --check "$T/a.cfg" --state-dir "$SHARED_STATE" 2>"$T/e"; [ $? = 2 ] || fail "unknown key: exit"
    grep -q "a.cfg:3: unknown setting 'match.bogus'" "$T/e" || fail "unknown key: $(cat "$T/e")"
    printf 'rules = ( { action = { type = "explode"; }; } );\n' >"$T/b.cfg"
    "$NDESMOCK_BIN" --check "$T/b.cfg" --state-dir "$SHARED_STATE" 2>"$T/e"; [ $? = 2 ] || fail "bad action: exit"
    grep -q 'b.cfg:1: unknown action type "explode"' "$T/e" || fail "bad action: $(cat "$T/e")"
    printf 'rules = ( { match = { probability = "high"; }; action = { type = "close"; }; } );\n' >"$T/c.cfg"
    "$NDESMOCK_BIN" --check "$T/c.cfg" --state-dir "$SHARED_STATE" 2>"$T/e"; [ $? = 2 ] || fail "wrong type: exit"
    grep -q "c.cfg:1: 'probability' must be a number" "$T/e" || fail "wrong type: $(cat "$T/e")"
    printf 'material = { policy_cert = "state:../../../../etc/ssl/certs/ca-certificates.crt"; };\n' >"$T/d.cfg"
    "$NDESMOCK_BIN" --check "$T/d.cfg" --state-dir "$SHARED_STATE" 2>"$T/e"; [ $? = 2 ] || fail "escape: exit"
    grep -q "outside the scenarios folder and the state directory" "$T/e" || fail "escape: $(cat "$T/e")"
    printf '@include "/etc/passwd"\n' >"$T/e.cfg"
    "$NDESMOCK_BIN" --check "$T/e.cfg" --state-dir "$SHARED_STATE" 2>"$T/e"; [ $? = 2 ] || fail "@include: exit"
    grep -q "@include is not allowed" "$T/e" || fail "@include: $(cat "$T/e")"
    printf 'rules = ( { action = { type = "delay"; seconds = 1.0;\n  then = "httpsys"; then_status = 500; }; } );\n' >"$T/f.cfg"
    "$NDESMOCK_BIN" --check "$T/f.cfg" --state-dir "$SHARED_STATE" 2>"$T/e"; [ $? = 2 ] || fail "then_status: exit"
    grep -q "f.cfg:1: then_status after httpsys must be 400, 414 or 503" "$T/e" || fail "then_status: $(cat "$T/e")"
    "$NDESMOCK_BIN" --scenario no-such-scenario --listen 127.0.0.1:0 --state-dir "$SHARED_STATE" 2>"$T/e"; [ $? = 2 ] || fail "unknown scenario must exit 2"
}

t_scn_connector_not_installed() {
    start_scn connector-not-installed
    http bare "$SRV_URL" -A "$(ua cni)"
    check "200" [ "$(status_of bare)" = 200 ]
    iconv -f UTF-16LE -t UTF-8 "$T/bare.b" >"$T/bare.txt" || fail "not UTF-16LE"
    grep -q "This URL is used by network devices to submit certificate requests." "$T/bare.txt" || fail "landing text"
    grep -q "<Title>Network Device Enrollment Service</Title>" "$T/bare.txt" || fail "title"
    http caps "$SRV_URL?operation=GetCACaps"; check "caps still 200" [ "$(status_of caps)" = 200 ]
    W3C | grep -q "GET /certsrv/mscep/mscep.dll - [0-9]* - 127.0.0.1 ndesmock-test/cni - 200 0 0 " || fail "W3C line"
}

t_scn_iis_impersonation_500() {
    start_scn iis-impersonation-500
    http ca "$SRV_URL?operation=GetCACert&message=SCEP%20Authority" -A "profiled/1.0 CFNetwork/811.5.4 Darwin/16.6.0 $(ua imp)"
    check "500" [ "$(status_of ca)" = 500 ]
    check "500 page" [ "$(sha ca)" = e1b0a10649c4b92f828523efc2ebe135ea9488179a2816888d1e84f786202dbf ]
    W3C | grep -q "GET /certsrv/mscep/mscep.dll operation=GetCACert&message=SCEP%20Authority [0-9]* - 127.0.0.1 profiled/1.0+CFNetwork/811.5.4+Darwin/16.6.0+ndesmock-test/imp - 500 0 1346 [0-9]*" || fail "W3C 500 0 1346 line: $(W3C | tail -3)"
    scep_micromdm "$SRV_URL" "$SRV_CHALLENGE" "$T/c"; local rc=$?
    [ $rc != 0 ] || fail "scepclient succeeded"
    grep -q "500" "$T/c/client.log" || fail "scepclient does not report the 500: $(tail -3 "$T/c/client.log")"
}

crash_then_503() { # crash_then_503 OP [curl args]: 5 crashes (no reply), then HTTP.sys 503
    local i rc
    for i in 1 2 3 4 5; do
        curl -s -o /dev/null "$SRV_URL?operation=$1" "${@:2}"; rc=$?
        [ $rc = 52 ] || fail "request $i: curl exit $rc, want 52 (empty reply)"
    done
    http p503 "$SRV_URL?operation=GetCACaps"
    check "503" [ "$(status_of p503)" = 503 ]
    check "503 page bytes" [ "$(sha p503)" = fb2d9f058c2010c57f86a05ae33d282f33e3825290c66b8b120cd177416c6bdf ]
    check "HTTPAPI server" [ "$(header_of p503 Server)" = Microsoft-HTTPAPI/2.0 ]
    check "Connection: close" [ "$(header_of p503 Connection)" = close ]
    check "header order" [ "$(sed -n '2,6p' "$T/p503.h" | cut -d: -f1 | tr '\n' ' ')" = "Content-Type Server Date Connection Content-Length " ]
    HTTPERR | grep -q "GET /certsrv/mscep/mscep.dll?operation=GetCACaps - 503 1 AppOffline SCEP" || fail "HTTPERR AppOffline line"
    HTTPERR | grep -q "Connection_Abandoned_By_AppPool SCEP" || fail "HTTPERR abandoned line"
}

t_scn_apppool_crash_503() {
    start_scn apppool-crash-503
    crash_then_503 GetCACaps
    [ "$(EVENTS | grep -c "	1000	Application Error	Error	Faulting application name: w3wp.exe")" -ge 5 ] || fail "event 1000 lines"
    scep_micromdm "$SRV_URL" "$SRV_CHALLENGE" "$T/c"; [ $? != 0 ] || fail "scepclient succeeded"
    grep -q "503" "$T/c/client.log" || fail "scepclient does not report 503: $(tail -3 "$T/c/client.log")"
}

t_scn_apppool_crash_intermediate_in_root_503() {
    start_scn apppool-crash-intermediate-in-root-503
    make_req --challenge "$SRV_CHALLENGE"
    crash_then_503 PKIOperation --data-binary @"$T/req.der" -A "$(ua iir)"
    W3C | grep -q "POST /CertificateRegistrationSvc/Certificate/VerifyRequest - [0-9]* - 127.0.0.1 - - 403 16 2148204809" || fail "VerifyRequest 403.16 line"
}

t_scn_apppool_crash_crl_unreachable_503() {
    start_scn apppool-crash-crl-unreachable-503
    local t0; t0=$(date +%s%N)
    crash_then_503 GetCACert
    [ $(( ($(date +%s%N) - t0) / 1000000 )) -ge 700 ] || fail "no CRL stall (5 x 0.15 s)"
    EVENTS | grep -q "	53	Microsoft-Windows-CAPI2	Error	Retrieve Object from Network" || fail "CAPI2 53"
}

t_scn_apppool_crash_windows_auth_503() {
    start_scn apppool-crash-windows-auth-503
    crash_then_503 GetCACaps
    W3C | grep -q "POST /CertificateRegistrationSvc/Certificate/VerifyRequest - [0-9]* - 127.0.0.1 - - 401 2 5" || fail "VerifyRequest 401 line"
}

t_scn_policy_cert_expired_503() {
    start_scn policy-cert-expired-503
    crash_then_503 GetCACaps
    EVENTS | grep -q "	11	Microsoft-Windows-CAPI2	Error	.*NDESCertThumbprint is outside its validity period" || fail "CAPI2 validity event"
}

t_scn_policy_cert_no_client_auth_eku_403() {
    start_scn policy-cert-no-client-auth-eku-403
    http caps "$SRV_URL?operation=GetCACaps"; check "caps 200" [ "$(status_of caps)" = 200 ]
    make_req --challenge "$SRV_CHALLENGE"; send_req post; expect_failure badRequest
    W3C | grep -q "POST /CertificateRegistrationSvc/Certificate/VerifyRequest - [0-9]* - 127.0.0.1 - - 403 0 0" || fail "VerifyRequest 403 line"
    scep_micromdm "$SRV_URL" "$SRV_CHALLENGE" "$T/c"; [ $? = 1 ] || fail "scepclient exit"
    grep -q "failInfo: badRequest" "$T/c/client.log" || fail "scepclient message: $(tail -2 "$T/c/client.log")"
}

t_scn_uri_too_long_414() {
    start_scn uri-too-long-414
    make_req --challenge "$SRV_CHALLENGE" --cn short; send_req get-escaped; expect_success
    local pad; pad=$(head -c 17000 /dev/zero | tr '\0' 'A')
    http long "$SRV_URL?operation=PKIOperation&message=$pad"
    check "414" [ "$(status_of long)" = 414 ]
    check "414 page" [ "$(sha long)" = ef972000aa66e129b77e955e2cdfe3bc43df42c777cd3973204cafc8c4a37084 ]
    check "HTTPAPI" [ "$(header_of long Server)" = Microsoft-HTTPAPI/2.0 ]
    HTTPERR | grep -q " - 414 - URL_Length -" || fail "HTTPERR URL_Length line"
    local seg; seg=$(head -c 5000 /dev/zero | tr '\0' 'b')
    http p14 "$SRV_BASE/certsrv/mscep/$seg"
    check "404.14 status" [ "$(status_of p14)" = 404 ]
    W3C | grep -q " 404 14 0 " || fail "W3C 404 14 0"
    make_req --challenge "$SRV_CHALLENGE" --cn post; send_req post; expect_success
    # the healthy server takes the same long GET (tuned limits)
    stop_server; start_server "$T/srv2" || fail "healthy server"
    http long2 "$SRV_URL?operation=PKIOperation&message=$pad"
    [ "$(status_of long2)" = 500 ] || fail "healthy: long garbage GET reaches mscep.dll (500), got $(status_of long2)"
}

t_scn_ra_cert_expired_500() {
    start_scn ra-cert-expired-500
    http ca "$SRV_URL?operation=GetCACert&message=ca" -A "$(ua ra)"
    check "500" [ "$(status_of ca)" = 500 ]
    W3C | grep -q "operation=GetCACert&message=ca [0-9]* - 127.0.0.1 ndesmock-test/ra - 500 0 0" || fail "W3C line"
    EVENTS | grep -q "	2	Microsoft-Windows-NetworkDeviceEnrollmentService	Error	.*0x800b0101" || fail "NDES event"
    scep_strongswan "$SRV_URL" "$SRV_CHALLENGE" "$T/c" aes; [ $? != 0 ] || fail "pki enrolled"
}

t_scn_service_account_locked_500() {
    start_scn service-account-locked-500
    http caps "$SRV_URL?operation=GetCACaps" -A "$(ua sal)"
    check "500" [ "$(status_of caps)" = 500 ]
    W3C | grep -q "ndesmock-test/sal - 500 0 1909" || fail "W3C 500 0 1909"
}

t_scn_gateway_timeout_504() {
    start_scn gateway-timeout-504
    local t0; t0=$(date +%s%N)
    http gw "$SRV_URL?operation=GetCACaps" -A "$(ua gw)"
    local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    check "504" [ "$(status_of gw)" = 504 ]
    [ $ms -ge 800 ] || fail "no 85 s (scaled 0.85 s) stall: $ms ms"
    grep -q "This corporate app can't be accessed" "$T/gw.b" || fail "page"
    grep -q "Gateway Timeout" "$T/gw.b" || fail "status code text"
    if W3C | grep -q "ndesmock-test/gw"; then fail "App Proxy faults leave no IIS line"; fi
}

t_scn_app_proxy_wrong_url() {
    start_scn app-proxy-wrong-url
    http pw "$SRV_URL?operation=GetCACaps" -A "$(ua pw)"
    grep -q "This page can't be displayed" "$T/pw.b" || fail "page"
    if W3C | grep -q "ndesmock-test/pw"; then fail "no IIS line expected"; fi
}

t_scn_challenge_rejected() {
    start_scn challenge-rejected
    make_req --challenge "$SRV_CHALLENGE"; send_req post; expect_failure badMessageCheck
    reply_line | grep -q "hresult=-2147024891" || fail "hresult"
    EVENTS | grep -q "	29	Microsoft-Windows-NetworkDeviceEnrollmentService	Error	The password in the certificate request cannot be verified" || fail "event 29"
    scep_certmonger_submit "$SRV_URL" "$SRV_CHALLENGE" "$T/c"; [ $? = 2 ] || fail "scep-submit must report rejected (2)"
}

t_scn_pending_approval() {
    start_scn pending-approval
    make_req --challenge "$SRV_CHALLENGE" --tid "PEND-1"; send_req post
    reply_line | grep -q "status=PENDING .*sig_ok=1" || fail "PENDING: $(reply_line)"
    # polls with the same transaction and key stay PENDING until approved
    "$SCEPREQ" make --ra "$RA_ENC" --out "$T/req.der" --key "$T/key.pem" --cert "$T/self.pem" --type 20 --tid "PEND-1"
    send_req post; reply_line | grep -q "status=PENDING" || fail "poll PENDING: $(reply_line)"
    curl -s "$SRV_ADMIN/pending" | grep -q '"transaction_id":"PEND-1"' || fail "GET /pending"
    curl -s -X POST "$SRV_ADMIN/pending/PEND-1/approve" | grep -q '"state":"approved"' || fail "approve"
    send_req post; expect_success
    # another one, rejected
    make_req --challenge "$SRV_CHALLENGE" --tid "PEND-2"; send_req post
    curl -s -X POST "$SRV_ADMIN/pending/PEND-2/reject" | grep -q '"state":"rejected"' || fail "reject"
    "$SCEPREQ" make --ra "$RA_ENC" --out "$T/req.der" --key "$T/key.pem" --cert "$T/self.pem" --type 20 --tid "PEND-2"
    send_req post; expect_failure badRequest
    [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$SRV_ADMIN/pending/PEND-2/approve")" = 404 ] || fail "decided twice"
}

t_scn_legacy_caps() {
    start_scn legacy-caps
    http caps "$SRV_URL?operation=GetCACaps"
    [ "$(cat "$T/caps.b")" = "$(printf 'POSTPKIOperation\nRenewal\nSHA-512\nSHA-256\nSHA-1\nDES3\n')" ] || fail "caps body"
    scep_micromdm "$SRV_URL" "$SRV_CHALLENGE" "$T/m" || fail "micromdm must still enroll"
    scep_strongswan "$SRV_URL" "$SRV_CHALLENGE" "$T/s" aes; [ $? = 1 ] || fail "strongSwan 5.9.8 must refuse AES here"
    grep -q "not supported by CA" "$T/s/client.log" || fail "strongSwan message: $(tail -2 "$T/s/client.log")"
}

t_scn_template_name_mismatch() {
    start_scn template-name-mismatch
    make_req --challenge "$SRV_CHALLENGE"; send_req post; expect_failure badRequest
    reply_line | grep -q "hresult=-2146875392" || fail "0x80094800"
    EVENTS | grep -q "	31	Microsoft-Windows-NetworkDeviceEnrollmentService	Error	.*0x80094800" || fail "event 31"
}

t_scn_key_too_short() {
    start_scn key-too-short
    make_req --challenge "$SRV_CHALLENGE"; send_req post; expect_failure badRequest
    reply_line | grep -q "hresult=-2146875375" || fail "0x80094811"
    scep_strongswan "$SRV_URL" "$SRV_CHALLENGE" "$T/c" aes; [ $? = 1 ] || fail "pki must fail"
    grep -q "failInfo: *badRequest" "$T/c/client.log" || fail "pki message"
}

t_scn_ec_key_rejected() {
    start_scn ec-key-rejected
    make_req --challenge "$SRV_CHALLENGE" --key-type ec; send_req post; expect_failure badAlg
    EVENTS | grep -q "	13	Microsoft-Windows-NetworkDeviceEnrollmentService	Error	.*0xc00000bb" || fail "event 13"
    make_req --challenge "$SRV_CHALLENGE"; send_req post; expect_success
}

t_scn_ndes_2008r2_profile() {
    start_scn ndes-2008r2-profile
    http caps "$SRV_URL?operation=GetCACaps"
    check "200" [ "$(status_of caps)" = 200 ]
    check "empty body" [ "$(wc -c <"$T/caps.b")" = 0 ]
    check "IIS 7.5" [ "$(header_of caps Server)" = Microsoft-IIS/7.5 ]
    check "no Content-Type" [ -z "$(header_of caps Content-Type)" ]
    make_req --challenge "$SRV_CHALLENGE" --cipher aes256 --digest sha256; send_req post
    reply_line | grep -q "status=SUCCESS .*digest=SHA1 cipher=DES-EDE3-CBC" || fail "3DES/SHA-1 reply: $(reply_line)"
}

t_scn_ndes_2003_profile() {
    start_scn ndes-2003-profile
    curl -s -o /dev/null "$SRV_URL?operation=GetCACaps"; local rc=$?
    [ $rc = 52 ] || fail "GetCACaps: curl exit $rc, want 52"
    http ca "$SRV_URL?operation=GetCACert"
    check "GetCACert 200" [ "$(status_of ca)" = 200 ]
    check "IIS 6.0" [ "$(header_of ca Server)" = Microsoft-IIS/6.0 ]
}

TESTS+=(t_scn_all_files_valid t_scn_check_errors t_scn_connector_not_installed t_scn_iis_impersonation_500
        t_scn_apppool_crash_503 t_scn_apppool_crash_intermediate_in_root_503
        t_scn_apppool_crash_crl_unreachable_503 t_scn_apppool_crash_windows_auth_503
        t_scn_policy_cert_expired_503 t_scn_policy_cert_no_client_auth_eku_403 t_scn_uri_too_long_414
        t_scn_ra_cert_expired_500 t_scn_service_account_locked_500 t_scn_gateway_timeout_504
        t_scn_app_proxy_wrong_url t_scn_challenge_rejected t_scn_pending_approval t_scn_legacy_caps
        t_scn_template_name_mismatch t_scn_key_too_short t_scn_ec_key_rejected t_scn_ndes_2008r2_profile
        t_scn_ndes_2003_profile)
