"""The SAM and the CDK stacks define the same functions, triggers, alarms (and the anomaly detection
models of their bands) and permissions.
Run by scripts/validate-template.sh with TRANSFORMED (the SAM-transformed template.yaml) and
CDK_TEMPLATE (infra's `cdk synth`, MSK source, stack Tributary) pointing at the two templates."""
import json
import os
import re

import pytest

SAM = json.load(open(os.environ["TRANSFORMED"]))
CDK = json.load(open(os.environ["CDK_TEMPLATE"]))
STACK = "Tributary"  # the CDK stack's name: SAM's ${AWS::StackName} in the comparisons
ROLES = ["ingest", "compact", "catalog", "watch"]
# What CDK adds by itself: X-Ray tracing grants, and queue lookups with every SendMessage grant.
CDK_EXTRA_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}


# The SAM template's parameters as validate-template.sh synthesizes the CDK app: defaults, and
# the same cluster and topic.
GIVEN = {"MskClusterArn": "arn:aws:kafka:us-east-1:123456789012:cluster/tributary/0a1b2c3d-1", "KafkaTopic": "customer_data"}
NO_VALUE = object()


def kind(t, lid):
    """A resource of ours by what it is, not by its logical id (CDK's carry hashes)."""
    r = t["Resources"][lid]
    if r["Type"] == "AWS::Lambda::Function":
        return fn_name(t, {"Ref": lid}) or lid
    if r["Type"] == "AWS::Events::Rule":
        pattern = json.dumps(r["Properties"].get("EventPattern", {}))
        return "failed-batch-rule" if "aws/lambda/" in pattern else lid
    return {"AWS::S3::Bucket": "bucket", "AWS::SQS::Queue": "trigger-queue", "AWS::SNS::Topic": "topic",
            "AWS::KMS::Key": "topic-key", "AWS::Glue::Database": "database", "AWS::Athena::WorkGroup": "workgroup",
            "AWS::Lambda::EventSourceMapping": "event-source"}.get(r["Type"], lid)


def parameter(t, name):
    p = t["Parameters"][name]
    v = GIVEN.get(name, p.get("Default"))
    return int(v) if p["Type"] == "Number" else v


def condition(t, name):
    def ev(x):
        (fn, arg), = x.items()
        if fn == "Condition":
            return condition(t, arg)
        if fn == "Fn::Equals":
            return resolve(t, arg[0]) == resolve(t, arg[1])
        if fn == "Fn::Not":
            return not ev(arg[0])
        if fn == "Fn::And":
            return all(ev(a) for a in arg)
        if fn == "Fn::Or":
            return any(ev(a) for a in arg)
        raise AssertionError(fn)
    return ev(t["Conditions"][name])


def exists(t, r):
    return "Condition" not in r or condition(t, r["Condition"])


def resolve(t, v):
    """A value as deployed with the parameters above: conditions evaluated, ${AWS::StackName} the CDK
    stack's name, other pseudo parameters left as ${AWS::...}, and references to resources named by
    what they are ("bucket", "topic.Arn", "ingest", ...)."""
    if isinstance(v, list):
        return [x for x in (resolve(t, x) for x in v) if x is not NO_VALUE]
    if not isinstance(v, dict):
        return v
    if "Ref" in v:
        ref = v["Ref"]
        if ref in t.get("Parameters", {}):
            return parameter(t, ref)
        if ref == "AWS::StackName":
            return STACK
        if ref == "AWS::NoValue":
            return NO_VALUE
        if ref in t["Resources"]:
            return kind(t, ref)
        return "${" + ref + "}"
    if "Fn::GetAtt" in v:
        lid, att = v["Fn::GetAtt"]
        return f"{kind(t, lid)}.{att}" if lid in t["Resources"] else v
    if "Fn::If" in v:
        cond, yes, no = v["Fn::If"]
        return resolve(t, yes if condition(t, cond) else no)
    if "Fn::Join" in v:
        sep, parts = v["Fn::Join"]
        return sep.join(str(x) for x in resolve(t, parts))
    if "Fn::Split" in v:
        sep, text = v["Fn::Split"]
        text = resolve(t, text)
        return [f"split({sep},{text})"] if "${AWS::" in text else text.split(sep)
    if "Fn::Select" in v:
        i, items = v["Fn::Select"]
        items = resolve(t, items)
        return f"select({i},{items[0]})" if len(items) == 1 and items[0].startswith("split(") else items[int(i)]
    if "Fn::Sub" in v:
        text, names = (v["Fn::Sub"], {}) if isinstance(v["Fn::Sub"], str) else v["Fn::Sub"]

        def one(m):
            name = m.group(1)
            if name in names:
                return str(resolve(t, names[name]))
            if "." in name:
                lid, att = name.split(".", 1)
                return str(resolve(t, {"Fn::GetAtt": [lid, att]}))
            return str(resolve(t, {"Ref": name}))
        return re.sub(r"\$\{([^}!]+)\}", one, text)
    return {k: x for k, x in ((k, resolve(t, x)) for k, x in v.items()) if x is not NO_VALUE}


