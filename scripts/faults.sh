#!/usr/bin/env bash
# A longer fault-injection campaign than the test suite's 1,000 schedules (tests/faults.rs), on
# seeds after the suite's: scripts/faults.sh [schedules (default 5000)] [first seed (default 1001)]
# Needs the test venv (scripts/install-test-deps.sh). Writes the figures to
# $TRIBUTARY_CACHE/fault-campaign.json and prints them; exits non-zero on the first schedule that
# loses or duplicates a record (its seed is in the message).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/install-test-deps.sh >/dev/null
export TRIBUTARY_FAULT_SCHEDULES="${1:-5000}" TRIBUTARY_FAULT_SEED="${2:-1001}"
export TRIBUTARY_FAULT_REPORT="$TRIBUTARY_CACHE/fault-campaign.json"
# The test command's build (moto, not the Rust side, bounds the speed).
cargo test --locked -p tributary-tests --test faults -- --nocapture
echo "faults: figures in $TRIBUTARY_FAULT_REPORT"
