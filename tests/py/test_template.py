"""Assertions on the SAM-transformed template (what CloudFormation deploys).
Run by scripts/validate-template.sh with TRANSFORMED pointing at the transformed JSON."""
import json
import os
import re

import pytest

with open(os.environ["TRANSFORMED"]) as f:
    TEMPLATE = json.load(f)
RES = TEMPLATE["Resources"]
PARAMS = TEMPLATE["Parameters"]
NAMESPACE = {"Fn::Sub": "Tributary/${AWS::StackName}"}
FUNCTIONS = ("IngestFunction", "CompactFunction", "CatalogFunction", "WatchFunction")
DATA_FUNCTIONS = ("IngestFunction", "CompactFunction", "CatalogFunction")


def of_type(t):
    return {k: v for k, v in RES.items() if v["Type"] == t}


def branches(x):
    """Both branches of a Fn::If (an AWS::NoValue branch is no branch), or the value itself."""
    if isinstance(x, dict) and "Fn::If" in x:
        return [b for b in x["Fn::If"][1:] if b != {"Ref": "AWS::NoValue"}]
    return [x]


def as_list(x):
    return x if isinstance(x, list) else [x]


def role_of(function):
    return RES[RES[function]["Properties"]["Role"]["Fn::GetAtt"][0]]


def role_statements(role):
    """(statement, condition of its Fn::If or None) of a role's inline policies, both If branches."""
    for item in role["Properties"].get("Policies", []):
        for p in branches(item):
            for stmt in p["PolicyDocument"]["Statement"]:
                cond = stmt["Fn::If"][0] if isinstance(stmt, dict) and "Fn::If" in stmt else None
                for s in branches(stmt):
                    yield s, cond


def statements():
    for name, r in RES.items():
        if r["Type"] == "AWS::IAM::Role":
            for s, _ in role_statements(r):
                yield name, s


def alarms():
    return {k: v["Properties"] for k, v in of_type("AWS::CloudWatch::Alarm").items()}


def namespace_of(alarm):
    """The namespace an alarm reads: its own, or its metric query's (an anomaly detection alarm)."""
    if "Metrics" in alarm:
        (ns,) = [q["MetricStat"]["Metric"]["Namespace"] for q in alarm["Metrics"] if "MetricStat" in q]
        return ns
    return alarm["Namespace"]


# Actions that AWS cannot scope to a resource (network interfaces for the event source mapping).
UNSCOPABLE = {"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
              "ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"}


def test_four_functions():
    assert set(of_type("AWS::Lambda::Function")) == set(FUNCTIONS)


def test_every_function_has_an_errors_alarm():
    functions = of_type("AWS::Lambda::Function")
    alarmed = {a["Dimensions"][0]["Value"]["Ref"] for a in alarms().values() if a.get("MetricName") == "Errors"}
    assert set(functions) <= alarmed, set(functions) - alarmed


@pytest.mark.parametrize("metric", ["Throttles", "Duration"])
def test_every_function_has_throttle_and_duration_alarms(metric):
    functions = of_type("AWS::Lambda::Function")
    alarmed = {}
    for a in alarms().values():
        if a.get("MetricName") == metric:
            alarmed[a["Dimensions"][0]["Value"]["Ref"]] = a
    assert set(functions) <= set(alarmed), set(functions) - set(alarmed)
    if metric == "Duration":
        for name, props in alarmed.items():
            timeout_ms = functions[name]["Properties"]["Timeout"] * 1000
            assert props["Statistic"] == "Maximum"
            assert 0.5 * timeout_ms <= props["Threshold"] < timeout_ms, (name, props["Threshold"], timeout_ms)


def dashboard():
    (dash,) = of_type("AWS::CloudWatch::Dashboard").values()
    body, names = dash["Properties"]["DashboardBody"]["Fn::Sub"]
    return body, names, json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]