def functions(t):
    """Tributary's functions by role (ingest, compact, catalog, watch) -> (logical id, properties)."""
    out = {}
    for lid, r in t["Resources"].items():
        if r["Type"] != "AWS::Lambda::Function" or r["Properties"].get("Handler") != "bootstrap":
            continue
        name = r["Properties"]["FunctionName"]
        name = name.get("Fn::Sub", name) if isinstance(name, dict) else name
        out[name.rsplit("-", 1)[1]] = (lid, r["Properties"])
    return out


SAM_FN, CDK_FN = functions(SAM), functions(CDK)


def fn_name(t, value):
    """The function a Ref/GetAtt points at, by role."""
    lid = value.get("Ref") if isinstance(value, dict) else None
    lid = lid or (value.get("Fn::GetAtt", [None])[0] if isinstance(value, dict) else None)
    for name, (l, _) in functions(t).items():
        if l == lid:
            return name
    return None


def test_the_same_four_functions():
    assert set(SAM_FN) == set(CDK_FN) == set(ROLES)


@pytest.mark.parametrize("name", ROLES)
def test_function_settings_match(name):
    s, c = SAM_FN[name][1], CDK_FN[name][1]
    for prop in ("Runtime", "Architectures", "Handler", "Timeout", "TracingConfig"):
        assert resolve(SAM, s.get(prop)) == c.get(prop), prop
    assert resolve(SAM, s["MemorySize"]) == c["MemorySize"]
    assert s["LoggingConfig"]["LogFormat"] == c["LoggingConfig"]["LogFormat"] == "JSON"


@pytest.mark.parametrize("name", ROLES)
def test_the_same_environment(name):
    s, c = (resolve(t, fns[name][1]["Environment"]["Variables"]) for t, fns in ((SAM, SAM_FN), (CDK, CDK_FN)))
    assert set(s) == set(c), set(s) ^ set(c)
    # The values that do not depend on how each tool names things.
    for var in ("TRIBUTARY_METRICS_NAMESPACE", "TRIBUTARY_CONFIG", "TRIBUTARY_REPLACED_RETENTION_HOURS", "RUST_LOG",
                "TRIBUTARY_BUCKET", "TRIBUTARY_DATABASE", "TRIBUTARY_EVENT_SOURCE_MAPPING"):
        if var in s:
            assert str(s[var]) == str(c[var]), (var, s[var], c[var])
    assert s["TRIBUTARY_METRICS_NAMESPACE"] == f"Tributary/{STACK}"


def triggers(t):
    out = set()
    for r in t["Resources"].values():
        if not exists(t, r):
            continue
        p = r.get("Properties", {})
        if r["Type"] == "AWS::Events::Rule":
            for target in p["Targets"]:
                to = fn_name(t, target["Arn"]) or resolve(t, target["Arn"])
                if "ScheduleExpression" in p:
                    out.add((to, "schedule", p["ScheduleExpression"], json.dumps(json.loads(target["Input"]), sort_keys=True)))
                else:
                    pat = resolve(t, p["EventPattern"])
                    out.add((to, "event", pat["detail-type"][0], json.dumps(pat["detail"], sort_keys=True),
                             target.get("RetryPolicy", {}).get("MaximumRetryAttempts"), "DeadLetterConfig" in target,
                             "InputTransformer" in target))
        if r["Type"] == "AWS::Lambda::EventSourceMapping":
            out.add((fn_name(t, p["FunctionName"]), "kafka", resolve(t, p["BatchSize"]), resolve(t, p["MaximumBatchingWindowInSeconds"]),
                     resolve(t, p["StartingPosition"]), resolve(t, p["DestinationConfig"]["OnFailure"]["Destination"])))
        if r["Type"] == "AWS::Lambda::EventInvokeConfig":
            out.add((fn_name(t, p["FunctionName"]), "async", p["MaximumRetryAttempts"],
                     resolve(t, p["DestinationConfig"]["OnFailure"]["Destination"])))
    return out


def test_the_same_triggers():
    assert triggers(SAM) == triggers(CDK), triggers(SAM) ^ triggers(CDK)
    # one Kafka source, two ingest-file rules, three schedules, two async configs, the failed-batch rule
    assert len(triggers(SAM)) == 9
    assert ("ingest", "kafka", 10000, 30, "TRIM_HORIZON", "bucket.Arn") in triggers(SAM)


