#!/usr/bin/env bash
# Makes the certificates the TLS tests use, into DIR (created if missing), with the openssl CLI:
#   ca.crt ca.key            a test CA (ECDSA P-256), the one the tests trust
#   server.crt server.key    ECDSA P-256, for localhost, 127.0.0.1, ::1 and example.test
#   server-rsa.crt/.key      RSA-2048, the same names
#   client.crt client.key    a client certificate for mutual TLS (CN=client)
#   expired.crt expired.key  for localhost, valid for one day, two days ago
#   self-signed.crt/.key     for localhost, signed by itself, not by the CA
#   wrong-host.crt/.key      signed by the CA, for wrong.test only
#   other-ca.crt             a second CA that signed none of them (for "unknown CA")
# Everything is for tests on loopback: keys are unencrypted, and nothing here is a secret.
set -euo pipefail
dir=${1:?usage: make-test-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# A CA certificate: name, subject.
make_ca() {
    ec_key "$1.key"
    openssl req -x509 -new -key "$1.key" -subj "$2" -days 3650 -out "$1.crt" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}

# A leaf signed by ca: name, key file (made before), subject, SANs, extended key usage,
# then openssl x509 dating options (the start and end of validity).
make_leaf() {
    local name=$1 key=$2 subj=$3 san=$4 eku=$5
    shift 5
    openssl req -new -key "$key" -subj "$subj" -out "$tmp/$name.csr"
    printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' "$san" "$eku" \
        >"$tmp/$name.ext"
    openssl x509 -req -in "$tmp/$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
        -extfile "$tmp/$name.ext" -out "$name.crt" "$@" 2>/dev/null
}

names="DNS:localhost,IP:127.0.0.1,IP:::1,DNS:example.test"
make_ca ca "/CN=sock test CA"
make_ca other-ca "/CN=sock other CA"
rm -f other-ca.key

ec_key server.key
make_leaf server server.key "/CN=localhost" "$names" serverAuth -days 3650
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out server-rsa.key 2>/dev/null
make_leaf server-rsa server-rsa.key "/CN=localhost" "$names" serverAuth -days 3650
ec_key client.key
make_leaf client client.key "/CN=client" "DNS:client" clientAuth -days 3650
ec_key wrong-host.key
make_leaf wrong-host wrong-host.key "/CN=wrong.test" "DNS:wrong.test" serverAuth -days 3650
# Expired: openssl x509 -req cannot date a certificate in the past, `openssl ca` can.
ec_key expired.key
openssl req -new -key expired.key -subj "/CN=localhost" -out "$tmp/expired.csr"
mkdir -p "$tmp/ca/new"
touch "$tmp/ca/index.txt"
cat >"$tmp/ca.cnf" <<CNF
[ca]
default_ca = test
[test]
dir = $tmp/ca
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
[leaf]
subjectAltName = $names
extendedKeyUsage = serverAuth
basicConstraints = CA:FALSE
CNF
echo 01 >"$tmp/ca/serial"
openssl ca -batch -config "$tmp/ca.cnf" -extensions leaf -cert ca.crt -keyfile ca.key \
    -in "$tmp/expired.csr" -out expired.crt -notext \
    -startdate "$(date -u -d '-3 days' +%Y%m%d%H%M%SZ)" \
    -enddate "$(date -u -d '-2 days' +%Y%m%d%H%M%SZ)" 2>/dev/null
ec_key self-signed.key
openssl req -x509 -new -key self-signed.key -subj "/CN=localhost" -days 3650 \
    -addext "subjectAltName=$names" -out self-signed.crt
rm -f ca.srl
