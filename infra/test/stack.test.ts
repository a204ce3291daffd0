// Template.fromStack assertions on the CDK stack (node's test runner).
import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { KafkaSource, TributaryProps, TributaryStack, tableNameOf } from "../lib/tributary-stack";

const MSK = "arn:aws:kafka:eu-west-1:123456789012:cluster/orders/0a1b2c3d-0000-0000-0000-000000000000-1";
const SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_orders-abc";
const SECRET_KEY = "arn:aws:kms:eu-west-1:123456789012:key/99999999-2222-3333-4444-555555555555";
const ROLES = ["ingest", "compact", "catalog", "watch"];

function codeDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-code-"));
  for (const f of ["IngestFunction", "CompactFunction", "CatalogFunction", "WatchFunction"]) {
    fs.mkdirSync(path.join(dir, f));
    fs.writeFileSync(path.join(dir, f, "bootstrap"), "#!/bin/sh\n");
  }
  return dir;
}

function stack(kafka: KafkaSource = { kind: "msk", clusterArn: MSK }, extra: Partial<TributaryProps> = {}, id = "Tributary", app = new App()) {
  return new TributaryStack(app, id, { kafka, topic: "orders", codeDir: codeDir(), ...extra });
}

function synth(kafka?: KafkaSource, extra: Partial<TributaryProps> = {}): Template {
  return Template.fromStack(stack(kafka, extra));
}

function alarms(t: Template) {
  return Object.values(t.findResources("AWS::CloudWatch::Alarm")).map((a: any) => a.Properties);
}

/** The namespace an alarm reads: its own, or its metric query's (an anomaly detection alarm). */
function namespaceOf(a: any): string {
  return a.Namespace ?? a.Metrics.find((q: any) => q.MetricStat).MetricStat.Metric.Namespace;
}

function functions(t: Template): Record<string, any> {
  const out: Record<string, any> = {};
  for (const [id, f] of Object.entries(t.findResources("AWS::Lambda::Function")) as [string, any][]) {
    if (f.Properties.Handler === "bootstrap") out[f.Properties.FunctionName.split("-").pop()] = { id, ...f.Properties };
  }
  return out;
}

function statements(t: Template): any[] {
  return Object.values(t.findResources("AWS::IAM::Policy")).flatMap((p: any) => p.Properties.PolicyDocument.Statement);
}

function roleStatements(t: Template, role: string): any[] {
  const fn = functions(t)[role];
  const roleId = fn.Role["Fn::GetAtt"][0];
  return Object.values(t.findResources("AWS::IAM::Policy"))
    .filter((p: any) => p.Properties.Roles.some((r: any) => r.Ref === roleId))
    .flatMap((p: any) => p.Properties.PolicyDocument.Statement);
}

const list = (x: any) => (Array.isArray(x) ? x : [x]);

test("four arm64 functions on provided.al2023", () => {
  const fns = functions(synth());
  assert.deepEqual(Object.keys(fns).sort(), [...ROLES].sort());
  for (const f of Object.values(fns)) {
    assert.deepEqual(f.Architectures, ["arm64"]);
    assert.equal(f.Runtime, "provided.al2023");
  }
  assert.equal(fns.watch.MemorySize, 128);
  assert.equal(fns.watch.Timeout, 30);
});

test("every function has errors, throttles and duration alarms, and every alarm notifies the topic", () => {
  const t = synth();
  for (const metric of ["Errors", "Throttles", "Duration"]) {
    const alarmed = alarms(t).filter((a: any) => a.MetricName === metric).map((a: any) => a.Dimensions[0].Value.Ref);
    for (const f of Object.values(functions(t))) assert.ok(alarmed.includes(f.id), `${f.id} lacks a ${metric} alarm`);
  }
  const topic = Object.keys(t.findResources("AWS::SNS::Topic"))[0];
  for (const a of alarms(t)) assert.deepEqual(a.AlarmActions, [{ Ref: topic }]);
  for (const m of ["OffsetLag", "DeadLettered", "CompactionLag", "SchemaConflicts", "IncompatibleFiles", "IngestSourceStopped",
    "TriggeredRules", "DestinationDeliveryFailures", "NumberOfMessagesSent"]) {
    assert.ok(alarms(t).some((a: any) => a.MetricName === m), m);
  }
});

