# t_core.sh - SCEP core: HTTP surface, real clients, request variants, refusals.
# Sourced by run.sh, which provides start_server, fail, check, http, make_req, ...


t_getcacaps() {
    start_server "$T/srv" || fail "server did not start"
    http caps "$SRV_URL?operation=GetCACaps&message=default"
    check "200" [ "$(status_of caps)" = 200 ]
    check "text/plain" [ "$(header_of caps Content-Type)" = text/plain ]
    check "IIS Server header" [ "$(header_of caps Server)" = Microsoft-IIS/10.0 ]
    for cap in POSTPKIOperation Renewal SHA-512 SHA-256 SHA-1 DES3 AES; do grep -qx "$cap" "$T/caps.b" || fail "caps lack $cap"; done
    # message= is ignored; no message at all works too
    for m in "" "&message=ca" "&message=SCEP%20Authority" "&message=0" "&message=1"; do
        http c2 "$SRV_URL?operation=GetCACaps$m"; cmp -s "$T/caps.b" "$T/c2.b" || fail "message$m changed the answer"
    done
}

t_getcacert() {
    start_server "$T/srv" || fail "server did not start"
    http ca "$SRV_URL?operation=GetCACert&message=SCEP%20Authority"
    check "200" [ "$(status_of ca)" = 200 ]
    check "content type" [ "$(header_of ca Content-Type)" = application/x-x509-ca-ra-cert ]
    openssl pkcs7 -inform DER -in "$T/ca.b" -print_certs -out "$T/all.pem" || fail "not PKCS#7"
    check "3 certs" [ "$(grep -c 'BEGIN CERT' "$T/all.pem")" = 3 ]
    csplit -s -z -f "$T/c" "$T/all.pem" '/-----BEGIN CERTIFICATE-----/' '{*}'
    local sig=0 enc=0 ca=0 f txt
    for f in "$T"/c0*; do
        grep -q "BEGIN CERT" "$f" || continue
        txt=$(openssl x509 -in "$f" -noout -text)
        if grep -q "CA:TRUE" <<<"$txt"; then ca=1; continue; fi
        grep -q "CN = NDES01-MSCEP-RA" <<<"$txt" || fail "RA subject is not <host>-MSCEP-RA"
        ku=$(grep -A1 "Key Usage: critical" <<<"$txt" | tail -1 | xargs)
        [ "$ku" = "Digital Signature" ] && sig=1
        [ "$ku" = "Key Encipherment" ] && enc=1
        openssl verify -CAfile "$CA_PEM" "$f" >/dev/null || fail "RA cert does not chain to the CA"
    done
    check "RA signing (digitalSignature only)" [ $sig = 1 ]
    check "RA encryption (keyEncipherment only)" [ $enc = 1 ]
    check "CA" [ $ca = 1 ]
}

t_iis_pages() {
    start_server "$T/srv" || fail "server did not start"
    http bare "$SRV_URL"
    check "bare URL 403" [ "$(status_of bare)" = 403 ]
    check "403 page 1233 bytes" [ "$(wc -c <"$T/bare.b")" = 1233 ]
    check "403 page bytes" [ "$(sha256sum <"$T/bare.b" | cut -c1-64)" = c55f527e536de44c7980fecece7428ae5a765647495e47008a8a54fa1e434736 ]
    check "text/html" [ "$(header_of bare Content-Type)" = text/html ]
    # header order as IIS: Content-Type, Server, X-Powered-By, Date, Content-Length
    check "header order" [ "$(sed -n '2,6p' "$T/bare.h" | cut -d: -f1 | tr '\n' ' ')" = "Content-Type Server X-Powered-By Date Content-Length " ]
    http nf "$SRV_BASE/certsrv/nothing-here"
    check "404" [ "$(status_of nf)" = 404 ]
    check "404 page bytes" [ "$(sha256sum <"$T/nf.b" | cut -c1-64)" = dc1d54dab6ec8c00f70137927504e4f222c8395f10760b6beecfcfa94e08249f ]
    printf 'garbage' >"$T/g"
    http bad "$SRV_URL?operation=PKIOperation" --data-binary @"$T/g"
    check "garbage PKIOperation -> 500" [ "$(status_of bad)" = 500 ]
    check "500 page bytes" [ "$(sha256sum <"$T/bad.b" | cut -c1-64)" = e1b0a10649c4b92f828523efc2ebe135ea9488179a2816888d1e84f786202dbf ]
    http redir "$SRV_BASE/certsrv/mscep?operation=GetCACaps&message=test"
    check "301" [ "$(status_of redir)" = 301 ]
    check "Location keeps the query" [ "$(header_of redir Location)" = "/certsrv/mscep/?operation=GetCACaps&message=test" ]
}

