#!/usr/bin/env bash
# Installs the Debian packages the build and tests need, when any is missing.
# As root it runs apt-get; otherwise it prints the one command to run and fails.
set -euo pipefail

# pkg-config, help2man, dpkg-dev (dpkg-shlibdeps), file and lintian: man pages, the .deb and
# the consumer tests (tests/consumers). valgrind: the frame pool's exit test. libc-ares-dev:
# bench/resolve's c-ares backend (the library itself never uses it). socat: a real client of
# chat-server (tests/integration/chat_test.py). systemd: systemd-socket-activate runs
# greet-server socket-activated, and systemd-analyze verifies the units in deploy/ (neither
# needs systemd running). prometheus: promtool, which checks a live scrape of greet-server
# --metrics (tests/integration/metrics_test.cpp). haproxy, nginx and its stream module: the
# front doors greet-server runs behind (tests/integration/front_door_test.py, deploy/).
# libssl-dev: sock::tls is built on OpenSSL 3, and so are the TLS benchmark peers
# (bench/peers: peer-floor-tls, peer-asio-tls, peer-tls-load). openssl: its command line makes
# the certificates (scripts/make-test-certs.sh, bench/peers/make_tls_certs.sh), and its
# s_server and s_client are peers in tests/tls.
packages=(g++ cmake make libgtest-dev libcli11-dev libasio-dev python3
  pkg-config help2man dpkg-dev file lintian valgrind libc-ares-dev socat systemd prometheus
  haproxy nginx libnginx-mod-stream libssl-dev openssl "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "missing packages; run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
