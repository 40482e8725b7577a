# t_cycles.sh - real clients through the two multi-step NDES cycles:
#   PENDING -> approved (or rejected) on the admin API -> certificate (or FAILURE), and
#   one-time passwords from the mscep_admin page (NDES "password cache"), each good once.
# Clients: micromdm scepclient, the certmonger daemon (certmonger-session + getcert) and
# certmonger's scep-submit driven as the daemon drives it (SUBMIT, then POLL with a
# GetCertInitial). Sourced by run.sh; helpers in lib/clients.sh (certmonger_session_*,
# scep_certmonger_poll). Every wait is bounded.
#
# Client timing facts these tests are built around (see CLIENTS.md):
# - scepclient 2.1.0 on PENDING logs "sleeping for 30 seconds, then trying again.", sleeps a
#   hard-coded 30 s (time.Sleep, no flag; a static Go binary, so no faketime either) and
#   resends the very same PKCSReq (same transactionID and senderNonce) until SUCCESS/FAILURE.
#   So its cycle takes ~31 s; both of its cycles run side by side in one test.
# - the certmonger daemon on PENDING (helper exit 1) stays CA_WORKING and schedules the next
#   try 604800 s (a week) later; `getcert resubmit` makes it try at once (it resends the
#   PKCSReq with the same transactionID). Its own GetCertInitial poll is never reached in a
#   test, so the POLL step is run by hand with the real helper (t_cyc_pending_certmonger_poll).
# - certmonger never sends GetCertInitial: scep-submit 0.79.17 polls by resending the PKCSReq
#   even when the daemon hands it a GetCertInitial (CERTMONGER_GETCERTINITIAL).

CYC_SCN=$HERE/../../scenarios/pending-approval.cfg
CYC_PAGE_RE='The enrollment challenge password is: <B> [0-9A-F]\{16\} </B>'

# percent-encode one path segment (transaction IDs may hold / + =)
cyc_pct() { python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

# cyc_pending_field SUBSTRING FIELD: FIELD of the pending entry whose csr_subject contains SUBSTRING
cyc_pending_field() {
    curl -s --max-time 5 "$SRV_ADMIN/pending" | python3 -c '
import json, sys
d = json.load(sys.stdin)
for p in d.get("pending", []):
    if sys.argv[1] in p.get("csr_subject", ""):
        print(p.get(sys.argv[2], "")); break' "$1" "$2"
}

# cyc_wait_pending SECONDS SUBSTRING...: until every SUBSTRING names a pending entry
cyc_wait_pending() {
    local s ok deadline=$((SECONDS + $1))
    shift
    while :; do
        ok=1
        for s in "$@"; do [ -n "$(cyc_pending_field "$s" transaction_id)" ] || ok=0; done
        [ $ok = 1 ] && return 0
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# cyc_decide TID approve|reject: POST it, expect the new state back
cyc_decide() {
    local out
    out=$(curl -s --max-time 5 -X POST "$SRV_ADMIN/pending/$(cyc_pct "$1")/$2") || fail "admin API: $2 $1"
    echo "$2 $1 -> $out"
    case $2 in
    approve) [[ $out == *'"state":"approved"'* ]] || fail "approve $1: $out" ;;
    reject) [[ $out == *'"state":"rejected"'* ]] || fail "reject $1: $out" ;;
    esac
}

# cyc_wait_pid PID SECONDS: wait for a background job, bounded; its exit status
cyc_wait_pid() {
    local pid=$1 deadline=$((SECONDS + $2))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -- "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 124
    fi
    wait "$pid"
}

# server log lines (access log on stderr) for one transactionID, "msg scep" per line
# What the server answered for a transaction, from its access log. Each worker thread buffers
# its log lines (flushed every 200 ms), so lines of two workers are not in time order: wait for
# the flush and compare as sorted lists.
cyc_sorted() { tr ',' '\n' | grep . | sort | tr '\n' ','; }
cyc_srv_tx() { sleep 0.4; grep -F "tid=$1 " "$SRV_LOG" | sed -n 's/.* msg=\([^ ]*\) tid=[^ ]* scep=\([^ ]*\) .*/\1 \2/p' | tr '\n' ',' | cyc_sorted; }

