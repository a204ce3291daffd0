"""The SAM and the CDK stacks define the same functions, triggers, alarms and permissions.
Run by scripts/validate-template.sh with TRANSFORMED (the SAM-transformed template.yaml) and
CDK_TEMPLATE (infra's `cdk synth`, MSK source) pointing at the two templates."""
import json
import os

import pytest

SAM = json.load(open(os.environ["TRANSFORMED"]))
CDK = json.load(open(os.environ["CDK_TEMPLATE"]))
# What CDK adds by itself: X-Ray tracing grants, and queue lookups with every SendMessage grant.
CDK_EXTRA_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}


def resolve(t, v):
    """A property's value with parameters at their defaults (SAM) and Fn::If at its first branch."""
    if isinstance(v, dict) and "Ref" in v and v["Ref"] in t.get("Parameters", {}):
        d = t["Parameters"][v["Ref"]].get("Default")
        return int(d) if t["Parameters"][v["Ref"]]["Type"] == "Number" else d
    if isinstance(v, dict) and "Fn::If" in v:
        return resolve(t, v["Fn::If"][1])
    return v


def functions(t):
    """Tributary's functions by name (ingest, compact, catalog) -> (logical id, properties)."""
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
    """The function a Ref/GetAtt points at, by name."""
    lid = value.get("Ref") if isinstance(value, dict) else None
    lid = lid or (value.get("Fn::GetAtt", [None])[0] if isinstance(value, dict) else None)
    for name, (l, _) in functions(t).items():
        if l == lid:
            return name
    return None


def test_the_same_three_functions():
    assert set(SAM_FN) == set(CDK_FN) == {"ingest", "compact", "catalog"}


@pytest.mark.parametrize("name", ["ingest", "compact", "catalog"])
def test_function_settings_match(name):
    s, c = SAM_FN[name][1], CDK_FN[name][1]
    for prop in ("Runtime", "Architectures", "Handler", "Timeout", "TracingConfig"):
        assert resolve(SAM, s.get(prop)) == c.get(prop), prop
    assert resolve(SAM, s["MemorySize"]) == c["MemorySize"]
    assert set(s["Environment"]["Variables"]) == set(c["Environment"]["Variables"])
    assert s["LoggingConfig"]["LogFormat"] == c["LoggingConfig"]["LogFormat"] == "JSON"


def triggers(t):
    out = set()
    for r in t["Resources"].values():
        p = r.get("Properties", {})
        if r["Type"] == "AWS::Events::Rule":
            for target in p["Targets"]:
                fn = fn_name(t, target["Arn"])
                if "ScheduleExpression" in p:
                    out.add((fn, "schedule", p["ScheduleExpression"], json.dumps(json.loads(target["Input"]), sort_keys=True)))
                else:
                    pat = p["EventPattern"]
                    out.add((fn, "event", pat["detail-type"][0], json.dumps(pat["detail"]["object"]), target["RetryPolicy"]["MaximumRetryAttempts"],
                             "DeadLetterConfig" in target))
        if r["Type"] == "AWS::Lambda::EventSourceMapping" and r.get("Condition", "IsMsk") == "IsMsk":
            out.add((fn_name(t, p["FunctionName"]), "kafka", resolve(t, p["BatchSize"]), resolve(t, p["MaximumBatchingWindowInSeconds"]),
                     resolve(t, p["StartingPosition"]), "OnFailure" in p["DestinationConfig"]))
        if r["Type"] == "AWS::Lambda::EventInvokeConfig":
            out.add((fn_name(t, p["FunctionName"]), "async", p["MaximumRetryAttempts"], "OnFailure" in p["DestinationConfig"]))
    return out


def test_the_same_triggers():
    assert triggers(SAM) == triggers(CDK)
    assert len(triggers(SAM)) == 7  # one Kafka source, two event rules, two schedules, two async configs


def alarms(t):
    queues = {lid: ("ingest-failures" if "Ingest" in lid else "trigger-failures")
              for lid, r in t["Resources"].items() if r["Type"] == "AWS::SQS::Queue"}
    out = set()
    for r in t["Resources"].values():
        if r["Type"] != "AWS::CloudWatch::Alarm":
            continue
        p = r["Properties"]
        dim = p["Dimensions"][0]["Value"]
        if p["Namespace"] == "AWS/Lambda":
            dim = fn_name(t, dim)
        elif p["Namespace"] == "AWS/SQS":
            dim = queues[dim["Fn::GetAtt"][0]]
        out.add((p["Namespace"], p["MetricName"], dim, p["Statistic"], p["EvaluationPeriods"], p["TreatMissingData"]))
    return out


def test_the_same_alarms():
    assert alarms(SAM) == alarms(CDK)
    assert len(alarms(SAM)) == 16


def actions(t, name):
    """Every IAM action the function's role is granted by statements of its own (inline or attached)."""
    lid, props = (SAM_FN if t is SAM else CDK_FN)[name]
    role = props["Role"]["Fn::GetAtt"][0]
    docs = [p for p in t["Resources"][role]["Properties"].get("Policies", [])]
    docs += [r["Properties"] for r in t["Resources"].values()
             if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]]
    out = set()
    for d in docs:
        d = resolve(t, d)
        for s in d["PolicyDocument"]["Statement"]:
            s = resolve(t, s)
            out.update(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    return out


@pytest.mark.parametrize("name", ["ingest", "compact", "catalog"])
def test_the_same_permissions(name):
    sam, cdk = actions(SAM, name), actions(CDK, name)
    # The KMS and Secrets Manager grants are conditional in SAM and absent from this CDK synth.
    sam -= {"kms:Decrypt", "kms:GenerateDataKey", "secretsmanager:GetSecretValue"}
    assert sam, name
    assert sam <= cdk, sam - cdk
    assert cdk - sam <= CDK_EXTRA_ACTIONS, cdk - sam
