#!/usr/bin/env bash
# Validates template.yaml offline: cfn-lint, `sam validate --lint`, cfn-lint on the
# SAM-transformed template (catches circular dependencies), and the template's own assertions.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo "validate: cfn-lint template.yaml"
"$VENV/bin/cfn-lint" template.yaml
echo "validate: sam validate --lint"
"$VENV/bin/sam" validate --lint --template template.yaml
echo "validate: cfn-lint on the transformed template"
"$VENV/bin/python" scripts/validate_template.py template.yaml "$out/transformed.json"
"$VENV/bin/cfn-lint" "$out/transformed.json"
echo "validate: template assertions"
TRANSFORMED="$out/transformed.json" "$VENV/bin/pytest" -q -p no:cacheprovider tests/py/test_template.py
