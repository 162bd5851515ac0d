#!/usr/bin/env bash
# Start nginx's stream `return` greeting peer in the foreground.
# usage: run_nginx.sh PORT [CERT KEY]   (0 picks a free port first; nginx itself can't bind 0)
# With CERT and KEY it serves TLS (nginx_tls.conf.in: `listen ... ssl`), else plaintext.
# Prints "listening on 127.0.0.1:PORT" once the port accepts connections. nginx
# replaces this shell (same pid), so SIGINT/SIGTERM reach it directly and its exit
# status is the script's. NGINX overrides the binary.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
port=${1:?usage: run_nginx.sh PORT [CERT KEY]}
template=$here/nginx.conf.in
cert= key=
if (($# >= 3)); then
    # Absolute paths: nginx resolves relative ones against its prefix (the temp dir).
    cert=$(realpath "$2") key=$(realpath "$3") template=$here/nginx_tls.conf.in
fi
if [[ $port == 0 ]]; then
    # Racy by nature (the port is free when we look), good enough on loopback.
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi

dir=$(mktemp -d /tmp/peer-nginx.XXXXXX)
sed -e "s|@PORT@|$port|g" -e "s|@DIR@|$dir|g" -e "s|@CERT@|$cert|g" -e "s|@KEY@|$key|g" \
    "$template" >"$dir/nginx.conf"

# A helper announces the port once it accepts, then removes the temp dir after
# nginx (this pid, after the exec below) is gone.
nginx_pid=$$
(
    ready=0
    for _ in $(seq 200); do  # up to 10 s
        kill -0 "$nginx_pid" 2>/dev/null || break
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            ready=1
            break
        fi
        sleep 0.05
    done
    if ((ready)); then
        echo "listening on 127.0.0.1:$port"
    else
        echo "run_nginx.sh: nginx did not start listening on 127.0.0.1:$port" >&2
        cat "$dir/error.log" >&2 || true
        kill -TERM "$nginx_pid" 2>/dev/null || true
    fi
    exec >/dev/null 2>&1  # don't hold the caller's pipes open while we wait
    while kill -0 "$nginx_pid" 2>/dev/null; do sleep 0.2; done
    rm -rf "$dir"
) &

exec "${NGINX:-nginx}" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