test("a rise of rescued rows alarms above the anomaly band of the ingest roll-up, with no static threshold", () => {
  const t = synth();
  const rescued = alarms(t).filter((a: any) => a.Metrics?.some((q: any) => q.MetricStat?.Metric.MetricName === "RowsRescued"));
  assert.equal(rescued.length, 1);
  const [a] = rescued;
  const band = a.Metrics.find((q: any) => q.Id === a.ThresholdMetricId);
  const metric = a.Metrics.find((q: any) => q.MetricStat);
  assert.equal(a.Metrics.length, 2);
  assert.equal(band.Expression, `ANOMALY_DETECTION_BAND(${metric.Id}, 2)`);
  assert.deepEqual(metric.MetricStat, {
    Metric: { Namespace: "Tributary/Tributary", MetricName: "RowsRescued", Dimensions: [{ Name: "Function", Value: "ingest" }] },
    Period: 300, Stat: "Sum",
  });
  for (const q of a.Metrics) assert.equal(q.ReturnData, true, q.Id);
  assert.equal(a.ComparisonOperator, "GreaterThanUpperThreshold");
  assert.equal(a.TreatMissingData, "notBreaching");
  assert.equal(a.EvaluationPeriods, 1);
  for (const p of ["Threshold", "Namespace", "MetricName", "Dimensions", "Statistic", "Period"]) assert.equal(a[p], undefined, p);
  const topic = Object.keys(t.findResources("AWS::SNS::Topic"))[0];
  assert.deepEqual(a.AlarmActions, [{ Ref: topic }]);
});

test("the rescued rows band has its own model, of exactly the alarm's metric and statistic, created before the alarm", () => {
  const t = synth();
  const models = t.findResources("AWS::CloudWatch::AnomalyDetector");
  assert.deepEqual(Object.keys(models), ["IngestRescuedRowsDetector"]);
  const model = models.IngestRescuedRowsDetector;
  // The metric in SingleMetricAnomalyDetector only (the top-level Namespace, MetricName, Dimensions
  // and Stat are deprecated and refused next to it).
  assert.deepEqual(Object.keys(model.Properties), ["SingleMetricAnomalyDetector"]);
  const [alarmId, alarm] = (Object.entries(t.findResources("AWS::CloudWatch::Alarm")) as [string, any][])
    .find(([, a]) => a.Properties.ThresholdMetricId)!;
  const m1 = alarm.Properties.Metrics.find((q: any) => q.MetricStat).MetricStat;
  // One model per metric and statistic: any other namespace, metric, dimensions or statistic is
  // not the model the band is drawn from.
  assert.deepEqual(model.Properties.SingleMetricAnomalyDetector, {
    Namespace: m1.Metric.Namespace, MetricName: m1.Metric.MetricName, Dimensions: m1.Metric.Dimensions, Stat: m1.Stat,
  });
  assert.deepEqual(model.Properties.SingleMetricAnomalyDetector, {
    Namespace: "Tributary/Tributary", MetricName: "RowsRescued", Dimensions: [{ Name: "Function", Value: "ingest" }], Stat: "Sum",
  });
  assert.ok(alarmId.startsWith("IngestRescuedRowsAlarm"), alarmId);
  assert.deepEqual(alarm.DependsOn, ["IngestRescuedRowsDetector"]);
});

test("no wildcard actions; wildcard resources only for network interfaces", () => {
  for (const s of statements(synth())) {
    const actions: string[] = list(s.Action);
    assert.ok(actions.every((a) => !a.includes("*")), JSON.stringify(s));
    if (list(s.Resource).includes("*")) assert.ok(actions.every((a) => a.startsWith("ec2:") || a.startsWith("xray:")), JSON.stringify(s));
  }
});

test("the bucket is encrypted (SSE-S3, or the given KMS key), private and TLS-only", () => {
  synth().hasResourceProperties("AWS::S3::Bucket", {
    BucketEncryption: { ServerSideEncryptionConfiguration: [Match.objectLike({ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } })] },
    PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
  });
  synth().hasResourceProperties("AWS::S3::BucketPolicy", {
    PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } })]) },
  });
  const key = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555";
  synth(undefined, { kmsKeyArn: key }).hasResourceProperties("AWS::S3::Bucket", {
    BucketEncryption: { ServerSideEncryptionConfiguration: [Match.objectLike({ ServerSideEncryptionByDefault: { SSEAlgorithm: "aws:kms", KMSMasterKeyID: key } })] },
  });
});