# -------------------------------------------------------------- PENDING ---

# micromdm scepclient: two enrolments at once; one approved, one rejected while the client
# sleeps its 30 s. Approved -> the resent PKCSReq gets SUCCESS, verified certificate, exit 0.
# Rejected -> FAILURE badRequest, exit 1.
t_cyc_pending_micromdm() {
    start_server "$T/srv" --scenario pending-approval --time-scale 0.01 || fail "server: $(cat "$T/srv/server.log")"
    local pok pno rok rno tok tno t0=$SECONDS
    (SCEP_CLIENT_TIMEOUT=60 SCEP_CLIENT_CN=cyc-mdm-ok scep_micromdm "$SRV_URL" "$SRV_CHALLENGE" "$T/ok") &
    pok=$!
    (SCEP_CLIENT_TIMEOUT=60 SCEP_CLIENT_CN=cyc-mdm-no scep_micromdm "$SRV_URL" "$SRV_CHALLENGE" "$T/no") &
    pno=$!
    cyc_wait_pending 20 CN=cyc-mdm-ok CN=cyc-mdm-no || { kill $pok $pno 2>/dev/null; fail "no PENDING entries: $(curl -s "$SRV_ADMIN/pending")"; }
    curl -s "$SRV_ADMIN/pending"; echo
    tok=$(cyc_pending_field CN=cyc-mdm-ok transaction_id)
    tno=$(cyc_pending_field CN=cyc-mdm-no transaction_id)
    [ "$(cyc_pending_field CN=cyc-mdm-ok state)" = pending ] || fail "state is not pending"
    grep -q 'sleeping for 30 seconds, then trying again' "$T/ok/client.log" || fail "scepclient did not report PENDING: $(tail -3 "$T/ok/client.log")"
    cyc_decide "$tok" approve
    cyc_decide "$tno" reject
    cyc_wait_pid $pok 60; rok=$?
    cyc_wait_pid $pno 60; rno=$?
    echo "cycle took $((SECONDS - t0)) s; approved client rc $rok, rejected client rc $rno"
    [ $rok = 0 ] || fail "approved: scepclient rc $rok: $(tail -5 "$T/ok/client.log")"
    openssl verify -CAfile "$SRV_CA" "$T/ok/issued.pem" || fail "issued cert does not verify"
    openssl x509 -in "$T/ok/issued.pem" -noout -subject | grep -q 'CN *= *cyc-mdm-ok' || fail "issued subject"
    [ "$(grep -c 'pkiStatus=PENDING' "$T/ok/client.log")" -ge 1 ] || fail "no PENDING in the client log"
    grep -q 'pkiStatus=SUCCESS' "$T/ok/client.log" || fail "no SUCCESS in the client log"
    [ $rno = 1 ] || fail "rejected: scepclient rc $rno (want 1): $(tail -3 "$T/no/client.log")"
    grep -q 'PKCSReq (19) request failed, failInfo: badRequest (2)' "$T/no/client.log" || fail "rejected message: $(tail -2 "$T/no/client.log")"
    # on the wire: the same PKCSReq again (no GetCertInitial) -> PENDING, then SUCCESS / FAILURE
    echo "server: ok=$(cyc_srv_tx "$tok") no=$(cyc_srv_tx "$tno")"
    [[ "$(cyc_srv_tx "$tok")" == "$(printf '%s' "PKCSReq PENDING,PKCSReq SUCCESS," | cyc_sorted)" ]] || fail "server saw for the approved one: $(cyc_srv_tx "$tok")"
    [[ "$(cyc_srv_tx "$tno")" == "$(printf '%s' "PKCSReq PENDING,PKCSReq FAILURE," | cyc_sorted)" ]] || fail "server saw for the rejected one: $(cyc_srv_tx "$tno")"
}

