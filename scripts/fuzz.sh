#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) into build-fuzz/ and runs each for
# SECONDS (default 60) from the specification's seeds (tests/fuzz/make_seeds.py) plus what
# earlier runs found (build-fuzz/corpus/). Prints each target's last status line; exits 1 at
# the first crash, leak or failed check (libFuzzer writes the input as crash-* there).
#   scripts/fuzz.sh 600          # ten minutes each
#   scripts/fuzz.sh 60 greeting  # one target
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(proxy_header parse_address greeting)

scripts/deps.sh clang libclang-rt-14-dev
build=${BUILD_DIR:-build-fuzz}
CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSOCK_WERROR=ON \
  -DSOCK_FUZZ=ON -DSOCK_SANITIZE=address,undefined -DSOCK_BUILD_TESTS=OFF -DSOCK_BUILD_APPS=OFF \
  -DSOCK_BUILD_BENCH=OFF -DSOCK_INSTALL=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/%/_fuzz}"
python3 tests/fuzz/make_seeds.py "$build/seeds"

for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  mkdir -p "$corpus"
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="$PWD/tests/fuzz/$t.dict")
  echo "== $t: $seconds s"
  log="$build/$t.log"
  # -max_len: above the longest header (1024) so that length limits are reached.
  if ! (cd "$build" && "./bin/${t}_fuzz" "${dict[@]}" -max_total_time="$seconds" \
        -max_len=2048 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "corpus/$t" "seeds/$t") >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "$t: FAILED (log: $log)" >&2
    exit 1
  fi
  grep -E '^#[0-9]+.*(DONE|pulse)' "$log" | tail -n 1
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" | tr '\n' ' '
  echo
done