def threshold(t, p):
    """A static threshold, or an anomaly detection alarm's: the expression ThresholdMetricId names
    (its Id is the tool's choice, ad1 or CDK's expr_1), with the operator and which queries return data."""
    if "ThresholdMetricId" not in p:
        return resolve(t, p["Threshold"]), p["ComparisonOperator"]
    queries = {q["Id"]: q for q in p["Metrics"]}
    band = queries[p["ThresholdMetricId"]]
    return (band["Expression"], p["ComparisonOperator"], "Threshold" in p,
            tuple(sorted((i if i != p["ThresholdMetricId"] else "band", q.get("ReturnData", True)) for i, q in queries.items())))


def alarms(t):
    out = set()
    for r in t["Resources"].values():
        if r["Type"] != "AWS::CloudWatch::Alarm":
            continue
        p = r["Properties"]
        if "Metrics" in p:
            # An anomaly detection alarm reads its metric as a query: only that query has a MetricStat.
            (stat,) = [q["MetricStat"] for q in p["Metrics"] if "MetricStat" in q]
            watched = dict(stat["Metric"], Statistic=stat["Stat"], Period=stat["Period"])
        else:
            watched = p
        (d,) = watched["Dimensions"]
        dim = fn_name(t, d["Value"]) if watched["Namespace"] == "AWS/Lambda" else resolve(t, d["Value"])
        if isinstance(dim, str) and dim.endswith(".QueueName"):
            dim = dim.removesuffix(".QueueName")
        out.add((resolve(t, watched["Namespace"]), watched["MetricName"], d["Name"], dim, watched["Statistic"], watched["Period"],
                 p["EvaluationPeriods"], threshold(t, p), p["TreatMissingData"], "OKActions" in p))
    return out


def test_the_same_alarms():
    assert alarms(SAM) == alarms(CDK), alarms(SAM) ^ alarms(CDK)
    assert len(alarms(SAM)) == 22
    rescued = [a for a in alarms(SAM) if a[1] == "RowsRescued"]
    assert rescued == [(f"Tributary/{STACK}", "RowsRescued", "Function", "ingest", "Sum", 300, 1,
                        ("ANOMALY_DETECTION_BAND(m1, 2)", "GreaterThanUpperThreshold", False, (("band", True), ("m1", True))),
                        "notBreaching", False)], rescued


def anomaly_models(t):
    """Each AWS::CloudWatch::AnomalyDetector as deployed: (logical id, namespace, metric, dimensions,
    statistic, the alarms that DependsOn it). The same logical id in both (a CDK L1 at the stack's
    top level keeps its id), and the alarms named by the metric they read."""
    out = set()
    for lid, r in t["Resources"].items():
        if r["Type"] != "AWS::CloudWatch::AnomalyDetector":
            continue
        p = r["Properties"]
        assert set(p) == {"SingleMetricAnomalyDetector"}, (lid, set(p))
        m = resolve(t, p["SingleMetricAnomalyDetector"])
        dims = tuple((d["Name"], d["Value"]) for d in m.get("Dimensions", []))
        dependents = set()
        for a in t["Resources"].values():
            deps = a.get("DependsOn", [])
            if a["Type"] == "AWS::CloudWatch::Alarm" and lid in (deps if isinstance(deps, list) else [deps]):
                (stat,) = [q["MetricStat"] for q in a["Properties"]["Metrics"] if "MetricStat" in q]
                dependents.add((resolve(t, stat["Metric"]["Namespace"]), stat["Metric"]["MetricName"], stat["Stat"]))
        out.add((lid, m["Namespace"], m["MetricName"], dims, m["Stat"], tuple(sorted(dependents))))
    return out


def test_the_same_anomaly_detection_models():
    assert anomaly_models(SAM) == anomaly_models(CDK), anomaly_models(SAM) ^ anomaly_models(CDK)
    assert anomaly_models(SAM) == {("IngestRescuedRowsDetector", f"Tributary/{STACK}", "RowsRescued", (("Function", "ingest"),), "Sum",
                                    ((f"Tributary/{STACK}", "RowsRescued", "Sum"),))}


