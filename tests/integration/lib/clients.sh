# shellcheck shell=bash
#
# clients.sh - drive the real SCEP clients shipped by Debian 12 against a SCEP
# URL, non-interactively, for the ndesmock integration tests.
#
# Source this file (it is `set -u` safe and sets no shell options itself).
# Every client function has the form
#
#     scep_<client> URL CHALLENGE WORKDIR [...]
#
# where URL is the full SCEP URL (e.g. http://127.0.0.1:PORT/certsrv/mscep/mscep.dll)
# and WORKDIR a fresh directory (created if missing) private to this run.  On
# return:
#   $WORKDIR/issued.pem  the issued certificate (PEM), only if issued
#   $WORKDIR/ca.pem      the CA certificate the client fetched (where it fetches one)
#   $WORKDIR/client.log  everything the client printed (stdout and stderr), plus
#                        "## ..." lines from this library saying what it ran
#   $WORKDIR/client.rc   exit status of the client's main (enrolment) step
# and the function returns 0 only if a certificate was issued.
# A failure of the enrolment step returns the client's own exit status where it
# has one (see CLIENTS.md for what each client returns on a rejected challenge),
# 124 on timeout, and 90..99 for failures of this library's own glue.
#
# Every client process runs under `timeout` ($SCEP_CLIENT_TIMEOUT seconds,
# default 30), so nothing can hang.  See tests/integration/CLIENTS.md for the
# quirks of each client and the GetCACaps lines they need.
#
# Tunables (environment, all optional):
#   SCEP_CLIENT_TIMEOUT   per-process timeout in seconds (default 30)
#   SCEP_CLIENT_CN        subject CN to request (default: ndesmock-<client>-<pid>)
#   SCEP_MICROMDM_SELECT  all (default): let scepclient encrypt to every
#                         certificate GetCACert returned (the only mode that
#                         works against an NDES-shaped server, see below);
#                         fingerprint: pass -ca-fingerprint of the
#                         keyEncipherment RA certificate
#   SCEP_MICROMDM_FETCH_CA  1: after an issued cert, GetCACert once more with curl
#                         to leave ca.pem (scepclient keeps none; default 0, so
#                         the server sees only scepclient's own requests)
#   SCEP_STRONGSWAN_DEBUG pki --debug level (default 1; 2 also logs the parsed caps)
#   SCEP_CERTMONGER_DEBUG certmonger-session -d level (default 2)
#   SCEP_CERTMONGER_CIPHER  aes or des3: content cipher of the PKCSReq built for
#                         scep_certmonger_submit (default: aes if GetCACaps lists
#                         AES, else des3)
#   SCEP_CERTMONGER_WAIT  seconds scep_certmonger_daemon waits for MONITORING
#                         (default 60)

: "${SCEP_CLIENT_TIMEOUT:=30}"

# ---------------------------------------------------------------- helpers ---

# _scep_prepare WORKDIR: create it, drop outputs of an earlier run, open the log.
_scep_prepare() {
    local w=$1
    mkdir -p "$w" || return 1
    rm -f "$w/issued.pem" "$w/ca.pem" "$w/client.rc"
    : >"$w/client.log"
}

# _scep_note WORKDIR TEXT...: a line from this library in client.log.
_scep_note() {
    local w=$1
    shift
    printf '## %s\n' "$*" >>"$w/client.log"
}

# _scep_run WORKDIR CMD...: run CMD under timeout, all output appended to the log.
_scep_run() {
    local w=$1
    shift
    _scep_note "$w" "run: $*"
    timeout -k 5 "$SCEP_CLIENT_TIMEOUT" "$@" >>"$w/client.log" 2>&1
    local rc=$?
    _scep_note "$w" "exit $rc"
    return $rc
}

# _scep_ossl ARGS...: openssl with the legacy provider too (single DES, RC2).
_scep_ossl() {
    local sub=$1
    shift
    openssl "$sub" -provider legacy -provider default "$@"
}

# _scep_cert_has_ku PEMFILE USAGE: true if the certificate's keyUsage names USAGE
# (as openssl prints it, e.g. "Key Encipherment", "Digital Signature").
_scep_cert_has_ku() {
    openssl x509 -in "$1" -noout -ext keyUsage 2>/dev/null | grep -q "$2"
}

# _scep_cert_is_ca PEMFILE: true if basicConstraints says CA:TRUE.
_scep_cert_is_ca() {
    openssl x509 -in "$1" -noout -ext basicConstraints 2>/dev/null | grep -q 'CA:TRUE'
}

# _scep_split_pem FILE PREFIX: write each certificate of a PEM bundle to
# PREFIX-1.pem, PREFIX-2.pem, ...; print how many.
_scep_split_pem() {
    awk -v p="$2" '
        /-----BEGIN CERTIFICATE-----/ { n++; f = p "-" n ".pem" }
        f != "" { print > f }
        /-----END CERTIFICATE-----/ { close(f); f = "" }
        END { print n + 0 }' "$1"
}

# _scep_pick_certs WORKDIR BUNDLE: from a PEM bundle of CA/RA certificates write
#   WORKDIR/ca.pem      the CA certificate (CA:TRUE, preferring a self-signed one)
#   WORKDIR/ra-enc.pem  the RA certificate for encryption (keyEncipherment, not CA)
#   WORKDIR/ra-sig.pem  the RA certificate for signatures (digitalSignature, not CA)
# falling back to the CA certificate where there is no RA certificate.
_scep_pick_certs() {
    local w=$1 bundle=$2 n i f ca="" enc="" sig=""
    rm -f "$w"/_cert-*.pem
    n=$(_scep_split_pem "$bundle" "$w/_cert")
    for ((i = 1; i <= n; i++)); do
        f="$w/_cert-$i.pem"
        if _scep_cert_is_ca "$f"; then
            if [[ -z $ca ]] || [[ "$(openssl x509 -in "$f" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')" == \
                "$(openssl x509 -in "$f" -noout -issuer -nameopt RFC2253 | sed 's/^issuer=//')" ]]; then
                ca=$f
            fi
        else
            if [[ -z $enc ]] && _scep_cert_has_ku "$f" 'Key Encipherment'; then enc=$f; fi
            if [[ -z $sig ]] && _scep_cert_has_ku "$f" 'Digital Signature'; then sig=$f; fi
        fi
    done
    if [[ -z $ca && $n -ge 1 ]]; then ca="$w/_cert-1.pem"; fi
    [[ -n $ca ]] || return 1
    cp "$ca" "$w/ca.pem"
    cp "${enc:-$ca}" "$w/ra-enc.pem"
    cp "${sig:-${enc:-$ca}}" "$w/ra-sig.pem"
}