# certmonger daemon: two requests go CA_WORKING (PENDING); one approved, one rejected on the
# admin API; `getcert resubmit` -> MONITORING with a verified certificate / CA_REJECTED.
# (The body runs in a subshell so that the daemon is stopped whatever happens, without an
# EXIT trap: run.sh's own EXIT trap in the test subshell kills the test's servers.)
t_cyc_pending_certmonger_daemon() {
    start_server "$T/srv" --scenario pending-approval --time-scale 0.01 || fail "server: $(cat "$T/srv/server.log")"
    local w=$T/cm rc
    SCEP_CERTMONGER_DEBUG=3 certmonger_session_start "$w"; rc=$?
    [ $rc = 0 ] && { (cyc_pending_certmonger_daemon_body "$w"); rc=$?; }
    certmonger_session_stop "$w"
    [ $rc = 0 ] || fail "(certmonger-session stopped; rc $rc)"
}
cyc_pending_certmonger_daemon_body() {
    local w=$1 st tok tno
    certmonger_getcert "$w" add-scep-ca -c ndesmock -u "$SRV_URL" || fail "add-scep-ca"
    certmonger_getcert "$w" request -c ndesmock -I cyc-ok -k "$w/ok-key.pem" -f "$w/ok-cert.pem" \
        -N CN=cyc-cm-ok -L "$SRV_CHALLENGE" -R || fail "request cyc-ok"
    certmonger_getcert "$w" request -c ndesmock -I cyc-no -k "$w/no-key.pem" -f "$w/no-cert.pem" \
        -N CN=cyc-cm-no -L "$SRV_CHALLENGE" -R || fail "request cyc-no"
    st=$(certmonger_wait_status "$w" cyc-ok 30 CA_WORKING) || fail "cyc-ok: status $st, want CA_WORKING"
    st=$(certmonger_wait_status "$w" cyc-no 30 CA_WORKING) || fail "cyc-no: status $st, want CA_WORKING"
    cyc_wait_pending 10 /CN=cyc-cm-ok /CN=cyc-cm-no || fail "no PENDING entries: $(curl -s "$SRV_ADMIN/pending")"
    curl -s "$SRV_ADMIN/pending"; echo
    tok=$(cyc_pending_field /CN=cyc-cm-ok transaction_id)
    tno=$(cyc_pending_field /CN=cyc-cm-no transaction_id)
    # the daemon's own next try is a week away
    grep -q "('cyc-ok') in 604800 seconds" "$w/daemon.log" || fail "daemon did not schedule the 1-week retry: $(grep -i revisit "$w/daemon.log" | tail -3)"
    # a resubmit before the decision: still PENDING, still CA_WORKING
    certmonger_getcert "$w" resubmit -i cyc-ok || fail "resubmit"
    local deadline=$((SECONDS + 15))
    until [[ "$(cyc_srv_tx "$tok")" == "PKCSReq PENDING,PKCSReq PENDING,"* ]] || ((SECONDS >= deadline)); do sleep 0.2; done
    st=$(certmonger_wait_status "$w" cyc-ok 10 CA_WORKING) || fail "after early resubmit: $st"
    cyc_decide "$tok" approve
    cyc_decide "$tno" reject
    certmonger_getcert "$w" resubmit -i cyc-ok || fail "resubmit cyc-ok"
    certmonger_getcert "$w" resubmit -i cyc-no || fail "resubmit cyc-no"
    st=$(certmonger_wait_status "$w" cyc-ok 30 MONITORING) || fail "cyc-ok: status $st, want MONITORING: $(certmonger_getcert "$w" list -i cyc-ok | grep ca-error)"
    st=$(certmonger_wait_status "$w" cyc-no 30 CA_REJECTED) || fail "cyc-no: status $st, want CA_REJECTED"
    openssl verify -CAfile "$SRV_CA" "$w/ok-cert.pem" || fail "issued cert does not verify"
    certmonger_getcert "$w" list -i cyc-no | grep -q "ca-error: Transaction either is not permitted or is not supported by server." ||
        fail "cyc-no ca-error: $(certmonger_getcert "$w" list -i cyc-no | grep ca-error)"
    [ ! -s "$w/no-cert.pem" ] || fail "a certificate for the rejected request"
    echo "server: ok=$(cyc_srv_tx "$tok") no=$(cyc_srv_tx "$tno")"
    [[ "$(cyc_srv_tx "$tok")" == "$(printf '%s' "PKCSReq PENDING,PKCSReq PENDING,PKCSReq SUCCESS," | cyc_sorted)" ]] || fail "server saw for cyc-ok: $(cyc_srv_tx "$tok")"
    [[ "$(cyc_srv_tx "$tno")" == "$(printf '%s' "PKCSReq PENDING,PKCSReq FAILURE," | cyc_sorted)" ]] || fail "server saw for cyc-no: $(cyc_srv_tx "$tno")"
}

