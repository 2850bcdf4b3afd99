#!/usr/bin/env bash
# Opt-in fuzzing of ringway's parsers with cargo-fuzz (libFuzzer).
#
#   scripts/fuzz.sh [--seconds N] [TARGET ...]     default: 600 s each, all targets
#
# Targets (fuzz/fuzz_targets), each asserting the invariants of its check in src/fuzzing.rs:
#   request_head, response_head  no panic; prefixes agree; a re-serialized head reads back the same
#   chunked                      whole, byte by byte and split in two decode the same
#   client_hello                 the SNI parser names what rustls reads, however the records
#                                are cut and arrive; its waiting is bounded
#   config                       the TOML loader: one-line errors naming the key; an accepted
#                                config keeps its documented invariants and round-trips
#   proxy_protocol               the PROXY protocol header (v1, v2): decided at one byte, the
#                                same answer however many bytes follow, never waited for past
#                                its longest form; its addresses written back read the same
# The corpus (fuzz/corpus/<target>, not committed) starts from fuzz/seeds/<target>/ (real
# ClientHellos, example configs, PROXY headers) and the saved regressions;
# fuzz/dicts/<target>.dict, if present, is passed as a libFuzzer dictionary. A crash input is
# copied to fuzz/regressions/<target>/, where `cargo test` replays it
# (fuzzing::tests::saved_fuzz_inputs_hold_the_invariants): commit it with the fix, or, when the
# fix is someone else's, renamed open-* (the test then requires it to still fail).
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
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=(request_head chunked response_head client_hello config proxy_protocol)

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
  # Seed with the committed seeds and the saved regressions (known-bad shapes first); not
  # with open-* inputs, reported findings still unfixed, which would stop the run at once.
  for f in fuzz/seeds/"$t"/* fuzz/regressions/"$t"/*; do
    if [[ -f "$f" && "$f" != *.md && "$(basename "$f")" != open-* ]]; then cp -n "$f" "$corpus"/; fi
  done
  dict=()
  if [[ -f "fuzz/dicts/$t.dict" ]]; then dict=(-dict="fuzz/dicts/$t.dict"); fi
  echo "== fuzzing $t for ${seconds}s"
  start=$(date +%s)
  if cargo fuzz run --sanitizer none "$t" "$corpus" -- \
      -max_total_time="$seconds" -max_len=8192 -artifact_prefix="$artifacts/" -print_final_stats=1 \
      "${dict[@]}"; then
    echo "== $t: no crash in $(( $(date +%s) - start ))s"
  else
    status=1
    echo "== $t: CRASH; inputs saved to fuzz/regressions/$t/"
    cp "$artifacts"/* "fuzz/regressions/$t/" 2>/dev/null || true
  fi
done
exit $status
