#!/usr/bin/env bash
# Runs the cargo fuzz targets (tests/fuzz: the record decoder, the Kafka event parsers, the S3 /
# EventBridge trigger parsers) for a bounded time each, seeded with the bad-input corpora.
#   scripts/fuzz.sh [seconds per target (default 60)] [target ...]
# A crash is kept under tests/fuzz/regressions/<target>/ (commit it with the fix):
# tests/fuzz_regressions.rs replays those files in the test suite. Exits non-zero on a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

FUZZ_VERSION=0.13.2
if [[ "$("$TOOLS/bin/cargo-fuzz" --version 2>/dev/null)" != *"$FUZZ_VERSION"* ]]; then
  echo "fuzz: building cargo-fuzz $FUZZ_VERSION (once)"
  cargo install cargo-fuzz --version "$FUZZ_VERSION" --locked --root "$TOOLS" --target-dir "$TRIBUTARY_CACHE/tools-target" --quiet
  rm -rf "$TRIBUTARY_CACHE/tools-target"
fi
seconds=${1:-60}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(records kafka_event s3_event)

# libFuzzer's instrumentation flags need a nightly compiler: the nightly toolchain if rustup has
# one, else the stable compiler with RUSTC_BOOTSTRAP (the machine's only toolchain).
fuzz=("$TOOLS/bin/cargo-fuzz")
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(rustup run nightly "$TOOLS/bin/cargo-fuzz")
else
  export RUSTC_BOOTSTRAP=1
fi
export CARGO_TARGET_DIR="$TRIBUTARY_CACHE/fuzz-target"

status=0
for t in "${targets[@]}"; do
  corpus="$TRIBUTARY_CACHE/fuzz-corpus/$t"
  mkdir -p "$corpus"
  case $t in
    records) cp tests/corpus/bad-values/* tests/corpus/baseline.json "$corpus"/ ;;
    *) cp tests/corpus/bad-events/*.json events/*.json "$corpus"/ ;;
  esac
  artifacts="$TRIBUTARY_CACHE/fuzz-artifacts/$t"
  mkdir -p "$artifacts"
  echo "fuzz: $t for ${seconds}s"
  log="$TRIBUTARY_CACHE/fuzz-$t.log"
  if ! "${fuzz[@]}" run --fuzz-dir tests/fuzz "$t" "$corpus" -- \
      -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix="$artifacts/" >"$log" 2>&1; then
    status=1
    echo "fuzz: $t FAILED; the input is kept in tests/fuzz/regressions/$t/ (see $log)" >&2
    cp "$artifacts"/* "tests/fuzz/regressions/$t/"
  fi
  grep -E '^Done [0-9]+ runs' "$log" | sed "s/^/fuzz: $t: /" || tail -5 "$log"
done
exit $status
