#!/usr/bin/env bash
# `sam build` from a fresh clone: installs the Lambda toolchain idempotently (cargo-lambda and zig
# from PyPI into the project's venv, the aarch64 Rust target through rustup), then builds the four
# functions for arm64 (BuildMethod rust-cargolambda) into .aws-sam/build and checks each artifact
# is an aarch64 executable named bootstrap. Arguments go to `sam build`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

scripts/install-test-deps.sh
venv_install scripts/requirements-lambda.txt
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
export PATH="$VENV/bin:$PATH"
cargo lambda --version

sam build "$@"
for fn in IngestFunction CompactFunction CatalogFunction WatchFunction; do
  f=".aws-sam/build/$fn/bootstrap"
  [[ -x "$f" ]] || { echo "sam-build: $f missing" >&2; exit 1; }
  file "$f" | grep -q "ARM aarch64" || { echo "sam-build: $f is not an aarch64 executable: $(file "$f")" >&2; exit 1; }
  echo "sam-build: $f $(du -h "$f" | cut -f1) $(file -b "$f" | cut -d, -f1-2)"
done