t_paths_case_insensitive() {
    start_server "$T/srv" || fail "server did not start"
    local p
    for p in /certsrv/mscep/mscep.dll /CertSrv/mscep/mscep.dll /CERTSRV/MSCEP/MSCEP.DLL \
             /certsrv/mscep/mscep.dll/pkiclient.exe /CertSrv/mscep/mscep.dll/pkiclient.exe \
             /certsrv/mscep/ /cgi-bin/pkiclient.exe; do
        http p "$SRV_BASE$p?operation=GetCACert&message=any"
        [ "$(status_of p)" = 200 ] || fail "$p -> $(status_of p)"
        [ "$(header_of p Content-Type)" = application/x-x509-ca-ra-cert ] || fail "$p content type"
    done
}

t_ready_file_and_exit() {
    start_server "$T/srv" || fail "server did not start"
    local r=$T/srv/ready.json k
    for k in scep_url challenge pid state_dir ca_cert_path ca_md5_thumbprint scenario version; do
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert sys.argv[2] in d' "$r" "$k" || fail "ready file lacks $k"
    done
    [[ $SRV_URL == http://127.0.0.1:*/certsrv/mscep/mscep.dll ]] || fail "scep_url $SRV_URL"
    [ "$(_json_field "$r" pid)" = "$SRV_PID" ] || fail "pid"
    [[ $(_json_field "$r" ca_md5_thumbprint) =~ ^[0-9A-F]{8}\ [0-9A-F]{8}\ [0-9A-F]{8}\ [0-9A-F]{8}$ ]] || fail "thumbprint format"
    local md5; md5=$(openssl x509 -in "$SRV_CA" -outform DER | md5sum | cut -c1-32 | tr a-f A-F)
    [ "$(_json_field "$r" ca_md5_thumbprint | tr -d ' ')" = "$md5" ] || fail "thumbprint is not the CA's MD5"
    # a second instance on the same port fails with exit 1
    local port=${SRV_BASE##*:}
    "$NDESMOCK_BIN" --listen "127.0.0.1:$port" --state-dir "$SHARED_STATE" 2>"$T/busy.err"; local rc=$?
    [ $rc = 1 ] || fail "busy port: exit $rc"
    grep -q "Address already in use" "$T/busy.err" || fail "busy port message: $(cat "$T/busy.err")"
    stop_server
    [ "$SRV_RC" = 0 ] || fail "SIGTERM exit status $SRV_RC"
}

t_cli_and_config_errors() {
    "$NDESMOCK_BIN" --help >"$T/help" || fail "--help exit"
    grep -q -- "--ready-file" "$T/help" || fail "--help lacks --ready-file"
    "$NDESMOCK_BIN" --version | grep -q '^ndesmock [0-9]' || fail "--version"
    "$NDESMOCK_BIN" --bogus 2>/dev/null; [ $? = 2 ] || fail "unknown option must exit 2"
    "$NDESMOCK_BIN" --listen nonsense 2>/dev/null; [ $? = 2 ] || fail "bad --listen must exit 2"
    printf 'listen = "127.0.0.1:0";\nserver: {\n  threads = 1;\n  bogus_key = 3;\n};\n' >"$T/bad.cfg"
    "$NDESMOCK_BIN" --config "$T/bad.cfg" 2>"$T/err"; [ $? = 2 ] || fail "unknown key must exit 2"
    grep -q "bad.cfg:4: unknown setting 'server.bogus_key'" "$T/err" || fail "message: $(cat "$T/err")"
    printf 'caps: { list = [ "A", 3 ]; };\n' >"$T/bad2.cfg"
    "$NDESMOCK_BIN" --config "$T/bad2.cfg" 2>"$T/err2"; [ $? = 2 ] || fail "wrong type must exit 2"
    grep -q "bad2.cfg:1:" "$T/err2" || fail "message: $(cat "$T/err2")"
    printf 'template: { validity_minutes = "x" ; };\n' >"$T/bad3.cfg"
    "$NDESMOCK_BIN" --config "$T/bad3.cfg" 2>"$T/err3"; [ $? = 2 ] || fail "wrong type must exit 2"
    printf 'listen = "127.0.0.1:0"\nbroken\n' >"$T/bad4.cfg"
    "$NDESMOCK_BIN" --config "$T/bad4.cfg" 2>"$T/err4"; [ $? = 2 ] || fail "syntax error must exit 2"
    grep -Eq "bad4.cfg:[0-9]+: syntax error" "$T/err4" || fail "syntax message: $(cat "$T/err4")"
    "$NDESMOCK_BIN" --config "$HERE/../../ndesmock.cfg" --generate-pki --state-dir "$T/st" >/dev/null || fail "shipped ndesmock.cfg does not load"
}

t_micromdm() {
    start_server "$T/srv" || fail "server did not start"
    scep_micromdm "$SRV_URL" "$SRV_CHALLENGE" "$T/c" || { cat "$T/c/client.log"; fail "scepclient did not enroll"; }
    verify_issued "$T/c" "$CA_PEM" || fail "verify"
    grep -q 'msg=PKCSReq .*scep=SUCCESS' "$SRV_LOG" || { sleep 0.3; grep -q 'msg=PKCSReq .*scep=SUCCESS' "$SRV_LOG"; } || fail "access log"
    if grep -q "$SRV_CHALLENGE" "$SRV_LOG" | grep -v challenge; then fail "challenge in the access log"; fi
    # scepclient sends single DES: decrypted without OpenSSL's legacy provider
    # (src/util/oldcrypto.c), which would map a second libcrypto into the server
    [ -r "/proc/$SRV_PID/maps" ] || fail "cannot read the server's memory map"
    ! grep -q 'ossl-modules/legacy' "/proc/$SRV_PID/maps" || fail "the legacy provider was loaded"
}

t_micromdm_wrong_challenge() {
    start_server "$T/srv" || fail "server did not start"
    scep_micromdm "$SRV_URL" "WRONG-PASSWORD" "$T/c"; local rc=$?
    [ $rc = 1 ] || fail "scepclient exit $rc"
    grep -q "failInfo: badMessageCheck" "$T/c/client.log" || { cat "$T/c/client.log"; fail "no failInfo in scepclient's message"; }
    [ ! -f "$T/c/issued.pem" ] || fail "a certificate was issued"
}

t_strongswan_aes() {
    start_server "$T/srv" || fail "server did not start"
    scep_strongswan "$SRV_URL" "$SRV_CHALLENGE" "$T/c" aes || { tail -20 "$T/c/client.log"; fail "pki --scep aes"; }
    verify_issued "$T/c" "$CA_PEM" || fail "verify"
}

t_strongswan_des3() {
    start_server "$T/srv" || fail "server did not start"
    scep_strongswan "$SRV_URL" "$SRV_CHALLENGE" "$T/c" des3 || { tail -20 "$T/c/client.log"; fail "pki --scep des3"; }
    verify_issued "$T/c" "$CA_PEM" || fail "verify"
}

t_strongswan_wrong_challenge() {
    start_server "$T/srv" || fail "server did not start"
    scep_strongswan "$SRV_URL" "nope" "$T/c" aes; local rc=$?
    [ $rc = 1 ] || fail "pki exit $rc"
    grep -q "failInfo: *badMessageCheck" "$T/c/client.log" || { tail "$T/c/client.log"; fail "no failInfo"; }
}

t_certmonger_submit() {
    start_server "$T/srv" || fail "server did not start"
    scep_certmonger_submit "$SRV_URL" "$SRV_CHALLENGE" "$T/c" || { tail -20 "$T/c/client.log"; fail "scep-submit"; }
    verify_issued "$T/c" "$CA_PEM" || fail "verify"
    grep -q 'GET /certsrv/mscep/mscep.dll op=PKIOperation' "$SRV_LOG" || { sleep 0.3; grep -q 'GET /certsrv/mscep/mscep.dll op=PKIOperation' "$SRV_LOG"; } || fail "scep-submit did not use GET"
}

t_certmonger_submit_wrong_challenge() {
    start_server "$T/srv" || fail "server did not start"
    scep_certmonger_submit "$SRV_URL" "bad" "$T/c"; local rc=$?
    [ $rc = 2 ] || { tail "$T/c/client.log"; fail "scep-submit exit $rc"; }
    grep -q 'SCEP status is "failure"' "$T/c/client.log" || fail "no failure message"
    grep -q 'Integrity check of client request failed' "$T/c/client.log" || fail "failInfo text"
}

t_certmonger_daemon() {
    start_server "$T/srv" || fail "server did not start"
    scep_certmonger_daemon "$SRV_URL" "$SRV_CHALLENGE" "$T/c" || { tail -30 "$T/c/client.log"; fail "certmonger daemon"; }
    verify_issued "$T/c" "$CA_PEM" || fail "verify"
}

t_certmonger_daemon_wrong_challenge() {
    start_server "$T/srv" || fail "server did not start"
    scep_certmonger_daemon "$SRV_URL" "bad" "$T/c"; local rc=$?
    [ $rc = 2 ] || { tail -30 "$T/c/client.log"; fail "daemon rc $rc (want CA_REJECTED)"; }
}

t_get_variants() {
    start_server "$T/srv" || fail "server did not start"
    local m
    for m in get-escaped get-raw get-nl get-url post post-noctype; do
        make_req --challenge "$SRV_CHALLENGE" --cn "get-$m" --cipher des3 --digest sha1 || fail "make_req"
        send_req $m
        grep -q "^HTTP/1.1 200" "$T/reply.h" || fail "$m: $(head -1 "$T/reply.h")"
        grep -qi "^Content-Type: application/x-pki-message" "$T/reply.h" || fail "$m: content type"
        expect_success
        rm -f "$T/issued.pem"
    done
}

t_cipher_digest_matrix() {
    start_server "$T/srv" || fail "server did not start"
    local c d line
    for c in des des3 aes128 aes192 aes256; do
        for d in sha1 sha256 sha512; do
            make_req --challenge "$SRV_CHALLENGE" --cn "m-$c-$d" --cipher $c --digest $d || fail "make_req"
            send_req post
            line=$(reply_line) || fail "$c/$d: no CertRep"
            [[ $line == *status=SUCCESS*sig_ok=1*signing_time=0*sig_alg=rsaEncryption*digest=SHA1* ]] || fail "$c/$d: $line"
            case $c in des|des3) [[ $line == *cipher=DES-EDE3-CBC* ]] || fail "$c: reply cipher $line" ;;
                       aes128) [[ $line == *cipher=AES-128-CBC* ]] || fail "$line" ;;
                       aes192) [[ $line == *cipher=AES-192-CBC* ]] || fail "$line" ;;
                       aes256) [[ $line == *cipher=AES-256-CBC* ]] || fail "$line" ;; esac
            openssl verify -CAfile "$CA_PEM" "$T/issued.pem" >/dev/null || fail "$c/$d: verify"
        done
    done
}

