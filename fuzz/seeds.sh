#!/usr/bin/env bash
# fuzz/seeds.sh SCEPREQ PKIDIR OUTDIR [NDESMOCK_BIN] - seed corpora for the fuzz
# targets, made with scepreq against the lab PKI in PKIDIR (called by fuzz/run.sh).
# With NDESMOCK_BIN, the real clients of the integration tests also enroll
# against it and what they sent becomes seeds (fuzz/record-clients.sh).
set -eu
SCEPREQ=$1
PKI=$2
OUT=$3
NDESMOCK=${4:-}
TMP=$OUT/tmp
mkdir -p "$TMP" "$OUT"/{fuzz_pkioperation,fuzz_envelope,fuzz_get_message,fuzz_config,fuzz_scenario,fuzz_admin}
RA=$TMP/ra-enc.crt
openssl x509 -in "$PKI/ra-enc.pem" -out "$RA"
openssl pkey -in "$PKI/ra-enc.pem" -out "$TMP/ra-enc.key"
P=$OUT/fuzz_pkioperation

# ---- PKIOperation requests as clients send them ---------------------------------
mk() { # NAME scepreq-make-args...
    local n=$1
    shift
    "$SCEPREQ" make --ra "$RA" --out "$P/$n.der" "$@"
}
# one client key for most, so that only the interesting parts differ
"$SCEPREQ" make --ra "$RA" --out "$P/pkcsreq-des3-sha256.der" --challenge secret \
    --key-out "$TMP/client.key" --cert-out "$TMP/client.crt"
K=(--key "$TMP/client.key" --cert "$TMP/client.crt")
for c in des aes128 aes192 aes256; do mk "pkcsreq-$c-sha256" "${K[@]}" --cipher $c --challenge secret; done
for d in sha1 sha512; do mk "pkcsreq-des3-$d" "${K[@]}" --digest $d --challenge secret; done
mk pkcsreq-des-sha1-micromdm "${K[@]}" --cipher des --digest sha1 --challenge secret # micromdm 2.1.0
mk pkcsreq-md5 "${K[@]}" --digest md5 --challenge secret
mk pkcsreq-nochallenge "${K[@]}"
mk pkcsreq-san "${K[@]}" --challenge secret --san "DNS:a.example,IP:10.0.0.1,email:x@example.org"
mk pkcsreq-tampered "${K[@]}" --challenge secret --tamper
mk renewalreq "${K[@]}" --type 17
for t in 20 21 22 3 99; do mk "type-$t" "${K[@]}" --type $t; done
# an RA certificate twice (micromdm encrypts to every certificate GetCACert returned)
"$SCEPREQ" make --ra "$RA" --ra "$RA" --out "$P/two-recipients.der" "${K[@]}" --challenge secret
# encrypted to someone else: a self-signed stranger
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/other.key" -out "$TMP/other.crt" \
    -subj /CN=other -days 2 2>/dev/null
"$SCEPREQ" make --ra "$TMP/other.crt" --out "$P/wrong-recipient.der" "${K[@]}" --challenge secret

# ---- what real clients sent (micromdm, strongSwan, certmonger) ------------------
if [ -n "$NDESMOCK" ]; then
    bash "$(dirname "$0")/record-clients.sh" "$NDESMOCK" "$PKI" "$P" ||
        echo "seeds: no real-client seeds (record-clients.sh failed)" >&2
fi

# ---- hand-made, malformed ------------------------------------------------------
hex() { printf '%b' "$(echo "$1" | sed 's/\(..\)/\\x\1/g')" >"$2"; }
hex 3000 "$P/empty-seq.der"
hex 300b06092a864886f70d010702 "$P/signeddata-no-content.der"
hex 300b06092a864886f70d010703 "$P/envelopeddata-no-content.der"
hex 300d06092a864886f70d010702a000 "$P/signeddata-empty-explicit.der"
hex 308006 "$P/truncated-indefinite.der"
hex 308006092a864886f70d010702a0803080020101310030800609"2a864886f70d010701"0000000000000000 "$P/indefinite-empty-signeddata.der"
hex 3084ffffffff06092a864886f70d010702 "$P/huge-length.der"
head -c 700 "$P/pkcsreq-des3-sha256.der" >"$P/truncated.der"
# a degenerate (certs-only) SignedData, as GetCACert answers
openssl crl2pkcs7 -nocrl -certfile "$RA" -outform DER -out "$P/certs-only.der"

