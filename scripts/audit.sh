#!/usr/bin/env bash
# The dependency audit (part of the test command): cargo-deny checks every crate in Cargo.lock for
# known vulnerabilities and yanked versions (the RustSec advisory database), licenses outside the
# allow-list, and sources other than crates.io (policy: scripts/deny.toml).
#
# The advisory database is a git repository on github.com. Where github.com cannot be reached,
# the copy fetched last time (under $TRIBUTARY_CACHE/advisory-dbs) is used and its date printed;
# with no copy at all, the advisory check is skipped with a warning, and every other check runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

deny=("$TOOLS/bin/cargo-deny" --config scripts/deny.toml)
[[ -x "${deny[0]}" ]] || { echo "audit: cargo-deny missing: run scripts/install-test-deps.sh" >&2; exit 1; }

# cargo-deny reads the metadata of every platform's dependencies: a fresh machine has only
# downloaded the host's (cargo build fetches what it compiles), so fetch the rest first.
cargo fetch --locked --quiet
echo "audit: licenses, sources, bans"
"${deny[@]}" --offline check bans licenses sources

dbs="$TRIBUTARY_CACHE/advisory-dbs"
if timeout 30 git ls-remote https://github.com/RustSec/advisory-db HEAD >/dev/null 2>&1; then
  echo "audit: advisories (RustSec database, fetched now)"
  "${deny[@]}" check advisories
  exit 0
elif compgen -G "$dbs/advisory-db-*/.git" >/dev/null; then
  db=$(compgen -G "$dbs/advisory-db-*" | head -1)
  echo "audit: advisories: github.com unreachable; using the database of $(git -C "$db" log -1 --format=%cs)"
else
  echo "audit: WARNING: advisories NOT checked: the RustSec database (github.com) is unreachable and none is cached in $dbs" >&2
  exit 0
fi
"${deny[@]}" --offline check advisories