test("MSK with IAM, or self-managed Kafka with SASL/SCRAM in a VPC, failed batches to the bucket", () => {
  const msk = synth();
  const bucket = Object.keys(msk.findResources("AWS::S3::Bucket"))[0];
  msk.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
    EventSourceArn: MSK, Topics: ["orders"], DestinationConfig: { OnFailure: { Destination: { "Fn::GetAtt": [bucket, "Arn"] } } },
    SourceAccessConfigurations: Match.absent(),
  });
  assert.equal(Object.keys(msk.findResources("AWS::SQS::Queue")).length, 1, "only the trigger failure queue");
  const own = synth({ kind: "self-managed", bootstrapServers: ["b1:9096", "b2:9096"], subnets: ["subnet-1"], securityGroup: "sg-1" },
    { authSecretArn: SECRET, authMechanism: "SASL_SCRAM_256_AUTH" });
  own.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
    SelfManagedEventSource: { Endpoints: { KafkaBootstrapServers: ["b1:9096", "b2:9096"] } },
    SourceAccessConfigurations: [
      { Type: "SASL_SCRAM_256_AUTH", URI: SECRET },
      { Type: "VPC_SUBNET", URI: "subnet:subnet-1" },
      { Type: "VPC_SECURITY_GROUP", URI: "security_group:sg-1" },
    ],
    DestinationConfig: { OnFailure: { Destination: Match.objectLike({ "Fn::GetAtt": Match.anyValue() }) } },
  });
  // The cluster's permissions only with MSK.
  const text = JSON.stringify(own.findResources("AWS::IAM::Policy"));
  assert.ok(!text.includes("kafka-cluster:"), "self-managed Kafka needs no MSK permissions");
  assert.ok(text.includes("secretsmanager:GetSecretValue"));
});

test("Lambda may write failure records with the ingest role; a failure record notifies the topic", () => {
  const t = synth();
  const bucket = Object.keys(t.findResources("AWS::S3::Bucket"))[0];
  const put = roleStatements(t, "ingest").find((s) => s.Sid === "FailedBatchesToTheBucket");
  assert.deepEqual(put.Action, "s3:PutObject");
  assert.deepEqual(put.Resource, { "Fn::Join": ["", [{ "Fn::GetAtt": [bucket, "Arn"] }, "/aws/lambda/*"]] });
  const topic = Object.keys(t.findResources("AWS::SNS::Topic"))[0];
  const rules = Object.values(t.findResources("AWS::Events::Rule")).filter((r: any) => r.Properties.Targets[0].Arn.Ref === topic) as any[];
  assert.equal(rules.length, 1);
  const rule = rules[0].Properties;
  assert.deepEqual(rule.EventPattern.detail.object.key, [{ prefix: "aws/lambda/" }]);
  assert.deepEqual(rule.EventPattern.detail.bucket.name, [{ Ref: bucket }]);
  assert.ok(JSON.parse(rule.Targets[0].InputTransformer.InputTemplate).includes("tributary replay"));
});

test("the alarm topic is under a customer managed key that CloudWatch and EventBridge may use", () => {
  const t = synth();
  const [keyId, key] = Object.entries(t.findResources("AWS::KMS::Key"))[0] as [string, any];
  assert.equal(key.Properties.EnableKeyRotation, true);
  t.hasResourceProperties("AWS::SNS::Topic", { KmsMasterKeyId: { "Fn::GetAtt": [keyId, "Arn"] } });
  assert.ok(!JSON.stringify(t.toJSON()).includes("alias/aws/sns"));
  const byService = (svc: string) => key.Properties.KeyPolicy.Statement.filter((s: any) => s.Principal.Service === svc);
  for (const svc of ["cloudwatch.amazonaws.com", "events.amazonaws.com"]) {
    const [s] = byService(svc);
    assert.ok(s, svc);
    for (const a of ["kms:Decrypt", "kms:GenerateDataKey*"]) assert.ok(list(s.Action).includes(a), `${svc} ${a}`);
  }
  assert.deepEqual(byService("cloudwatch.amazonaws.com")[0].Condition, { StringEquals: { "aws:SourceAccount": { Ref: "AWS::AccountId" } } });
  assert.equal(byService("events.amazonaws.com")[0].Condition, undefined, "EventBridge fails with a source condition in a key policy");
  const [pol] = Object.values(t.findResources("AWS::SNS::TopicPolicy")) as any[];
  const publishers = pol.Properties.PolicyDocument.Statement.map((s: any) => s.Principal.Service).sort();
  assert.deepEqual(publishers, ["cloudwatch.amazonaws.com", "events.amazonaws.com"]);
});

