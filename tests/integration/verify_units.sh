#!/usr/bin/env bash
# systemd-analyze verify on deploy/'s units, as `cmake --install` writes them but with ExecStart
# naming this build's greet-server (verify checks that the program exists). Any message fails
# the test: verify exits 0 on an unknown key or a bad value, which it only reports.
#   verify_units.sh SOURCE_DIR BIN_DIR SCRATCH_DIR
set -euo pipefail
src=$1 bindir=$2 out=$3
command -v systemd-analyze >/dev/null || { echo "no systemd-analyze (scripts/deps.sh installs systemd)"; exit 77; }
rm -rf "$out"
mkdir -p "$out"
sed "s|@SOCK_BINDIR@|$bindir|g" "$src/deploy/greet-server.service" >"$out/greet-server.service"
cp "$src/deploy/greet-server.socket" "$out/"
cd "$out"
# --man=no: the man page is installed with the program, not in this build's tree.
status=0
messages=$(systemd-analyze verify --man=no greet-server.socket greet-server.service 2>&1) || status=$?
if [ $status -ne 0 ] || [ -n "$messages" ]; then
    echo "systemd-analyze verify (exit $status):"
    echo "$messages"
    exit 1
fi
echo "greet-server.socket and greet-server.service verified"
