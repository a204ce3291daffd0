// Tributary as a CDK stack: the architecture template.yaml deploys, as code. The parity test
// (tests/py/test_parity.py, run by scripts/validate-template.sh) compares the two synthesized
// templates' functions, triggers, alarms and permissions, so they cannot drift apart.

import { Aws, CfnOutput, Duration, Fn, RemovalPolicy, Stack, StackProps } from "aws-cdk-lib";
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
  /** Secrets Manager secret for SASL/SCRAM (or SASL/PLAIN with BASIC_AUTH, self-managed only). */
  authSecretArn?: string;
  /** Amazon MSK: SASL_SCRAM_512_AUTH only. */
  authMechanism?: "SASL_SCRAM_512_AUTH" | "SASL_SCRAM_256_AUTH" | "BASIC_AUTH";
  /** The customer managed key of the secret (required with Amazon MSK and a secret). */
  authSecretKmsKeyArn?: string;
  /** The data bucket's name; by default CloudFormation generates a unique one. */
  bucketName?: string;
  tributaryConfig?: string;
  /** Default: `tributary_` and the first 8 hex digits of the stack id (unique per stack). */
  glueDatabaseName?: string;
  /** Default: the stack's name. */
  athenaWorkGroupName?: string;
  /** The topic's table, for the ready query. Default: the topic name made an Athena identifier. */
  tableName?: string;
  kmsKeyArn?: string;
  alarmEmail?: string;
  ingestMemorySize?: number;
  compactMemorySize?: number;
  offsetLagThreshold?: number;
  compactionLagThresholdSeconds?: number;
  /** How long files replaced by a compaction stay readable after the switch (the compactor then deletes them). */
  replacedFilesRetentionHours?: number;
  logRetention?: logs.RetentionDays;
  /** A directory with IngestFunction/, CompactFunction/, CatalogFunction/, WatchFunction/, each holding `bootstrap` (sam build's output). */
  codeDir: string;
}

/** The default table name of a topic, as functions/core/src/naming.rs makes it. */
export function tableNameOf(topic: string): string {
  const s = topic.toLowerCase().replace(/[^a-z0-9_]/g, "_");
  return (/^[a-z]/.test(s) ? s : `t_${s}`).slice(0, 255);
}

/**
 * The areas the stack's grants, EventBridge patterns and lifecycle rules name. The functions refuse
 * a `TributaryConfig` that moves one (functions/core/src/config.rs, `refuse_moved_areas`); the CDK
 * app refuses it before anything deploys. SAM cannot parse JSON in a Rule: there the functions'
 * `ConfigError` is the refusal.
 */
const FIXED_AREAS: Record<string, string> = { table_prefix: "tables/", dead_letter_prefix: "dead-letter/", state_prefix: "_tributary/" };

