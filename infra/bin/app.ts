// The CDK app: `npx cdk deploy -c mskClusterArn=... -c topic=...` (or -c bootstrapServers=host:port,...).
// The function code is sam build's output (`./scripts/sam-build.sh`), or -c codeDir=DIR.
// Every setting of the stack is a context value (README.md lists them); the names the stack
// creates (bucket, Glue database, workgroup, functions, metric namespace) are unique per stack
// unless given.
import { App } from "aws-cdk-lib";
import * as path from "path";
import { KafkaSource, TributaryProps, TributaryStack } from "../lib/tributary-stack";

const app = new App();
const ctx = (k: string): string | undefined => {
  const v = app.node.tryGetContext(k);
  return v === undefined || v === "" ? undefined : String(v);
};
const num = (k: string): number | undefined => {
  const v = ctx(k);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`-c ${k}=${v} is not a number`);
  return n;
};
const required = (k: string): string => {
  const v = ctx(k);
  if (!v) throw new Error(`pass -c ${k}=... (or -c bootstrapServers=host:port,... for a self-managed Kafka)`);
  return v;
};
const kafka: KafkaSource = ctx("bootstrapServers")
  ? {
      kind: "self-managed",
      bootstrapServers: ctx("bootstrapServers")!.split(","),
      subnets: ctx("subnets")?.split(","),
      securityGroup: ctx("securityGroup"),
    }
  : { kind: "msk", clusterArn: required("mskClusterArn") };
new TributaryStack(app, ctx("stackName") ?? "Tributary", {
  kafka,
  topic: required("topic"),
  consumerGroupId: ctx("consumerGroupId"),
  startingPosition: ctx("startingPosition") as TributaryProps["startingPosition"],
  batchSize: num("batchSize"),
  batchingWindowSeconds: num("batchingWindowSeconds"),
  authSecretArn: ctx("authSecretArn"),
  authMechanism: ctx("authMechanism") as TributaryProps["authMechanism"],
  authSecretKmsKeyArn: ctx("authSecretKmsKeyArn"),
  bucketName: ctx("bucketName"),
  glueDatabaseName: ctx("glueDatabaseName"),
  athenaWorkGroupName: ctx("athenaWorkGroupName"),
  tableName: ctx("tableName"),
  kmsKeyArn: ctx("kmsKeyArn"),
  alarmEmail: ctx("alarmEmail"),
  tributaryConfig: ctx("tributaryConfig"),
  ingestMemorySize: num("ingestMemorySize"),
  compactMemorySize: num("compactMemorySize"),
  offsetLagThreshold: num("offsetLagThreshold"),
  compactionLagThresholdSeconds: num("compactionLagThresholdSeconds"),
  replacedFilesRetentionHours: num("replacedFilesRetentionHours"),
  codeDir: ctx("codeDir") ?? path.join(__dirname, "..", "..", "..", ".aws-sam", "build"),
});
