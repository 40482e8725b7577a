# t_extra.sh - IPv6 listeners and renewal with a real client.

t_ipv6_listeners() {
    ip -6 addr show lo 2>/dev/null | grep -q "::1" || { echo "no IPv6 loopback here: skipped"; return 0; }
    mkdir -p "$T/srv"
    "$NDESMOCK_BIN" --listen '[::1]:0' --admin-listen '[::1]:0' --state-dir "$SHARED_STATE" \
        --ready-file "$T/srv/ready.json" 2>"$T/srv/server.log" &
    SRV_PID=$!; ALL_PIDS="${ALL_PIDS:-} $SRV_PID"
    local i; for i in $(seq 100); do [ -s "$T/srv/ready.json" ] && break; sleep 0.05; done
    local url adm; url=$(_json_field "$T/srv/ready.json" scep_url); adm=$(_json_field "$T/srv/ready.json" admin_url)
    [[ $url == http://\[::1\]:*/certsrv/mscep/mscep.dll ]] || fail "scep_url $url"
    [[ $adm == http://\[::1\]:* ]] || fail "admin_url $adm"
    [ "$(curl -s -o /dev/null -w '%{http_code}' -g "$url?operation=GetCACaps")" = 200 ] || fail "GetCACaps over IPv6"
    [ "$(curl -s -g "$adm/healthz")" = '{"status":"ok"}' ] || fail "admin over IPv6"
    sleep 0.3; grep -q "GetCACaps" "$T/srv/server.log" || fail "access log"
}

t_renewal_micromdm() {
    start_server "$T/srv" || fail "start"
    scep_micromdm "$SRV_URL" "$SRV_CHALLENGE" "$T/c" || fail "first enrollment"
    local first; first=$(openssl x509 -in "$T/c/issued.pem" -noout -serial)
    # scepclient sends a RenewalReq signed with the issued certificate when -certificate exists;
    # NDES-style: a request signed by a certificate this CA issued needs no challenge
    cp "$T/c/issued.pem" "$T/c/cert.pem" 2>/dev/null || true
    ( cd "$T/c" && timeout 30 scepclient -server-url "$SRV_URL" -private-key key.pem \
        -certificate cert.pem -cn renewed -debug ) >"$T/renew.log" 2>&1 || { tail -5 "$T/renew.log"; fail "renewal"; }
    openssl verify -CAfile "$CA_PEM" "$T/c/cert.pem" >/dev/null || fail "renewed cert does not verify"
    [ "$(openssl x509 -in "$T/c/cert.pem" -noout -serial)" != "$first" ] || fail "no new certificate"
    sleep 0.4; grep -q 'msg=RenewalReq .*scep=SUCCESS' "$SRV_LOG" || fail "server log: no successful RenewalReq"
}

TESTS+=(t_ipv6_listeners t_renewal_micromdm)