# certmonger's scep-submit as the daemon runs it: SUBMIT (exit 1 = wait) then POLL (which
# resends the PKCSReq, see above) for the same transaction:
#   a) auto-approval after N polls (scenario copy with approve_after_polls = 2), twice
#   b) the certmonger-built GetCertInitial sent by hand (CertPoll -> PENDING), admin approve,
#      POLL -> issued; c) admin reject -> POLL exit 2
#   d) time-based approve_after = 30 s (x 0.01 = 0.3 s)
t_cyc_pending_certmonger_poll() {
    sed 's/approve_after_polls = 0;/approve_after_polls = 2;/' "$CYC_SCN" >"$T/after-polls.cfg"
    grep -q 'approve_after_polls = 2;' "$T/after-polls.cfg" || fail "could not edit $CYC_SCN"
    start_server "$T/srv" --scenario "$T/after-polls.cfg" --time-scale 0.01 || fail "server: $(cat "$T/srv/server.log")"
    local rc i tid

    # a) approved by itself on the 2nd poll
    SCEP_CLIENT_CN=cyc-poll-a scep_certmonger_submit "$SRV_URL" "$SRV_CHALLENGE" "$T/a"; rc=$?
    [ $rc = 1 ] || fail "a: SUBMIT rc $rc, want 1 (wait): $(tail -3 "$T/a/client.log")"
    tid=$(cat "$T/a/txid")
    [ "$(cyc_pending_field /CN=cyc-poll-a transaction_id)" = "$tid" ] || fail "a: pending entry: $(curl -s "$SRV_ADMIN/pending")"
    for i in 1 2 3; do
        scep_certmonger_poll "$SRV_URL" "$T/a"; rc=$?
        echo "a: POLL $i -> rc $rc (server polls=$(cyc_pending_field /CN=cyc-poll-a polls))"
        [ $rc = 1 ] || break
    done
    [ $rc = 0 ] || fail "a: POLL rc $rc: $(tail -5 "$T/a/client.log")"
    [ $i = 2 ] || fail "a: issued on poll $i, want 2 (approve_after_polls = 2)"
    openssl verify -CAfile "$SRV_CA" "$T/a/issued.pem" || fail "a: cert does not verify"
    echo "server a: $(cyc_srv_tx "$tid")"
    [[ "$(cyc_srv_tx "$tid")" == "$(printf '%s' "PKCSReq PENDING,PKCSReq PENDING,PKCSReq SUCCESS," | cyc_sorted)" ]] || fail "a: server saw $(cyc_srv_tx "$tid")"

    # a2) a second request gets its own count: it takes 2 polls as well (a fresh entry starts
    # at 0; a stale count left in the table slot by request a would approve it on its 1st poll)
    SCEP_CLIENT_CN=cyc-poll-a2 scep_certmonger_submit "$SRV_URL" "$SRV_CHALLENGE" "$T/a2"; rc=$?
    [ $rc = 1 ] || fail "a2: SUBMIT rc $rc"
    [ "$(cyc_pending_field /CN=cyc-poll-a2 polls)" = 0 ] || fail "a2: new pending entry shows polls=$(cyc_pending_field /CN=cyc-poll-a2 polls), want 0: $(curl -s "$SRV_ADMIN/pending")"
    scep_certmonger_poll "$SRV_URL" "$T/a2"; rc=$?
    [ $rc = 1 ] || fail "a2: POLL 1 rc $rc, want 1 (still pending)"
    scep_certmonger_poll "$SRV_URL" "$T/a2"; rc=$?
    [ $rc = 0 ] || fail "a2: POLL 2 rc $rc, want 0"
    openssl verify -CAfile "$SRV_CA" "$T/a2/issued.pem" || fail "a2: cert does not verify"

    # b) approved on the admin API (no auto-approval from here on)
    stop_server
    start_server "$T/srv-b" --scenario pending-approval --time-scale 0.01 || fail "server b: $(cat "$T/srv-b/server.log")"
    SCEP_CLIENT_CN=cyc-poll-b scep_certmonger_submit "$SRV_URL" "$SRV_CHALLENGE" "$T/b"; rc=$?
    [ $rc = 1 ] || fail "b: SUBMIT rc $rc"
    scep_certmonger_poll "$SRV_URL" "$T/b"; rc=$?
    [ $rc = 1 ] || fail "b: first POLL rc $rc, want 1"
    # the GetCertInitial the daemon would hand the helper, sent by hand: CertPoll -> PENDING
    curl -s --max-time 10 -o "$T/b/gci-reply.der" --data-binary @"$T/b/getcertinitial.der" \
        -H 'Content-Type: application/x-pki-message' "$SRV_URL?operation=PKIOperation" || fail "b: POST GetCertInitial"
    "$SCEPREQ" reply --in "$T/b/gci-reply.der" --ra-sign "$RA_SIGN" --key "$T/b/key.pem" --cert "$T/b/signer.pem" >"$T/b/gci-reply.txt" ||
        fail "b: GetCertInitial reply is not a CertRep"
    grep -q 'status=PENDING .*sig_ok=1' "$T/b/gci-reply.txt" || fail "b: GetCertInitial: $(cat "$T/b/gci-reply.txt")"
    [ "$(cyc_pending_field /CN=cyc-poll-b polls)" = 2 ] || fail "b: polls $(cyc_pending_field /CN=cyc-poll-b polls), want 2"
    cyc_decide "$(cat "$T/b/txid")" approve
    scep_certmonger_poll "$SRV_URL" "$T/b"; rc=$?
    [ $rc = 0 ] || fail "b: POLL after approve rc $rc: $(tail -5 "$T/b/client.log")"
    openssl verify -CAfile "$SRV_CA" "$T/b/issued.pem" || fail "b: cert does not verify"
    echo "server b: $(cyc_srv_tx "$(cat "$T/b/txid")")"
    [[ "$(cyc_srv_tx "$(cat "$T/b/txid")")" == "$(printf '%s' "PKCSReq PENDING,PKCSReq PENDING,CertPoll PENDING,PKCSReq SUCCESS," | cyc_sorted)" ]] || fail "b: server saw $(cyc_srv_tx "$(cat "$T/b/txid")")"

    # c) rejected on the admin API: the helper reports rejected (2) with the failInfo text
    SCEP_CLIENT_CN=cyc-poll-c scep_certmonger_submit "$SRV_URL" "$SRV_CHALLENGE" "$T/c"; rc=$?
    [ $rc = 1 ] || fail "c: SUBMIT rc $rc"
    cyc_decide "$(cat "$T/c/txid")" reject
    scep_certmonger_poll "$SRV_URL" "$T/c"; rc=$?
    [ $rc = 2 ] || fail "c: POLL after reject rc $rc, want 2: $(tail -5 "$T/c/client.log")"
    grep -q 'Transaction either is not permitted or is not supported by server.' "$T/c/poll.out" || fail "c: message: $(cat "$T/c/poll.out")"

    # d) time-based auto-approval
    stop_server
    sed 's/approve_after = 0.0;/approve_after = 30.0;/' "$CYC_SCN" >"$T/after-time.cfg"
    grep -q 'approve_after = 30.0;' "$T/after-time.cfg" || fail "could not edit $CYC_SCN (approve_after)"
    start_server "$T/srv-d" --scenario "$T/after-time.cfg" --time-scale 0.01 || fail "server d: $(cat "$T/srv-d/server.log")"
    SCEP_CLIENT_CN=cyc-poll-d scep_certmonger_submit "$SRV_URL" "$SRV_CHALLENGE" "$T/d"; rc=$?
    [ $rc = 1 ] || fail "d: SUBMIT rc $rc"
    sleep 0.5
    scep_certmonger_poll "$SRV_URL" "$T/d"; rc=$?
    [ $rc = 0 ] || fail "d: POLL 0.5 s after a 0.3 s approve_after: rc $rc: $(tail -5 "$T/d/client.log")"
    openssl verify -CAfile "$SRV_CA" "$T/d/issued.pem" || fail "d: cert does not verify"
}