t_refusals() {
    start_server "$T/srv" || fail "server did not start"
    make_req --challenge WRONG --cn wrong; send_req post; expect_failure badMessageCheck
    make_req --cn none; send_req post; expect_failure badMessageCheck
    make_req --challenge "$SRV_CHALLENGE" --cn tampered --tamper; send_req post; expect_failure badMessageCheck
    make_req --challenge "$SRV_CHALLENGE" --cn md5 --digest md5; send_req post; expect_failure badAlg
    make_req --type 22 --cn crl; send_req post; expect_failure badRequest
    reply_line | grep -q "hresult=-2147024809" || fail "GetCRL hresult"
    # encrypted to the RA signing cert only: NDES cannot decrypt -> IIS 500
    "$SCEPREQ" make --ra "$RA_SIGN" --out "$T/req.der" --key-out "$T/key.pem" --cert-out "$T/self.pem" --challenge "$SRV_CHALLENGE"
    send_req post
    grep -q "^HTTP/1.1 500" "$T/reply.h" || fail "wrong recipient: $(head -1 "$T/reply.h")"
    http notb64 "$SRV_URL?operation=PKIOperation&message=***"
    check "not base64 -> 500" [ "$(status_of notb64)" = 500 ]
    http empty "$SRV_URL?operation=PKIOperation"
    check "no message -> 500" [ "$(status_of empty)" = 500 ]
    # still serving
    http caps "$SRV_URL?operation=GetCACaps"; check "alive" [ "$(status_of caps)" = 200 ]
}

