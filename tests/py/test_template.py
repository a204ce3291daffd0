"""Assertions on the SAM-transformed template (what CloudFormation deploys).
Run by scripts/validate-template.sh with TRANSFORMED pointing at the transformed JSON."""
import json
import os

import pytest

with open(os.environ["TRANSFORMED"]) as f:
    TEMPLATE = json.load(f)
RES = TEMPLATE["Resources"]


def of_type(t):
    return {k: v for k, v in RES.items() if v["Type"] == t}


def branches(x):
    """Both branches of a Fn::If (an AWS::NoValue branch is no branch), or the value itself."""
    if isinstance(x, dict) and "Fn::If" in x:
        return [b for b in x["Fn::If"][1:] if b != {"Ref": "AWS::NoValue"}]
    return [x]


def statements():
    for name, r in RES.items():
        if r["Type"] == "AWS::IAM::Role":
            for item in r["Properties"].get("Policies", []):
                for p in branches(item):
                    for stmt in p["PolicyDocument"]["Statement"]:
                        for s in branches(stmt):
                            yield name, s


def as_list(x):
    return x if isinstance(x, list) else [x]


# Actions that AWS cannot scope to a resource (network interfaces for the event source mapping).
UNSCOPABLE = {"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
              "ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"}


def test_every_function_has_an_errors_alarm():
    functions = of_type("AWS::Lambda::Function")
    assert functions
    alarmed = {a["Properties"]["Dimensions"][0]["Value"]["Ref"]
               for a in of_type("AWS::CloudWatch::Alarm").values()
               if a["Properties"].get("MetricName") == "Errors"}
    assert set(functions) <= alarmed, set(functions) - alarmed


@pytest.mark.parametrize("metric", ["Throttles", "Duration"])
def test_every_function_has_throttle_and_duration_alarms(metric):
    functions = of_type("AWS::Lambda::Function")
    alarmed = {}
    for a in of_type("AWS::CloudWatch::Alarm").values():
        if a["Properties"].get("MetricName") == metric:
            alarmed[a["Properties"]["Dimensions"][0]["Value"]["Ref"]] = a["Properties"]
    assert set(functions) <= set(alarmed), set(functions) - set(alarmed)
    if metric == "Duration":
        for name, props in alarmed.items():
            timeout_ms = functions[name]["Properties"]["Timeout"] * 1000
            assert props["Statistic"] == "Maximum"
            assert 0.5 * timeout_ms <= props["Threshold"] < timeout_ms, (name, props["Threshold"], timeout_ms)


def test_the_dashboard_body_is_json_and_shows_every_function():
    import re

    (dash,) = of_type("AWS::CloudWatch::Dashboard").values()
    body, names = dash["Properties"]["DashboardBody"]["Fn::Sub"]
    filled = re.sub(r"\$\{[^}]+\}", "x", body)
    widgets = json.loads(filled)["widgets"]
    assert len(widgets) >= 6
    for fn in ("Ingest", "Compact", "Catalog"):
        assert "${" + fn + "}" in body and fn in names


def test_every_alarm_notifies_the_alarm_topic():
    for name, a in of_type("AWS::CloudWatch::Alarm").items():
        assert {"Ref": "AlarmTopic"} in a["Properties"].get("AlarmActions", []), name


@pytest.mark.parametrize("metric", ["OffsetLag", "DeadLettered"])
def test_ingest_stall_and_loss_are_alarmed(metric):
    assert any(a["Properties"].get("MetricName") == metric for a in of_type("AWS::CloudWatch::Alarm").values())


def test_no_wildcard_actions_and_no_wildcard_resources_on_data():
    for role, s in statements():
        if s["Effect"] != "Allow":
            continue
        actions = as_list(s["Action"])
        assert all("*" not in a for a in actions), (role, s)
        if "*" in as_list(s["Resource"]):
            assert set(actions) <= UNSCOPABLE, (role, s)


def test_s3_access_is_scoped_to_the_tributary_prefixes():
    for role, s in statements():
        for a in as_list(s["Action"]):
            if a.startswith("s3:") and a != "s3:ListBucket":
                for r in as_list(s["Resource"]):
                    text = json.dumps(r)
                    assert any(p in text for p in ("/tables/*", "/dead-letter/*", "/_tributary/*")), (role, s)


def test_data_bucket_is_encrypted_private_and_tls_only():
    bucket = RES["DataBucket"]["Properties"]
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    # SSE-S3 by default; the customer managed key when KmsKeyArn is given.
    kms, default = branches(sse)
    assert sse["Fn::If"][0] == "UseKms"
    assert default == {"SSEAlgorithm": "AES256"}
    assert kms == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Ref": "KmsKeyArn"}}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    policy = RES["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false" for s in policy)