# ------------------------------------------------- one-time passwords -----

cyc_start_otp() {
    printf 'challenge: { policy = "otp"; };\n' >"$T/otp.cfg"
    start_server "$T/srv" --config "$T/otp.cfg" || fail "server: $(cat "$T/srv/server.log")"
}

# cyc_otp_page NAME [curl args]: GET the mscep_admin page as the admin; NAME.h, NAME.b, NAME.txt (UTF-8)
cyc_otp_page() {
    local n=$1
    shift
    curl -s --max-time 10 -D "$T/$n.h" -o "$T/$n.b" -u NDESADMIN:ndesmock "$@" "$SRV_BASE/certsrv/mscep_admin/" || fail "GET mscep_admin"
    iconv -f UTF-16LE -t UTF-8 "$T/$n.b" >"$T/$n.txt" || fail "$n: body is not UTF-16LE"
}

# cyc_otp_new NAME: a fresh password scraped from the page, printed
cyc_otp_new() {
    cyc_otp_page "$1"
    grep -o "$CYC_PAGE_RE" "$T/$1.txt" | sed 's/.*<B> \([0-9A-F]*\) <\/B>/\1/'
}

t_cyc_otp_admin_page() {
    cyc_start_otp
    local i pw md5 prev=""
    # no credentials: 401 and the two Windows-authentication offers IIS makes
    curl -s --max-time 10 -D "$T/anon.h" -o "$T/anon.b" "$SRV_BASE/certsrv/mscep_admin/"
    [ "$(head -1 "$T/anon.h" | awk '{print $2}')" = 401 ] || fail "anonymous: $(head -1 "$T/anon.h")"
    grep -qi '^WWW-Authenticate: Negotiate' "$T/anon.h" || fail "no WWW-Authenticate: Negotiate"
    grep -qi '^WWW-Authenticate: NTLM' "$T/anon.h" || fail "no WWW-Authenticate: NTLM"
    # wrong password: 401 as well
    [ "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -u NDESADMIN:wrong "$SRV_BASE/certsrv/mscep_admin/")" = 401 ] || fail "wrong password not refused"
    # DOMAIN\user is the same user
    [ "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -u 'LAB\NDESADMIN:ndesmock' "$SRV_BASE/certsrv/mscep_admin/")" = 200 ] || fail "LAB\\NDESADMIN refused"
    # that took password 1 of 5. The page: CA MD5 thumbprint in 4 groups, a 16-hex password
    cyc_otp_page p2
    [ "$(head -1 "$T/p2.h" | awk '{print $2}')" = 200 ] || fail "admin: $(head -1 "$T/p2.h")"
    md5=$(openssl x509 -in "$SRV_CA" -noout -fingerprint -md5 | sed 's/.*=//; s/://g' | sed 's/\(.\{8\}\)/\1 /g; s/ $//')
    grep -q "The thumbprint (hash value) for the CA certificate is: <B> $md5 </B>" "$T/p2.txt" || fail "thumbprint (want $md5): $(grep -o 'thumbprint[^P]*' "$T/p2.txt")"
    grep -q "$CYC_PAGE_RE" "$T/p2.txt" || fail "no password on the page"
    grep -q "This password can be used only once and will expire within 60 minutes." "$T/p2.txt" || fail "validity text"
    # passwords 3..5 are all different; the 6th request finds the cache full
    prev=$(grep -o "$CYC_PAGE_RE" "$T/p2.txt")
    for i in 3 4 5; do
        pw=$(cyc_otp_new "p$i")
        [ -n "$pw" ] || fail "page $i: no password: $(head -c 300 "$T/p$i.txt")"
        [[ $prev != *"$pw"* ]] || fail "page $i: password $pw repeated"
        prev="$prev $pw"
    done
    cyc_otp_page p6
    grep -q "The password cache is full" "$T/p6.txt" || fail "6th page is not 'cache full': $(head -c 400 "$T/p6.txt")"
    grep -q "$CYC_PAGE_RE" "$T/p6.txt" && fail "cache-full page shows a password"
    [ "$(curl -s --max-time 5 -o "$T/api.json" -w '%{http_code}' -X POST "$SRV_ADMIN/challenges")" = 409 ] || fail "POST /challenges while full: $(cat "$T/api.json")"
    # reset (iisreset) empties the cache
    curl -s --max-time 5 -X POST "$SRV_ADMIN/reset" | grep -q '"status":"reset"' || fail "reset"
    pw=$(cyc_otp_new p7)
    [ -n "$pw" ] || fail "no password after reset: $(head -c 300 "$T/p7.txt")"
    curl -s --max-time 5 -X POST "$SRV_ADMIN/challenges" >"$T/api.json"
    python3 -c 'import json,re,sys; d=json.load(open(sys.argv[1])); assert re.fullmatch("[0-9A-F]{16}", d["password"]) and d["expires_in"] > 0' "$T/api.json" ||
        fail "POST /challenges: $(cat "$T/api.json")"
}