t_issued_cert_content() {
    start_server "$T/srv" || fail "server did not start"
    make_req --challenge "$SRV_CHALLENGE" --cn "san-test" --san "DNS:device1.lab.example,IP:10.1.2.3"
    send_req post; expect_success
    local txt; txt=$(openssl x509 -in "$T/issued.pem" -noout -text)
    grep -q "CN = san-test" <<<"$txt" || fail "subject"
    grep -q "DNS:device1.lab.example, IP Address:10.1.2.3" <<<"$txt" || fail "SANs not copied"
    grep -q "TLS Web Client Authentication" <<<"$txt" || fail "EKU from template"
    local serial; serial=$(openssl x509 -in "$T/issued.pem" -noout -serial | cut -d= -f2)
    [ -f "$SHARED_STATE/certs/${serial: -2}/$serial.pem" ] || fail "not stored as ${serial: -2}/$serial.pem"
    grep -q "	$serial	unknown	/CN=san-test" "$SHARED_STATE/index.txt" || fail "index.txt line"
}

t_config_knobs() {
    cat >"$T/k.cfg" <<CFG
challenge: { policy = "static"; password = "Pa55-Word"; };
caps: { list = [ "POSTPKIOperation", "Renewal", "SHA-512", "SHA-256", "SHA-1", "DES3" ]; crlf = true; };
template: { validity_minutes = 5; backdate_minutes = 0; };
CFG
    start_server "$T/srv" --config "$T/k.cfg" || fail "server did not start"
    [ "$SRV_CHALLENGE" = Pa55-Word ] || fail "challenge from config: $SRV_CHALLENGE"
    http caps "$SRV_URL?operation=GetCACaps"
    [ "$(cat "$T/caps.b")" = "$(printf 'POSTPKIOperation\r\nRenewal\r\nSHA-512\r\nSHA-256\r\nSHA-1\r\nDES3\r\n')" ] || fail "classic caps list with CRLF: $(od -c "$T/caps.b" | head -3)"
    make_req --challenge Pa55-Word --cn short; send_req post; expect_success
    local nb na; nb=$(openssl x509 -in "$T/issued.pem" -noout -startdate | cut -d= -f2); na=$(openssl x509 -in "$T/issued.pem" -noout -enddate | cut -d= -f2)
    [ $(( $(date -d "$na" +%s) - $(date -d "$nb" +%s) )) = 300 ] || fail "validity is not 5 minutes: $nb .. $na"
    stop_server
    printf 'challenge: { policy = "accept-any"; };\n' >"$T/any.cfg"
    start_server "$T/srv2" --config "$T/any.cfg" || fail "server 2 did not start"
    [ -z "$SRV_CHALLENGE" ] || fail "accept-any must put null in the ready file"
    make_req --challenge whatever --cn any; send_req post; expect_success
}

