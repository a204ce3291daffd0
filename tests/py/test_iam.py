"""Tests of the IAM check (scripts/iam_check.py): the request mapping, the evaluator and the
reverse (unused grant) check, on small synthetic templates and call lines. No AWS.
Run by scripts/validate-template.sh; alone: $VENV/bin/pytest -q tests/py/test_iam.py"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import iam_check as ic  # noqa: E402

BUCKET = "arn:aws:s3:::lake"


# ---- helpers --------------------------------------------------------------------------------

def template(statements, role="ingest", bucket_name="lake", extra=None):
    """A minimal CloudFormation template: one function -<role> whose role has these statements."""
    resources = {
        "DataBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket_name}},
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "FunctionName": {"Fn::Sub": "${AWS::StackName}-" + role},
            "Role": {"Fn::GetAtt": ["FnRole", "Arn"]}}},
        "FnRole": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [
            {"PolicyName": "p", "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}]}},
    }
    return {"Resources": {**resources, **(extra or {})}}


def call(method, path, status=200, role="ingest", service="s3", headers=None, body=None):
    return {"role": role, "service": service, "method": method, "uri": "http://127.0.0.1:5123" + path,
            "headers": headers or {}, "body": body, "status": status}


def check(tmp_path, tmpl, calls, service_used=None):
    d = tmp_path / "calls"
    d.mkdir(exist_ok=True)
    (d / "t.jsonl").write_text("".join(json.dumps(c) + "\n" for c in calls))
    path = tmp_path / "template.json"
    path.write_text(json.dumps(tmpl))
    return ic.run(d, {"t": path}, dict(ic.DEFAULT_PARAMS), service_used if service_used is not None else {})


def allow(action, resource, condition=None, sid=None):
    s = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        s["Condition"] = condition
    if sid:
        s["Sid"] = sid
    return s


def stmts(*raw):
    return ic.statements_of({"Statement": list(raw)}, "test")


def decide(statements, action, resource, context=None, known=ic.LIST_KEYS):
    return ic.decide(statements, ic.Request(action, resource, context or {}, known)).allowed


def requests(c, bucket="lake"):
    return [(r.action, r.resource) for r in ic.requests_for(ic.parse_call(json.dumps(c), "t:1"),
                                                            ic.Stack(bucket, None, None))]


# ---- the evaluator --------------------------------------------------------------------------

def test_wildcards_actions_case_insensitive_resources_case_sensitive():
    s = stmts(allow("s3:Get*", BUCKET + "/tables/*"), allow("s3:PutObject", BUCKET + "/t?/x"))
    assert decide(s, "s3:GetObject", BUCKET + "/tables/a/b.parquet")
    assert decide(s, "S3:GETOBJECT", BUCKET + "/tables/a")
    assert not decide(s, "s3:GetObject", BUCKET + "/TABLES/a")
    assert decide(s, "s3:PutObject", BUCKET + "/t1/x")
    assert not decide(s, "s3:PutObject", BUCKET + "/t12/x")
    assert not decide(s, "s3:PutObject", BUCKET + "/tables/a")


def test_arn_wildcards_stay_in_their_segment():
    s = stmts(allow("glue:GetTable", "arn:aws:glue:*:123456789012:table/db/*"))
    assert decide(s, "glue:GetTable", "arn:aws:glue:us-east-1:123456789012:table/db/t")
    assert not decide(s, "glue:GetTable", "arn:aws:glue:us-east-1:999999999999:table/db/t")


def test_explicit_deny_wins():
    s = stmts(allow("s3:*", "*"), {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": BUCKET + "/tables/*"})
    assert decide(s, "s3:GetObject", BUCKET + "/tables/a")
    assert not decide(s, "s3:DeleteObject", BUCKET + "/tables/a")
    d = ic.decide(s, ic.Request("s3:DeleteObject", BUCKET + "/tables/a"))
    assert d.denied_by is not None and "explicit Deny" in d.closest


def test_not_action_and_not_resource():
    s = stmts({"Effect": "Allow", "NotAction": ["s3:Delete*", "glue:*"], "Resource": "*"},
              {"Effect": "Allow", "Action": "glue:GetTable", "NotResource": "arn:aws:glue:*:*:table/secret/*"})
    assert decide(s, "s3:GetObject", BUCKET + "/x")
    assert not decide(s, "s3:DeleteObject", BUCKET + "/x")
    assert decide(s, "glue:GetTable", "arn:aws:glue:us-east-1:1:table/db/t")
    assert not decide(s, "glue:GetTable", "arn:aws:glue:us-east-1:1:table/secret/t")


def test_condition_operators_on_absent_and_present_keys():
    """"Condition operators": absent key -> false, except negated operators (true), IfExists (true),
    Null; ForAllValues on an absent key is true, ForAnyValue false; values OR, keys AND."""
    def holds(cond, context):
        return ic.conditions_hold(cond, ic.Request("s3:ListBucket", BUCKET, context, ic.LIST_KEYS)).holds

    absent, tables = {}, {"s3:prefix": ["tables/x"]}
    assert not holds({"StringLike": {"s3:prefix": "tables/*"}}, absent)
    assert holds({"StringLike": {"s3:prefix": ["dead/*", "tables/*"]}}, tables)
    assert holds({"StringNotLike": {"s3:prefix": "tables/*"}}, absent)
    assert not holds({"StringNotLike": {"s3:prefix": "tables/*"}}, tables)
    assert holds({"StringLikeIfExists": {"s3:prefix": "tables/*"}}, absent)
    assert not holds({"StringEqualsIfExists": {"s3:prefix": "dead/"}}, tables)
    assert holds({"Null": {"s3:prefix": "true"}}, absent)
    assert not holds({"Null": {"s3:prefix": "false"}}, absent)
    assert holds({"ForAllValues:StringEquals": {"s3:prefix": "x"}}, absent)
    assert not holds({"ForAnyValue:StringEquals": {"s3:prefix": "x"}}, absent)
    assert holds({"StringEqualsIgnoreCase": {"s3:prefix": "TABLES/X"}}, tables)
    both = {"s3:prefix": ["tables/x"], "s3:max-keys": ["1000"]}
    assert holds({"StringLike": {"s3:prefix": "tables/*"}, "NumericLessThanEquals": {"s3:max-keys": "1000"}}, both)
    assert not holds({"StringLike": {"s3:prefix": "tables/*"}, "NumericLessThan": {"s3:max-keys": "1000"}}, both)


def test_a_key_the_check_cannot_know_counts_as_absent_and_is_reported(tmp_path):
    t = template([allow("s3:GetObject", BUCKET + "/*", {"Bool": {"aws:SecureTransport": "true"}})])
    report = check(tmp_path, t, [call("GET", "/lake/tables/a")])
    assert report.denied == 1
    assert any("aws:SecureTransport" in line and "cannot know" in line for line in report.lines)


# ---- S3 mapping -----------------------------------------------------------------------------

def test_list_with_a_granted_prefix_is_allowed_but_not_the_implicit_list_of_a_404(tmp_path):
    t = template([allow("s3:GetObject", BUCKET + "/_tributary/*"),
                  allow("s3:ListBucket", BUCKET, {"StringLike": {"s3:prefix": ["tables/*", "_tributary/*"]}})])
    listing = call("GET", "/lake?list-type=2&prefix=_tributary%2Fstate%2F")
    assert check(tmp_path, t, [listing]).denied == 0
    missing = call("GET", "/lake/_tributary/state.json?x-id=GetObject", status=404)
    report = check(tmp_path, t, [listing, missing])
    assert report.denied == 1
    assert any("s3:ListBucket on arn:aws:s3:::lake (implicit ListBucket of a 404)" in line
               and "key absent" in line for line in report.lines)


def test_a_found_object_needs_no_list_bucket():
    assert requests(call("GET", "/lake/tables/a%3D1/x.parquet", headers={"range": "bytes=0-9"})) == [
        ("s3:GetObject", BUCKET + "/tables/a=1/x.parquet")]
    assert requests(call("HEAD", "/lake/tables/x", status=404)) == [
        ("s3:GetObject", BUCKET + "/tables/x"), ("s3:ListBucket", BUCKET)]


def test_list_context_keys():
    c = ic.parse_call(json.dumps(call("GET", "/other?list-type=2&prefix=tables%2Fa%20b%2F&delimiter=%2F&max-keys=5")), "t")
    (r,) = ic.requests_for(c, ic.Stack("lake", None, None))
    assert (r.action, r.resource) == ("s3:ListBucket", BUCKET)  # any bucket stands for the data bucket
    assert r.context == {"s3:prefix": ["tables/a b/"], "s3:delimiter": ["/"], "s3:max-keys": ["5"]}
    (r,) = ic.requests_for(ic.parse_call(json.dumps(call("GET", "/lake?list-type=2")), "t"), ic.Stack("lake", None, None))
    assert r.context == {}


def test_copy_without_tagging_directive_copies_the_tags():
    copy = call("PUT", "/lake/tables/b?x-id=CopyObject", headers={"x-amz-copy-source": "lake/tables/a%3D1"})
    assert sorted(requests(copy)) == sorted([
        ("s3:PutObject", BUCKET + "/tables/b"), ("s3:GetObject", BUCKET + "/tables/a=1"),
        ("s3:GetObjectTagging", BUCKET + "/tables/a=1"), ("s3:PutObjectTagging", BUCKET + "/tables/b")])
    replace = call("PUT", "/lake/tables/b", headers={"x-amz-copy-source": "/lake/tables/a",
                                                     "x-amz-tagging-directive": "REPLACE"})
    assert sorted(requests(replace)) == sorted([("s3:PutObject", BUCKET + "/tables/b"),
                                                ("s3:GetObject", BUCKET + "/tables/a")])


def test_multipart_put_delete_and_tagging():
    assert requests(call("POST", "/lake/tables/x?uploads")) == [("s3:PutObject", BUCKET + "/tables/x")]
    assert requests(call("PUT", "/lake/tables/x?x-id=UploadPart&partNumber=1&uploadId=u")) == [
        ("s3:PutObject", BUCKET + "/tables/x")]
    assert requests(call("POST", "/lake/tables/x?uploadId=u")) == [("s3:PutObject", BUCKET + "/tables/x")]
    assert requests(call("DELETE", "/lake/tables/x?x-id=AbortMultipartUpload&uploadId=u")) == [
        ("s3:AbortMultipartUpload", BUCKET + "/tables/x")]
    assert requests(call("DELETE", "/lake/tables/x?x-id=DeleteObject")) == [("s3:DeleteObject", BUCKET + "/tables/x")]
    assert requests(call("PUT", "/lake/tables/x?tagging")) == [("s3:PutObjectTagging", BUCKET + "/tables/x")]
    assert requests(call("PUT", "/lake/tables/x", headers={"x-amz-tagging": "a=b"})) == [
        ("s3:PutObject", BUCKET + "/tables/x"), ("s3:PutObjectTagging", BUCKET + "/tables/x")]
    body = ('<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>tables/a</Key></Object>'
            '<Object><Key>tables/b</Key></Object><Quiet>true</Quiet></Delete>')
    assert requests(call("POST", "/lake?delete", body=body)) == [
        ("s3:DeleteObject", BUCKET + "/tables/a"), ("s3:DeleteObject", BUCKET + "/tables/b")]


# ---- Glue and Lambda ------------------------------------------------------------------------

GLUE = "arn:aws:glue:us-east-1:123456789012"


def glue_call(op, body, role="catalog"):
    return call("POST", "/", role=role, service="glue", headers={"x-amz-target": f"AWSGlue.{op}"}, body=json.dumps(body))


def test_glue_needs_catalog_database_and_table(tmp_path):
    get_table = glue_call("GetTable", {"DatabaseName": "db", "Name": "t"})
    assert requests(get_table) == [("glue:GetTable", f"{GLUE}:catalog"), ("glue:GetTable", f"{GLUE}:database/db"),
                                   ("glue:GetTable", f"{GLUE}:table/db/t")]
    partial = template([allow("glue:GetTable", [f"{GLUE}:catalog", f"{GLUE}:database/db"])], role="catalog")
    report = check(tmp_path, partial, [get_table])
    assert report.denied == 1 and any(f"{GLUE}:table/db/t" in line for line in report.lines)
    full = template([allow("glue:GetTable", [f"{GLUE}:catalog", f"{GLUE}:database/db", f"{GLUE}:table/db/*"])],
                    role="catalog")
    assert check(tmp_path, full, [get_table]).exit_code == 0


def test_glue_names_from_inputs_and_the_stack_database():
    create = glue_call("CreateTable", {"DatabaseName": "test_db_1", "TableInput": {"Name": "t"}})
    stack = ic.Stack("lake", "tributary_0a1b2c3d", None)
    got = [r.resource for r in ic.requests_for(ic.parse_call(json.dumps(create), "t"), stack)]
    assert got[-1] == f"{GLUE}:table/tributary_0a1b2c3d/t"
    db = glue_call("CreateDatabase", {"DatabaseInput": {"Name": "x"}})
    assert [r for _, r in requests(db)] == [f"{GLUE}:catalog", f"{GLUE}:database/x"]
    parts = glue_call("BatchCreatePartition", {"DatabaseName": "db", "TableName": "t", "PartitionInputList": []})
    assert requests(parts)[-1] == ("glue:BatchCreatePartition", f"{GLUE}:table/db/t")


def test_lambda_event_source_mapping_uses_the_stack_uuid():
    c = call("GET", "/2015-03-31/event-source-mappings/01234567-89ab-cdef-0123-456789abcdef", role="watch",
             service="lambda")
    stack = ic.Stack("lake", None, "11111111-2222-3333-4444-555555555555")
    (r,) = ic.requests_for(ic.parse_call(json.dumps(c), "t"), stack)
    assert (r.action, r.resource) == ("lambda:GetEventSourceMapping",
                                      "arn:aws:lambda:us-east-1:123456789012:event-source-mapping:"
                                      "11111111-2222-3333-4444-555555555555")


# ---- the check ------------------------------------------------------------------------------

def test_unused_grant_is_detected(tmp_path):
    t = template([allow(["s3:GetObject", "s3:DeleteObject"], [BUCKET + "/tables/*", BUCKET + "/dead-letter/*"])])
    report = check(tmp_path, t, [call("GET", "/lake/tables/a")])
    assert report.denied == 0 and report.unused == 2 and report.exit_code == 1
    assert any("s3:DeleteObject" in line and "never exercised" in line for line in report.lines)
    assert any("resource arn:aws:s3:::lake/dead-letter/*" in line for line in report.lines)
    never = template([allow("s3:GetObject", BUCKET + "/tables/*"), allow("glue:GetTable", [f"{GLUE}:catalog", "*"])])
    report = check(tmp_path, never, [call("GET", "/lake/tables/a")])
    assert report.unused == 1 and any("the statement is never exercised" in line for line in report.lines)


def test_service_used_grants_are_not_unused(tmp_path):
    t = template([allow("s3:GetObject", BUCKET + "/tables/*"),
                  allow("kafka-cluster:Connect", "arn:aws:kafka:us-east-1:123456789012:cluster/c/1"),
                  allow("s3:PutObject", BUCKET + "/aws/lambda/*")])
    report = check(tmp_path, t, [call("GET", "/lake/tables/a")], service_used=ic.SERVICE_USED)
    assert report.exit_code == 0, report.lines
    compact = template([allow("s3:GetObject", BUCKET + "/tables/*"), allow("kafka-cluster:Connect", "*")],
                       role="compact")
    report = check(tmp_path, compact, [call("GET", "/lake/tables/a", role="compact")], service_used=ic.SERVICE_USED)
    assert report.unused == 1, report.lines  # the Kafka reason is the ingest role's only


def test_an_unmapped_call_fails(tmp_path):
    t = template([allow("s3:*", "*")])
    for c in (call("GET", "/lake/tables/a?acl"), call("POST", "/", service="sqs"),
              call("GET", "/lake/tables/a?x-id=PutObject"),
              call("POST", "/", service="glue", headers={"x-amz-target": "AWSGlue.StartCrawler"}, body="{}")):
        report = check(tmp_path, t, [c])
        assert report.errors == 1 and report.exit_code == 1, c
        assert any("UNMAPPED" in line for line in report.lines)


def test_an_empty_calls_dir_fails(tmp_path, capsys):
    (tmp_path / "calls").mkdir()
    (tmp_path / "calls" / "empty.jsonl").write_text("")
    (tmp_path / "t.json").write_text(json.dumps(template([allow("s3:GetObject", "*")])))
    code = ic.main(["--calls", str(tmp_path / "calls"), "--template", f"sam={tmp_path / 't.json'}"])
    assert code == 1
    assert "no recorded calls" in capsys.readouterr().out


def test_cli_summary_and_a_call_from_a_role_the_template_lacks(tmp_path, capsys):
    d = tmp_path / "calls"
    d.mkdir()
    lines = [call("GET", "/lake/tables/a"), call("GET", "/lake/tables/b", role="watch")]
    (d / "x.jsonl").write_text("".join(json.dumps(c) + "\n" for c in lines))
    (tmp_path / "t.json").write_text(json.dumps(template([allow("s3:GetObject", BUCKET + "/tables/*")])))
    code = ic.main(["--calls", str(d), "--template", f"sam={tmp_path / 't.json'}"])
    out = capsys.readouterr().out
    assert code == 1
    assert "no function ending -watch" in out
    assert out.strip().splitlines()[-1] == "iam check: sam: 2 calls, 1 requests allowed; 1 denied, 0 unused grants"


def test_intrinsics_resolve_and_unknown_ones_fail():
    t = {"Parameters": {"Prefix": {"Type": "String", "Default": "tributary"}, "Kms": {"Type": "String", "Default": ""}},
         "Conditions": {"UseKms": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Kms"}, ""]}]},
                        "Both": {"Fn::And": [{"Condition": "UseKms"}, {"Fn::Equals": ["a", "a"]}]}},
         "Resources": {"Q": {"Type": "AWS::SQS::Queue"}, "B": {"Type": "AWS::S3::Bucket"}}}
    r = ic.Resolver(t, {})
    assert r.resolve({"Fn::Sub": "arn:${AWS::Partition}:s3:::${Prefix}-${AWS::AccountId}/${!Literal}"}) == \
        "arn:aws:s3:::tributary-123456789012/${Literal}"
    assert r.resolve({"Fn::Sub": ["${X}/y", {"X": {"Ref": "AWS::Region"}}]}) == "us-east-1/y"
    assert r.resolve({"Fn::If": ["Both", "kms", {"Ref": "AWS::NoValue"}]}) is ic.NO_VALUE
    assert r.resolve([{"Fn::If": ["UseKms", "kms", {"Ref": "AWS::NoValue"}]}, "x"]) == ["x"]
    stack_uuid = {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}
    assert r.resolve({"Fn::Select": [0, {"Fn::Split": ["-", stack_uuid]}]}) == "0a1b2c3d"
    assert r.resolve({"Fn::GetAtt": ["Q", "Arn"]}).startswith("arn:aws:sqs:us-east-1:123456789012:tributary-test-Q-")
    joined = r.resolve({"Fn::Join": ["", ["x:", {"Fn::GetAtt": ["B", "Arn"]}]]})
    assert joined.startswith("x:arn:aws:s3:::tributary-test-b-")
    with pytest.raises(ic.CheckError):
        r.resolve({"Fn::ImportValue": "x"})
    with pytest.raises(ic.CheckError):
        r.resolve({"Fn::GetAtt": ["B", "WebsiteURL"]})


# ---- the ingest role's implicit ListBucket, before and after issue 18 ------------------------

# The template before issue 18 (template.yaml at commit c547628), ingest role: its object grants
# and its ListBucket conditioned on s3:prefix, as SAM transforms them. Frozen here on purpose: the
# live template.yaml is being changed to an unconditional ListBucket.
BEFORE_ISSUE_18 = [
    {"Sid": "ReadWriteTablesDeadLettersAndState", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
     "Resource": [
         {"Fn::Sub": "arn:${AWS::Partition}:s3:::${BucketNamePrefix}-${AWS::AccountId}-${AWS::Region}/tables/*"},
         {"Fn::Sub": "arn:${AWS::Partition}:s3:::${BucketNamePrefix}-${AWS::AccountId}-${AWS::Region}/dead-letter/*"},
         {"Fn::Sub": "arn:${AWS::Partition}:s3:::${BucketNamePrefix}-${AWS::AccountId}-${AWS::Region}/_tributary/*"}]},
    {"Sid": "ListTablesDeadLettersAndState", "Effect": "Allow", "Action": "s3:ListBucket",
     "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${BucketNamePrefix}-${AWS::AccountId}-${AWS::Region}"},
     "Condition": {"StringLike": {"s3:prefix": ["tables/*", "dead-letter/*", "_tributary/*"]}}},
]

MISSING_STATE = call("GET", "/test-bucket/_tributary/customer_data/state.json?x-id=GetObject", status=404)


def ingest_decisions(tmpl):
    roles, resolver, _ = ic.function_roles(tmpl, dict(ic.DEFAULT_PARAMS))
    stack = ic.stack_names(resolver)
    reqs = ic.requests_for(ic.parse_call(json.dumps(MISSING_STATE), "t"), stack)
    return {(r.action, r.why): ic.decide(roles["ingest"], r) for r in reqs}


def test_before_issue_18_the_implicit_list_bucket_of_a_missing_state_key_is_denied():
    tmpl = template(BEFORE_ISSUE_18, bucket_name={"Fn::Sub": "${BucketNamePrefix}-${AWS::AccountId}-${AWS::Region}"})
    tmpl["Parameters"] = {"BucketNamePrefix": {"Type": "String", "Default": "tributary"}}
    d = ingest_decisions(tmpl)
    assert d[("s3:GetObject", "read")].allowed
    listing = d[("s3:ListBucket", "implicit ListBucket of a 404")]
    assert not listing.allowed  # S3 answers 403, not 404: "missing" looks like "forbidden"
    assert "ListTablesDeadLettersAndState" in listing.closest and "key absent" in listing.closest


def test_live_template_allows_the_implicit_list_bucket__needs_the_issue_18_template_fix(tmp_path):
    """Depends on the template change of issue 18 (an unconditional s3:ListBucket for ingest in
    template.yaml); fails until it lands."""
    out = tmp_path / "transformed.json"
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    subprocess.run([sys.executable, str(ROOT / "scripts" / "validate_template.py"), str(ROOT / "template.yaml"),
                    str(out)], check=True, env=env, capture_output=True)
    d = ingest_decisions(json.loads(out.read_text()))
    assert d[("s3:GetObject", "read")].allowed
    listing = d[("s3:ListBucket", "implicit ListBucket of a 404")]
    assert listing.allowed, listing.closest