# _scep_fetch_cacert WORKDIR URL: GetCACert with curl; leaves WORKDIR/getcacert.pem
# (every certificate returned, PEM) and prints the number of certificates.
_scep_fetch_cacert() {
    local w=$1 url=$2
    timeout -k 5 "$SCEP_CLIENT_TIMEOUT" curl -sS --fail --max-time "$SCEP_CLIENT_TIMEOUT" \
        -o "$w/getcacert.der" "$url?operation=GetCACert&message=ca" 2>>"$w/client.log" || return 1
    if ! openssl pkcs7 -inform DER -in "$w/getcacert.der" -print_certs -out "$w/getcacert.pem" 2>/dev/null; then
        openssl x509 -inform DER -in "$w/getcacert.der" -out "$w/getcacert.pem" 2>>"$w/client.log" || return 1
    fi
    grep -c -- '-----BEGIN CERTIFICATE-----' "$w/getcacert.pem"
}

_scep_cn() {
    printf '%s' "${SCEP_CLIENT_CN:-ndesmock-$1-$$-$RANDOM}"
}

# ------------------------------------------------------ micromdm scepclient ---

# scep_micromdm URL CHALLENGE WORKDIR [extra scepclient args...]
#
# micromdm scepclient 2.1.0 (single DES + SHA-1 always; POST only if
# POSTPKIOperation is advertised, else GET with base64url-ish message).  It has
# no key-usage selector flag (that arrived after 2.1.0): it encrypts to *every*
# certificate GetCACert returned (CA, RA signing, RA encryption: three
# RecipientInfos).  Its only selector is -ca-fingerprint (SHA-256 of one
# certificate), and it also narrows the certificates used to verify the
# CertRep, so with the RA encryption certificate selected a CertRep signed by
# the RA signing certificate fails with "pkcs7: No certificate for signer".
# Hence the default SCEP_MICROMDM_SELECT=all; =fingerprint selects the
# keyEncipherment RA certificate (for testing that failure mode).
scep_micromdm() {
    local url=$1 challenge=$2 w=$3
    shift 3
    local -a extra=("$@") sel=()
    local n fp rc
    _scep_prepare "$w" || return 90
    w=$(cd "$w" && pwd)
    if [[ "${SCEP_MICROMDM_SELECT:-all}" == fingerprint && " ${extra[*]-} " != *" -ca-fingerprint "* ]]; then
        if n=$(_scep_fetch_cacert "$w" "$url") && [[ $n -gt 1 ]]; then
            _scep_pick_certs "$w" "$w/getcacert.pem" || return 91
            if ! cmp -s "$w/ra-enc.pem" "$w/ca.pem"; then
                fp=$(openssl x509 -in "$w/ra-enc.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g')
                sel=(-ca-fingerprint "$fp")
                _scep_note "$w" "GetCACert returned $n certificates; selecting RA encryption cert $fp"
            fi
        fi
    fi
    # scepclient writes csr.pem and self.pem next to the private key, and an
    # existing cert.pem would turn the PKCSReq into a RenewalReq: start clean.
    rm -f "$w/key.pem" "$w/cert.pem" "$w/csr.pem" "$w/self.pem"
    _scep_run "$w" scepclient -server-url "$url" -challenge "$challenge" \
        -private-key "$w/key.pem" -certificate "$w/cert.pem" \
        -cn "$(_scep_cn micromdm)" -debug ${sel[@]+"${sel[@]}"} ${extra[@]+"${extra[@]}"}
    rc=$?
    echo "$rc" >"$w/client.rc"
    if [[ $rc -eq 0 && -s "$w/cert.pem" ]]; then
        openssl x509 -in "$w/cert.pem" -out "$w/issued.pem" 2>>"$w/client.log" || return 92
        # scepclient does not store the CA.  ca.pem exists if we fetched
        # GetCACert ourselves (fingerprint mode), or on request afterwards.
        if [[ ! -s "$w/ca.pem" && ${SCEP_MICROMDM_FETCH_CA:-0} == 1 ]] && n=$(_scep_fetch_cacert "$w" "$url"); then
            _scep_pick_certs "$w" "$w/getcacert.pem" || true
        fi
        return 0
    fi
    [[ $rc -ne 0 ]] || rc=93
    return "$rc"
}

# ---------------------------------------------------------- strongSwan pki ---

# scep_strongswan URL CHALLENGE WORKDIR CIPHER [extra pki --scep args...]
#
# CIPHER is aes or des3.  strongSwan 5.9.8's caps parser is broken (see
# CLIENTS.md): with the default --digest sha256 it needs the caps line
#   aes:  "SHA-384"
#   des3: "AES"  plus "DES3" or "SHA-384"
# and any of AES/DES3/SHA-256/SHA-384 makes it POST.
scep_strongswan() {
    local url=$1 challenge=$2 w=$3 cipher=${4:-aes}
    shift 3
    [[ $# -gt 0 ]] && shift
    local -a extra=("$@") ras=()
    local f enc="" sig="" rc
    _scep_prepare "$w" || return 90
    w=$(cd "$w" && pwd)
    rm -f "$w"/ca*.pem "$w"/ra*.pem
    _scep_run "$w" pki --scepca --url "$url" --caout "$w/ca.pem" --raout "$w/ra.pem" \
        --outform pem --force --debug "${SCEP_STRONGSWAN_DEBUG:-1}"
    rc=$?
    if [[ $rc -ne 0 ]]; then
        echo "$rc" >"$w/client.rc"
        return "$rc"
    fi
    # --scepca names files ca.pem (one root), ca-root.pem/ca-root-N.pem (several
    # roots), ca-N.pem (sub CAs), ra.pem / ra-N.pem (RA certificates).
    if [[ ! -s "$w/ca.pem" ]]; then
        for f in "$w"/ca-root*.pem "$w"/ca-*.pem; do
            [[ -s $f ]] && { cp "$f" "$w/ca.pem"; break; }
        done
    fi
    for f in "$w"/ra.pem "$w"/ra-[0-9]*.pem; do
        [[ -s $f ]] && ras+=("$f")
    done
    for f in "${ras[@]+"${ras[@]}"}"; do
        if [[ -z $enc ]] && _scep_cert_has_ku "$f" 'Key Encipherment'; then enc=$f; fi
        if [[ -z $sig ]] && _scep_cert_has_ku "$f" 'Digital Signature'; then sig=$f; fi
    done
    if [[ ${#ras[@]} -gt 0 ]]; then
        enc=${enc:-${ras[0]}}
        sig=${sig:-${ras[0]}}
    else
        enc="$w/ca.pem"
        sig="$w/ca.pem"
    fi
    _scep_note "$w" "encryption cert: $enc; signature cert: $sig"
    timeout -k 5 "$SCEP_CLIENT_TIMEOUT" pki --gen --type rsa --size 2048 --outform pem \
        >"$w/key.pem" 2>>"$w/client.log" || return 94
    _scep_note "$w" "run: pki --scep --url $url --cipher $cipher ..."
    timeout -k 5 "$SCEP_CLIENT_TIMEOUT" pki --scep --url "$url" --in "$w/key.pem" \
        --dn "CN=$(_scep_cn strongswan)" --password "$challenge" \
        --cacert-enc "$enc" --cacert-sig "$sig" --cacert "$w/ca.pem" \
        --cipher "$cipher" --interval 1 --maxpolltime 10 --outform pem --debug "${SCEP_STRONGSWAN_DEBUG:-1}" \
        "${extra[@]+"${extra[@]}"}" >"$w/scep-out.pem" 2>>"$w/client.log"
    rc=$?
    _scep_note "$w" "exit $rc"
    echo "$rc" >"$w/client.rc"
    if [[ $rc -eq 0 && -s "$w/scep-out.pem" ]]; then
        openssl x509 -in "$w/scep-out.pem" -out "$w/issued.pem" 2>>"$w/client.log" || return 92
        return 0
    fi
    [[ $rc -ne 0 ]] || rc=93
    return "$rc"
}

# ------------------------------------------- certmonger scep-submit by hand ---

# DER helpers (hex in, hex out) for building the PKCSReq pkiMessage that the
# certmonger daemon would otherwise build itself (scep-submit only sends it).
_der_len() {
    local n=$1
    if ((n < 128)); then
        printf '%02x' "$n"
    elif ((n < 256)); then
        printf '81%02x' "$n"
    elif ((n < 65536)); then
        printf '82%04x' "$n"
    else
        printf '83%06x' "$n"
    fi
}
# _der TAGHEX CONTENTHEX
_der() { printf '%s%s%s' "$1" "$(_der_len $((${#2} / 2)))" "$2"; }
_hex_of_file() { xxd -p "$1" | tr -d '\n'; }
_hex_of_str() { printf '%s' "$1" | xxd -p | tr -d '\n'; }

# _der_tlv_at DERFILE OFFSET: hex of the complete TLV at OFFSET (from asn1parse).
_der_tlv_at() {
    local f=$1 off=$2 hl l
    read -r hl l < <(openssl asn1parse -inform DER -in "$f" -offset "$off" 2>/dev/null |
        head -1 | sed -n 's/.*hl= *\([0-9]*\) l= *\([0-9]*\).*/\1 \2/p')
    xxd -p -s "$off" -l $((hl + l)) "$f" | tr -d '\n'
}

# _scep_build_pkcsreq WORKDIR CHALLENGE CIPHER: key.pem, csr.pem, signer.pem and
# the SCEP PKCSReq pkiMessage (pkcsreq.der / pkcsreq.b64), encrypted to
# WORKDIR/ra-enc.pem with CIPHER (aes -> aes-128-cbc, des3 -> des-ede3-cbc),
# signed with SHA-256/rsaEncryption by a throw-away self-signed certificate, as
# certmonger's scepgen does.  Writes txid and nonce.hex.
_scep_build_pkcsreq() {
    local w=$1 challenge=$2 cipher=$3 cn encopt
    cn=$(_scep_cn certmonger)
    case $cipher in
    aes) encopt=-aes128 ;;
    des3) encopt=-des3 ;;
    des) encopt=-des ;;
    *) return 1 ;;
    esac
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$w/key.pem" 2>/dev/null || return 1
    cat >"$w/req.cnf" <<EOF
[req]
prompt = no
distinguished_name = dn
attributes = attrs
[dn]
CN = $cn
[attrs]
challengePassword = $challenge
EOF
    openssl req -new -key "$w/key.pem" -config "$w/req.cnf" -sha256 -out "$w/csr.pem" 2>>"$w/client.log" || return 1
    openssl req -in "$w/csr.pem" -outform DER -out "$w/csr.der" || return 1
    openssl req -x509 -key "$w/key.pem" -in "$w/csr.pem" -days 1 -sha256 -copy_extensions none \
        -set_serial "0x$(openssl rand -hex 8)" -out "$w/signer.pem" 2>>"$w/client.log" || return 1
    openssl x509 -in "$w/signer.pem" -outform DER -out "$w/signer.der" || return 1
    # transactionID: hex SHA-1 of the public key (what certmonger and strongSwan use).
    openssl pkey -in "$w/key.pem" -pubout -outform DER 2>/dev/null | sha1sum | cut -c1-40 >"$w/txid"
    openssl rand -hex 16 >"$w/nonce.hex"
    # pkcsPKIEnvelope: EnvelopedData of the DER CSR for the RA encryption certificate.
    _scep_ossl cms -encrypt -binary "$encopt" -in "$w/csr.der" -outform DER \
        -out "$w/envelope.der" "$w/ra-enc.pem" 2>>"$w/client.log" || return 1

    local oid_data=06092a864886f70d010701 oid_signed=06092a864886f70d010702
    local alg_sha256=300d06096086480165030402010500 alg_rsa=300d06092a864886f70d0101010500
    local oid_ct=06092a864886f70d010903 oid_md=06092a864886f70d010904
    local scep=060a6086480186f84501090
    local env_hex md a_ct a_md a_mt a_tx a_sn attrs_set sig issuer serial tbs_off o_serial o_issuer
    env_hex=$(_hex_of_file "$w/envelope.der")
    md=$(sha256sum "$w/envelope.der" | cut -c1-64)
    a_ct=$(_der 30 "$oid_ct$(_der 31 "$oid_data")")
    a_md=$(_der 30 "$oid_md$(_der 31 "$(_der 04 "$md")")")
    a_mt=$(_der 30 "${scep}2$(_der 31 "$(_der 13 "$(_hex_of_str 19)")")")
    a_tx=$(_der 30 "${scep}7$(_der 31 "$(_der 13 "$(_hex_of_str "$(cat "$w/txid")")")")")
    a_sn=$(_der 30 "${scep}5$(_der 31 "$(_der 04 "$(cat "$w/nonce.hex")")")")
    # DER SET OF: elements in ascending order of their encodings.
    attrs_set=$(printf '%s\n' "$a_ct" "$a_md" "$a_mt" "$a_tx" "$a_sn" | LC_ALL=C sort | tr -d '\n')
    printf '%s' "$(_der 31 "$attrs_set")" | xxd -r -p >"$w/signedattrs.der"
    openssl dgst -sha256 -sign "$w/key.pem" -out "$w/signature.bin" "$w/signedattrs.der" || return 1
    sig=$(_hex_of_file "$w/signature.bin")
    # issuer Name and serialNumber of the signer certificate: the 2nd and 4th
    # elements of tbsCertificate ([0] version, serial, signature alg, issuer).
    tbs_off=$(openssl asn1parse -inform DER -in "$w/signer.der" | awk -F: '$2 ~ /d=2/ {print $1+0}' | head -4 | tr '\n' ' ')
    read -r _ o_serial _ o_issuer <<<"$tbs_off"
    serial=$(_der_tlv_at "$w/signer.der" "$o_serial")
    issuer=$(_der_tlv_at "$w/signer.der" "$o_issuer")
    local signer_info signed_data
    signer_info=$(_der 30 "020101$(_der 30 "$issuer$serial")$alg_sha256$(_der a0 "$attrs_set")$alg_rsa$(_der 04 "$sig")")
    signed_data=$(_der 30 "020101$(_der 31 "$alg_sha256")$(_der 30 "$oid_data$(_der a0 "$(_der 04 "$env_hex")")")$(_der a0 "$(_hex_of_file "$w/signer.der")")$(_der 31 "$signer_info")")
    printf '%s' "$(_der 30 "$oid_signed$(_der a0 "$signed_data")")" | xxd -r -p >"$w/pkcsreq.der"
    # Sanity check: our own signature must verify.
    openssl cms -verify -noverify -inform DER -in "$w/pkcsreq.der" -out /dev/null 2>>"$w/client.log" || return 1
    base64 -w0 "$w/pkcsreq.der" >"$w/pkcsreq.b64"
}

# scep_certmonger_submit URL CHALLENGE WORKDIR
#
# certmonger's SCEP helper, run the way the daemon runs it: one process per
# operation, parameters in CERTMONGER_* environment variables, results on stdout.
#   1. CERTMONGER_OPERATION=FETCH-SCEP-CA-CAPS  -> caps.txt
#   2. CERTMONGER_OPERATION=FETCH-SCEP-CA-CERTS -> cacerts.pem (RA cert first,
#      then the CA cert, then others)
#   3. build the PKCSReq (the daemon's job: scepgen) -> CERTMONGER_PKCSREQ
#   4. CERTMONGER_OPERATION=SUBMIT with CERTMONGER_PKCSREQ,
#      CERTMONGER_SCEP_RA_CERTIFICATE, CERTMONGER_SCEP_CA_CERTIFICATE,
#      CERTMONGER_SCEP_CERTIFICATES -> PEM "PKCS7" = the still-encrypted
#      pkcsPKIEnvelope of the CertRep (exit 0), or a message and exit 2 (rejected)
#   5. decrypt it with the key and self-signed signer cert (the daemon's job)
scep_certmonger_submit() {
    local url=$1 challenge=$2 w=$3
    local helper=/usr/lib/certmonger/scep-submit rc i cipher=${SCEP_CERTMONGER_CIPHER:-aes}
    _scep_prepare "$w" || return 90
    w=$(cd "$w" && pwd)
    _scep_note "$w" "FETCH-SCEP-CA-CAPS"
    CERTMONGER_OPERATION=FETCH-SCEP-CA-CAPS \
        timeout -k 5 "$SCEP_CLIENT_TIMEOUT" "$helper" -u "$url" >"$w/caps.txt" 2>>"$w/client.log"
    rc=$?
    cat "$w/caps.txt" >>"$w/client.log"
    _scep_note "$w" "exit $rc"
    if [[ $rc -ne 0 ]]; then echo "$rc" >"$w/client.rc"; return "$rc"; fi

    _scep_note "$w" "FETCH-SCEP-CA-CERTS"
    CERTMONGER_OPERATION=FETCH-SCEP-CA-CERTS \
        timeout -k 5 "$SCEP_CLIENT_TIMEOUT" "$helper" -u "$url" >"$w/cacerts.pem" 2>>"$w/client.log"
    rc=$?
    _scep_note "$w" "exit $rc"
    if [[ $rc -ne 0 ]]; then cat "$w/cacerts.pem" >>"$w/client.log"; echo "$rc" >"$w/client.rc"; return "$rc"; fi
    # Output order (src/scep.c): RA (encryption) cert, CA cert, other certs.
    local n
    n=$(_scep_split_pem "$w/cacerts.pem" "$w/_out")
    [[ $n -ge 1 ]] || return 91
    cp "$w/_out-1.pem" "$w/ra-enc.pem"
    if [[ $n -ge 2 ]]; then cp "$w/_out-2.pem" "$w/ca.pem"; else cp "$w/_out-1.pem" "$w/ca.pem"; fi
    : >"$w/others.pem"
    for ((i = 3; i <= n; i++)); do cat "$w/_out-$i.pem" >>"$w/others.pem"; done
    # Where the first cert is a CA certificate there is no RA: use it for both.
    _scep_note "$w" "RA: $(openssl x509 -in "$w/ra-enc.pem" -noout -subject) / CA: $(openssl x509 -in "$w/ca.pem" -noout -subject)"

    if ! grep -qix 'aes' "$w/caps.txt" && [[ $cipher == aes ]] && [[ -z ${SCEP_CERTMONGER_CIPHER:-} ]]; then
        cipher=des3
    fi
    _scep_note "$w" "building PKCSReq ($cipher, sha256)"
    _scep_build_pkcsreq "$w" "$challenge" "$cipher" || return 95

    _scep_note "$w" "SUBMIT"
    CERTMONGER_OPERATION=SUBMIT \
        CERTMONGER_PKCSREQ="$(cat "$w/pkcsreq.b64")" \
        CERTMONGER_SCEP_RA_CERTIFICATE="$(cat "$w/ra-enc.pem")" \
        CERTMONGER_SCEP_CA_CERTIFICATE="$(cat "$w/ca.pem")" \
        CERTMONGER_SCEP_CERTIFICATES="$(cat "$w/others.pem")" \
        timeout -k 5 "$SCEP_CLIENT_TIMEOUT" "$helper" -u "$url" -v >"$w/submit.out" 2>>"$w/client.log"
    rc=$?
    cat "$w/submit.out" >>"$w/client.log"
    _scep_note "$w" "exit $rc"
    echo "$rc" >"$w/client.rc"
    [[ $rc -eq 0 ]] || return "$rc"
    # stdout is the pkcsPKIEnvelope as PEM "PKCS7": decrypt it as the daemon would.
    _scep_certmonger_take_issued "$w" "$w/submit.out"
}

# ---------------------------------------------------- certmonger daemon -----

# scep_certmonger_daemon URL CHALLENGE WORKDIR [SIGNING_CA_PEM]
#
# SIGNING_CA_PEM (optional) is given to add-scep-ca as -N (the CA that signed
# the RA certificate).  scep-submit verifies the CertRep signature against the
# CA certificate as trust anchor; the daemon learns it from GetCACert when that
# returns an RA and a CA certificate (NDES), but with a single-certificate
# GetCACert (scepserver: CA = RA) it has none and every CertRep fails with
# "failed to verify signature on server response ... certificate verify error"
# (CA_UNREACHABLE) unless -N is given.
#
# A private certmonger-session (no D-Bus daemon at all: -L -P SOCKET, getcert
# talks to it through DBUS_SESSION_BUS_ADDRESS=unix:path=SOCKET), its state under
# WORKDIR (HOME and the CERTMONGER_*_DIR variables).  add-scep-ca, request, wait
# (bounded) for MONITORING, always stop the daemon.
scep_certmonger_daemon() {
    local url=$1 challenge=$2 w=$3 signca=${4:-}
    local waitmax=${SCEP_CERTMONGER_WAIT:-60} rc=0 pid="" status="" deadline
    local -a caopt=()
    _scep_prepare "$w" || return 90
    w=$(cd "$w" && pwd)
    if [[ -n $signca ]]; then
        cp "$signca" "$w/signing-ca.pem" || return 90
        caopt=(-N "$w/signing-ca.pem")
    fi
    mkdir -p "$w/home" "$w/cm/cas" "$w/cm/requests" "$w/cm/local" "$w/cm/tmp" || return 90
    rm -f "$w/cm.sock" "$w/cm.pid"
    (
        # Everything the daemon writes goes under WORKDIR.
        export HOME="$w/home" XDG_CONFIG_HOME="$w/home/.config" XDG_DATA_HOME="$w/home/.local/share"
        export CERTMONGER_CONFIG_DIR="$w/cm" CERTMONGER_CAS_DIR="$w/cm/cas"
        export CERTMONGER_REQUESTS_DIR="$w/cm/requests" CERTMONGER_LOCAL_CA_DIR="$w/cm/local"
        export CERTMONGER_TMPDIR="$w/cm/tmp" TMPDIR="$w/cm/tmp"
        unset DBUS_SESSION_BUS_ADDRESS DBUS_SYSTEM_BUS_ADDRESS
        exec timeout -k 5 $((waitmax + SCEP_CLIENT_TIMEOUT + 30)) \
            /usr/lib/certmonger/certmonger-session -n -L -P "$w/cm.sock" -d "${SCEP_CERTMONGER_DEBUG:-2}"
    ) >>"$w/daemon.log" 2>&1 &
    pid=$!
    echo "$pid" >"$w/cm.pid"
    _scep_note "$w" "certmonger-session pid $pid (via timeout), socket $w/cm.sock, log $w/daemon.log"

    # getcert goes straight to the daemon's socket when CERTMONGER_PVT_ADDRESS
    # is set (src/getcert.c prep_req); -s would make it look for a session bus
    # daemon instead.  Never let it fall back to the system bus: as root with no
    # system bus it would start a temporary daemon on the system state.
    local -a gc=(env HOME="$w/home" CERTMONGER_PVT_ADDRESS="unix:path=$w/cm.sock"
        DBUS_SESSION_BUS_ADDRESS="unix:path=$w/cm.sock" DBUS_SYSTEM_BUS_ADDRESS="unix:path=$w/cm.sock"
        timeout -k 5 "$SCEP_CLIENT_TIMEOUT" getcert)
    deadline=$((SECONDS + 10))
    while [[ ! -S "$w/cm.sock" ]] && ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ ! -S "$w/cm.sock" ]]; then
        _scep_note "$w" "daemon socket never appeared"
        rc=99
    fi
    if [[ $rc -eq 0 ]]; then
        _scep_note "$w" "run: getcert add-scep-ca -c ndesmock -u $url ${caopt[*]-}"
        "${gc[@]}" add-scep-ca -c ndesmock -u "$url" "${caopt[@]+"${caopt[@]}"}" >>"$w/client.log" 2>&1 || rc=$?
    fi
    if [[ $rc -eq 0 ]]; then
        _scep_note "$w" "run: getcert request -c ndesmock -k $w/key.pem -f $w/cert.pem -L ***"
        "${gc[@]}" request -c ndesmock -I ndesmock-req -k "$w/key.pem" -f "$w/cert.pem" \
            -F "$w/cachain.pem" -N "CN=$(_scep_cn certmonger-daemon)" -L "$challenge" -R \
            >>"$w/client.log" 2>&1 || rc=$?
    fi
    if [[ $rc -eq 0 ]]; then
        deadline=$((SECONDS + waitmax))
        while ((SECONDS < deadline)); do
            status=$("${gc[@]}" list -i ndesmock-req 2>/dev/null | sed -n 's/^[[:space:]]*status: //p' | head -1)
            case $status in
            MONITORING | CA_REJECTED | CA_UNREACHABLE | CA_UNCONFIGURED | NEED_GUIDANCE | NEED_CA) break ;;
            esac
            sleep 0.5
        done
        _scep_note "$w" "final status: ${status:-none}"
        "${gc[@]}" list -i ndesmock-req >>"$w/client.log" 2>&1
        "${gc[@]}" list-cas -c ndesmock >>"$w/client.log" 2>&1
    fi
    # Always stop the daemon (timeout forwards the TERM to it).
    kill "$pid" 2>/dev/null
    local t=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < t)); do sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    cat "$w/daemon.log" >>"$w/client.log" 2>/dev/null
    if [[ $rc -ne 0 ]]; then echo "$rc" >"$w/client.rc"; return "$rc"; fi
    if [[ $status == MONITORING && -s "$w/cert.pem" ]]; then
        echo 0 >"$w/client.rc"
        openssl x509 -in "$w/cert.pem" -out "$w/issued.pem" 2>>"$w/client.log" || return 92
        [[ -s "$w/cachain.pem" ]] && openssl x509 -in "$w/cachain.pem" -out "$w/ca.pem" 2>/dev/null
        return 0
    fi
    case $status in
    CA_REJECTED) rc=2 ;;
    CA_UNREACHABLE) rc=3 ;;
    CA_UNCONFIGURED) rc=4 ;;
    *) rc=1 ;;
    esac
    echo "$rc" >"$w/client.rc"
    return "$rc"
}

