#!/usr/bin/env bash
# The dependency audit (part of the test command): cargo-deny checks every crate in Cargo.lock for
# known vulnerabilities and yanked versions (the RustSec advisory database), licenses outside the
# allow-list, and sources other than crates.io (policy: scripts/deny.toml).
#
# The advisory database is a git repository on github.com. Where github.com cannot be reached,
# the newer of the copy cached under $TRIBUTARY_CACHE/advisory-dbs and the git bundle in
# ../shared/advisory-db.bundle is used, and its date printed; with neither, the audit fails.
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
# cargo-deny looks for the default database in a directory named after a hash of its URL.
db="$dbs/advisory-db-3157b0e258782691"
# A git bundle of the RustSec database, shipped beside the repository (shared/), for machines that
# cannot reach github.com: used when nothing fresher is cached.
bundle="$(cd .. && pwd)/shared/advisory-db.bundle"
if timeout 30 git ls-remote https://github.com/RustSec/advisory-db HEAD >/dev/null 2>&1; then
  echo "audit: advisories (RustSec database, fetched now)"
  "${deny[@]}" check advisories
  exit 0
fi
date_of() { git -C "$1" log -1 --format=%cs 2>/dev/null || echo 0000-00-00; }
if [[ -f "$bundle" ]]; then
  probe="$dbs/.probe"
  rm -rf "$probe" && mkdir -p "$dbs"
  if git -c init.defaultBranch=main clone --quiet "$bundle" "$probe" && [[ "$(date_of "$probe")" > "$(date_of "$db")" ]]; then
    rm -rf "$db" && mv "$probe" "$db"
    echo "audit: github.com unreachable; advisory database taken from $bundle"
  fi
  rm -rf "$probe"
fi
if [[ ! -d "$db/.git" ]]; then
  echo "audit: FAILED: no RustSec advisory database: github.com is unreachable, none is cached in $dbs and $bundle is missing" >&2
  exit 1
fi
echo "audit: advisories: using the RustSec database of $(date_of "$db") (github.com unreachable)"
"${deny[@]}" --offline check advisories
