#!/usr/bin/env bash
# Validates template.yaml offline: cfn-lint, `sam validate --lint`, cfn-lint on the
# SAM-transformed template (catches circular dependencies), and the template's own assertions;
# then the CDK app in infra/: its Template.fromStack tests, `cdk synth`, cfn-lint on the
# synthesized template, and the parity test against the SAM template. Both templates are kept in
# $TRIBUTARY_CACHE/templates (transformed.json, cdk.out/) for the IAM check (scripts/iam-check.sh),
# which runs after the tests have recorded the functions' AWS calls.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

out="$TRIBUTARY_CACHE/templates"
rm -rf "$out/transformed.json" "$out/cdk.out" "$out/code"
mkdir -p "$out"
echo "validate: cfn-lint template.yaml"
"$VENV/bin/cfn-lint" template.yaml
echo "validate: sam validate --lint"
"$VENV/bin/sam" validate --lint --template template.yaml
echo "validate: cfn-lint on the transformed template"
"$VENV/bin/python" scripts/validate_template.py template.yaml "$out/transformed.json"
"$VENV/bin/cfn-lint" "$out/transformed.json"
echo "validate: template assertions"
TRANSFORMED="$out/transformed.json" "$VENV/bin/pytest" -q -p no:cacheprovider tests/py/test_template.py
echo "validate: the alarm table (every way the pipeline can stop, the alarm that fires)"
TRANSFORMED="$out/transformed.json" "$VENV/bin/pytest" -q -p no:cacheprovider tests/py/test_alarms.py
echo "validate: the IAM check's own tests (request mapping, evaluator, unused grants)"
"$VENV/bin/pytest" -q -p no:cacheprovider tests/py/test_iam.py

echo "validate: CDK app (infra/)"
(
  cd infra
  # node_modules from the lock file, again only when the lock file changed.
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [[ "$(cat node_modules/.tributary-lock.sha256 2>/dev/null)" != "$want" ]]; then
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" > node_modules/.tributary-lock.sha256
  fi
  npm test --silent
  # Placeholder code: synth needs the assets to exist, not to be real functions.
  for f in IngestFunction CompactFunction CatalogFunction WatchFunction; do
    mkdir -p "$out/code/$f" && printf '#!/bin/sh\n' > "$out/code/$f/bootstrap"
  done
  npx cdk synth --app "node dist/bin/app.js" --no-notices --quiet -o "$out/cdk.out" \
    -c mskClusterArn=arn:aws:kafka:us-east-1:123456789012:cluster/tributary/0a1b2c3d-1 -c topic=customer_data -c codeDir="$out/code"
)
# W3005: CDK writes DependsOn next to the GetAtt that already implies it (its own redundancy).
"$VENV/bin/cfn-lint" --ignore-checks W3005 -- "$out/cdk.out/Tributary.template.json"
echo "validate: SAM and CDK stacks define the same functions, triggers, alarms and permissions"
TRANSFORMED="$out/transformed.json" CDK_TEMPLATE="$out/cdk.out/Tributary.template.json" \
  "$VENV/bin/pytest" -q -p no:cacheprovider tests/py/test_parity.py
