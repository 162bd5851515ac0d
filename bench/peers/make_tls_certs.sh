#!/usr/bin/env bash
# Makes the TLS benchmark's test certificates with the openssl CLI (package openssl):
#   DIR/ca.pem                 a self-signed test CA, ECDSA P-256 (what peer-tls-load trusts)
#   DIR/server.pem, server.key the server's ECDSA P-256 certificate for localhost and 127.0.0.1,
#                              signed by that CA, and its key (what every TLS server loads)
# usage: make_tls_certs.sh DIR
#
# Deterministic in everything but the key bits: the same names, serial, extensions and
# validity (from now, 7 days) every time; the openssl CLI has no way to derive an EC key
# from a seed, and the benchmark only needs the same kind of certificate each run (the
# handshake costs depend on the algorithms and the chain's shape, not on the key's bits).
# Kept apart from scripts/make-test-certs.sh (the tests' own): the benchmark must not move
# when the tests' certificates change.
set -euo pipefail
dir=${1:?usage: make_tls_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve -out "$1" 2>/dev/null; }

ec_key ca.key
openssl req -x509 -new -key ca.key -sha256 -days 7 -set_serial 1 -subj "/CN=sock bench test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.pem 2>/dev/null

ec_key server.key
openssl req -new -key server.key -subj "/CN=localhost" -out server.csr 2>/dev/null
cat >server.ext <<'EXT'
subjectAltName = DNS:localhost, IP:127.0.0.1
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
EXT
# The leaf alone in server.pem: every server sends the same one-certificate chain.
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 7 -sha256 \
    -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext
chmod 600 ca.key server.key
openssl verify -CAfile ca.pem server.pem >/dev/null