# -------------------------------------------------------------- verify -----

# verify_issued WORKDIR CA_PEM: the issued certificate chains to CA_PEM.
verify_issued() {
    local w=$1 ca=$2
    [[ -s "$w/issued.pem" ]] || return 1
    openssl verify -CAfile "$ca" "$w/issued.pem"
}

# ============================================================================
# Added for the PENDING / one-time password cycles (t_cycles.sh).  Nothing
# above this line changed; these functions reuse its private helpers.
# ============================================================================

# ------------------------------------------- certmonger session pieces -----
#
# The same private certmonger-session that scep_certmonger_daemon runs, split
# in steps so a test can act between them (approve a PENDING request on the
# server, then make the daemon try again):
#   certmonger_session_start WORKDIR      start it (state under WORKDIR)
#   certmonger_getcert WORKDIR ARGS...    getcert against that daemon only
#   certmonger_status WORKDIR ID          print the request's status
#   certmonger_wait_status WORKDIR ID SECONDS STATUS...
#                                         wait (bounded) until the status is
#                                         one of STATUS; print it; 0 if reached
#   certmonger_session_stop WORKDIR       TERM/KILL it, append daemon.log to
#                                         client.log
# The daemon itself runs under `timeout` ($SCEP_CERTMONGER_SESSION_MAX, default
# 300 s) as a backstop; always call certmonger_session_stop.
#
# Facts these are for (certmonger 0.79.17, checked against ndesmock):
# - A PENDING CertRep (scep-submit exit 1, the server nonce saved as cookie)
#   leaves the request in CA_WORKING and the daemon schedules the next try a
#   week away ("Will revisit Request1('ID') in 604800 seconds"): the helper
#   exit 1 carries no delay (only exit 5, WAIT_WITH_DELAY, would).
# - `getcert resubmit -i ID` makes it try now: it sends the same PKCSReq again
#   (same transactionID, GET), not a GetCertInitial.
# - Restarting the daemon also tries at once: POLL with no SCEP messages kept
#   (exit 16), then new messages and a SUBMIT (again PKCSReq, same
#   transactionID).
# - GetCertInitial never goes on the wire: the daemon generates one and passes
#   it (CERTMONGER_GETCERTINITIAL) with the PKCSReq, but scep-submit 0.79.17
#   sends CERTMONGER_PKCSREQ for POLL too (without it: exit 16, "Expected PKCS7
#   data containing a PKCSReq pkiMessage, got nothing."), i.e. it polls by
#   resending the PKCSReq (RFC 8894 allows that).
certmonger_session_start() {
    local w=$1 pid deadline
    mkdir -p "$w" "$w/home" "$w/cm/cas" "$w/cm/requests" "$w/cm/local" "$w/cm/tmp" || return 90
    w=$(cd "$w" && pwd)
    [[ -f "$w/client.log" ]] || : >"$w/client.log"
    rm -f "$w/cm.sock"
    (
        export HOME="$w/home" XDG_CONFIG_HOME="$w/home/.config" XDG_DATA_HOME="$w/home/.local/share"
        export CERTMONGER_CONFIG_DIR="$w/cm" CERTMONGER_CAS_DIR="$w/cm/cas"
        export CERTMONGER_REQUESTS_DIR="$w/cm/requests" CERTMONGER_LOCAL_CA_DIR="$w/cm/local"
        export CERTMONGER_TMPDIR="$w/cm/tmp" TMPDIR="$w/cm/tmp"
        unset DBUS_SESSION_BUS_ADDRESS DBUS_SYSTEM_BUS_ADDRESS
        exec timeout -k 5 "${SCEP_CERTMONGER_SESSION_MAX:-300}" \
            /usr/lib/certmonger/certmonger-session -n -L -P "$w/cm.sock" -d "${SCEP_CERTMONGER_DEBUG:-2}"
    ) >>"$w/daemon.log" 2>&1 &
    pid=$!
    echo "$pid" >"$w/cm.pid"
    _scep_note "$w" "certmonger-session pid $pid (via timeout), socket $w/cm.sock"
    deadline=$((SECONDS + 10))
    while [[ ! -S "$w/cm.sock" ]] && ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    [[ -S "$w/cm.sock" ]] || { _scep_note "$w" "daemon socket never appeared"; return 99; }
}

