// Tributary as a CDK stack: the architecture template.yaml deploys, as code. The parity test
// (tests/py/test_parity.py, run by scripts/validate-template.sh) compares the two synthesized
// templates' functions, triggers, alarms and permissions, so they cannot drift apart.

import { Aws, CfnOutput, Duration, RemovalPolicy, Stack, StackProps } from "aws-cdk-lib";
import * as athena from "aws-cdk-lib/aws-athena";
import * as cw from "aws-cdk-lib/aws-cloudwatch";
import * as cwActions from "aws-cdk-lib/aws-cloudwatch-actions";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as glue from "aws-cdk-lib/aws-glue";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as destinations from "aws-cdk-lib/aws-lambda-destinations";
import * as logs from "aws-cdk-lib/aws-logs";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subs from "aws-cdk-lib/aws-sns-subscriptions";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";

/** Where the records come from. */
export type KafkaSource =
  | { kind: "msk"; clusterArn: string }
  | { kind: "self-managed"; bootstrapServers: string[]; subnets?: string[]; securityGroup?: string };

export interface TributaryProps extends StackProps {
  kafka: KafkaSource;
  topic: string;
  consumerGroupId?: string;
  startingPosition?: "TRIM_HORIZON" | "LATEST";
  batchSize?: number;
  batchingWindowSeconds?: number;
  /** Secrets Manager secret for SASL/SCRAM (or SASL/PLAIN with BASIC_AUTH). */
  authSecretArn?: string;
  authMechanism?: "SASL_SCRAM_512_AUTH" | "SASL_SCRAM_256_AUTH" | "BASIC_AUTH";
  bucketNamePrefix?: string;
  tributaryConfig?: string;
  glueDatabaseName?: string;
  athenaWorkGroupName?: string;
  kmsKeyArn?: string;
  alarmEmail?: string;
  ingestMemorySize?: number;
  compactMemorySize?: number;
  offsetLagThreshold?: number;
  compactionLagThresholdSeconds?: number;
  replacedFilesExpireDays?: number;
  logRetention?: logs.RetentionDays;
  /** A directory with IngestFunction/, CompactFunction/, CatalogFunction/, each holding `bootstrap` (sam build's output). */
  codeDir: string;
}

export class TributaryStack extends Stack {
  constructor(scope: Construct, id: string, props: TributaryProps) {
    super(scope, id, props);
    const p = {
      consumerGroupId: "tributary-ingest",
      startingPosition: "TRIM_HORIZON",
      batchSize: 10000,
      batchingWindowSeconds: 30,
      authMechanism: "SASL_SCRAM_512_AUTH",
      bucketNamePrefix: "tributary",
      tributaryConfig: "{}",
      glueDatabaseName: "tributary",
      athenaWorkGroupName: "tributary",
      ingestMemorySize: 512,
      compactMemorySize: 1024,
      offsetLagThreshold: 100000,
      compactionLagThresholdSeconds: 7200,
      replacedFilesExpireDays: 1,
      logRetention: logs.RetentionDays.ONE_MONTH,
      // A property given as undefined keeps its default.
      ...(Object.fromEntries(Object.entries(props).filter(([, v]) => v !== undefined)) as TributaryProps),
    };
    // A name, not a reference: the bucket notifies this stack's functions (no cycle).
    const bucketName = `${p.bucketNamePrefix}-${Aws.ACCOUNT_ID}-${Aws.REGION}`;
    const key = p.kmsKeyArn ? kms.Key.fromKeyArn(this, "BucketKey", p.kmsKeyArn) : undefined;

    const bucket = new s3.Bucket(this, "DataBucket", {
      bucketName,
      encryption: key ? s3.BucketEncryption.KMS : s3.BucketEncryption.S3_MANAGED,
      encryptionKey: key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      eventBridgeEnabled: true,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        { id: "abort-incomplete-multipart-uploads", abortIncompleteMultipartUploadAfter: Duration.days(1) },
        {
          id: "expire-files-replaced-by-compaction",
          prefix: "tables/",
          tagFilters: { tributary: "replaced" },
          expiration: Duration.days(p.replacedFilesExpireDays),
        },
        { id: "expire-athena-results", prefix: "athena-results/", expiration: Duration.days(30) },
      ],
    });

    const topic = new sns.Topic(this, "AlarmTopic", { displayName: "Tributary alarms" });
    if (p.alarmEmail) topic.addSubscription(new subs.EmailSubscription(p.alarmEmail));
    const ingestFailures = new sqs.Queue(this, "IngestFailureQueue", { retentionPeriod: Duration.days(14), enforceSSL: true });
    const triggerFailures = new sqs.Queue(this, "TriggerFailureQueue", { retentionPeriod: Duration.days(14), enforceSSL: true });

