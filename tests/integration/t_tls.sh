# t_tls.sh - SCEP over HTTPS (--tls-listen) and the TLS faults (ndes.tls in a scenario).

t_tls_enroll_and_faults() {
    start_server "$T/srv" --tls-listen 127.0.0.1:0 || fail "start"
    local turl; turl=$(_json_field "$T/srv/ready.json" scep_tls_url)
    [[ $turl == https://127.0.0.1:*/certsrv/mscep/mscep.dll ]] || fail "scep_tls_url: $turl"
    curl -s --cacert "$CA_PEM" "$turl?operation=GetCACaps" | grep -qx POSTPKIOperation || fail "GetCACaps over TLS"
    local port; port=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlparse(sys.argv[1]).port)' "$turl")
    [ "$(curl -s --cacert "$CA_PEM" --resolve "localhost:$port:127.0.0.1" -o /dev/null -w '%{http_code}' \
        "https://localhost:$port/certsrv/mscep/mscep.dll?operation=GetCACert")" = 200 ] || fail "SAN localhost"
    make_req --challenge "$SRV_CHALLENGE"
    curl -s --cacert "$CA_PEM" --data-binary @"$T/req.der" -o "$T/reply.der" -D "$T/reply.h" "$turl?operation=PKIOperation"
    expect_success
    local f want
    for f in expired wrong-host untrusted-chain tls10-only; do
        printf 'summary = "tls %s";\nndes = { tls = "%s"; };\n' "$f" "$f" >"$T/$f.cfg"
        curl -s -X PUT --data-binary @"$T/$f.cfg" "$SRV_ADMIN/scenario" >/dev/null
        curl -sS --cacert "$CA_PEM" -o /dev/null "$turl?operation=GetCACaps" 2>"$T/$f.err" && fail "$f: handshake succeeded"
        case $f in
        expired) want="certificate has expired" ;;
        wrong-host) want="no alternative certificate subject name matches" ;;
        untrusted-chain) want="self-signed certificate" ;;
        tls10-only) want="SSL" ;;
        esac
        grep -q "$want" "$T/$f.err" || fail "$f: $(cat "$T/$f.err")"
    done
    # TLS 1.0 works for a client that allows it (security level 0)
    curl -s --tlsv1.0 --tls-max 1.0 --ciphers 'DEFAULT@SECLEVEL=0' --cacert "$CA_PEM" "$turl?operation=GetCACaps" | grep -qx POSTPKIOperation || fail "TLS 1.0 client"
    curl -s -X PUT -d '{"name":"healthy"}' "$SRV_ADMIN/scenario" >/dev/null
    curl -s --cacert "$CA_PEM" "$turl?operation=GetCACaps" | grep -qx POSTPKIOperation || fail "back to healthy"
    # the plain listener is unaffected by TLS faults
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$SRV_URL?operation=GetCACaps")" = 200 ] || fail "plain listener"
}

TESTS+=(t_tls_enroll_and_faults)
