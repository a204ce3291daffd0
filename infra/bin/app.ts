// The CDK app: `npx cdk deploy -c mskClusterArn=... -c topic=...` (or -c bootstrapServers=host:port,...).
// The function code is sam build's output (`./scripts/sam-build.sh`), or -c codeDir=DIR.
import { App } from "aws-cdk-lib";
import * as path from "path";
import { KafkaSource, TributaryStack } from "../lib/tributary-stack";

const app = new App();
const ctx = (k: string): string | undefined => app.node.tryGetContext(k);
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
  authSecretArn: ctx("authSecretArn"),
  kmsKeyArn: ctx("kmsKeyArn"),
  alarmEmail: ctx("alarmEmail"),
  tributaryConfig: ctx("tributaryConfig"),
  codeDir: ctx("codeDir") ?? path.join(__dirname, "..", "..", "..", ".aws-sam", "build"),
});