certmonger_getcert() {
    local w=$1
    shift
    w=$(cd "$w" && pwd)
    env HOME="$w/home" CERTMONGER_PVT_ADDRESS="unix:path=$w/cm.sock" \
        DBUS_SESSION_BUS_ADDRESS="unix:path=$w/cm.sock" DBUS_SYSTEM_BUS_ADDRESS="unix:path=$w/cm.sock" \
        timeout -k 5 "$SCEP_CLIENT_TIMEOUT" getcert "$@"
}

certmonger_status() {
    certmonger_getcert "$1" list -i "$2" 2>/dev/null | sed -n 's/^[[:space:]]*status: //p' | head -1
}

certmonger_wait_status() {
    local w=$1 id=$2 secs=$3 st="" s deadline
    shift 3
    deadline=$((SECONDS + secs))
    while :; do
        st=$(certmonger_status "$w" "$id")
        for s in "$@"; do
            [[ $st == "$s" ]] && { echo "$st"; return 0; }
        done
        ((SECONDS < deadline)) || break
        sleep 0.25
    done
    echo "${st:-none}"
    return 1
}

certmonger_session_stop() {
    local w=$1 pid t
    [[ -s "$w/cm.pid" ]] || return 0
    pid=$(cat "$w/cm.pid")
    kill "$pid" 2>/dev/null
    t=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < t)); do sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rm -f "$w/cm.pid"
    cat "$w/daemon.log" >>"$w/client.log" 2>/dev/null
    return 0
}

