// Template.fromStack assertions on the CDK stack (node's test runner).
import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { KafkaSource, TributaryProps, TributaryStack } from "../lib/tributary-stack";

const MSK = "arn:aws:kafka:eu-west-1:123456789012:cluster/orders/0a1b2c3d-0000-0000-0000-000000000000-1";

function codeDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-code-"));
  for (const f of ["IngestFunction", "CompactFunction", "CatalogFunction"]) {
    fs.mkdirSync(path.join(dir, f));
    fs.writeFileSync(path.join(dir, f, "bootstrap"), "#!/bin/sh\n");
  }
  return dir;
}

function synth(kafka: KafkaSource = { kind: "msk", clusterArn: MSK }, extra: Partial<TributaryProps> = {}): Template {
  const app = new App();
  return Template.fromStack(new TributaryStack(app, "Tributary", { kafka, topic: "orders", codeDir: codeDir(), ...extra }));
}

function alarms(t: Template) {
  return Object.values(t.findResources("AWS::CloudWatch::Alarm")).map((a: any) => a.Properties);
}

test("three arm64 functions on provided.al2023", () => {
  const t = synth();
  const fns = Object.values(t.findResources("AWS::Lambda::Function")).filter((f: any) => f.Properties.Handler === "bootstrap");
  assert.equal(fns.length, 3);
  for (const f of fns as any[]) {
    assert.deepEqual(f.Properties.Architectures, ["arm64"]);
    assert.equal(f.Properties.Runtime, "provided.al2023");
  }
});

test("every function has errors, throttles and duration alarms, and every alarm notifies the topic", () => {
  const t = synth();
  const fns = Object.entries(t.findResources("AWS::Lambda::Function")).filter(([, f]: any) => f.Properties.Handler === "bootstrap");
  for (const metric of ["Errors", "Throttles", "Duration"]) {
    const alarmed = alarms(t).filter((a: any) => a.MetricName === metric).map((a: any) => a.Dimensions[0].Value.Ref);
    for (const [id] of fns) assert.ok(alarmed.includes(id), `${id} lacks a ${metric} alarm`);
  }
  const topic = Object.keys(t.findResources("AWS::SNS::Topic"))[0];
  for (const a of alarms(t)) assert.deepEqual(a.AlarmActions, [{ Ref: topic }]);
  for (const m of ["OffsetLag", "DeadLettered", "CompactionLag", "SchemaConflicts", "IncompatibleFiles"]) {
    assert.ok(alarms(t).some((a: any) => a.MetricName === m), m);
  }
});

test("no wildcard actions; wildcard resources only for network interfaces", () => {
  const t = synth();
  for (const pol of Object.values(t.findResources("AWS::IAM::Policy")) as any[]) {
    for (const s of pol.Properties.PolicyDocument.Statement) {
      const actions: string[] = [].concat(s.Action);
      assert.ok(actions.every((a) => !a.includes("*")), JSON.stringify(s));
      if ([].concat(s.Resource).includes("*" as never)) assert.ok(actions.every((a) => a.startsWith("ec2:") || a.startsWith("xray:")), JSON.stringify(s));
    }
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

test("MSK with IAM, or self-managed Kafka with SASL/SCRAM in a VPC, with an on-failure queue", () => {
  const msk = synth();
  msk.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
    EventSourceArn: MSK, Topics: ["orders"], DestinationConfig: { OnFailure: { Destination: Match.anyValue() } },
    SourceAccessConfigurations: Match.absent(),
  });
  const secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka-abc";
  const own = synth({ kind: "self-managed", bootstrapServers: ["b1:9096", "b2:9096"], subnets: ["subnet-1"], securityGroup: "sg-1" }, { authSecretArn: secret });
  own.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
    SelfManagedEventSource: { Endpoints: { KafkaBootstrapServers: ["b1:9096", "b2:9096"] } },
    SourceAccessConfigurations: [
      { Type: "SASL_SCRAM_512_AUTH", URI: secret },
      { Type: "VPC_SUBNET", URI: "subnet:subnet-1" },
      { Type: "VPC_SECURITY_GROUP", URI: "security_group:sg-1" },
    ],
  });
  // The cluster's permissions only with MSK.
  const text = JSON.stringify(own.findResources("AWS::IAM::Policy"));
  assert.ok(!text.includes("kafka-cluster:"), "self-managed Kafka needs no MSK permissions");
  assert.ok(text.includes("secretsmanager:GetSecretValue"));
});
