#!/usr/bin/env bash
# Installs what the test suite needs, idempotently, from the package registries:
# a Python venv with moto (S3/Glue API server), pyarrow and DuckDB (independent Parquet readers),
# cfn-lint and the SAM CLI (template validation), pytest. Fails loudly if anything is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

req=scripts/requirements-test.txt
stamp="$VENV/.tributary-requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "install-test-deps: creating $VENV"
  mkdir -p "$TRIBUTARY_CACHE"
  python3 -m venv "$VENV"
fi
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "install-test-deps: installing $req"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi

# Verify, so a broken install fails here and not as a confusing test failure.
for tool in moto_server cfn-lint sam pytest; do
  [[ -x "$VENV/bin/$tool" ]] || { echo "install-test-deps: $tool missing from $VENV" >&2; exit 1; }
done
"$VENV/bin/python" -c "import pyarrow, duckdb, samtranslator, boto3" \
  || { echo "install-test-deps: Python packages missing from $VENV" >&2; exit 1; }
echo "install-test-deps: ready ($VENV)"
