#!/bin/sh
# regenerate.sh [STATE_DIR] [CONFIG] - make a fresh lab PKI in STATE_DIR/pki (default ./state),
# moving an existing one aside, and print what was made.
set -eu
state=${1:-./state}
cfg=${2:-}
bin=${NDESMOCK_BIN:-$(dirname "$0")/../build/ndesmock}
[ -x "$bin" ] || { echo "regenerate: build ndesmock first (make)" >&2; exit 1; }
if [ -d "$state/pki" ]; then
    old="$state/pki.old.$(date +%Y%m%d%H%M%S)"
    mv "$state/pki" "$old"
    echo "previous PKI moved to $old"
fi
mkdir -p "$state"
if [ -n "$cfg" ]; then "$bin" --config "$cfg" --generate-pki --state-dir "$state"; else "$bin" --generate-pki --state-dir "$state"; fi
for f in "$state"/pki/*.pem "$state"/pki/faulty/*.pem; do
    openssl x509 -in "$f" -noout >/dev/null 2>&1 || continue
    printf '%-40s %s | %s\n' "${f#"$state"/}" "$(openssl x509 -in "$f" -noout -subject -nameopt oneline | cut -d= -f2-)" \
        "$(openssl x509 -in "$f" -noout -enddate | cut -d= -f2)"
done