# micromdm scepclient: enrols with a password from the page; the same password again is
# refused (badMessageCheck); a password from POST /challenges works too; one never issued fails.
t_cyc_otp_micromdm() {
    cyc_start_otp
    local pw pw2 rc
    pw=$(cyc_otp_new page)
    [ -n "$pw" ] || fail "no password on the page"
    scep_micromdm "$SRV_URL" "$pw" "$T/m1" || fail "enrol with $pw: rc $?: $(tail -3 "$T/m1/client.log")"
    openssl verify -CAfile "$SRV_CA" "$T/m1/issued.pem" || fail "cert does not verify"
    scep_micromdm "$SRV_URL" "$pw" "$T/m2"; rc=$?
    [ $rc = 1 ] || fail "reused password: rc $rc, want 1"
    grep -q 'failInfo: badMessageCheck (1)' "$T/m2/client.log" || fail "reused password message: $(tail -2 "$T/m2/client.log")"
    [ ! -s "$T/m2/issued.pem" ] || fail "a certificate for a reused password"
    pw2=$(curl -s --max-time 5 -X POST "$SRV_ADMIN/challenges" | python3 -c 'import json,sys; print(json.load(sys.stdin)["password"])')
    scep_micromdm "$SRV_URL" "$pw2" "$T/m3" || fail "enrol with API password: rc $?"
    openssl verify -CAfile "$SRV_CA" "$T/m3/issued.pem" || fail "cert 3 does not verify"
    scep_micromdm "$SRV_URL" 0123456789ABCDEF "$T/m4"; rc=$?
    [ $rc = 1 ] || fail "never-issued password: rc $rc, want 1"
}

