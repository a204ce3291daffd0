#!/usr/bin/env bash
# Installs what the test suite needs, idempotently, from the package registries:
# a Python venv with moto (S3/Glue API server), pyarrow and DuckDB (independent Parquet readers),
# cfn-lint and the SAM CLI (template validation), pytest; and tansu, a Kafka-protocol broker
# (a crate, built once into $TRIBUTARY_CACHE/tools) for the end-to-end tests; cargo-deny (a crate)
# for the dependency audit.
# Fails loudly if anything is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "install-test-deps: creating $VENV"
  mkdir -p "$TRIBUTARY_CACHE"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
fi
venv_install scripts/requirements-test.txt

# tansu: the broker the end-to-end tests start on 127.0.0.1. A storage feature is required (without
# one it silently discards data); its SQLite engine reports correct high watermarks.
TANSU_VERSION=0.6.0
if [[ "$("$TOOLS/bin/tansu" --version 2>/dev/null)" != *"$TANSU_VERSION"* ]]; then
  echo "install-test-deps: building tansu $TANSU_VERSION (10-20 min on two cores, once)"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql \
    --root "$TOOLS" --target-dir "$TRIBUTARY_CACHE/tools-target" --quiet
  rm -rf "$TRIBUTARY_CACHE/tools-target"
fi

# cargo-deny: the dependency audit (scripts/audit.sh).
DENY_VERSION=0.20.2
if [[ "$("$TOOLS/bin/cargo-deny" --version 2>/dev/null)" != *"$DENY_VERSION"* ]]; then
  echo "install-test-deps: building cargo-deny $DENY_VERSION (about 5 min on two cores, once)"
  cargo install cargo-deny --version "$DENY_VERSION" --locked \
    --root "$TOOLS" --target-dir "$TRIBUTARY_CACHE/tools-target" --quiet
  rm -rf "$TRIBUTARY_CACHE/tools-target"
fi

# The CDK app's tests need Node.js 18+ and npm (its packages come from infra/package-lock.json).
command -v node >/dev/null && command -v npm >/dev/null \
  || { echo "install-test-deps: node and npm are required (the CDK app in infra/)" >&2; exit 1; }
[[ "$(node -p 'process.versions.node.split(".")[0]')" -ge 18 ]] \
  || { echo "install-test-deps: Node.js 18 or newer is required, found $(node --version)" >&2; exit 1; }

# Verify, so a broken install fails here and not as a confusing test failure.
for tool in moto_server cfn-lint sam pytest; do
  [[ -x "$VENV/bin/$tool" ]] || { echo "install-test-deps: $tool missing from $VENV" >&2; exit 1; }
done
"$VENV/bin/python" -c "import pyarrow, duckdb, samtranslator, boto3" \
  || { echo "install-test-deps: Python packages missing from $VENV" >&2; exit 1; }
[[ "$("$TOOLS/bin/tansu" --version 2>/dev/null)" == *"$TANSU_VERSION"* ]] \
  || { echo "install-test-deps: tansu $TANSU_VERSION missing from $TOOLS/bin" >&2; exit 1; }
[[ "$("$TOOLS/bin/cargo-deny" --version 2>/dev/null)" == *"$DENY_VERSION"* ]] \
  || { echo "install-test-deps: cargo-deny $DENY_VERSION missing from $TOOLS/bin" >&2; exit 1; }
echo "install-test-deps: ready ($VENV, $TOOLS/bin/tansu, $TOOLS/bin/cargo-deny)"