def test_the_dashboard_body_is_json_and_shows_every_function_and_the_new_metrics():
    body, names, widgets = dashboard()
    assert len(widgets) >= 8
    for fn in ("Ingest", "Compact", "Catalog", "Watch"):
        assert "${" + fn + "}" in body and fn in names
    for metric in ("IngestSourceStopped", "TriggeredRules", "DestinationDeliveryFailures", "NumberOfMessagesSent", "RowsRescued"):
        assert f'"{metric}"' in body, metric
    assert names["FailedBatchRule"] == {"Ref": "IngestFailedBatchRule"}


def test_the_dashboard_reads_this_stacks_namespace():
    body, names, widgets = dashboard()
    assert names["Namespace"] == NAMESPACE
    for w in widgets:
        for m in w["properties"]["metrics"]:
            assert not m[0].startswith("Tributary"), m  # only "x" (the namespace), AWS/... or "."
    assert '"Tributary"' not in body


def test_every_alarm_notifies_the_alarm_topic():
    for name, a in alarms().items():
        assert {"Ref": "AlarmTopic"} in a.get("AlarmActions", []), name


@pytest.mark.parametrize("metric", ["OffsetLag", "DeadLettered", "IngestSourceStopped", "TriggeredRules"])
def test_ingest_stall_and_loss_are_alarmed(metric):
    assert any(a.get("MetricName") == metric for a in alarms().values())


def test_no_wildcard_actions_and_no_wildcard_resources_on_data():
    for role, s in statements():
        if s["Effect"] != "Allow":
            continue
        actions = as_list(s["Action"])
        assert all("*" not in a for a in actions), (role, s)
        if "*" in as_list(s["Resource"]):
            assert set(actions) <= UNSCOPABLE, (role, s)


def test_s3_object_access_is_scoped_to_the_tributary_prefixes():
    for role, s in statements():
        for a in as_list(s["Action"]):
            if a.startswith("s3:") and a != "s3:ListBucket":
                for r in as_list(s["Resource"]):
                    text = json.dumps(r)
                    assert any(p in text for p in ("/tables/*", "/dead-letter/*", "/_tributary/*", "/aws/lambda/*")), (role, s)


