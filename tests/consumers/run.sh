#!/usr/bin/env bash
# The consumer tests' steps (tests/consumers/CMakeLists.txt registers one ctest test per step):
#   install        cmake --install of this build into scratch/prefix (the systemd units too)
#   shared         sock configured apart with BUILD_SHARED_LIBS=ON, built, installed into
#                  scratch/shared-prefix; checks what libsock.so exports
#   package        cpack -G DEB into scratch/package
#   find_package, find_package_shared, pkg_config, add_subdirectory, fetchcontent, deb
#                  build app.cpp that way, then run it against a greet-server
#   lintian        lintian on the .deb: fails on any error or warning
# The environment gives SOCK_SOURCE_DIR, SOCK_BUILD_DIR, SOCK_SCRATCH, SOCK_CMAKE, SOCK_CPACK,
# SOCK_CXX and SOCK_GREET_SERVER (the ctest test sets them).
set -euo pipefail
step=$1
here=$(cd "$(dirname "$0")" && pwd)
scratch=$SOCK_SCRATCH
mkdir -p "$scratch"
jobs=2

# Starts greet-server (this build's, or the one given) on 127.0.0.1 and a free port; sets port.
server_pid=""
start_server() {
    local bin=${1:-$SOCK_GREET_SERVER} out=$scratch/$step.server.out
    "$bin" --port 0 --host 127.0.0.1 --quiet >"$out" 2>&1 &
    server_pid=$!
    trap 'kill -TERM $server_pid 2>/dev/null; wait $server_pid 2>/dev/null || true' EXIT
    for _ in $(seq 100); do
        if grep -q '^listening on ' "$out"; then
            port=$(sed -n '1s/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out")
            [ -n "$port" ] && return 0
            echo "unexpected first line: $(head -1 "$out")" >&2
            return 1
        fi
        kill -0 "$server_pid" 2>/dev/null || { echo "greet-server exited: $(cat "$out")" >&2; return 1; }
        sleep 0.1
    done
    echo "greet-server did not say where it listens within 10 s" >&2
    return 1
}

stop_server() {
    kill -TERM "$server_pid"
    wait "$server_pid"  # greet-server exits 0 on SIGTERM
    trap - EXIT
}

# Runs a consumer binary against a fresh greet-server; both replies must be the greeting.
consume() {
    local binary=$1 server=${2:-}
    start_server "$server"
    timeout 20 "$binary" 127.0.0.1 "$port"
    stop_server
}

# Configures and builds one of the consumer projects in scratch/<step>.
cmake_consumer() {
    local project=$1
    shift
    local build=$scratch/$step
    "$SOCK_CMAKE" -S "$here/$project" -B "$build" -DCMAKE_CXX_COMPILER="$SOCK_CXX" "$@" >/dev/null
    "$SOCK_CMAKE" --build "$build" -j"$jobs"
}

# The dynamic section's NEEDED libraries of a binary.
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

case $step in
install)
    rm -rf "$scratch/prefix"
    "$SOCK_CMAKE" --install "$SOCK_BUILD_DIR" --prefix "$scratch/prefix" >/dev/null
    for f in include/sock/sock.hpp include/sock/export.hpp bin/greet-server \
             lib/systemd/system/greet-server.service lib/systemd/system/greet-server.socket; do
        test -e "$scratch/prefix/$f" || { echo "not installed: $f" >&2; exit 1; }
    done
    # The installed service starts the installed program.
    grep -qx "ExecStart=$scratch/prefix/bin/greet-server --quiet" \
        "$scratch/prefix/lib/systemd/system/greet-server.service" \
        || { echo "ExecStart is not the installed greet-server" >&2; exit 1; }
    ;;
shared)
    build=$scratch/shared-build
    rm -rf "$scratch/shared-prefix"
    # No build type: no optimisation, the quickest build; only the two libraries.
    "$SOCK_CMAKE" -S "$SOCK_SOURCE_DIR" -B "$build" -DCMAKE_CXX_COMPILER="$SOCK_CXX" \
        -DCMAKE_BUILD_TYPE=None -DBUILD_SHARED_LIBS=ON \
        -DSOCK_BUILD_TESTS=OFF -DSOCK_BUILD_BENCH=OFF -DSOCK_BUILD_APPS=OFF >/dev/null
    "$SOCK_CMAKE" --build "$build" -j"$jobs"
    "$SOCK_CMAKE" --install "$build" --prefix "$scratch/shared-prefix" >/dev/null
    lib=$(find "$scratch/shared-prefix" -name libsock.so.0 -print -quit)
    engine=$(find "$scratch/shared-prefix" -name libsock_engine.so.0 -print -quit)
    [ -n "$lib" ] && [ -n "$engine" ] || { echo "no libsock.so.0 or libsock_engine.so.0" >&2; exit 1; }
    readelf -d "$lib" | grep 'SONAME.*\[libsock\.so\.0\]'
    # The public API is exported; what only src/ knows is not.
    exports=$(nm -D --defined-only -C "$lib" "$engine")
    for symbol in 'sock::create_connection(' 'sock::socket::sendall(' 'typeinfo for sock::error' \
                  'sock::event_loop::run()' 'sock::async_socket::connect('; do
        grep -qF "$symbol" <<<"$exports" || { echo "not exported: $symbol" >&2; exit 1; }
    done
    for symbol in 'sock::detail::wait_ready' '(anonymous namespace)'; do
        if grep -F "$symbol" <<<"$exports"; then echo "exported, but private: $symbol" >&2; exit 1; fi
    done
    ;;