    const arn = (resource: string) => `arn:${Aws.PARTITION}:s3:::${bucketName}${resource}`;
    const glueArns = [
      `arn:${Aws.PARTITION}:glue:${Aws.REGION}:${Aws.ACCOUNT_ID}:catalog`,
      `arn:${Aws.PARTITION}:glue:${Aws.REGION}:${Aws.ACCOUNT_ID}:database/${p.glueDatabaseName}`,
      `arn:${Aws.PARTITION}:glue:${Aws.REGION}:${Aws.ACCOUNT_ID}:table/${p.glueDatabaseName}/*`,
    ];
    const listPrefixes = (sid: string, prefixes: string[]) => new iam.PolicyStatement({
      sid,
      actions: ["s3:ListBucket"],
      resources: [arn("")],
      conditions: { StringLike: { "s3:prefix": prefixes } },
    });
    const listTables = listPrefixes("ListTablesAndState", ["tables/*", "_tributary/*"]);

    const fn = (name: "ingest" | "compact" | "catalog", id: string, memorySize: number, timeout: number, description: string,
      env: Record<string, string>, statements: iam.PolicyStatement[]) => {
      const logGroup = new logs.LogGroup(this, `${id}LogGroup`, {
        logGroupName: `/aws/lambda/${this.stackName}-${name}`,
        retention: p.logRetention,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      const f = new lambda.Function(this, `${id}Function`, {
        functionName: `${this.stackName}-${name}`,
        description,
        runtime: lambda.Runtime.PROVIDED_AL2023,
        architecture: lambda.Architecture.ARM_64,
        handler: "bootstrap",
        code: lambda.Code.fromAsset(`${p.codeDir}/${id}Function`),
        memorySize,
        timeout: Duration.seconds(timeout),
        tracing: lambda.Tracing.ACTIVE,
        loggingFormat: lambda.LoggingFormat.JSON,
        logGroup,
        environment: { TRIBUTARY_BUCKET: bucketName, TRIBUTARY_CONFIG: p.tributaryConfig, RUST_LOG: "info", ...env },
      });
      for (const s of statements) f.addToRolePolicy(s);
      if (key) f.addToRolePolicy(new iam.PolicyStatement({ sid: "UseTheBucketKey", actions: ["kms:Decrypt", "kms:GenerateDataKey"], resources: [key.keyArn] }));
      return f;
    };

    // Ingest: Kafka batches to Parquet.
    const ingestStatements = [
      new iam.PolicyStatement({
        sid: "ReadWriteTablesDeadLettersAndState",
        actions: ["s3:GetObject", "s3:PutObject"],
        resources: [arn("/tables/*"), arn("/dead-letter/*"), arn("/_tributary/*")],
      }),
      // Dead letters are listed too: a retried batch skips the letters it wrote before.
      listPrefixes("ListTablesDeadLettersAndState", ["tables/*", "dead-letter/*", "_tributary/*"]),
      new iam.PolicyStatement({ sid: "FailedBatchesToTheQueue", actions: ["sqs:SendMessage"], resources: [ingestFailures.queueArn] }),
      // The event source mapping attaches network interfaces; these cannot be scoped to resources.
      new iam.PolicyStatement({
        sid: "ReachTheClusterVpc",
        actions: ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
          "ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"],
        resources: ["*"],
      }),
    ];
    if (p.kafka.kind === "msk") {
      const [head, tail] = [`${p.kafka.clusterArn}`.split(":cluster/")[0], `${p.kafka.clusterArn}`.split(":cluster/")[1]];
      ingestStatements.push(
        new iam.PolicyStatement({
          sid: "ReadTheCluster",
          actions: ["kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers", "kafka-cluster:Connect", "kafka-cluster:DescribeClusterDynamicConfiguration"],
          resources: [p.kafka.clusterArn],
        }),
        new iam.PolicyStatement({
          sid: "ReadTheTopic",
          actions: ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
          resources: [`${head}:topic/${tail}/${p.topic}`],
        }),
        new iam.PolicyStatement({
          sid: "UseTheConsumerGroup",
          actions: ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"],
          resources: [`${head}:group/${tail}/${p.consumerGroupId}`],
        }),
      );
    }
    if (p.authSecretArn) {
      ingestStatements.push(new iam.PolicyStatement({ sid: "ReadTheKafkaCredentials", actions: ["secretsmanager:GetSecretValue"], resources: [p.authSecretArn] }));
    }
    const ingest = fn("ingest", "Ingest", p.ingestMemorySize, 300,
      "Kafka batches to Parquet on S3, exactly once; bad records to the dead-letter area.", {}, ingestStatements);

    const glueStatement = (sid: string, actions: string[]) => new iam.PolicyStatement({ sid, actions, resources: glueArns });
    const triggerQueue = new iam.PolicyStatement({ sid: "FailedTriggersToTheQueue", actions: ["sqs:SendMessage"], resources: [triggerFailures.queueArn] });
    const dbEnv = { TRIBUTARY_DATABASE: p.glueDatabaseName };
    const compact = fn("compact", "Compact", p.compactMemorySize, 900,
      "Merges a partition's small files into large deduplicated Parquet files and switches Athena readers atomically.", dbEnv, [
        new iam.PolicyStatement({
          sid: "ReadWriteTablesAndState",
          actions: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload"],
          resources: [arn("/tables/*"), arn("/_tributary/*")],
        }),
        listTables,
        glueStatement("SwitchPartitionLocations", ["glue:GetPartition", "glue:UpdatePartition"]),
        triggerQueue,
      ]);
    const catalog = fn("catalog", "Catalog", 256, 120,
      "Registers and evolves Glue tables and partitions for new ingest files.", dbEnv, [
        new iam.PolicyStatement({ sid: "ReadTablesAndState", actions: ["s3:GetObject"], resources: [arn("/tables/*"), arn("/_tributary/*")] }),
        listTables,
        glueStatement("ManageThisDatabase", ["glue:GetDatabase", "glue:CreateDatabase", "glue:GetTable", "glue:CreateTable",
          "glue:UpdateTable", "glue:GetPartition", "glue:BatchCreatePartition", "glue:UpdatePartition"]),
        triggerQueue,
      ]);

    // Triggers: the Kafka event source; new ingest files through EventBridge; the schedules.
    const access: lambda.CfnEventSourceMapping.SourceAccessConfigurationProperty[] = [];
    if (p.authSecretArn) access.push({ type: p.authMechanism, uri: p.authSecretArn });
    if (p.kafka.kind === "self-managed") {
      for (const subnet of p.kafka.subnets ?? []) access.push({ type: "VPC_SUBNET", uri: `subnet:${subnet}` });
      if (p.kafka.securityGroup) access.push({ type: "VPC_SECURITY_GROUP", uri: `security_group:${p.kafka.securityGroup}` });
    }
    const common = {
      functionName: ingest.functionName,
      topics: [p.topic],
      startingPosition: p.startingPosition,
      batchSize: p.batchSize,
      maximumBatchingWindowInSeconds: p.batchingWindowSeconds,
      sourceAccessConfigurations: access.length ? access : undefined,
      destinationConfig: { onFailure: { destination: ingestFailures.queueArn } },
    };
    if (p.kafka.kind === "msk") {
      new lambda.CfnEventSourceMapping(this, "IngestEventSource", {
        ...common,
        eventSourceArn: p.kafka.clusterArn,
        amazonManagedKafkaEventSourceConfig: { consumerGroupId: p.consumerGroupId },
      });
    } else {
      new lambda.CfnEventSourceMapping(this, "IngestSelfManagedEventSource", {
        ...common,
        selfManagedEventSource: { endpoints: { kafkaBootstrapServers: p.kafka.bootstrapServers } },
        selfManagedKafkaEventSourceConfig: { consumerGroupId: p.consumerGroupId },
      });
    }
    const newIngestFile: events.EventPattern = {
      source: ["aws.s3"],
      detailType: ["Object Created"],
      detail: { bucket: { name: [bucketName] }, object: { key: [{ prefix: "tables/" }] }, reason: ["PutObject"] },
    };
    for (const [id, f, schedule, input] of [
      ["Compact", compact, Duration.minutes(10), { tributary: "sweep" }],
      ["Catalog", catalog, Duration.hours(1), { tributary: "catalog-sync" }],
    ] as const) {
      new events.Rule(this, `${id}NewIngestFile`, {
        eventPattern: newIngestFile,
        targets: [new targets.LambdaFunction(f, { retryAttempts: 185, maxEventAge: Duration.hours(24), deadLetterQueue: triggerFailures })],
      });
      new events.Rule(this, `${id}Schedule`, {
        schedule: events.Schedule.rate(schedule),
        targets: [new targets.LambdaFunction(f, { event: events.RuleTargetInput.fromObject(input) })],
      });
      f.configureAsyncInvoke({ retryAttempts: 2, onFailure: new destinations.SqsDestination(triggerFailures) });
    }

    // Tables: the Glue database and an Athena workgroup with encrypted results.
    new glue.CfnDatabase(this, "GlueDatabase", {
      catalogId: Aws.ACCOUNT_ID,
      databaseInput: { name: p.glueDatabaseName, description: "Tables landed by Tributary" },
    });
    const workgroup = new athena.CfnWorkGroup(this, "AthenaWorkGroup", {
      name: p.athenaWorkGroupName,
      workGroupConfiguration: {
        enforceWorkGroupConfiguration: true,
        resultConfiguration: {
          outputLocation: `s3://${bucketName}/athena-results/`,
          encryptionConfiguration: { encryptionOption: "SSE_S3" },
        },
      },
    });

    // Alarms: every way the pipeline can stop or lose sight of data.
    const action = new cwActions.SnsAction(topic);
    const alarm = (id: string, description: string, metric: cw.Metric, threshold: number, evaluationPeriods = 1,
      missing = cw.TreatMissingData.NOT_BREACHING) => {
      const a = new cw.Alarm(this, id, {
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: missing,
      });
      a.addAlarmAction(action);
      a.addOkAction(action);
    };
    const five = Duration.minutes(5);
    for (const [id, f, timeout] of [["Ingest", ingest, 300], ["Compact", compact, 900], ["Catalog", catalog, 120]] as const) {
      alarm(`${id}ErrorsAlarm`, `The ${id.toLowerCase()} function failed invocations (see docs/runbook.md).`, f.metricErrors({ period: five, statistic: "Sum" }), 1);
      alarm(`${id}ThrottlesAlarm`, `The ${id.toLowerCase()} function was throttled.`, f.metricThrottles({ period: five, statistic: "Sum" }), 1);
      alarm(`${id}DurationAlarm`, `An invocation of the ${id.toLowerCase()} function took over 80 % of its timeout.`,
        f.metricDuration({ period: five, statistic: "Maximum" }), timeout * 800);
    }
    const tributary = (name: string, fnName: string, statistic: string, period = five) =>
      new cw.Metric({ namespace: "Tributary", metricName: name, dimensionsMap: { Function: fnName }, statistic, period });
    alarm("IngestOffsetLagAlarm", "Ingest is falling behind the topic (or has stopped).",
      new cw.Metric({ namespace: "AWS/Lambda", metricName: "OffsetLag", dimensionsMap: { FunctionName: ingest.functionName }, statistic: "Maximum", period: five }),
      p.offsetLagThreshold, 3);
    alarm("IngestDeadLetteredAlarm", "Records were dead-lettered; inspect and replay them.", tributary("DeadLettered", "ingest", "Sum"), 1);
    alarm("IngestFailedBatchesAlarm", "A batch was given up on; its records are not in the table.",
      ingestFailures.metricApproximateNumberOfMessagesVisible({ period: five, statistic: "Maximum" }), 1);
    alarm("TriggerFailuresAlarm", "A compaction or catalog trigger failed after all retries.",
      triggerFailures.metricApproximateNumberOfMessagesVisible({ period: five, statistic: "Maximum" }), 1);
    alarm("CompactionLagAlarm", "Ingest files wait too long to be compacted, or the sweep stopped reporting.",
      tributary("CompactionLag", "compact", "Maximum", Duration.minutes(15)), p.compactionLagThresholdSeconds, 2, cw.TreatMissingData.BREACHING);
    alarm("CompactIncompatibleFilesAlarm", "A data file's schema conflicts with its partition.", tributary("IncompatibleFiles", "compact", "Sum"), 1);
    alarm("CatalogSchemaConflictsAlarm", "A column changed type in a way Athena cannot read; the change was refused.",
      tributary("SchemaConflicts", "catalog", "Sum"), 1);

    const dashboard = new cw.Dashboard(this, "Dashboard", { dashboardName: `${this.stackName}-pipeline` });
    dashboard.addWidgets(
      new cw.GraphWidget({ title: "Ingest: records in, rows written, dead-lettered",
        left: ["RecordsIn", "RowsWritten", "DeadLettered"].map((m) => tributary(m, "ingest", "Sum")) }),
      new cw.GraphWidget({ title: "Errors", left: [ingest, compact, catalog].map((f) => f.metricErrors({ period: five })) }),
      new cw.GraphWidget({ title: "Duration (max, ms)", left: [ingest, compact, catalog].map((f) => f.metricDuration({ period: five, statistic: "Maximum" })) }),
      new cw.GraphWidget({ title: "Compaction lag (s)", left: [tributary("CompactionLag", "compact", "Maximum")] }),
    );

    new CfnOutput(this, "DataBucketName", { value: bucket.bucketName });
    new CfnOutput(this, "GlueDatabaseOutput", { value: p.glueDatabaseName });
    new CfnOutput(this, "AthenaWorkGroupOutput", { value: workgroup.name });
    new CfnOutput(this, "AlarmTopicArn", { value: topic.topicArn });
  }
}