test("SASL/SCRAM on MSK: SCRAM-512 only, with the secret's key usable through Secrets Manager only", () => {
  const t = synth(undefined, { authSecretArn: SECRET, authSecretKmsKeyArn: SECRET_KEY });
  const s = roleStatements(t, "ingest").find((x) => x.Sid === "DecryptTheKafkaCredentials");
  assert.deepEqual(s.Action, "kms:Decrypt");
  assert.equal(s.Resource, SECRET_KEY);
  assert.deepEqual(s.Condition, { StringEquals: { "kms:ViaService": { "Fn::Join": ["", ["secretsmanager.", { Ref: "AWS::Region" }, ".amazonaws.com"]] } } });
  assert.throws(() => stack(undefined, { authSecretArn: SECRET, authSecretKmsKeyArn: SECRET_KEY, authMechanism: "SASL_SCRAM_256_AUTH" }), /SASL_SCRAM_512_AUTH only/);
  assert.throws(() => stack(undefined, { authSecretArn: SECRET, authSecretKmsKeyArn: SECRET_KEY, authMechanism: "BASIC_AUTH" }), /SASL_SCRAM_512_AUTH only/);
  assert.throws(() => stack(undefined, { authSecretArn: SECRET }), /customer managed key/);
  // Self-managed Kafka keeps its choices, with or without a key.
  stack({ kind: "self-managed", bootstrapServers: ["b1:9096"] }, { authSecretArn: SECRET, authMechanism: "BASIC_AUTH" });
  assert.ok(!JSON.stringify(synth().findResources("AWS::IAM::Policy")).includes("kms:ViaService"));
});

test("a tributaryConfig that moves an area the stack names is refused at synth, as the functions refuse it", () => {
  for (const name of ["table_prefix", "dead_letter_prefix", "state_prefix"]) {
    assert.throws(() => stack(undefined, { tributaryConfig: JSON.stringify({ [name]: "elsewhere/" }) }), new RegExp(`${name} "elsewhere/"`));
  }
  assert.throws(() => stack(undefined, { tributaryConfig: "{not json" }), /not JSON/);
  assert.throws(() => stack(undefined, { tributaryConfig: "[]" }), /JSON object/);
  // The defaults spelt out, and everything else, pass.
  stack(undefined, { tributaryConfig: JSON.stringify({ table_prefix: "tables/", state_prefix: "_tributary/", topics: { t: { conflicts: "rescue" } } }) });
});

test("replaced files: no tag lifecycle rule, no tagging grant, the retention in compact's environment", () => {
  const t = synth();
  const [bucket] = Object.values(t.findResources("AWS::S3::Bucket")) as any[];
  const rules = bucket.Properties.LifecycleConfiguration.Rules;
  assert.deepEqual(rules.map((r: any) => r.Id).sort(), ["abort-incomplete-multipart-uploads", "expire-athena-results", "expire-idle-claim-logs"]);
  const expiring = rules.filter((r: any) => r.ExpirationInDays).map((r: any) => r.Prefix).sort();
  assert.deepEqual(expiring, ["_tributary/claims/", "athena-results/"], "nothing under tables/ or aws/lambda/ expires by a rule");
  assert.ok(!JSON.stringify(rules).includes("Tag"));
  assert.ok(!JSON.stringify(statements(t)).includes("Tagging"));
  assert.equal(functions(t).compact.Environment.Variables.TRIBUTARY_REPLACED_RETENTION_HOURS, "24");
  assert.equal(functions(synth(undefined, { replacedFilesRetentionHours: 48 })).compact.Environment.Variables.TRIBUTARY_REPLACED_RETENTION_HOURS, "48");
});

test("s3:ListBucket on the bucket without a prefix condition (a missing key answers 404, not 403)", () => {
  const t = synth();
  for (const role of ["ingest", "compact", "catalog"]) {
    const listed = roleStatements(t, role).filter((s) => list(s.Action).includes("s3:ListBucket"));
    assert.equal(listed.length, 1, role);
    assert.equal(listed[0].Condition, undefined, role);
  }
  assert.ok(!JSON.stringify(statements(t)).includes("s3:prefix"));
});

test("the workgroup is deleted with its queries and publishes metrics; a named query for the topic's table", () => {
  const t = synth(undefined, { topic: "orders-v1.EU" });
  t.hasResourceProperties("AWS::Athena::WorkGroup", {
    Name: "Tributary",
    RecursiveDeleteOption: true,
    WorkGroupConfiguration: Match.objectLike({ PublishCloudWatchMetricsEnabled: true }),
  });
  const [q] = Object.values(t.findResources("AWS::Athena::NamedQuery")) as any[];
  const text = JSON.stringify(q.Properties.QueryString);
  assert.ok(text.includes('\\"orders_v1_eu\\" ORDER BY _kafka_timestamp DESC LIMIT 100'), text);
  assert.ok(!text.includes("transaction"));
  assert.equal(tableNameOf("2026-events"), "t_2026_events");
  assert.equal(tableNameOf("customer_data"), "customer_data");
});

