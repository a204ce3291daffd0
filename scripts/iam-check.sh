#!/usr/bin/env bash
# The IAM check: every AWS call the integration tests recorded for a function (one JSON line per
# request attempt, tests/support/calls.rs) must be allowed by that function's role in both
# templates that scripts/validate-template.sh kept (SAM transformed and cdk synth), and every
# action a role is granted must be exercised by some call or be used by an AWS service on the
# function's behalf (scripts/iam_check.py says which and why). Run after the cargo tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

templates="$TRIBUTARY_CACHE/templates"
exec "$VENV/bin/python" scripts/iam_check.py \
  --calls "${TRIBUTARY_CALL_LOG_DIR:-$TRIBUTARY_CACHE/aws-calls}" \
  --template sam="$templates/transformed.json" \
  --template cdk="$templates/cdk.out/Tributary.template.json" \
  "$@"