package)
    rm -rf "$scratch/package"
    (cd "$SOCK_BUILD_DIR" && "$SOCK_CPACK" -G DEB -B "$scratch/package" >/dev/null)
    ls "$scratch"/package/sock_*.deb
    ;;
find_package)
    cmake_consumer find_package -DCMAKE_PREFIX_PATH="$scratch/prefix"
    if needed "$scratch/$step/consumer" | grep libsock; then
        echo "a static build's consumer needs a shared libsock" >&2; exit 1
    fi
    consume "$scratch/$step/consumer"
    consume "$scratch/$step/tls_consumer"
    ;;
find_package_shared)
    cmake_consumer find_package -DCMAKE_PREFIX_PATH="$scratch/shared-prefix"
    for lib in libsock_engine.so.0 libsock.so.0; do
        needed "$scratch/$step/consumer" | grep -x "$lib" \
            || { echo "consumer does not load $lib: $(needed "$scratch/$step/consumer")" >&2; exit 1; }
    done
    ldd "$scratch/$step/consumer" | grep "libsock.*$scratch/shared-prefix"
    consume "$scratch/$step/consumer"
    needed "$scratch/$step/tls_consumer" | grep -x libsock_tls.so.0 \
        || { echo "tls_consumer does not load libsock_tls.so.0: $(needed "$scratch/$step/tls_consumer")" >&2; exit 1; }
    consume "$scratch/$step/tls_consumer"
    ;;
pkg_config)
    pc=$(find "$scratch/prefix" -name sock.pc -print -quit)
    export PKG_CONFIG_PATH=${pc%/sock.pc}
    pkg-config --print-errors --exists sock sock-tls
    echo "pkg-config --cflags --libs sock: $(pkg-config --cflags --libs sock)"
    echo "pkg-config --cflags --libs sock-tls: $(pkg-config --cflags --libs sock-tls)"
    mkdir -p "$scratch/$step"
    make -s -C "$scratch/$step" -f "$here/pkg-config/Makefile" CXX="$SOCK_CXX" -B
    consume "$scratch/$step/consumer"
    consume "$scratch/$step/tls_consumer"
    ;;
add_subdirectory | fetchcontent)
    # No build type: the consumer's own choice, which sock must not replace.
    cmake_consumer "$step" -DSOCK_SOURCE_DIR="$SOCK_SOURCE_DIR"
    consume "$scratch/$step/consumer"
    ;;
deb)
    root=$scratch/deb-root
    rm -rf "$root"
    dpkg-deb -x "$(ls "$scratch"/package/sock_*.deb)" "$root"
    for program in greet-server greet-client greet-bench echo-server seed-server seed-client; do
        test -x "$root/usr/bin/$program" || { echo "no $program in the .deb" >&2; exit 1; }
        test -s "$root/usr/share/man/man1/$program.1.gz" || { echo "no man page for $program" >&2; exit 1; }
    done
    for unit in greet-server.service greet-server.socket; do
        test -s "$root/usr/lib/systemd/system/$unit" || { echo "no $unit in the .deb" >&2; exit 1; }
    done
    grep -qx "ExecStart=/usr/bin/greet-server --quiet" "$root/usr/lib/systemd/system/greet-server.service" \
        || { echo "the .deb's greet-server.service does not start /usr/bin/greet-server" >&2; exit 1; }
    cmake_consumer find_package -DCMAKE_PREFIX_PATH="$root/usr"
    consume "$scratch/$step/consumer" "$root/usr/bin/greet-server"
    ;;
lintian)
    # lintian warns when run as root (a container's CI); that line is not about the package.
    status=0
    out=$(lintian --info --fail-on error,warning "$(ls "$scratch"/package/sock_*.deb)" 2>&1) || status=$?
    grep -v '^running with root privileges' <<<"$out" || true
    exit $status
    ;;
*)
    echo "unknown step: $step" >&2
    exit 2
    ;;
esac