# ------------------------------- certmonger scep-submit POLL by hand -------

# _scep_build_getcertinitial WORKDIR: GetCertInitial (messageType 20) for the
# request scep_certmonger_submit built in WORKDIR: same key, signer certificate
# and transactionID, a fresh senderNonce; content IssuerAndSubject (issuer =
# the CA's subject, subject = the CSR's subject) enveloped for ra-enc.pem with
# the same cipher as the PKCSReq.  Writes getcertinitial.der / .b64, nonce.hex.
_scep_build_getcertinitial() {
    local w=$1 cipher=${SCEP_CERTMONGER_CIPHER:-aes} encopt off issuer_name subject_name
    if ! grep -qix 'aes' "$w/caps.txt" 2>/dev/null && [[ -z ${SCEP_CERTMONGER_CIPHER:-} ]]; then cipher=des3; fi
    case $cipher in aes) encopt=-aes128 ;; des3) encopt=-des3 ;; des) encopt=-des ;; *) return 1 ;; esac
    openssl x509 -in "$w/ca.pem" -outform DER -out "$w/ca.der" || return 1
    # tbsCertificate children: [0] version, serial, signature, issuer, validity, subject
    off=$(openssl asn1parse -inform DER -in "$w/ca.der" | awk -F: '$2 ~ /d=2/ {print $1+0}' | sed -n 6p)
    issuer_name=$(_der_tlv_at "$w/ca.der" "$off")
    # CertificationRequestInfo children: version, subject, ...
    off=$(openssl asn1parse -inform DER -in "$w/csr.der" | awk -F: '$2 ~ /d=2/ {print $1+0}' | sed -n 2p)
    subject_name=$(_der_tlv_at "$w/csr.der" "$off")
    printf '%s' "$(_der 30 "$issuer_name$subject_name")" | xxd -r -p >"$w/ias.der"
    openssl rand -hex 16 >"$w/nonce.hex"
    _scep_ossl cms -encrypt -binary "$encopt" -in "$w/ias.der" -outform DER \
        -out "$w/gci-envelope.der" "$w/ra-enc.pem" 2>>"$w/client.log" || return 1

    local oid_data=06092a864886f70d010701 oid_signed=06092a864886f70d010702
    local alg_sha256=300d06096086480165030402010500 alg_rsa=300d06092a864886f70d0101010500
    local oid_ct=06092a864886f70d010903 oid_md=06092a864886f70d010904
    local scep=060a6086480186f84501090
    local env_hex md attrs_set sig tbs_off o_serial o_issuer serial issuer signer_info signed_data
    env_hex=$(_hex_of_file "$w/gci-envelope.der")
    md=$(sha256sum "$w/gci-envelope.der" | cut -c1-64)
    attrs_set=$(printf '%s\n' \
        "$(_der 30 "$oid_ct$(_der 31 "$oid_data")")" \
        "$(_der 30 "$oid_md$(_der 31 "$(_der 04 "$md")")")" \
        "$(_der 30 "${scep}2$(_der 31 "$(_der 13 "$(_hex_of_str 20)")")")" \
        "$(_der 30 "${scep}7$(_der 31 "$(_der 13 "$(_hex_of_str "$(cat "$w/txid")")")")")" \
        "$(_der 30 "${scep}5$(_der 31 "$(_der 04 "$(cat "$w/nonce.hex")")")")" |
        LC_ALL=C sort | tr -d '\n')
    printf '%s' "$(_der 31 "$attrs_set")" | xxd -r -p >"$w/gci-signedattrs.der"
    openssl dgst -sha256 -sign "$w/key.pem" -out "$w/gci-signature.bin" "$w/gci-signedattrs.der" || return 1
    sig=$(_hex_of_file "$w/gci-signature.bin")
    tbs_off=$(openssl asn1parse -inform DER -in "$w/signer.der" | awk -F: '$2 ~ /d=2/ {print $1+0}' | head -4 | tr '\n' ' ')
    read -r _ o_serial _ o_issuer <<<"$tbs_off"
    serial=$(_der_tlv_at "$w/signer.der" "$o_serial")
    issuer=$(_der_tlv_at "$w/signer.der" "$o_issuer")
    signer_info=$(_der 30 "020101$(_der 30 "$issuer$serial")$alg_sha256$(_der a0 "$attrs_set")$alg_rsa$(_der 04 "$sig")")
    signed_data=$(_der 30 "020101$(_der 31 "$alg_sha256")$(_der 30 "$oid_data$(_der a0 "$(_der 04 "$env_hex")")")$(_der a0 "$(_hex_of_file "$w/signer.der")")$(_der 31 "$signer_info")")
    printf '%s' "$(_der 30 "$oid_signed$(_der a0 "$signed_data")")" | xxd -r -p >"$w/getcertinitial.der"
    openssl cms -verify -noverify -inform DER -in "$w/getcertinitial.der" -out /dev/null 2>>"$w/client.log" || return 1
    base64 -w0 "$w/getcertinitial.der" >"$w/getcertinitial.b64"
}