def test_kms_permissions_exist_only_with_a_key_and_only_on_it():
    roles = {f["Properties"]["Role"]["Fn::GetAtt"][0] for f in of_type("AWS::Lambda::Function").values()}
    assert len(roles) == 3
    for name in roles:
        r = RES[name]
        conditional = [p for p in r["Properties"].get("Policies", []) if isinstance(p, dict) and "Fn::If" in p]
        (kms,) = conditional
        assert kms["Fn::If"][0] == "UseKms" and kms["Fn::If"][2] == {"Ref": "AWS::NoValue"}, name
        (stmt,) = kms["Fn::If"][1]["PolicyDocument"]["Statement"]
        assert sorted(stmt["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"] and stmt["Resource"] == {"Ref": "KmsKeyArn"}


def test_msk_or_self_managed_kafka_with_optional_sasl_and_vpc():
    sources = of_type("AWS::Lambda::EventSourceMapping")
    assert {m.get("Condition") for m in sources.values()} == {"IsMsk", "IsSelfManaged"}
    (managed,) = [m["Properties"] for m in sources.values() if m["Condition"] == "IsSelfManaged"]
    assert managed["SelfManagedEventSource"]["Endpoints"]["KafkaBootstrapServers"] == {
        "Fn::Split": [",", {"Ref": "KafkaBootstrapServers"}]}
    access = managed["SourceAccessConfigurations"]["Fn::If"]
    assert access[0] == "HasKafkaAccessConfig" and access[2] == {"Ref": "AWS::NoValue"}
    types = {b["Type"] if isinstance(b["Type"], str) else b["Type"]["Ref"] for item in access[1] for b in branches(item)}
    assert types == {"KafkaAuthMechanism", "VPC_SUBNET", "VPC_SECURITY_GROUP"}
    # The cluster's permissions exist only for MSK; the secret's only with a secret, and only on it.
    ingest = RES[RES["IngestFunction"]["Properties"]["Role"]["Fn::GetAtt"][0]]
    statements_ = [st for p in ingest["Properties"]["Policies"] for b in branches(p) for st in b["PolicyDocument"]["Statement"]]
    conditional = {st["Fn::If"][1]["Sid"]: st["Fn::If"][0] for st in statements_ if "Fn::If" in st}
    assert conditional == {"ReadTheCluster": "IsMsk", "ReadTheTopic": "IsMsk", "UseTheConsumerGroup": "IsMsk",
                           "ReadTheKafkaCredentials": "HasKafkaSecret"}
    secret = [st["Fn::If"][1] for st in statements_ if "Fn::If" in st and st["Fn::If"][0] == "HasKafkaSecret"][0]
    assert secret["Action"] == "secretsmanager:GetSecretValue" and secret["Resource"] == {"Ref": "KafkaAuthSecretArn"}
    assert set(TEMPLATE["Rules"]) >= {"MskNeedsItsCluster", "SelfManagedNeedsBrokers"}


def test_event_source_has_an_on_failure_destination():
    for name, m in of_type("AWS::Lambda::EventSourceMapping").items():
        assert m["Properties"]["DestinationConfig"]["OnFailure"]["Destination"], name


def test_functions_are_arm64_on_provided_al2023():
    for name, f in of_type("AWS::Lambda::Function").items():
        assert f["Properties"]["Architectures"] == ["arm64"], name
        assert f["Properties"]["Runtime"] == "provided.al2023", name


def test_compaction_lag_alarm_treats_silence_as_breaching():
    lag = [a for a in of_type("AWS::CloudWatch::Alarm").values() if a["Properties"].get("MetricName") == "CompactionLag"]
    assert lag and lag[0]["Properties"]["TreatMissingData"] == "breaching"


def test_replaced_files_and_stale_uploads_expire():
    rules = RES["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any("AbortIncompleteMultipartUpload" in r for r in rules)
    assert any(r.get("TagFilters") == [{"Key": "tributary", "Value": "replaced"}] and "ExpirationInDays" in r for r in rules)


def test_compaction_and_catalog_are_triggered_by_ingest_puts_only():
    assert RES["DataBucket"]["Properties"]["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"]
    rules = of_type("AWS::Events::Rule")
    targets = set()
    for r in rules.values():
        pattern = r["Properties"].get("EventPattern")
        if not pattern:
            continue
        assert pattern["detail"]["reason"] == ["PutObject"], "multipart and copy outputs must not re-trigger"
        assert pattern["detail"]["object"]["key"] == [{"prefix": "tables/"}]
        for t in r["Properties"]["Targets"]:
            targets.add(t["Arn"]["Fn::GetAtt"][0])
            assert "DeadLetterConfig" in t and "RetryPolicy" in t
    assert targets == {"CompactFunction", "CatalogFunction"}


def test_glue_and_athena_permissions_are_limited_to_the_database():
    for role, s in statements():
        for a in as_list(s["Action"]):
            if a.startswith("glue:"):
                for r in as_list(s["Resource"]):
                    text = json.dumps(r)
                    assert ":catalog" in text or "GlueDatabaseName" in text, (role, s)


def test_athena_results_are_encrypted():
    wg = RES["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert wg["EnforceWorkGroupConfiguration"]
    assert wg["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] in ("SSE_S3", "SSE_KMS")


def test_bucket_name_is_not_a_reference_from_functions():
    # A function environment that references the bucket which notifies it is a circular dependency.
    for name, f in of_type("AWS::Lambda::Function").items():
        env = json.dumps(f["Properties"].get("Environment", {}))
        assert '"Ref": "DataBucket"' not in env, name


def role_of(function):
    return RES[RES[function]["Properties"]["Role"]["Fn::GetAtt"][0]]


def grants(function):
    """(action, resource suffix or list prefixes) pairs a function's role allows, both If branches."""
    out = set()
    for item in role_of(function)["Properties"].get("Policies", []):
        for p in branches(item):
            for stmt in p["PolicyDocument"]["Statement"]:
                for s in branches(stmt):
                    if s["Effect"] != "Allow":
                        continue
                    for a in as_list(s["Action"]):
                        if a == "s3:ListBucket":
                            prefixes = s["Condition"]["StringLike"]["s3:prefix"]
                            out |= {(a, pre) for pre in prefixes}
                        elif a.startswith("s3:"):
                            for r in as_list(s["Resource"]):
                                text = r["Fn::Sub"] if isinstance(r, dict) and "Fn::Sub" in r else json.dumps(r)
                                out.add((a, text.split("}")[-1]))
                        else:
                            out.add((a, None))
    return out


# What each function's code calls (functions/aws: S3Store, GlueCatalog), and nothing more: a new
# call needs its grant here and in the template, a grant no call needs fails this test.
S3_AREAS = {"tables": "/tables/*", "dead": "/dead-letter/*", "state": "/_tributary/*"}
NEEDS = {
    # get, put (data files, dead letters, schema registry), copy (settle onto a new version:
    # GetObject on the source, PutObject on the target); lists of all three areas.
    "IngestFunction": {("s3:GetObject", S3_AREAS[a]) for a in S3_AREAS}
    | {("s3:PutObject", S3_AREAS[a]) for a in S3_AREAS}
    | {("s3:ListBucket", p) for p in ("tables/*", "dead-letter/*", "_tributary/*")},
    # ranged gets, multipart uploads (PutObject), copies, deletes of unused outputs, tags of
    # replaced files, aborted uploads; partition state; Glue partition locations.
    "CompactFunction": {(a, S3_AREAS[area]) for a in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                                                       "s3:PutObjectTagging", "s3:AbortMultipartUpload")
                        for area in ("tables", "state")}
    | {("s3:ListBucket", p) for p in ("tables/*", "_tributary/*")}
    | {("glue:GetPartition", None), ("glue:UpdatePartition", None)},
    # reads the schema registry and partition states, lists tables; manages its database.
    "CatalogFunction": {("s3:GetObject", S3_AREAS[a]) for a in ("tables", "state")}
    | {("s3:ListBucket", p) for p in ("tables/*", "_tributary/*")}
    | {(a, None) for a in ("glue:GetDatabase", "glue:CreateDatabase", "glue:GetTable", "glue:CreateTable",
                           "glue:UpdateTable", "glue:GetPartition", "glue:BatchCreatePartition", "glue:UpdatePartition")},
}
# Not data access: the key (when given), the failure queues, the cluster and its network.
INFRA = ("kms:", "sqs:", "kafka:", "kafka-cluster:", "ec2:", "secretsmanager:")


@pytest.mark.parametrize("function", sorted(NEEDS))
def test_each_role_grants_exactly_what_its_code_calls(function):
    data = {g for g in grants(function) if not g[0].startswith(INFRA)}
    assert data == NEEDS[function], (sorted(data - NEEDS[function]), sorted(NEEDS[function] - data))


def test_only_ingest_reaches_kafka_and_secrets():
    for function in ("CompactFunction", "CatalogFunction"):
        actions = {a for a, _ in grants(function)}
        assert not any(a.startswith(("kafka", "ec2:", "secretsmanager:")) for a in actions), function