# certmonger daemon: same cycle (its own password, rejected on reuse as CA_REJECTED).
t_cyc_otp_certmonger_daemon() {
    cyc_start_otp
    local pw rc
    pw=$(cyc_otp_new page)
    [ -n "$pw" ] || fail "no password on the page"
    SCEP_CERTMONGER_WAIT=30 scep_certmonger_daemon "$SRV_URL" "$pw" "$T/d1" || fail "enrol with $pw: rc $?: $(grep -E 'status:|ca-error' "$T/d1/client.log" | head -3)"
    openssl verify -CAfile "$SRV_CA" "$T/d1/issued.pem" || fail "cert does not verify"
    SCEP_CERTMONGER_WAIT=30 scep_certmonger_daemon "$SRV_URL" "$pw" "$T/d2"; rc=$?
    [ $rc = 2 ] || fail "reused password: rc $rc, want 2 (CA_REJECTED): $(grep -E 'status:|ca-error' "$T/d2/client.log" | head -3)"
    grep -q 'ca-error: Integrity check of client request failed at server.' "$T/d2/client.log" || fail "reused password ca-error: $(grep ca-error "$T/d2/client.log")"
    [ ! -s "$T/d2/issued.pem" ] || fail "a certificate for a reused password"
}

TESTS+=(t_cyc_pending_micromdm t_cyc_pending_certmonger_daemon t_cyc_pending_certmonger_poll
        t_cyc_otp_admin_page t_cyc_otp_micromdm t_cyc_otp_certmonger_daemon)