# _scep_certmonger_take_issued WORKDIR REPLYPEM: decrypt the pkcsPKIEnvelope
# scep-submit printed (as the daemon would) and keep the certificate for our
# key as WORKDIR/issued.pem.
_scep_certmonger_take_issued() {
    local w=$1 reply=$2 k n i
    _scep_ossl cms -decrypt -inform PEM -in "$reply" -recip "$w/signer.pem" \
        -inkey "$w/key.pem" -binary -out "$w/degenerate.der" 2>>"$w/client.log" || return 96
    openssl pkcs7 -inform DER -in "$w/degenerate.der" -print_certs -out "$w/degenerate.pem" 2>>"$w/client.log" || return 97
    k=$(openssl pkey -in "$w/key.pem" -pubout 2>/dev/null)
    n=$(_scep_split_pem "$w/degenerate.pem" "$w/_iss")
    for ((i = 1; i <= n; i++)); do
        if [[ "$(openssl x509 -in "$w/_iss-$i.pem" -noout -pubkey)" == "$k" ]]; then
            openssl x509 -in "$w/_iss-$i.pem" -out "$w/issued.pem"
            return 0
        fi
    done
    return 98
}

# scep_certmonger_poll URL WORKDIR
#
# The daemon's POLL step with the real helper, after scep_certmonger_submit
# URL CHALLENGE WORKDIR returned 1 (PENDING), with what the daemon passes:
#   CERTMONGER_OPERATION=POLL CERTMONGER_GETCERTINITIAL=<a GetCertInitial for
#   the same transaction> CERTMONGER_PKCSREQ=<the same PKCSReq>
#   CERTMONGER_SCEP_{RA,CA}_CERTIFICATE=... scep-submit -u URL -v
# scep-submit 0.79.17 then GETs PKIOperation with the *PKCSReq* again (the
# GetCertInitial is built, WORKDIR/getcertinitial.der, but the helper does not
# send it; a test may send it itself).  Exit codes as for SUBMIT:
# 0 issued (WORKDIR/issued.pem), 1 still pending, 2 rejected, 3 error.
# client.log is appended to, client.rc rewritten.
scep_certmonger_poll() {
    local url=$1 w=$2 helper=/usr/lib/certmonger/scep-submit rc
    w=$(cd "$w" && pwd) || return 90
    [[ -s "$w/pkcsreq.b64" && -s "$w/txid" && -s "$w/signer.pem" ]] || return 90
    rm -f "$w/issued.pem"
    _scep_note "$w" "building GetCertInitial (transactionID $(cat "$w/txid"))"
    _scep_build_getcertinitial "$w" || return 95
    _scep_note "$w" "POLL"
    CERTMONGER_OPERATION=POLL \
        CERTMONGER_GETCERTINITIAL="$(cat "$w/getcertinitial.b64")" \
        CERTMONGER_PKCSREQ="$(cat "$w/pkcsreq.b64")" \
        CERTMONGER_SCEP_RA_CERTIFICATE="$(cat "$w/ra-enc.pem")" \
        CERTMONGER_SCEP_CA_CERTIFICATE="$(cat "$w/ca.pem")" \
        CERTMONGER_SCEP_CERTIFICATES="$(cat "$w/others.pem" 2>/dev/null)" \
        timeout -k 5 "$SCEP_CLIENT_TIMEOUT" "$helper" -u "$url" -v >"$w/poll.out" 2>>"$w/client.log"
    rc=$?
    cat "$w/poll.out" >>"$w/client.log"
    _scep_note "$w" "exit $rc"
    echo "$rc" >"$w/client.rc"
    [[ $rc -eq 0 ]] || return "$rc"
    _scep_certmonger_take_issued "$w" "$w/poll.out"
}
