#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 30) on its saved corpus and the committed seeds,
# and prints libFuzzer's count of executions. A crash stops the script with the reproducer in
# fuzz/artifacts/<target>/ (replay it: fuzz/run.sh replay <target> <file>).
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# cargo-fuzz needs nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain take
# them. No sanitizer (-s none): Tidings forbids unsafe code, so what fuzzing finds is panics,
# which libFuzzer catches as crashes without ASan's slowdown.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

if [ "${1:-}" = replay ]; then
  cargo fuzz run --fuzz-dir fuzz -s none "$2" "$3"
  exit
fi

seconds="${1:-30}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(trpc_request procedure_inputs)
fi

cargo fuzz build --fuzz-dir fuzz -s none
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  log="$(mktemp)"
  if ! cargo fuzz run --fuzz-dir fuzz -s none "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
      -max_total_time="$seconds" -dict=fuzz/json.dict -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz: $target crashed; the reproducer is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)"
  echo "fuzz: $target: ${runs:-?} executions in ${seconds} s, ${cov:-cov: ?}, no crash"
  rm -f "$log"
done
