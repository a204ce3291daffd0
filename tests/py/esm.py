"""Makes or changes an event source mapping on a moto server, as a stand-in for the stack's Kafka
mapping (moto has no Kafka mappings; an SQS one has the same State field and API).
Usage: esm.py ENDPOINT create | esm.py ENDPOINT disable UUID | esm.py ENDPOINT enable UUID.
Prints JSON: {"uuid": ..., "state": ...}."""
import io
import json
import sys
import zipfile

import boto3

endpoint, action = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
lam = boto3.client("lambda", **kw)
if action == "create":
    iam = boto3.client("iam", **kw)
    role = iam.create_role(RoleName="ingest-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    lam.create_function(FunctionName="tributary-test-ingest", Runtime="provided.al2023", Role=role,
                        Handler="bootstrap", Code={"ZipFile": code.getvalue()})
    sqs = boto3.client("sqs", **kw)
    url = sqs.create_queue(QueueName="source")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="tributary-test-ingest")
else:
    m = lam.update_event_source_mapping(UUID=sys.argv[3], Enabled=(action == "enable"))
print(json.dumps({"uuid": m["UUID"], "state": m["State"]}))