def test_list_bucket_is_granted_on_the_bucket_without_a_prefix_condition():
    # S3 answers a GetObject of a missing key with 404 only to a caller holding s3:ListBucket; that
    # check carries no s3:prefix, so a condition on one makes every first read of a new key a 403.
    listed = set()
    for role, s in statements():
        if "s3:ListBucket" in as_list(s["Action"]):
            assert "Condition" not in s, (role, s)
            assert s["Resource"] == {"Fn::GetAtt": ["DataBucket", "Arn"]}, (role, s)
            listed.add(role)
    assert listed == {RES[f]["Properties"]["Role"]["Fn::GetAtt"][0] for f in DATA_FUNCTIONS}


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
    for name in FUNCTIONS:
        r = role_of(name)
        conditional = [p for p in r["Properties"].get("Policies", []) if isinstance(p, dict) and "Fn::If" in p]
        if name == "WatchFunction":
            assert not conditional  # the watch reads no data
            continue
        (kms,) = conditional
        assert kms["Fn::If"][0] == "UseKms" and kms["Fn::If"][2] == {"Ref": "AWS::NoValue"}, name
        (stmt,) = kms["Fn::If"][1]["PolicyDocument"]["Statement"]
        assert sorted(stmt["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"] and stmt["Resource"] == {"Ref": "KmsKeyArn"}


# --- The alarm topic ------------------------------------------------------------------------


def key_statements():
    return RES["AlarmTopicKey"]["Properties"]["KeyPolicy"]["Statement"]


def test_the_alarm_topic_is_under_a_customer_managed_key_not_alias_aws_sns():
    topic = RES["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": ["AlarmTopicKey", "Arn"]}
    assert "alias/aws/sns" not in json.dumps(RES)
    key = RES["AlarmTopicKey"]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True


@pytest.mark.parametrize("service", ["cloudwatch.amazonaws.com", "events.amazonaws.com"])
def test_the_key_policy_lets_the_publishers_use_the_key(service):
    (s,) = [s for s in key_statements() if s.get("Principal", {}).get("Service") == service]
    assert s["Effect"] == "Allow"
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(as_list(s["Action"]))
    if service == "cloudwatch.amazonaws.com":
        assert s["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    else:
        # EventBridge's delivery to an encrypted topic fails with a source condition in the key policy.
        assert "Condition" not in s


def test_the_account_administers_the_key():
    root = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    assert any(s.get("Principal", {}).get("AWS") == root and s["Action"] == "kms:*" for s in key_statements())


def test_the_topic_policy_lets_cloudwatch_and_the_failed_batch_rule_publish():
    (pol,) = of_type("AWS::SNS::TopicPolicy").values()
    assert pol["Properties"]["Topics"] == [{"Ref": "AlarmTopic"}]
    by_service = {s["Principal"]["Service"]: s for s in pol["Properties"]["PolicyDocument"]["Statement"]}
    assert set(by_service) == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    for s in by_service.values():
        assert s["Action"] == "sns:Publish" and s["Resource"] == {"Ref": "AlarmTopic"}
    assert by_service["events.amazonaws.com"]["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["IngestFailedBatchRule", "Arn"]}}}


# --- Kafka sources and SASL/SCRAM -----------------------------------------------------------


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
    conditional = {s["Sid"]: c for s, c in role_statements(role_of("IngestFunction")) if c}
    assert conditional == {"ReadTheCluster": "IsMsk", "ReadTheTopic": "IsMsk", "UseTheConsumerGroup": "IsMsk",
                           "ReadTheKafkaCredentials": "HasKafkaSecret", "DecryptTheKafkaCredentials": "HasKafkaSecretKey"}
    (secret,) = [s for s, c in role_statements(role_of("IngestFunction")) if c == "HasKafkaSecret"]
    assert secret["Action"] == "secretsmanager:GetSecretValue" and secret["Resource"] == {"Ref": "KafkaAuthSecretArn"}
    assert set(TEMPLATE["Rules"]) >= {"MskNeedsItsCluster", "SelfManagedNeedsBrokers", "MskSecretIsScram512WithItsKey"}


def test_the_scram_secret_key_is_usable_through_secrets_manager_only():
    (s,) = [s for s, c in role_statements(role_of("IngestFunction")) if s.get("Sid") == "DecryptTheKafkaCredentials"]
    assert s["Effect"] == "Allow" and s["Action"] == "kms:Decrypt"
    assert s["Resource"] == {"Ref": "KafkaAuthSecretKmsKeyArn"}
    assert s["Condition"] == {"StringEquals": {"kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}}}
    cond = TEMPLATE["Conditions"]["HasKafkaSecretKey"]
    assert cond == {"Fn::And": [{"Condition": "HasKafkaSecret"}, {"Fn::Not": [{"Fn::Equals": [{"Ref": "KafkaAuthSecretKmsKeyArn"}, ""]}]}]}


def evaluate(x, params):
    """A Rules expression (the functions CloudFormation allows there that the template uses)."""
    if isinstance(x, dict):
        (fn, arg), = x.items()
        if fn == "Ref":
            return params[arg]
        if fn == "Fn::Equals":
            a, b = (evaluate(v, params) for v in arg)
            return a == b
        if fn == "Fn::Not":
            return not evaluate(arg[0], params)
        if fn == "Fn::And":
            return all(evaluate(v, params) for v in arg)
        if fn == "Fn::Or":
            return any(evaluate(v, params) for v in arg)
        if fn == "Fn::Contains":
            return evaluate(arg[1], params) in evaluate(arg[0], params)
        raise AssertionError(f"unexpected function {fn} in Rules")
    return x


def refused(**given):
    """The descriptions of the Rules' assertions that fail for these parameters (others at their defaults)."""
    params = {k: p.get("Default") for k, p in PARAMS.items()}
    params.update(given)
    out = []
    for rule in TEMPLATE["Rules"].values():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], params):
            continue
        out += [a["AssertDescription"] for a in rule["Assertions"] if not evaluate(a["Assert"], params)]
    return out


MSK = dict(KafkaSource="msk", MskClusterArn="arn:aws:kafka:us-east-1:123456789012:cluster/c/0a1b-1", KafkaTopic="orders")
SELF = dict(KafkaSource="self-managed", KafkaBootstrapServers="b1:9096", KafkaTopic="orders")
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:AmazonMSK_tributary-AbCdEf"
KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"


@pytest.mark.parametrize("params, refusal", [
    (dict(MSK), None),  # IAM authentication
    (dict(MSK, KafkaAuthSecretArn=SECRET, KafkaAuthSecretKmsKeyArn=KEY), None),  # SCRAM-512 is the default
    (dict(MSK, KafkaAuthSecretArn=SECRET, KafkaAuthSecretKmsKeyArn=KEY, KafkaAuthMechanism="SASL_SCRAM_256_AUTH"), "SASL_SCRAM_512_AUTH only"),
    (dict(MSK, KafkaAuthSecretArn=SECRET, KafkaAuthSecretKmsKeyArn=KEY, KafkaAuthMechanism="BASIC_AUTH"), "SASL_SCRAM_512_AUTH only"),
    (dict(MSK, KafkaAuthSecretArn=SECRET), "customer managed key"),
    (dict(MSK, MskClusterArn=""), "needs MskClusterArn"),
    (dict(SELF), None),
    (dict(SELF, KafkaAuthSecretArn=SECRET, KafkaAuthMechanism="SASL_SCRAM_256_AUTH"), None),  # self-managed keeps its choices
    (dict(SELF, KafkaAuthSecretArn=SECRET, KafkaAuthMechanism="BASIC_AUTH"), None),
    (dict(SELF, KafkaBootstrapServers=""), "needs KafkaBootstrapServers"),
    (dict(SELF, KafkaSubnetA="subnet-0abc"), "needs KafkaSecurityGroup"),
])
def test_the_rules_refuse_what_the_source_cannot_do(params, refusal):
    got = refused(**params)
    if refusal is None:
        assert got == []
    else:
        assert len(got) == 1 and refusal in got[0], got


# --- Ingest failures: the S3 on-failure destination ---------------------------------------


def test_the_event_sources_send_failed_batches_to_the_bucket():
    for name, m in of_type("AWS::Lambda::EventSourceMapping").items():
        assert m["Properties"]["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["DataBucket", "Arn"]}, name
        # Explicit retry settings need provisioned mode: Lambda caps retries at 10 with a destination.
        assert "MaximumRetryAttempts" not in m["Properties"] and "ProvisionedPollerConfig" not in m["Properties"]
    assert not of_type("AWS::SQS::Queue").keys() - {"TriggerFailureQueue"}, "no queue for ingest failures"


def test_lambda_may_write_failure_records_with_the_ingest_role():
    grants = [s for s, _ in role_statements(role_of("IngestFunction"))]
    (put,) = [s for s in grants if s.get("Sid") == "FailedBatchesToTheBucket"]
    assert put["Action"] == "s3:PutObject" and put["Resource"] == {"Fn::Sub": "${DataBucket.Arn}/aws/lambda/*"}
    assert any("s3:ListBucket" in as_list(s["Action"]) and "Condition" not in s for s in grants)
    assert not any(a.startswith("sqs:") for s in grants for a in as_list(s["Action"]))


def test_a_failure_record_notifies_the_topic():
    rule = RES["IngestFailedBatchRule"]["Properties"]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": "DataBucket"}]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "aws/lambda/"}]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": "AlarmTopic"}
    template = json.loads(target["InputTransformer"]["InputTemplate"])  # a JSON string: the message
    assert "tributary replay" in template and "<key>" in template


# --- Compaction's replaced files ------------------------------------------------------------


def test_replaced_files_are_deleted_by_the_compactor_not_by_a_tag_lifecycle_rule():
    rules = RES["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert {r["Id"] for r in rules} == {"abort-incomplete-multipart-uploads", "expire-athena-results", "expire-idle-claim-logs"}
    assert not any("TagFilters" in r or "Tag" in json.dumps(r.get("Filter", {})) for r in rules)
    # Nothing under tables/ (nor the failure records under aws/lambda/) expires by a rule.
    expiring = {r.get("Prefix") for r in rules if "ExpirationInDays" in r}
    assert expiring == {"athena-results/", "_tributary/claims/"}, expiring
    env = RES["CompactFunction"]["Properties"]["Environment"]["Variables"]
    assert env["TRIBUTARY_REPLACED_RETENTION_HOURS"] == {"Ref": "ReplacedFilesRetentionHours"}
    assert PARAMS["ReplacedFilesRetentionHours"]["Default"] == 24 and PARAMS["ReplacedFilesRetentionHours"]["MinValue"] == 1
    assert "ReplacedFilesExpireDays" not in PARAMS
    for role, s in statements():
        assert not any("Tagging" in a for a in as_list(s["Action"])), (role, s)


def test_compaction_lag_alarm_treats_silence_as_breaching():
    lag = [a for a in alarms().values() if a.get("MetricName") == "CompactionLag"]
    assert lag and lag[0]["TreatMissingData"] == "breaching"


def test_compaction_and_catalog_are_triggered_by_ingest_puts_only():
    assert RES["DataBucket"]["Properties"]["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"]
    targets = set()
    for r in of_type("AWS::Events::Rule").values():
        pattern = r["Properties"].get("EventPattern")
        fn_targets = [t for t in r["Properties"]["Targets"] if "Fn::GetAtt" in t["Arn"]]
        if not pattern or not fn_targets:
            continue
        assert pattern["detail"]["reason"] == ["PutObject"], "multipart and copy outputs must not re-trigger"
        assert pattern["detail"]["object"]["key"] == [{"prefix": "tables/"}]
        for t in fn_targets:
            targets.add(t["Arn"]["Fn::GetAtt"][0])
            assert "DeadLetterConfig" in t and "RetryPolicy" in t
    assert targets == {"CompactFunction", "CatalogFunction"}


def test_glue_permissions_are_limited_to_the_database():
    for role, s in statements():
        for a in as_list(s["Action"]):
            if a.startswith("glue:"):
                for r in as_list(s["Resource"]):
                    text = json.dumps(r)
                    assert text.endswith(':catalog"}') or "${GlueDatabase}" in text, (role, s)


# --- Names and teardown ---------------------------------------------------------------------


def test_athena_results_are_encrypted_and_metrics_published():
    wg = RES["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert wg["EnforceWorkGroupConfiguration"] and wg["PublishCloudWatchMetricsEnabled"]
    assert wg["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] in ("SSE_S3", "SSE_KMS")


def test_the_workgroup_is_deleted_with_its_queries():
    assert RES["AthenaWorkGroup"]["Properties"]["RecursiveDeleteOption"] is True


def test_names_are_per_stack_unless_given():
    assert RES["DataBucket"]["Properties"]["BucketName"] == {"Fn::If": ["HasBucketName", {"Ref": "BucketName"}, {"Ref": "AWS::NoValue"}]}
    assert PARAMS["BucketName"]["Default"] == "" and "BucketNamePrefix" not in PARAMS
    db = RES["GlueDatabase"]["Properties"]["DatabaseInput"]["Name"]["Fn::If"]
    assert db[:2] == ["HasGlueDatabaseName", {"Ref": "GlueDatabaseName"}]
    assert db[2] == {"Fn::Join": ["", ["tributary_", {"Fn::Select": [0, {"Fn::Split": ["-", {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}]}]}]]}
    assert RES["AthenaWorkGroup"]["Properties"]["Name"] == {
        "Fn::If": ["HasAthenaWorkGroupName", {"Ref": "AthenaWorkGroupName"}, {"Ref": "AWS::StackName"}]}
    for p in ("GlueDatabaseName", "AthenaWorkGroupName"):
        assert PARAMS[p]["Default"] == "", p
    for name in FUNCTIONS:
        role = name.removesuffix("Function").lower()
        assert RES[name]["Properties"]["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-" + role}
    for out in ("GlueDatabase", "AthenaWorkGroup", "DataBucketName"):
        assert out in TEMPLATE["Outputs"]


def test_the_glue_database_goes_with_the_stack_and_the_bucket_stays():
    assert RES["GlueDatabase"].get("DeletionPolicy", "Delete") == "Delete"
    assert RES["DataBucket"]["DeletionPolicy"] == "Retain" and RES["DataBucket"]["UpdateReplacePolicy"] == "Retain"


def test_the_bucket_refers_to_nothing_and_everything_refers_to_it():
    # No cycle: the bucket's properties name parameters only; the functions and rules use !Ref.
    text = json.dumps(RES["DataBucket"]["Properties"])
    refs = set(re.findall(r'"Ref": "([^"]+)"', text)) | set(re.findall(r'"Fn::GetAtt": \["([^"]+)"', text))
    assert refs <= set(PARAMS) | {"AWS::NoValue"}, refs
    for name in DATA_FUNCTIONS:
        assert RES[name]["Properties"]["Environment"]["Variables"]["TRIBUTARY_BUCKET"] == {"Ref": "DataBucket"}
    assert "BucketNamePrefix" not in json.dumps(TEMPLATE)


def test_every_function_emits_into_the_stacks_namespace_and_the_alarms_read_it():
    for name in FUNCTIONS:
        assert RES[name]["Properties"]["Environment"]["Variables"]["TRIBUTARY_METRICS_NAMESPACE"] == NAMESPACE, name
    ours = {k: a for k, a in alarms().items() if not str(namespace_of(a)).startswith("AWS/")}
    assert len(ours) >= 5 and "IngestRescuedRowsAlarm" in ours
    for name, a in ours.items():
        assert namespace_of(a) == NAMESPACE, name


def test_the_ready_query_names_the_topics_table_not_a_fixed_one():
    text = json.dumps([of_type("AWS::Athena::NamedQuery"), TEMPLATE["Outputs"]["AthenaQuery"]])
    assert "transaction" not in text
    (query,) = of_type("AWS::Athena::NamedQuery").values()
    sub, names = query["Properties"]["QueryString"]["Fn::Sub"]
    assert sub == 'SELECT * FROM "${Database}"."${Table}" ORDER BY _kafka_timestamp DESC LIMIT 100'
    assert names["Database"] == {"Ref": "GlueDatabase"}
    assert names["Table"]["Fn::If"][:2] == ["HasTableName", {"Ref": "TableName"}]
    assert TEMPLATE["Outputs"]["AthenaQuery"]["Value"]["Fn::Sub"] == [sub, names]
    assert query["Properties"]["WorkGroup"] == {"Ref": "AthenaWorkGroup"}


# --- The watch ------------------------------------------------------------------------------


def test_the_watch_reads_the_event_source_mapping_every_5_minutes():
    fn = RES["WatchFunction"]["Properties"]
    assert fn["MemorySize"] == 128 and fn["Timeout"] == 30
    uuid = {"Fn::If": ["IsMsk", {"Ref": "IngestEventSource"}, {"Ref": "IngestSelfManagedEventSource"}]}
    assert fn["Environment"]["Variables"]["TRIBUTARY_EVENT_SOURCE_MAPPING"] == uuid
    schedules = [r["Properties"] for r in of_type("AWS::Events::Rule").values()
                 if r["Properties"].get("ScheduleExpression") and r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": ["WatchFunction", "Arn"]}]
    assert [(s["ScheduleExpression"], json.loads(s["Targets"][0]["Input"])) for s in schedules] == [("rate(5 minutes)", {"tributary": "watch"})]
    grants = [s for s, _ in role_statements(role_of("WatchFunction"))]
    assert grants == [{"Sid": "ReadTheEventSourceMapping", "Effect": "Allow", "Action": "lambda:GetEventSourceMapping",
                       "Resource": {"Fn::Sub": ["arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:event-source-mapping:${Uuid}",
                                                {"Uuid": uuid}]}}]


def test_a_rise_of_rescued_rows_alarms_above_the_anomaly_band_of_the_ingest_rollup():
    a = alarms()["IngestRescuedRowsAlarm"]
    # The metric as a query (the roll-up with Function alone: every table), and its band.
    assert a["Metrics"] == [
        {"Id": "m1", "ReturnData": True, "MetricStat": {
            "Metric": {"Namespace": NAMESPACE, "MetricName": "RowsRescued", "Dimensions": [{"Name": "Function", "Value": "ingest"}]},
            "Stat": "Sum", "Period": 300}},
        {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)", "ReturnData": True},
    ]
    assert (a["ThresholdMetricId"], a["ComparisonOperator"], a["EvaluationPeriods"], a["TreatMissingData"]) == (
        "ad1", "GreaterThanUpperThreshold", 1, "notBreaching")
    # An anomaly detection alarm has no static threshold, and reads its metric only through Metrics.
    assert not {"Threshold", "Namespace", "MetricName", "Dimensions", "Statistic", "ExtendedStatistic", "Period", "Unit"} & set(a)
    assert a["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def anomaly_models():
    """AWS::CloudWatch::AnomalyDetector resources -> their SingleMetricAnomalyDetector."""
    return {k: v["Properties"]["SingleMetricAnomalyDetector"] for k, v in of_type("AWS::CloudWatch::AnomalyDetector").items()}


def test_the_rescued_rows_band_has_its_own_model_of_exactly_the_alarms_metric():
    # CloudWatch would create the model with the alarm, outside the stack (it stays behind when the
    # stack goes); declared, it is the stack's. One model per metric and statistic: a model of any
    # other namespace, metric, dimensions or statistic is not the one the band is drawn from.
    models = anomaly_models()
    assert set(models) == {"IngestRescuedRowsDetector"}, set(models)
    model = RES["IngestRescuedRowsDetector"]["Properties"]
    # The metric in SingleMetricAnomalyDetector only (the top-level Namespace, MetricName,
    # Dimensions and Stat are deprecated, and refused next to it); no MetricMathAnomalyDetector.
    assert set(model) == {"SingleMetricAnomalyDetector"}, set(model)
    (m1,) = [q["MetricStat"] for q in alarms()["IngestRescuedRowsAlarm"]["Metrics"] if q["Id"] == "m1"]
    assert models["IngestRescuedRowsDetector"] == {
        "Namespace": m1["Metric"]["Namespace"], "MetricName": m1["Metric"]["MetricName"],
        "Dimensions": m1["Metric"]["Dimensions"], "Stat": m1["Stat"]}
    assert models["IngestRescuedRowsDetector"] == {
        "Namespace": NAMESPACE, "MetricName": "RowsRescued", "Dimensions": [{"Name": "Function", "Value": "ingest"}], "Stat": "Sum"}
    # Created before the alarm, deleted after it (an alarm whose model is deleted recreates it).
    assert "IngestRescuedRowsDetector" in as_list(RES["IngestRescuedRowsAlarm"].get("DependsOn", []))


def test_every_anomaly_detection_alarm_has_a_model_and_every_model_an_alarm():
    banded = {}
    for name, a in alarms().items():
        if "ThresholdMetricId" in a:
            (stat,) = [q["MetricStat"] for q in a["Metrics"] if "MetricStat" in q]
            banded[name] = dict(stat["Metric"], Stat=stat["Stat"])
    models = anomaly_models()
    for name, metric in banded.items():
        matching = [k for k, m in models.items() if m == metric]
        assert matching, (name, metric, models)
        assert set(matching) <= set(as_list(RES[name].get("DependsOn", []))), name
    # A model no alarm reads only costs money.
    assert all(m in banded.values() for m in models.values()), models


def test_trigger_failures_alarm_per_period_of_messages_sent():
    a = alarms()["TriggerFailuresAlarm"]
    assert (a["Namespace"], a["MetricName"], a["Statistic"], a["Period"], a["TreatMissingData"]) == (
        "AWS/SQS", "NumberOfMessagesSent", "Sum", 300, "notBreaching")


# --- What each role grants ------------------------------------------------------------------


def grants(function):
    """(action, resource suffix) pairs a function's role allows, both If branches."""
    out = set()
    for s, _ in role_statements(role_of(function)):
        if s["Effect"] != "Allow":
            continue
        for a in as_list(s["Action"]):
            if a == "s3:ListBucket":
                assert "Condition" not in s
                out.add((a, "bucket"))
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
    # GetObject on the source, PutObject on the target); lists; Lambda's failure records.
    "IngestFunction": {("s3:GetObject", S3_AREAS[a]) for a in S3_AREAS}
    | {("s3:PutObject", S3_AREAS[a]) for a in S3_AREAS}
    | {("s3:ListBucket", "bucket"), ("s3:PutObject", "/aws/lambda/*")},
    # ranged gets, multipart uploads (PutObject), copies, deletes of unused outputs and of replaced
    # files after their retention, aborted uploads; partition state; Glue partition locations.
    "CompactFunction": {(a, S3_AREAS[area]) for a in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
                        for area in ("tables", "state")}
    | {("s3:ListBucket", "bucket")}
    | {("glue:GetPartition", None), ("glue:UpdatePartition", None)},
    # reads the schema registry and partition states, lists tables; manages its database
    # (CreateDatabase, AlreadyExists tolerated: no GetDatabase).
    "CatalogFunction": {("s3:GetObject", S3_AREAS["state"])}
    | {("s3:ListBucket", "bucket")}
    | {(a, None) for a in ("glue:CreateDatabase", "glue:GetTable", "glue:CreateTable",
                           "glue:UpdateTable", "glue:GetPartition", "glue:BatchCreatePartition", "glue:UpdatePartition")},
    "WatchFunction": {("lambda:GetEventSourceMapping", None)},
}
# Not data access: the keys (when given), the failure queue, the cluster and its network.
INFRA = ("kms:", "sqs:", "kafka:", "kafka-cluster:", "ec2:", "secretsmanager:")


@pytest.mark.parametrize("function", sorted(NEEDS))
def test_each_role_grants_exactly_what_its_code_calls(function):
    data = {g for g in grants(function) if not g[0].startswith(INFRA)}
    assert data == NEEDS[function], (sorted(data - NEEDS[function]), sorted(NEEDS[function] - data))


def test_only_ingest_reaches_kafka_and_secrets():
    for function in ("CompactFunction", "CatalogFunction", "WatchFunction"):
        actions = {a for a, _ in grants(function)}
        assert not any(a.startswith(("kafka", "ec2:", "secretsmanager:")) for a in actions), function


def test_a_compaction_lease_outlives_the_compact_function():
    # The lease is taken at most when the invocation starts and Lambda stops the invocation at its
    # timeout, so a lease longer than the timeout (plus clock skew) never expires under a running
    # compactor. The default lease is core's; the stack does not override it.
    src = open(os.path.join(os.path.dirname(__file__), "../../functions/core/src/config.rs")).read()
    (lease,) = re.findall(r"^\s*lease_seconds: (\d+),$", src, re.M)
    fn = RES["CompactFunction"]
    assert int(lease) >= fn["Properties"]["Timeout"] + 60, (lease, fn["Properties"]["Timeout"])
    assert "lease" not in json.dumps(fn["Properties"].get("Environment", {})).lower()