t_pki_reused() {
    local a b
    a=$(openssl x509 -in "$SHARED_STATE/pki/ca.pem" -noout -fingerprint)
    start_server "$T/srv" || fail "server did not start"; stop_server
    b=$(openssl x509 -in "$SHARED_STATE/pki/ca.pem" -noout -fingerprint)
    [ "$a" = "$b" ] || fail "CA regenerated"
    [ "$(stat -c %a "$SHARED_STATE/pki/ra-sign.pem")" = 600 ] || fail "key file mode"
    # a fresh state dir gets a fresh PKI
    # generating a PKI (about 20 RSA keys with the faulty set) takes seconds, more under
    # sanitizers on a busy machine: 30 s instead of the usual 10
    READY_TRIES=$(( ${READY_TRIES:-200} * 3 )) start_server "$T/srv2" --state-dir "$T/fresh" ||
        fail "fresh server did not start"
    [ -f "$T/fresh/pki/ra-enc.pem" ] || fail "no PKI generated"
}

TESTS+=(t_getcacaps t_getcacert t_iis_pages t_paths_case_insensitive t_ready_file_and_exit
       t_cli_and_config_errors t_get_variants t_cipher_digest_matrix t_refusals
       t_issued_cert_content t_config_knobs t_pki_reused
       t_micromdm t_micromdm_wrong_challenge t_strongswan_aes t_strongswan_des3
       t_strongswan_wrong_challenge t_certmonger_submit t_certmonger_submit_wrong_challenge
       t_certmonger_daemon t_certmonger_daemon_wrong_challenge)
