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
calls="${TRIBUTARY_CALL_LOG_DIR:-$TRIBUTARY_CACHE/aws-calls}"
"$VENV/bin/python" scripts/iam_check.py \
  --calls "$calls" \
  --template sam="$templates/transformed.json" \
  --template cdk="$templates/cdk.out/Tributary.template.json" \
  "$@"

# The check must refuse the fix of issue 18 undone, on the same calls. Before it, ListBucket was
# granted only under an s3:prefix condition, which a GetObject of a missing key (S3's implicit
# ListBucket check: 404 instead of 403) never satisfies, as a condition on an absent key is false.
# A check that passed that template would be blind.
before="$templates/before-issue-18.json"
"$VENV/bin/python" - "$templates/transformed.json" "$before" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
undone = 0
def statements(node):
    """Every policy statement under a node, inside Fn::If branches too."""
    if isinstance(node, dict):
        if isinstance(node.get("Statement"), list):
            yield from node["Statement"]
        for v in node.values():
            yield from statements(v)
    elif isinstance(node, list):
        for v in node:
            yield from statements(v)
for r in t["Resources"].values():
    if r.get("Type") == "AWS::IAM::Role":
        for st in statements(r.get("Properties", {}).get("Policies", [])):
            if st.get("Action") in ("s3:ListBucket", ["s3:ListBucket"]) and "Condition" not in st:
                st["Condition"] = {"StringLike": {"s3:prefix": ["tables/*", "dead-letter/*", "_tributary/*"]}}
                undone += 1
assert undone >= 3, f"expected a ListBucket grant per function role, found {undone}"
json.dump(t, open(sys.argv[2], "w"))
PY
if out=$("$VENV/bin/python" scripts/iam_check.py --calls "$calls" --template before="$before"); then
  echo "iam check: the template with issue 18's ListBucket fix undone passed; the check has gone blind" >&2
  exit 1
fi
denied=$(grep -c '^\[before\] DENIED .*s3:ListBucket' <<<"$out" || true)
[[ "$denied" -gt 0 ]] || { echo "iam check: issue 18's fix undone failed, but not on s3:ListBucket:" >&2; tail -5 <<<"$out" >&2; exit 1; }
echo "iam check: with issue 18's ListBucket fix undone, $denied calls are denied, as they must be; the first:"
grep -m1 '^\[before\] DENIED .*s3:ListBucket' <<<"$out"