# ---- GET forms: base64 variants (anything not starting 0x30 goes through
# scep_decode_get_message in fuzz_pkioperation) ----------------------------------
R=$P/pkcsreq-des-sha1-micromdm.der
base64 -w0 "$R" >"$P/get-base64.txt"
base64 -w64 "$R" | sed ':a;N;$!ba;s/\n/%0A/g' >"$P/get-base64-pct0A.txt"
base64 -w0 "$R" | sed 's/+/%2B/g;s/\//%2F/g;s/=/%3D/g' >"$P/get-base64-escaped.txt"
base64 -w0 "$R" | tr '+/' '-_' | tr -d '=' >"$P/get-base64url.txt"
base64 -w0 "$R" | tr '+' ' ' >"$P/get-base64-plus-as-space.txt"
base64 -w76 "$P/pkcsreq-aes128-sha256.der" | sed 's/$/\r/' >"$P/get-base64-crlf.txt"

# ---- fuzz_envelope: the layers under the signature -----------------------------
# byte 0: bits 0-2 messageType index (0 PKCSReq, 1 RenewalReq, 2 CertPoll,
# 3 GetCert, 4 GetCRL), bit 3 plaintext layer, bits 4-6 cipher index
# (0 des, 1 des3, 2 aes128, 3 aes192, 4 aes256).
E=$OUT/fuzz_envelope
n=0
for f in "$P"/pkcsreq-*.der "$P"/real-*.der "$P"/renewalreq.der "$P"/type-2*.der "$P"/two-recipients.der "$P"/wrong-recipient.der; do
    b=$(basename "$f" .der)
    case $b in *tampered*) continue ;; esac
    openssl cms -verify -noverify -inform DER -in "$f" -binary -out "$TMP/$b.env" 2>/dev/null || continue
    case $b in renewalreq) ty=1 ;; type-20) ty=2 ;; type-21) ty=3 ;; type-22) ty=4 ;; *) ty=0 ;; esac
    { printf "\\x$(printf %02x $ty)"; cat "$TMP/$b.env"; } >"$E/env-$b.bin"
    if openssl cms -decrypt -inform DER -in "$TMP/$b.env" -recip "$RA" -inkey "$TMP/ra-enc.key" \
        -binary -out "$TMP/$b.plain" 2>/dev/null; then
        c=$(( n % 5 ))
        n=$((n + 1))
        { printf "\\x$(printf %02x $(( (c << 4) | 8 | ty )))"; cat "$TMP/$b.plain"; } >"$E/plain-$b.bin"
    fi
done
# CSRs as other tools write them: EC key (NDES event 13 path), extensions galore
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout /dev/null \
    -subj "/CN=ec/O=x" -outform DER -out "$TMP/ec.csr" 2>/dev/null
{ printf '\x18'; cat "$TMP/ec.csr"; } >"$E/plain-ec-csr.bin"
openssl req -new -newkey rsa:1024 -nodes -keyout /dev/null -subj "/CN=ext/OU=a/OU=b/emailAddress=e@x" \
    -addext "subjectAltName=DNS:a,DNS:b,IP:1.2.3.4,URI:http://x/,otherName:1.2.3.4;UTF8:x" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:9" -addext "keyUsage=keyCertSign" \
    -addext "extendedKeyUsage=serverAuth,1.2.3.4.5" -addext "1.2.3.4.5.6=DER:0500" \
    -addext "challengePassword=x" -outform DER -out "$TMP/ext.csr" 2>/dev/null ||
openssl req -new -newkey rsa:1024 -nodes -keyout /dev/null -subj "/CN=ext" \
    -addext "subjectAltName=DNS:a,IP:1.2.3.4" -outform DER -out "$TMP/ext.csr"
{ printf '\x28'; cat "$TMP/ext.csr"; } >"$E/plain-ext-csr.bin"
# GetCert for the RA certificate (not in the store) and garbage plaintext
printf '\x0b\x30\x00' >"$E/plain-getcert-empty.bin"
printf '\x08' >"$E/plain-empty.bin"
# envelopedData OID without its [0] content (was a NULL dereference in decode.c)
printf '\x00\x30\x0b\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03' >"$E/env-oid-only.bin"
printf '\x01\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03\xa0\x00' >"$E/env-empty-explicit.bin"

