#!/usr/bin/env bash
# Opt-in fuzzing of ringway's parsers with cargo-fuzz (libFuzzer).
#
#   scripts/fuzz.sh [--seconds N] [TARGET ...]     default: 600 s each, all targets
#
# Targets (fuzz/fuzz_targets): request_head, chunked, response_head. Each asserts the framing
# invariants in src/fuzzing.rs (no panic; never two readings of one message). A crash input is
# copied to fuzz/regressions/<target>/, where `cargo test` replays it
# (fuzzing::tests::saved_fuzz_inputs_hold_the_invariants): commit it with the fix.
#
# Needs only the stable toolchain: cargo-fuzz's -Z flags are enabled with RUSTC_BOOTSTRAP=1,
# and the sanitizer is off (the code under test has no unsafe).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=(request_head chunked response_head)

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
status=0
for t in "${targets[@]}"; do
  corpus="fuzz/corpus/$t"
  artifacts="fuzz/artifacts/$t"
  mkdir -p "$corpus" "$artifacts" "fuzz/regressions/$t"
  # Seed with the saved regressions so known-bad shapes are explored first.
  cp -n fuzz/regressions/"$t"/* "$corpus"/ 2>/dev/null || true
  echo "== fuzzing $t for ${seconds}s"
  start=$(date +%s)
  if cargo fuzz run --sanitizer none "$t" "$corpus" -- \
      -max_total_time="$seconds" -max_len=8192 -artifact_prefix="$artifacts/" -print_final_stats=1; then
    echo "== $t: no crash in $(( $(date +%s) - start ))s"
  else
    status=1
    echo "== $t: CRASH; inputs saved to fuzz/regressions/$t/"
    cp "$artifacts"/* "fuzz/regressions/$t/" 2>/dev/null || true
  fi
done
exit $status