test("every function emits into Tributary/<stack> and every alarm on our metrics reads it", () => {
  const t = synth();
  for (const f of Object.values(functions(t))) assert.equal(f.Environment.Variables.TRIBUTARY_METRICS_NAMESPACE, "Tributary/Tributary");
  const ours = alarms(t).filter((a: any) => !namespaceOf(a).startsWith("AWS/"));
  assert.ok(ours.length >= 5);
  for (const a of ours) assert.equal(namespaceOf(a), "Tributary/Tributary", a.MetricName ?? a.ThresholdMetricId);
  const [dash] = Object.values(t.findResources("AWS::CloudWatch::Dashboard")) as any[];
  const body = JSON.stringify(dash.Properties.DashboardBody);
  for (const m of ["IngestSourceStopped", "TriggeredRules", "DestinationDeliveryFailures", "PartitionsCompacted", "RowsRescued"]) assert.ok(body.includes(m), m);
  assert.ok(!body.includes('\\"Tributary\\"'), "no metric in the shared namespace");
});

test("names are per stack: two stacks in one app collide on nothing; given names are used", () => {
  const app = new App();
  const stacks = ["First", "Second"].map((id) => stack(undefined, {}, id, app));
  const [a, b] = stacks.map((s) => Template.fromStack(s));
  const names = (t: Template) => [
    ...Object.values(functions(t)).map((f) => f.FunctionName),
    (Object.values(t.findResources("AWS::Athena::WorkGroup"))[0] as any).Properties.Name,
  ];
  const [na, nb] = [names(a), names(b)];
  for (const n of na) assert.ok(!nb.includes(n), `both stacks name something ${n}`);
  for (const t of [a, b]) {
    const env = Object.values(functions(t)).map((f) => f.Environment.Variables.TRIBUTARY_METRICS_NAMESPACE);
    assert.equal(new Set(env).size, 1);
  }
  assert.notEqual(functions(a).ingest.Environment.Variables.TRIBUTARY_METRICS_NAMESPACE, functions(b).ingest.Environment.Variables.TRIBUTARY_METRICS_NAMESPACE);
  for (const t of [a, b]) {
    const [bucket] = Object.values(t.findResources("AWS::S3::Bucket")) as any[];
    assert.equal(bucket.Properties.BucketName, undefined, "CloudFormation names the bucket");
    const [db] = Object.values(t.findResources("AWS::Glue::Database")) as any[];
    assert.ok(JSON.stringify(db.Properties.DatabaseInput.Name).includes("AWS::StackId"));
    assert.equal(db.DeletionPolicy, "Delete");
  }
  const given = synth(undefined, { bucketName: "my-lake", glueDatabaseName: "lake", athenaWorkGroupName: "lake-wg", tableName: "orders_t" });
  given.hasResourceProperties("AWS::S3::Bucket", { BucketName: "my-lake" });
  given.hasResourceProperties("AWS::Glue::Database", { DatabaseInput: Match.objectLike({ Name: "lake" }) });
  given.hasResourceProperties("AWS::Athena::WorkGroup", { Name: "lake-wg" });
  const [q] = Object.values(given.findResources("AWS::Athena::NamedQuery")) as any[];
  assert.ok(JSON.stringify(q.Properties.QueryString).includes("orders_t"));
});

test("the watch reads the event source mapping every 5 minutes", () => {
  const t = synth();
  const watch = functions(t).watch;
  const [esm] = Object.keys(t.findResources("AWS::Lambda::EventSourceMapping"));
  assert.deepEqual(watch.Environment.Variables.TRIBUTARY_EVENT_SOURCE_MAPPING, { Ref: esm });
  const [grant] = roleStatements(t, "watch").filter((s) => s.Sid === "ReadTheEventSourceMapping");
  assert.equal(grant.Action, "lambda:GetEventSourceMapping");
  assert.ok(JSON.stringify(grant.Resource).includes(":event-source-mapping:") && JSON.stringify(grant.Resource).includes(esm));
  const schedules = Object.values(t.findResources("AWS::Events::Rule"))
    .filter((r: any) => r.Properties.Targets[0].Arn["Fn::GetAtt"]?.[0] === watch.id) as any[];
  assert.deepEqual(schedules.map((r) => [r.Properties.ScheduleExpression, JSON.parse(r.Properties.Targets[0].Input)]), [["rate(5 minutes)", { tributary: "watch" }]]);
  const [stopped] = alarms(t).filter((a: any) => a.MetricName === "IngestSourceStopped");
  assert.equal(stopped.TreatMissingData, "breaching");
  assert.equal(stopped.Period, 600);
});