/** What the SAM template's Rules refuse, refused at synth time. */
function validate(p: { kafka: KafkaSource; authSecretArn?: string; authMechanism: string; authSecretKmsKeyArn?: string; tributaryConfig: string }) {
  let config: unknown;
  try {
    config = JSON.parse(p.tributaryConfig);
  } catch (e) {
    throw new Error(`tributaryConfig is not JSON: ${(e as Error).message}`);
  }
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new Error("tributaryConfig must be a JSON object");
  }
  for (const [name, fixed] of Object.entries(FIXED_AREAS)) {
    const value = (config as Record<string, unknown>)[name];
    if (value !== undefined && value !== fixed) {
      throw new Error(`tributaryConfig ${name} ${JSON.stringify(value)}: the stack grants, triggers and expires by ${JSON.stringify(fixed)} only; remove ${name}`);
    }
  }
  if (p.kafka.kind === "msk" && p.authSecretArn) {
    if (p.authMechanism !== "SASL_SCRAM_512_AUTH") {
      throw new Error("Amazon MSK authenticates a secret with SASL_SCRAM_512_AUTH only (SCRAM-SHA-512)");
    }
    if (!p.authSecretKmsKeyArn) {
      throw new Error("Amazon MSK needs the secret encrypted with a customer managed key: give its ARN as authSecretKmsKeyArn");
    }
  }
  if (p.kafka.kind === "self-managed" && (p.kafka.subnets ?? []).length > 0 && !p.kafka.securityGroup) {
    throw new Error("subnets need a securityGroup");
  }
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
      tributaryConfig: "{}",
      glueDatabaseName: `tributary_${Fn.select(0, Fn.split("-", Fn.select(2, Fn.split("/", Aws.STACK_ID))))}`,
      athenaWorkGroupName: this.stackName,
      tableName: tableNameOf(props.topic),
      ingestMemorySize: 512,
      compactMemorySize: 1024,
      offsetLagThreshold: 100000,
      compactionLagThresholdSeconds: 7200,
      replacedFilesRetentionHours: 24,
      logRetention: logs.RetentionDays.ONE_MONTH,
      // A property given as undefined (or "", as an empty -c context value) keeps its default.
      ...(Object.fromEntries(Object.entries(props).filter(([, v]) => v !== undefined && v !== "")) as TributaryProps),
    };
    validate(p);
    const namespace = `Tributary/${this.stackName}`;
    const key = p.kmsKeyArn ? kms.Key.fromKeyArn(this, "BucketKey", p.kmsKeyArn) : undefined;

    // The bucket refers to nothing of this stack, so everything can refer to it without a cycle.
    const bucket = new s3.Bucket(this, "DataBucket", {
      bucketName: p.bucketName,
      encryption: key ? s3.BucketEncryption.KMS : s3.BucketEncryption.S3_MANAGED,
      encryptionKey: key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      eventBridgeEnabled: true,
      removalPolicy: RemovalPolicy.RETAIN,
      // Replaced files are deleted by the compactor, replacedFilesRetentionHours after the switch.
      lifecycleRules: [
        { id: "abort-incomplete-multipart-uploads", abortIncompleteMultipartUploadAfter: Duration.days(1) },
        { id: "expire-athena-results", prefix: "athena-results/", expiration: Duration.days(30) },
        // Offset claims matter for minutes: a claim log untouched for days holds only void claims.
        { id: "expire-idle-claim-logs", prefix: "_tributary/claims/", expiration: Duration.days(2) },
      ],
    });
    const bucketName = bucket.bucketName;

    // The alarm topic, under a key of its own whose policy lets CloudWatch and EventBridge use it
    // (CloudWatch cannot use the AWS managed key alias/aws/sns).
    const alarmKey = new kms.Key(this, "AlarmTopicKey", {
      description: `Encrypts the alarm topic of stack ${this.stackName}`,
      enableKeyRotation: true,
      pendingWindow: Duration.days(7),
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const useKey = ["kms:Decrypt", "kms:GenerateDataKey*"];
    alarmKey.addToResourcePolicy(new iam.PolicyStatement({
      sid: "CloudWatchAlarmsPublishToTheTopic",
      principals: [new iam.ServicePrincipal("cloudwatch.amazonaws.com")],
      actions: useKey,
      resources: ["*"],
      conditions: { StringEquals: { "aws:SourceAccount": Aws.ACCOUNT_ID } },
    }));
    // No source condition: EventBridge's delivery to an encrypted topic does not support one here.
    alarmKey.addToResourcePolicy(new iam.PolicyStatement({
      sid: "EventBridgePublishesFailedBatches",
      principals: [new iam.ServicePrincipal("events.amazonaws.com")],
      actions: useKey,
      resources: ["*"],
    }));
    const topic = new sns.Topic(this, "AlarmTopic", { displayName: "Tributary alarms", masterKey: alarmKey });
    if (p.alarmEmail) topic.addSubscription(new subs.EmailSubscription(p.alarmEmail));
    topic.addToResourcePolicy(new iam.PolicyStatement({
      sid: "CloudWatchAlarms",
      principals: [new iam.ServicePrincipal("cloudwatch.amazonaws.com")],
      actions: ["sns:Publish"],
      resources: [topic.topicArn],
      conditions: { StringEquals: { "aws:SourceAccount": Aws.ACCOUNT_ID } },
    }));
    const triggerFailures = new sqs.Queue(this, "TriggerFailureQueue", { retentionPeriod: Duration.days(14), enforceSSL: true });

    // Tables: the Glue database (deleted with the stack; the data stays in the bucket) and an
    // Athena workgroup with encrypted results, deleted with its queries.
    const database = new glue.CfnDatabase(this, "GlueDatabase", {
      catalogId: Aws.ACCOUNT_ID,
      databaseInput: { name: p.glueDatabaseName, description: "Tables landed from Kafka by Tributary" },
    });
    database.applyRemovalPolicy(RemovalPolicy.DESTROY);
    const databaseName = database.ref;
    const workgroup = new athena.CfnWorkGroup(this, "AthenaWorkGroup", {
      name: p.athenaWorkGroupName,
      description: "Queries over Tributary tables; results encrypted in the data bucket.",
      state: "ENABLED",
      recursiveDeleteOption: true,
      workGroupConfiguration: {
        enforceWorkGroupConfiguration: true,
        publishCloudWatchMetricsEnabled: true,
        resultConfiguration: {
          outputLocation: `s3://${bucketName}/athena-results/`,
          encryptionConfiguration: { encryptionOption: "SSE_S3" },
        },
      },
    });
    const query = `SELECT * FROM "${databaseName}"."${p.tableName}" ORDER BY _kafka_timestamp DESC LIMIT 100`;
    new athena.CfnNamedQuery(this, "LatestRecordsQuery", {
      name: "latest records",
      description: "The topic's 100 most recent records.",
      database: databaseName,
      workGroup: workgroup.ref,
      queryString: query,
    });

    const arn = (resource: string) => `${bucket.bucketArn}${resource}`;
    const glueArns = [
      `arn:${Aws.PARTITION}:glue:${Aws.REGION}:${Aws.ACCOUNT_ID}:catalog`,
      `arn:${Aws.PARTITION}:glue:${Aws.REGION}:${Aws.ACCOUNT_ID}:database/${databaseName}`,
      `arn:${Aws.PARTITION}:glue:${Aws.REGION}:${Aws.ACCOUNT_ID}:table/${databaseName}/*`,
    ];
    // Without a condition: S3 answers a GetObject of a missing key with 404 only to a caller that
    // may list the bucket (else 403), and that implicit check carries no s3:prefix.
    const listTheBucket = () => new iam.PolicyStatement({ sid: "ListTheBucket", actions: ["s3:ListBucket"], resources: [bucket.bucketArn] });

    type Role = "ingest" | "compact" | "catalog" | "watch";
    const fn = (name: Role, id: string, memorySize: number, timeout: number, description: string,
      env: Record<string, string>, statements: iam.PolicyStatement[]) => {
      const logGroup = new logs.LogGroup(this, `${id}LogGroup`, {
        logGroupName: `/aws/lambda/${this.stackName}-${name}`,
        retention: p.logRetention,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      // The data functions read the bucket and the configuration; the watch reads only the mapping.
      const data = name !== "watch";
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
        environment: {
          ...(data ? { TRIBUTARY_BUCKET: bucketName, TRIBUTARY_CONFIG: p.tributaryConfig } : {}),
          TRIBUTARY_METRICS_NAMESPACE: namespace,
          RUST_LOG: "info",
          ...env,
        },
      });
      for (const s of statements) f.addToRolePolicy(s);
      if (key && data) f.addToRolePolicy(new iam.PolicyStatement({ sid: "UseTheBucketKey", actions: ["kms:Decrypt", "kms:GenerateDataKey"], resources: [key.keyArn] }));
      return f;
    };

    // Ingest: Kafka batches to Parquet.
    const ingestStatements = [
      new iam.PolicyStatement({
        sid: "ReadWriteTablesDeadLettersAndState",
        actions: ["s3:GetObject", "s3:PutObject"],
        resources: [arn("/tables/*"), arn("/dead-letter/*"), arn("/_tributary/*")],
      }),
      listTheBucket(),
      // The on-failure destination: Lambda writes a given-up batch's record with this role.
      new iam.PolicyStatement({ sid: "FailedBatchesToTheBucket", actions: ["s3:PutObject"], resources: [arn("/aws/lambda/*")] }),
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
      if (p.authSecretKmsKeyArn) {
        ingestStatements.push(new iam.PolicyStatement({
          sid: "DecryptTheKafkaCredentials",
          actions: ["kms:Decrypt"],
          resources: [p.authSecretKmsKeyArn],
          conditions: { StringEquals: { "kms:ViaService": `secretsmanager.${Aws.REGION}.amazonaws.com` } },
        }));
      }
    }
    const ingest = fn("ingest", "Ingest", p.ingestMemorySize, 300,
      "Kafka batches to Parquet on S3, exactly once; bad records to the dead-letter area.", {}, ingestStatements);

    const glueStatement = (sid: string, actions: string[]) => new iam.PolicyStatement({ sid, actions, resources: glueArns });
    const triggerQueue = new iam.PolicyStatement({ sid: "FailedTriggersToTheQueue", actions: ["sqs:SendMessage"], resources: [triggerFailures.queueArn] });
    const dbEnv = { TRIBUTARY_DATABASE: databaseName };
    const compact = fn("compact", "Compact", p.compactMemorySize, 900,
      "Merges a partition's small files into large deduplicated Parquet files and switches Athena readers atomically.",
      { ...dbEnv, TRIBUTARY_REPLACED_RETENTION_HOURS: String(p.replacedFilesRetentionHours) }, [
        new iam.PolicyStatement({
          sid: "ReadWriteTablesAndState",
          actions: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
          resources: [arn("/tables/*"), arn("/_tributary/*")],
        }),
        listTheBucket(),
        glueStatement("SwitchPartitionLocations", ["glue:GetPartition", "glue:UpdatePartition"]),
        triggerQueue,
      ]);
    const catalog = fn("catalog", "Catalog", 256, 120,
      "Creates and evolves Glue tables and registers partitions as data arrives; no crawler.", dbEnv, [
        // Schemas and partition states; the catalog lists data files but never reads them.
        new iam.PolicyStatement({ sid: "ReadState", actions: ["s3:GetObject"], resources: [arn("/_tributary/*")] }),
        listTheBucket(),
        glueStatement("ManageThisDatabase", ["glue:CreateDatabase", "glue:GetTable", "glue:CreateTable",
          "glue:UpdateTable", "glue:GetPartition", "glue:BatchCreatePartition", "glue:UpdatePartition"]),
        triggerQueue,
      ]);

    // Triggers: the Kafka event source; new ingest files through EventBridge; the schedules.
    // With infinite retries (the default; explicit retry settings need provisioned mode) and an
    // on-failure destination, Lambda retries a failing batch at most 10 times, then writes its
    // record, records included, to the bucket under aws/lambda/ (`tributary replay` ingests it).
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
      destinationConfig: { onFailure: { destination: bucket.bucketArn } },
    };
    const source = p.kafka.kind === "msk"
      ? new lambda.CfnEventSourceMapping(this, "IngestEventSource", {
        ...common,
        eventSourceArn: p.kafka.clusterArn,
        amazonManagedKafkaEventSourceConfig: { consumerGroupId: p.consumerGroupId },
      })
      : new lambda.CfnEventSourceMapping(this, "IngestSelfManagedEventSource", {
        ...common,
        selfManagedEventSource: { endpoints: { kafkaBootstrapServers: p.kafka.bootstrapServers } },
        selfManagedKafkaEventSourceConfig: { consumerGroupId: p.consumerGroupId },
      });
    // The role's grants (the destination's among them) exist before the mapping is created.
    source.node.addDependency(ingest);

    const newIngestFile: events.EventPattern = {
      source: ["aws.s3"],
      detailType: ["Object Created"],
      detail: { bucket: { name: [bucketName] }, object: { key: [{ prefix: "tables/" }] }, reason: ["PutObject"] },
    };
    for (const [id, f, schedule, input] of [
      ["Compact", compact, Duration.minutes(10), { tributary: "sweep" }],
      ["Catalog", catalog, Duration.hours(1), { tributary: "catalog-sync" }],
    ] as const) {
      // EventBridge retries its delivery to Lambda for a day; Lambda retries the function's errors twice.
      new events.Rule(this, `${id}NewIngestFile`, {
        eventPattern: newIngestFile,
        targets: [new targets.LambdaFunction(f, { retryAttempts: 185, maxEventAge: Duration.hours(24), deadLetterQueue: triggerFailures })],
      });
      new events.Rule(this, `${id}Schedule`, {
        schedule: events.Schedule.rate(schedule),
        targets: [new targets.LambdaFunction(f, { event: events.RuleTargetInput.fromObject(input) })],
      });
      // The function's own statement grants sqs:SendMessage, all the delivery needs; CDK's
      // SqsDestination would also grant sqs:GetQueueAttributes and sqs:GetQueueUrl, which nothing calls.
      const sendOnly: lambda.IDestination = { bind: () => ({ destination: triggerFailures.queueArn }) };
      f.configureAsyncInvoke({ retryAttempts: 2, onFailure: sendOnly });
    }

    // Each failure record the event source mapping writes notifies the alarm topic with its key.
    const failedBatchRule = new events.Rule(this, "IngestFailedBatchRule", {
      description: "A batch the event source mapping gave up on was written to the data bucket under aws/lambda/.",
      eventPattern: {
        source: ["aws.s3"],
        detailType: ["Object Created"],
        detail: { bucket: { name: [bucketName] }, object: { key: [{ prefix: "aws/lambda/" }] } },
      },
    });
    const recordBucket = events.EventField.fromPath("$.detail.bucket.name");
    const recordKey = events.EventField.fromPath("$.detail.object.key");
    failedBatchRule.addTarget({
      bind: () => ({
        id: "AlarmTopic",
        arn: topic.topicArn,
        input: events.RuleTargetInput.fromText(
          "Tributary: the event source mapping gave up on a batch after its retries; its records are not in the table. " +
          `The batch is in s3://${recordBucket}/${recordKey}. Ingest it again with tributary replay --aws --bucket ${recordBucket} (docs/runbook.md).`),
      }),
    });
    topic.addToResourcePolicy(new iam.PolicyStatement({
      sid: "FailedBatchRule",
      principals: [new iam.ServicePrincipal("events.amazonaws.com")],
      actions: ["sns:Publish"],
      resources: [topic.topicArn],
      conditions: { ArnEquals: { "aws:SourceArn": failedBatchRule.ruleArn } },
    }));

    // Watch: a stopped mapping (disabled, or failing to authenticate) invokes nothing, so the
    // ingest function's metrics go missing as they do for an idle topic. The watch reads the
    // mapping every 5 minutes and emits IngestSourceStopped.
    const watch = fn("watch", "Watch", 128, 30,
      "Checks the Kafka event source mapping's state every 5 minutes (metric IngestSourceStopped).",
      { TRIBUTARY_EVENT_SOURCE_MAPPING: source.ref }, [
        new iam.PolicyStatement({
          sid: "ReadTheEventSourceMapping",
          actions: ["lambda:GetEventSourceMapping"],
          resources: [`arn:${Aws.PARTITION}:lambda:${Aws.REGION}:${Aws.ACCOUNT_ID}:event-source-mapping:${source.ref}`],
        }),
      ]);
    new events.Rule(this, "WatchSchedule", {
      schedule: events.Schedule.rate(Duration.minutes(5)),
      targets: [new targets.LambdaFunction(watch, { event: events.RuleTargetInput.fromObject({ tributary: "watch" }) })],
    });

    // Alarms: every way the pipeline can stop or lose sight of data.
    const action = new cwActions.SnsAction(topic);
    const alarm = (id: string, description: string, metric: cw.IMetric, threshold: number, evaluationPeriods = 1,
      missing = cw.TreatMissingData.NOT_BREACHING, ok = true) => {
      const a = new cw.Alarm(this, id, {
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: missing,
      });
      a.addAlarmAction(action);
      if (ok) a.addOkAction(action);
      return a;
    };
    const five = Duration.minutes(5);
    const fns = [["Ingest", ingest, 300], ["Compact", compact, 900], ["Catalog", catalog, 120], ["Watch", watch, 30]] as const;
    for (const [id, f, timeout] of fns) {
      alarm(`${id}ErrorsAlarm`, `The ${id.toLowerCase()} function failed invocations (see docs/runbook.md).`, f.metricErrors({ period: five, statistic: "Sum" }), 1);
      alarm(`${id}ThrottlesAlarm`, `The ${id.toLowerCase()} function was throttled.`, f.metricThrottles({ period: five, statistic: "Sum" }), 1);
      alarm(`${id}DurationAlarm`, `An invocation of the ${id.toLowerCase()} function took over 80 % of its timeout.`,
        f.metricDuration({ period: five, statistic: "Maximum" }), timeout * 800);
    }
    const tributary = (name: string, fnName: string, statistic: string, period = five) =>
      new cw.Metric({ namespace, metricName: name, dimensionsMap: { Function: fnName }, statistic, period });
    // Missing OffsetLag keeps the alarm's state: an idle topic neither raises nor clears it, and a
    // stopped mapping does not clear it either (IngestSourceStoppedAlarm covers a stopped mapping).
    alarm("IngestOffsetLagAlarm", "Ingest is falling behind the topic: records are waiting in Kafka.",
      new cw.Metric({ namespace: "AWS/Lambda", metricName: "OffsetLag", dimensionsMap: { FunctionName: ingest.functionName }, statistic: "Maximum", period: five }),
      p.offsetLagThreshold, 3, cw.TreatMissingData.IGNORE);
    alarm("IngestSourceStoppedAlarm", "The Kafka event source mapping is disabled or failing, or the watch stopped reporting (missing data breaches).",
      tributary("IngestSourceStopped", "watch", "Maximum", Duration.minutes(10)), 1, 1, cw.TreatMissingData.BREACHING);
    alarm("IngestDeadLetteredAlarm", "Records were dead-lettered; inspect and replay them.", tributary("DeadLettered", "ingest", "Sum"), 1,
      1, cw.TreatMissingData.NOT_BREACHING, false);
    // A sudden rise of rows with a field in _rescued_data: an anomaly detection alarm, above the band
    // CloudWatch learns from the metric's history (ThresholdMetricId names the band, no Threshold).
    // The same expression as template.yaml's, rather than AnomalyDetectionAlarm's (which names its metric m0).
    const rowsRescued = tributary("RowsRescued", "ingest", "Sum");
    // The band's model, declared as template.yaml's IngestRescuedRowsDetector is: the alarm's m1
    // exactly (one model per metric and statistic). CloudWatch would create it with the alarm, but
    // such a model belongs to no stack and stays behind; this one goes with the stack. The alarm
    // depends on it, so the model is created before the alarm and deleted after it.
    const rescuedModel = new cw.CfnAnomalyDetector(this, "IngestRescuedRowsDetector", {
      singleMetricAnomalyDetector: {
        namespace: rowsRescued.namespace,
        metricName: rowsRescued.metricName,
        dimensions: Object.entries(rowsRescued.dimensions ?? {}).map(([name, value]) => ({ name, value: String(value) })),
        stat: rowsRescued.statistic,
      },
    });
    const rescued = new cw.Alarm(this, "IngestRescuedRowsAlarm", {
      alarmDescription: "More rows than usual had a field moved to _rescued_data: a producer sends a field whose value does not fit its column.",
      metric: new cw.MathExpression({ expression: "ANOMALY_DETECTION_BAND(m1, 2)", usingMetrics: { m1: rowsRescued }, period: five }),
      threshold: cw.Alarm.ANOMALY_DETECTION_NO_THRESHOLD,
      evaluationPeriods: 1,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_UPPER_THRESHOLD,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    rescued.node.addDependency(rescuedModel);
    rescued.addAlarmAction(action);
    const failedBatches = new cw.Metric({ namespace: "AWS/Events", metricName: "TriggeredRules", dimensionsMap: { RuleName: failedBatchRule.ruleName }, statistic: "Sum", period: five });
    alarm("IngestFailedBatchesAlarm", "The event source mapping gave up on a batch and wrote it under aws/lambda/; run tributary replay.", failedBatches, 1);
    const deliveryFailures = ingest.metric("DestinationDeliveryFailures", { period: five, statistic: "Sum" });
    alarm("IngestDestinationDeliveryFailuresAlarm", "Lambda could not write a failed batch to the on-failure destination.", deliveryFailures, 1);
    alarm("TriggerFailuresAlarm", "Compaction or catalog triggers failed after all retries in the last 5 minutes.",
      triggerFailures.metricNumberOfMessagesSent({ period: five, statistic: "Sum" }), 1);
    alarm("CompactionLagAlarm", "Ingest files wait too long to be compacted, or the sweep stopped reporting.",
      tributary("CompactionLag", "compact", "Maximum", Duration.minutes(15)), p.compactionLagThresholdSeconds, 2, cw.TreatMissingData.BREACHING);
    alarm("CompactIncompatibleFilesAlarm", "A data file's schema conflicts with its partition.", tributary("IncompatibleFiles", "compact", "Sum"), 1,
      1, cw.TreatMissingData.NOT_BREACHING, false);
    alarm("CatalogSchemaConflictsAlarm", "A column changed type in a way Athena cannot read; the change was refused.",
      tributary("SchemaConflicts", "catalog", "Sum"), 1, 1, cw.TreatMissingData.NOT_BREACHING, false);

    // The dashboard: the same widgets as template.yaml's.
    const all = fns.map(([, f]) => f);
    const graph = (title: string, left: cw.IMetric[], right: cw.IMetric[] = []) =>
      new cw.GraphWidget({ title, left, right, width: 12, height: 6 });
    const dashboard = new cw.Dashboard(this, "Dashboard", { dashboardName: `${this.stackName}-pipeline` });
    dashboard.addWidgets(
      graph("Ingest: records in, rows written, dead-lettered, rows rescued",
        ["RecordsIn", "RowsWritten", "DeadLettered", "RowsRescued"].map((m) => tributary(m, "ingest", "Sum"))),
      graph("Kafka offset lag (records behind)",
        [new cw.Metric({ namespace: "AWS/Lambda", metricName: "OffsetLag", dimensionsMap: { FunctionName: ingest.functionName }, statistic: "Maximum", period: Duration.minutes(1) })]),
    );
    dashboard.addWidgets(
      graph("Errors and throttles", [...all.map((f) => f.metricErrors({ period: five, statistic: "Sum" })), ...all.map((f) => f.metricThrottles({ period: five, statistic: "Sum" }))]),
      graph("Duration (max, ms)", all.map((f) => f.metricDuration({ period: five, statistic: "Maximum" }))),
    );
    dashboard.addWidgets(
      graph("Compaction: lag (s) and partitions compacted", [tributary("CompactionLag", "compact", "Maximum")], [tributary("PartitionsCompacted", "compact", "Sum")]),
      graph("Schema conflicts, incompatible files, failed triggers", [tributary("SchemaConflicts", "catalog", "Sum"), tributary("IncompatibleFiles", "compact", "Sum"),
        triggerFailures.metricNumberOfMessagesSent({ period: five, statistic: "Sum" })]),
    );
    dashboard.addWidgets(
      graph("Event source stopped (1: disabled or failing, checked every 5 minutes)", [tributary("IngestSourceStopped", "watch", "Maximum")]),
      graph("Failed batches (records under aws/lambda/) and failed deliveries", [failedBatches, deliveryFailures]),
    );

    new CfnOutput(this, "DataBucketName", { value: bucketName, description: "Tables under tables/, dead letters under dead-letter/, failed batches under aws/lambda/." });
    for (const [id, f] of fns) new CfnOutput(this, `${id}FunctionName`, { value: f.functionName });
    new CfnOutput(this, "GlueDatabaseOutput", { value: databaseName });
    new CfnOutput(this, "AthenaWorkGroupOutput", { value: workgroup.ref });
    new CfnOutput(this, "AthenaQuery", { value: query, description: "A ready query (tributary query --athena, or the Athena console in this workgroup)." });
    new CfnOutput(this, "MetricsNamespace", { value: namespace });
    new CfnOutput(this, "FailedBatches", { value: `s3://${bucketName}/aws/lambda/`, description: "Batches the event source mapping gave up on (tributary replay ingests them)." });
    new CfnOutput(this, "DashboardOutput", {
      value: `https://${Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region=${Aws.REGION}#dashboards:name=${this.stackName}-pipeline`,
    });
    new CfnOutput(this, "AlarmTopicArn", { value: topic.topicArn });
  }
}
