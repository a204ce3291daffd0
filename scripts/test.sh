#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, validates the template,
# then runs every Rust test (unit tests, and integration tests that start their own moto
# server on 127.0.0.1 and read the output back with pyarrow and DuckDB).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

scripts/install-test-deps.sh
scripts/validate-template.sh
scripts/audit.sh
echo "test: cargo fmt --check"
cargo fmt --all --check
echo "test: cargo clippy -D warnings (every target; an allow carries its reason beside it)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "test: cargo build --bins (the Lambda binaries and the local tool must build, not only their libraries)"
cargo build --workspace --bins --locked
echo "test: cargo test (target dir $CARGO_TARGET_DIR)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# The fault campaign (tests/faults.rs) writes its figures here; printed below.
export TRIBUTARY_FAULT_REPORT="$TRIBUTARY_CACHE/fault-campaign-suite.json"
rm -f "$TRIBUTARY_FAULT_REPORT"
# Every AWS call the handlers make in the integration tests is recorded here (tests/support/calls.rs)
# for the IAM check below.
export TRIBUTARY_CALL_LOG_DIR="$TRIBUTARY_CACHE/aws-calls"
rm -rf "$TRIBUTARY_CALL_LOG_DIR"
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole suite (pytest's template assertions are counted above).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "cargo tests: %d passed, %d failed\n", p, f; if (p == 0) exit 1 }' "$log"
"$VENV/bin/python" - "$TRIBUTARY_FAULT_REPORT" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"fault campaign: {r['schedules']} schedules, {r['faults_injected']} faults injected at "
      f"{len(r['fault_sites'])} call sites, {r['compactor_crashes']} compactor crashes, {r['sealed_files']} files sealed, "
      f"{r['carried_files']} carried by copy, "
      f"{r['rebalances']} rebalances (overlapping batches of one partition at once), {r['good']} good "
      f"({r['rescued']} with rescued fields checked) and {r['bad']} bad records: {r['records_lost']} lost, "
      f"{r['records_duplicated']} duplicated")
PY
echo "test: IAM check: every recorded AWS call against its function's role, in the SAM and the CDK template"
scripts/iam-check.sh
