# Shared settings for the project's scripts (sourced, not run).
# Everything installed or built lives outside the clone, so fresh clones reuse it.
export TRIBUTARY_CACHE="${TRIBUTARY_CACHE:-$HOME/.cache/tributary}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$TRIBUTARY_CACHE/target}"
# Incremental artifacts only pay off while editing; CI builds once.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export VENV="$TRIBUTARY_CACHE/venv"
# Binaries built from crates for the tests (the tansu broker).
export TOOLS="$TRIBUTARY_CACHE/tools"
# Offline AWS settings for local tools: no real account is ever used by the tests.
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_EC2_METADATA_DISABLED=true
export SAM_CLI_TELEMETRY=0

# Installs a requirements file into the venv, again only when the file changed.
venv_install() {
  local req=$1 stamp want
  stamp="$VENV/.tributary-$(basename "$req" .txt).sha256"
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "installing $req into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
  fi
}