def dashboard(t):
    """Each widget's metrics, as (namespace, metric, dimension, what it names), in the widgets' order."""
    (body,) = [r["Properties"]["DashboardBody"] for r in t["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    out = []
    for w in json.loads(resolve(t, body))["widgets"]:
        metrics, last = set(), None
        for m in w["properties"]["metrics"]:
            m = [x for x in m if not isinstance(x, dict)]  # per-metric options (CDK puts the stat there)
            m = [prev if x == "." else x for x, prev in zip(m, last or m)]  # "." repeats the metric above
            last = m
            ns, name, dim, value = m
            metrics.add((ns, name, dim, value))
        out.append(sorted(metrics))
    return out


def test_the_same_dashboard_metrics():
    sam, cdk = dashboard(SAM), dashboard(CDK)
    assert sam == cdk, [(s, c) for s, c in zip(sam, cdk) if s != c] or (len(sam), len(cdk))
    assert (f"Tributary/{STACK}", "RowsRescued", "Function", "ingest") in sam[0]


def policy_documents(t, role):
    docs = [p for p in t["Resources"][role]["Properties"].get("Policies", [])]
    docs += [r["Properties"] for r in t["Resources"].values()
             if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]]
    return docs


def grants(t, name):
    """(action, resource, condition) of the statements of the function's role, as deployed."""
    lid, props = (SAM_FN if t is SAM else CDK_FN)[name]
    out = set()
    for d in policy_documents(t, props["Role"]["Fn::GetAtt"][0]):
        d = resolve(t, d)
        if d is NO_VALUE:
            continue
        for s in d["PolicyDocument"]["Statement"]:
            for a in s["Action"] if isinstance(s["Action"], list) else [s["Action"]]:
                for res in s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]:
                    out.add((a, json.dumps(res), json.dumps(s.get("Condition"), sort_keys=True)))
    return out


@pytest.mark.parametrize("name", ROLES)
def test_the_same_permissions(name):
    # Actions, resources (the bucket's prefixes, the Glue database, the cluster, the mapping) and
    # conditions alike; CDK adds X-Ray and queue lookups by itself.
    sam, cdk = grants(SAM, name), grants(CDK, name)
    assert sam, name
    extra = {g for g in cdk - sam if g[0] in CDK_EXTRA_ACTIONS}
    assert sam == cdk - extra, (sorted(sam - cdk), sorted(cdk - sam - extra))


def test_list_bucket_without_a_condition_in_both():
    for t in (SAM, CDK):
        for name in ("ingest", "compact", "catalog"):
            listed = [g for g in grants(t, name) if g[0] == "s3:ListBucket"]
            assert listed == [("s3:ListBucket", '"bucket.Arn"', "null")], (name, listed)


def service_statements(t, rtype, path):
    out = set()
    for r in t["Resources"].values():
        if r["Type"] == rtype:
            doc = r["Properties"]
            for k in path:
                doc = doc[k]
            for s in doc["Statement"]:
                s = resolve(t, s)
                who = s["Principal"].get("Service") or s["Principal"].get("AWS")
                actions = tuple(sorted(s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))
                out.add((json.dumps(who), actions, json.dumps(s.get("Condition"), sort_keys=True)))
    return out


def test_the_same_alarm_topic_key_and_topic_policies():
    for rtype, path in (("AWS::KMS::Key", ["KeyPolicy"]), ("AWS::SNS::TopicPolicy", ["PolicyDocument"])):
        assert service_statements(SAM, rtype, path) == service_statements(CDK, rtype, path), rtype
    for t in (SAM, CDK):
        (topic,) = [r["Properties"] for r in t["Resources"].values() if r["Type"] == "AWS::SNS::Topic"]
        assert resolve(t, topic["KmsMasterKeyId"]) == "topic-key.Arn"


def single(t, rtype):
    (r,) = [r for r in t["Resources"].values() if r["Type"] == rtype]
    return r


def test_the_same_workgroup_named_query_and_database():
    for t in (SAM, CDK):
        wg = resolve(t, single(t, "AWS::Athena::WorkGroup")["Properties"])
        assert wg["RecursiveDeleteOption"] is True
        assert wg["WorkGroupConfiguration"]["PublishCloudWatchMetricsEnabled"] is True
        assert wg["Name"] == STACK
        assert wg["WorkGroupConfiguration"]["ResultConfiguration"]["OutputLocation"] == "s3://bucket/athena-results/"
        assert single(t, "AWS::Glue::Database").get("DeletionPolicy", "Delete") == "Delete"
    sam_q, cdk_q = (resolve(t, single(t, "AWS::Athena::NamedQuery")["Properties"]) for t in (SAM, CDK))
    assert sam_q == cdk_q
    assert sam_q["QueryString"] == 'SELECT * FROM "database"."customer_data" ORDER BY _kafka_timestamp DESC LIMIT 100'
    sam_db, cdk_db = (resolve(t, single(t, "AWS::Glue::Database")["Properties"]["DatabaseInput"]["Name"]) for t in (SAM, CDK))
    assert sam_db == cdk_db == "tributary_select(0,split(-,select(2,split(/,${AWS::StackId}))))"


def test_the_same_bucket_lifecycle():
    def rules(t):
        found = single(t, "AWS::S3::Bucket")["Properties"]["LifecycleConfiguration"]["Rules"]
        return {(r["Id"], r.get("Prefix"), r.get("ExpirationInDays")) for r in found}
    assert rules(SAM) == rules(CDK) == {
        ("abort-incomplete-multipart-uploads", None, None),
        ("expire-athena-results", "athena-results/", 30),
        ("expire-idle-claim-logs", "_tributary/claims/", 2),
    }