# ---- fuzz_get_message: query strings -------------------------------------------
G=$OUT/fuzz_get_message
printf 'operation=GetCACaps&message=CAIdentifier' >"$G/getcacaps.txt"
printf 'operation=GetCACert&message=' >"$G/getcacert.txt"
printf 'OPERATION=PKIOperation&Message=%%41%%4' >"$G/bad-escape.txt"
{ printf 'operation=PKIOperation&message='; cat "$P/get-base64-escaped.txt"; } >"$G/pkiop-escaped.txt"
{ printf 'message='; cat "$P/get-base64-pct0A.txt"; printf '&operation=PKIOperation'; } >"$G/pkiop-pct0A.txt"
{ printf 'operation=PKIOperation&message='; cat "$P/get-base64url.txt"; } >"$G/pkiop-base64url.txt"
{ printf 'operation=PKIOperation&&message&message='; head -c 200 "$P/get-base64.txt"; } >"$G/pkiop-raw.txt"

# ---- fuzz_config -----------------------------------------------------------------
C=$OUT/fuzz_config
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$ROOT/ndesmock.cfg" ] && grep -v '@include' "$ROOT/ndesmock.cfg" >"$C/ndesmock.cfg"
for f in "$ROOT"/tests/fixtures/*.cfg; do
    [ -f "$f" ] && grep -v '@include' "$f" >"$C/$(basename "$f")"
done
# ---- fuzz_scenario: the shipped scenarios, and material from the lab PKI ---------
S=$OUT/fuzz_scenario
for f in "$ROOT"/scenarios/*.cfg "$ROOT"/tests/fixtures/scenarios/*.cfg; do
    [ -f "$f" ] && cp "$f" "$S/$(basename "$f")"
done
printf 'summary = "x";\nmaterial = { ra_enc_cert = "state:pki/ra-enc.pem"; ra_sign_cert = "../x.pem"; };\n' >"$S/material.cfg"
printf '@include "/dev/zero"\n' >"$S/include.cfg"
printf '  \t@include "x"\n' >"$S/include-indented.cfg"
printf 'listen = "[::1]:0";\nstate_dir = "/tmp/x";\n' >"$C/listen6.cfg"
printf 'challenge: { policy = "accept-any"; password = "a\\nb"; };\n' >"$C/challenge.cfg"
printf 'server: { threads = 4; request_timeout = 1; max_body_bytes = 10L; };\n' >"$C/server.cfg"
printf 'caps: { list = [ "A", "B" ]; content_type = ""; crlf = true; };\n' >"$C/caps.cfg"
printf 'template: { eku = [ "clientAuth", "1.2.3" ]; key_usage = [ "digitalSignature" ]; validity_minutes = 1; };\n' >"$C/template.cfg"
printf 'pki: { key_bits = 1024; intermediate = true; host_name = "H"; };\nreply: { digest = "sha256"; };\n' >"$C/pki.cfg"
printf 'unknown = 1;\n' >"$C/unknown.cfg"
printf 'server: { threads = "x"; }\n' >"$C/wrongtype.cfg"
# ---- fuzz_admin: requests as users of docs/admin-api.md send them --------------------
# "METHOD URI\n[Authorization: VALUE\n]\nBODY", several per seed separated by "\n==\n".
A=$OUT/fuzz_admin
adm() { # NAME REQUEST...
    local n=$1 first=1 r
    shift
    : >"$A/$n.txt"
    for r in "$@"; do
        [ $first = 1 ] || printf '\n==\n' >>"$A/$n.txt"
        first=0
        printf '%s' "$r" >>"$A/$n.txt"
    done
}
NL=$'\n'
adm healthz "GET /healthz$NL"
adm scenario-get "GET /scenario$NL"
adm scenarios "GET /scenarios$NL"
adm put-name "PUT /scenario$NL$NL{\"name\": \"apppool-crash-503\"}" "GET /scenario$NL" "GET /metrics$NL"
adm put-name-healthy "PUT /scenario$NL$NL{\"name\":\"healthy\"}"
adm put-name-material "PUT /scenario$NL$NL{\"name\": \"policy-cert-expired-503\"}" "GET /scenario$NL"
adm put-name-broken "PUT /scenario$NL$NL{\"name\": \"zz-broken\"}"
adm put-name-bad "PUT /scenario$NL$NL{\"name\": \"../etc/passwd\"}" "PUT /scenario$NL$NL{\"name\": \"nope\"}"
# a name the scenario loader would read as a path (ndesmock.cfg is in the directory fuzz/run.sh runs in)
adm put-name-cfg "PUT /scenario$NL$NL{\"name\": \"ndesmock.cfg\"}"
adm put-text "PUT /scenario$NL$NL{\"text\": \"summary = \\\"lab\\\";\\nrules = ( { name = \\\"caps\\\"; match = { operation = \\\"GetCACaps\\\"; }; action = { type = \\\"iis\\\"; status = 500; substatus = 0; win32 = 1346; }; } );\"}" "GET /scenario$NL"
adm put-raw "PUT /scenario$NL${NL}summary = \"raw\";${NL}rules = ( { name = \"slow\"; match = { operation = \"PKIOperation\"; message_type = \"PKCSReq\"; }; action = { type = \"scep\"; pki_status = \"PENDING\"; approve_after_polls = 2; }; } );$NL"
adm put-raw-material "PUT /scenario$NL${NL}summary = \"m\";${NL}material = { ra_enc_cert = \"state:pki/ra-enc.pem\"; policy_cert = \"state:pki/faulty/policy-expired.pem\"; };$NL"
adm put-raw-outside "PUT /scenario$NL${NL}material = { ra_sign_cert = \"../../etc/passwd\"; };$NL"
adm put-include "PUT /scenario$NL$NL{\"text\": \"@include \\\"/etc/passwd\\\"\"}"
adm put-errors "PUT /scenario$NL${NL}summary = 3;${NL}bogus = 1;${NL}rules = ( { name = 5; } );$NL"
adm put-dup "PUT /scenario$NL$NL{\"name\":\"a\",\"name\":\"b\"}" "PUT /scenario$NL$NL{\"name\": 5}" "PUT /scenario$NL$NL"
f=$(ls "$ROOT"/scenarios/*.cfg 2>/dev/null | head -1)
[ -n "$f" ] && { printf 'PUT /scenario\n\n'; cat "$f"; } >"$A/put-shipped-file.txt"
adm requests "GET /requests$NL"
adm requests-filters "GET /requests?operation=PKIOperation&message_type=PKCSReq&pki_status=PENDING&limit=1$NL" \
    "GET /requests?transaction_id=AB%2FCD%2BEF%3D%3D&method=post&path=%2Fcertsrv%2Fmscep%2Fmscep.dll&status=200$NL" \
    "GET /requests?status=0&limit=99999999999&operation=GetCACaps$NL"
adm requests-raw "GET /requests/2/raw$NL" "GET /requests/1/raw$NL" "GET /requests/x/raw$NL" "GET /requests/18446744073709551617/raw$NL"
adm requests-delete "DELETE /requests$NL" "GET /requests$NL"
adm certs "GET /certs$NL" "GET /certs?offset=1&limit=2$NL" "GET /certs?offset=-5&limit=5000$NL"
adm cert "GET /certs/0a1b2c$NL" "GET /certs/0A1B2D$NL" "GET /certs/zz$NL"
adm pending "GET /pending$NL" "POST /pending/AB%2FCD%2BEF%3D%3D/approve$NL" "POST /pending/AB%2FCD%2BEF%3D%3D/approve$NL" \
    "POST /pending/T2/reject$NL" "GET /pending/T2/reject$NL" "POST /pending/nope/approve$NL" "GET /pending$NL" \
    "POST /pending/tid-%FF/reject$NL" "GET /pending$NL"
adm challenges "POST /challenges$NL" "POST /challenges$NL" "POST /challenges$NL" "POST /challenges$NL" "GET /challenges$NL"
adm reset "POST /challenges$NL" "POST /reset$NL" "GET /metrics$NL"
adm metrics "GET /metrics$NL"
adm token "GET /healthz${NL}Authorization: Bearer fuzz-token$NL" "GET /healthz${NL}Authorization: Bearer wrong$NL" \
    "GET /scenario${NL}Authorization$NL" "PUT /scenario${NL}Authorization: Bearer fuzz-token$NL$NL{\"name\":\"healthy\"}"
adm paths "GET /nope$NL" "GET /$NL" "GET //healthz/$NL" "GET /%68ealthz?x=1$NL" "GET /healthz%$NL" "GET /a/b/c/d/e/f/g$NL" \
    "POST /healthz$NL" "DELETE /scenario$NL" "OPTIONS /healthz$NL"
rm -rf "$TMP"
ls "$OUT"/* | wc -l
