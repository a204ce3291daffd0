#!/usr/bin/env python3
"""The IAM check: every AWS call the functions really made (recorded by the integration tests,
tests/support/calls.rs) must be allowed by its function's role in the SAM-transformed template
and in `cdk synth`'s template; and every action a role is granted must be exercised by some
recorded call, or be listed below as used by an AWS service on the function's behalf.

Usage:
  iam_check.py --calls DIR --template sam=PATH --template cdk=PATH [--param K=V ...]
               [--service-used FILE]

--service-used FILE: a JSON object {"action-pattern[ on resource-pattern]": "reason"} adding to
SERVICE_USED below. Exit status 0 when everything is allowed and used, 1 otherwise (a denied call,
an unused grant, a call the check cannot map, an intrinsic it cannot resolve, or no calls at all).

The rules followed, with the AWS documentation page each comes from (checked with the docs search
on 2026-12-04; "not confirmed" means no AWS page said it in the excerpts found):
- "Policy evaluation logic" (IAM User Guide): an explicit Deny overrides any Allow; no Allow is an
  implicit deny. Identity policies only: no bucket, key or SCP policies.
- "IAM JSON policy elements: Condition operators": a key absent from the request context makes a
  condition false, except negated operators (StringNotLike, ArnNotLike...) which are then true,
  ...IfExists (true) and Null (tests presence). Confirmed.
- "Single-valued vs. multivalued context keys": ForAllValues is true when the key is absent,
  ForAnyValue false. Confirmed.
- "IAM JSON policy elements: Condition": several values of one key are OR'd; several keys and
  several operators are AND'd.
- "IAM JSON policy elements: Action" / "Resource": actions match case-insensitively, resources
  case-sensitively, both with * and ? wildcards; "Condition operators" (ARN section): an ARN is
  compared segment by segment (the six colon-separated parts).
- "HeadObject" / "GetObject" (S3 API Reference, Permissions): a missing key answers 404 only to a
  caller with s3:ListBucket on the bucket, else 403. Confirmed (also /tmp/research question 1).
  That implicit check is modelled as s3:ListBucket on the bucket with NO s3:prefix in its context:
  no AWS page says which context S3 uses for it (not confirmed), so a grant conditioned on s3:prefix
  is taken not to satisfy it (fails closed).
- "Actions, resources, and condition keys for Amazon S3": ListObjects(V2) is s3:ListBucket on the
  bucket ARN with s3:prefix, s3:delimiter, s3:max-keys; HeadObject is s3:GetObject;
  multipart parts and completion are s3:PutObject; AbortMultipartUpload its own action.
- "CopyObject" (S3 API Reference): read on the source, write on the destination; the tagging
  directive defaults to COPY (confirmed, research question 2). That COPY needs
  s3:GetObjectTagging on the source and s3:PutObjectTagging on the destination is NOT confirmed
  (no AWS excerpt said it): modelled so, failing closed.
- "DeleteObjects" (S3 API Reference): needs s3:DeleteObject on every key in the request body.
- "Specifying AWS Glue resource ARNs": catalog, database/DB and table/DB/TABLE ARNs (confirmed);
  Athena's "Configure access to databases and tables in the AWS Glue Data Catalog": partitions are
  controlled at the table level. Which ARNs each Glue call needs (catalog + database for database
  calls, + table for table and partition calls, table/DB/* for GetTables) is the usual practice,
  not confirmed per action (research question 13).
- Lambda: GetEventSourceMapping is lambda:GetEventSourceMapping on
  arn:aws:lambda:R:A:event-source-mapping:UUID (research question 7).
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import re
import sys
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
STACK_NAME = "tributary-test"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK_NAME}/0a1b2c3d-1111-2222-3333-444455556666"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": PARTITION,
    "AWS::StackName": STACK_NAME,
    "AWS::StackId": STACK_ID,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NotificationARNs": [],
}

# The parameter set scripts/validate-template.sh synthesizes CDK with: an MSK source.
DEFAULT_PARAMS = {
    "KafkaSource": "msk",
    "MskClusterArn": f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/tributary/0a1b2c3d-1",
    "KafkaTopic": "customer_data",
}

# Grants no recorded call exercises because an AWS service uses them with the function's role.
# Key: "[role] <action pattern> on <resource pattern>"; the role and the resource are optional.
SERVICE_USED = {
    "[ingest] kafka:*": "the event source mapping reads MSK with the function's role",
    "[ingest] kafka-cluster:*": "the event source mapping reads MSK with the function's role",
    "[ingest] ec2:*NetworkInterface*": "the event source mapping's VPC access (its network interfaces)",
    "[ingest] ec2:DescribeVpcs": "the event source mapping's VPC access",
    "[ingest] ec2:DescribeSubnets": "the event source mapping's VPC access",
    "[ingest] ec2:DescribeSecurityGroups": "the event source mapping's VPC access",
    "ec2:*PrivateIpAddresses": "Lambda's VPC access (AWSLambdaVPCAccessExecutionRole)",
    "[ingest] secretsmanager:GetSecretValue": "the event source mapping reads the SASL secret",
    "kms:Decrypt": "S3 uses it for SSE-KMS on the function's behalf; the event source mapping "
    "reads the SASL secret through Secrets Manager (kms:ViaService)",
    "kms:GenerateDataKey*": "S3 uses it for SSE-KMS on the function's behalf",
    # "Capturing discarded batches for Amazon MSK and self-managed Apache Kafka event sources":
    # Lambda writes the failed batch to the S3 destination with the function's role (s3:PutObject
    # and s3:ListBucket). The key layout under aws/lambda/ is not confirmed (research question 6).
    "[ingest] s3:PutObject on arn:*:s3:::*/aws/lambda/*": "Lambda writes failed-batch records with the function's role",
    "[ingest] s3:ListBucket on arn:*:s3:::*": "Lambda writes failed-batch records with the function's role "
    "(the S3 on-failure destination needs s3:ListBucket too)",
    "sqs:SendMessage": "Lambda destinations / EventBridge dead-letter queue",
    "logs:*": "Lambda writes the function's logs",
    "xray:*": "Lambda sends the function's traces (Tracing: Active)",
}

# AWS managed policies the templates attach, as the actions they grant (on "*").
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
    "AWSXRayDaemonWriteAccess": ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                                 "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"],
    "AWSXrayWriteOnlyAccess": ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                               "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"],
    "AWSLambdaVPCAccessExecutionRole": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                                        "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
                                        "ec2:DescribeSubnets", "ec2:DeleteNetworkInterface",
                                        "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"],
}

ROLES = ("ingest", "compact", "catalog", "watch")


class CheckError(Exception):
    """Something the check cannot decide: it fails rather than guess."""


# --------------------------------------------------------------------------------------------
# Recorded calls and the authorization requests they make
# --------------------------------------------------------------------------------------------

@dataclass
class Call:
    role: str
    service: str
    method: str
    uri: str
    headers: dict
    body: str | None
    status: int | None
    where: str  # file:line

    def brief(self) -> str:
        return f"{self.role} {self.method} {self.uri} ({self.status})"


@dataclass
class Request:
    action: str
    resource: str
    context: dict = field(default_factory=dict)  # lower-case key -> list of values
    known_keys: frozenset = frozenset()  # keys whose absence is real (not merely unknown to us)
    why: str = ""  # which part of the call this is, for messages


@dataclass
class Stack:
    """What the calls' names stand for in one template."""
    bucket: str
    database: str | None
    esm_uuid: str | None


def load_calls(directory: Path) -> list[Call]:
    if not directory.is_dir():
        raise CheckError(f"no calls directory {directory}")
    calls = []
    for path in sorted(directory.rglob("*.jsonl")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                calls.append(parse_call(line, f"{path}:{n}"))
    return calls


def parse_call(line: str, where: str) -> Call:
    try:
        d = json.loads(line)
        headers = {k.lower(): v for k, v in (d.get("headers") or {}).items()}
        return Call(d["role"], d["service"], d["method"].upper(), d["uri"], headers, d.get("body"),
                    d.get("status"), where)
    except (ValueError, KeyError, AttributeError) as e:
        raise CheckError(f"{where}: not a call line ({e}): {line[:200]}") from None


def requests_for(call: Call, stack: Stack) -> list[Request]:
    mappers = {"s3": s3_requests, "glue": glue_requests, "lambda": lambda_requests}
    if call.service not in mappers:
        raise CheckError(f"{call.where}: service {call.service!r} is not mapped: {call.brief()}")
    return mappers[call.service](call, stack)


# ---- S3 (path-style REST) -------------------------------------------------------------------

# Query parameters that select no other operation (anything else is an unmapped call).
S3_PLAIN_PARAMS = {"x-id", "list-type", "prefix", "delimiter", "max-keys", "continuation-token",
                   "start-after", "fetch-owner", "encoding-type", "marker", "partNumber", "uploadId",
                   "uploads", "delete", "tagging"}


def s3_target(call: Call, stack: Stack) -> tuple[str, str, dict]:
    """(bucket, key, query) with the bucket rewritten to the stack's data bucket."""
    parts = urlsplit(call.uri)
    bucket, _, raw_key = parts.path.lstrip("/").partition("/")
    if not bucket:
        raise CheckError(f"{call.where}: S3 call without a bucket (path-style expected): {call.brief()}")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = {k for k in query if k not in S3_PLAIN_PARAMS and not k.startswith("response-")}
    if unknown:
        raise CheckError(f"{call.where}: S3 subresource {sorted(unknown)} is not mapped: {call.brief()}")
    return stack.bucket, unquote(raw_key), query


def s3_operation(method: str, key: str, query: dict, headers: dict) -> str | None:
    """The S3 operation a path-style request is, from its method, key and subresources."""
    if not key:
        if method == "GET" and query.get("list-type") == "2":
            return "ListObjectsV2"
        if method == "GET" and "list-type" not in query:
            return "ListObjects"
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
        return None
    if "list-type" in query or "delete" in query:
        return None  # a bucket-level subresource on an object path: not an S3 operation
    return s3_object_operation(method, query, copy="x-amz-copy-source" in headers)


def s3_object_operation(method: str, query: dict, copy: bool) -> str | None:
    tagging, upload = "tagging" in query, "uploadId" in query
    if method == "GET" and not upload:  # GET ?uploadId is ListParts: not mapped
        return "GetObjectTagging" if tagging else "GetObject"
    if method == "HEAD" and not (tagging or upload):
        return "HeadObject"
    if method == "PUT":
        if tagging:
            return "PutObjectTagging"
        if upload:
            return "UploadPartCopy" if copy else "UploadPart"
        return "CopyObject" if copy else "PutObject"
    if method == "POST" and not tagging:
        if "uploads" in query:
            return "CreateMultipartUpload"
        return "CompleteMultipartUpload" if upload else None
    if method == "DELETE" and not tagging:  # DELETE ?tagging is DeleteObjectTagging: not mapped
        return "AbortMultipartUpload" if upload else "DeleteObject"
    return None


def s3_requests(call: Call, stack: Stack) -> list[Request]:
    bucket, key, query = s3_target(call, stack)
    op = s3_operation(call.method, key, query, call.headers)
    if op is None:
        raise CheckError(f"{call.where}: S3 request not mapped: {call.brief()}")
    if query.get("x-id") and query["x-id"] != op:
        raise CheckError(f"{call.where}: the SDK says {query['x-id']}, the mapping says {op}: {call.brief()}")
    return S3_MAPPERS[op](call, bucket, key, query)


def s3_arn(bucket: str, key: str | None = None) -> str:
    return f"arn:{PARTITION}:s3:::{bucket}" + ("" if key is None else f"/{key}")


LIST_KEYS = frozenset({"s3:prefix", "s3:delimiter", "s3:max-keys"})


def s3_list(call, bucket, key, query) -> list[Request]:
    # "Actions, resources, and condition keys for Amazon S3": ListBucket with s3:prefix,
    # s3:delimiter and s3:max-keys taken from the request's query (absent when not sent).
    names = {"prefix": "s3:prefix", "delimiter": "s3:delimiter", "max-keys": "s3:max-keys"}
    context = {names[k]: [v] for k, v in query.items() if k in names}
    return [Request("s3:ListBucket", s3_arn(bucket), context, LIST_KEYS, "list")]


def s3_read(call, bucket, key, query) -> list[Request]:
    out = [Request("s3:GetObject", s3_arn(bucket, key), why="read")]
    if call.status == 404:
        # "GetObject"/"HeadObject", Permissions: the 404 (not 403) means S3 checked s3:ListBucket
        # on the bucket; no listing, so no s3:prefix in that check's context.
        out.append(Request("s3:ListBucket", s3_arn(bucket), {}, LIST_KEYS, "implicit ListBucket of a 404"))
    return out


def s3_put(call, bucket, key, query) -> list[Request]:
    out = [Request("s3:PutObject", s3_arn(bucket, key), why="write")]
    if "x-amz-tagging" in call.headers:
        out.append(Request("s3:PutObjectTagging", s3_arn(bucket, key), why="x-amz-tagging header"))
    return out


def copy_source(call: Call) -> str:
    """The source key of a copy (its bucket stands for the data bucket too)."""
    source = unquote(call.headers["x-amz-copy-source"]).lstrip("/").split("?versionId=")[0]
    _bucket, _, src_key = source.partition("/")
    if not src_key:
        raise CheckError(f"{call.where}: copy source without a key: {call.headers['x-amz-copy-source']}")
    return src_key


def s3_copy(call, bucket, key, query) -> list[Request]:
    src = copy_source(call)
    out = [Request("s3:PutObject", s3_arn(bucket, key), why="copy destination"),
           Request("s3:GetObject", s3_arn(bucket, src), why="copy source")]
    # "CopyObject": x-amz-tagging-directive defaults to COPY, which reads the source's tags and
    # writes them on the destination (the permission pair is not confirmed; fails closed).
    if call.headers.get("x-amz-tagging-directive", "COPY").upper() == "COPY":
        out += [Request("s3:GetObjectTagging", s3_arn(bucket, src), why="tagging directive COPY"),
                Request("s3:PutObjectTagging", s3_arn(bucket, key), why="tagging directive COPY")]
    elif "x-amz-tagging" in call.headers:
        out.append(Request("s3:PutObjectTagging", s3_arn(bucket, key), why="x-amz-tagging header"))
    return out


def s3_upload_part_copy(call, bucket, key, query) -> list[Request]:
    # "UploadPartCopy": s3:GetObject on the source, s3:PutObject on the destination (no tags).
    return [Request("s3:PutObject", s3_arn(bucket, key), why="part copy destination"),
            Request("s3:GetObject", s3_arn(bucket, copy_source(call)), why="part copy source")]


def s3_delete_objects(call, bucket, key, query) -> list[Request]:
    # "DeleteObjects": s3:DeleteObject on each key named in the XML body.
    if not call.body:
        raise CheckError(f"{call.where}: DeleteObjects without its body: {call.brief()}")
    try:
        root = ET.fromstring(call.body)
    except ET.ParseError as e:
        raise CheckError(f"{call.where}: DeleteObjects body is not XML ({e})") from None
    keys = [el.text or "" for obj in root if obj.tag.endswith("Object") for el in obj if el.tag.endswith("Key")]
    if not keys:
        raise CheckError(f"{call.where}: DeleteObjects names no key: {call.brief()}")
    return [Request("s3:DeleteObject", s3_arn(bucket, k), why="multi-object delete") for k in keys]


def s3_simple(action: str, why: str):
    return lambda call, bucket, key, query: [Request(action, s3_arn(bucket, key), why=why)]


S3_MAPPERS = {
    "ListObjectsV2": s3_list,
    "ListObjects": s3_list,
    "GetObject": s3_read,
    "HeadObject": s3_read,
    "PutObject": s3_put,
    "CopyObject": s3_copy,
    "CreateMultipartUpload": s3_put,
    "UploadPart": s3_simple("s3:PutObject", "multipart part"),
    "UploadPartCopy": s3_upload_part_copy,
    "CompleteMultipartUpload": s3_simple("s3:PutObject", "multipart completion"),
    "AbortMultipartUpload": s3_simple("s3:AbortMultipartUpload", "multipart abort"),
    "DeleteObject": s3_simple("s3:DeleteObject", "delete"),
    "DeleteObjects": s3_delete_objects,
    "PutObjectTagging": s3_simple("s3:PutObjectTagging", "tagging"),
    "GetObjectTagging": s3_simple("s3:GetObjectTagging", "tagging"),
}


# ---- Glue (JSON 1.1) ------------------------------------------------------------------------

GLUE_DATABASE_OPS = {"GetDatabase", "CreateDatabase", "UpdateDatabase", "DeleteDatabase"}
GLUE_TABLE_OPS = {"GetTable", "CreateTable", "UpdateTable", "DeleteTable", "GetTableVersions",
                  "GetPartition", "GetPartitions", "CreatePartition", "UpdatePartition", "DeletePartition",
                  "BatchCreatePartition", "BatchGetPartition", "BatchUpdatePartition", "BatchDeletePartition"}
GLUE_TABLES_OPS = {"GetTables"}


def glue_names(op: str, body: dict, stack: Stack) -> tuple[str, str | None]:
    """(database, table) a Glue call names; the database stands for the stack's database."""
    if op in GLUE_DATABASE_OPS:
        db = body.get("Name") or (body.get("DatabaseInput") or {}).get("Name")
        table = None
    else:
        db = body.get("DatabaseName")
        table = body.get("TableName") or (body.get("TableInput") or {}).get("Name") or body.get("Name")
    if not db or (op in GLUE_TABLE_OPS and not table):
        raise CheckError(f"Glue {op} without the database or table it acts on: {body}")
    return stack.database or db, table


def glue_requests(call: Call, stack: Stack) -> list[Request]:
    target = call.headers.get("x-amz-target", "")
    if not target.startswith("AWSGlue."):
        raise CheckError(f"{call.where}: Glue call without x-amz-target AWSGlue.<Op>: {call.brief()}")
    op = target.removeprefix("AWSGlue.")
    if op not in GLUE_DATABASE_OPS | GLUE_TABLE_OPS | GLUE_TABLES_OPS:
        raise CheckError(f"{call.where}: Glue {op} is not mapped: {call.brief()}")
    try:
        body = json.loads(call.body or "{}")
    except ValueError:
        raise CheckError(f"{call.where}: Glue {op} body is not JSON") from None
    try:
        db, table = glue_names(op, body, stack)
    except CheckError as e:
        raise CheckError(f"{call.where}: {e}") from None
    # "Specifying AWS Glue resource ARNs": the catalog is the root of databases and tables; a call
    # needs every level it touches (partitions are controlled at the table level).
    base = f"arn:{PARTITION}:glue:{REGION}:{body.get('CatalogId') or ACCOUNT}"
    arns = [f"{base}:catalog", f"{base}:database/{db}"]
    if op in GLUE_TABLE_OPS:
        arns.append(f"{base}:table/{db}/{table}")
    if op in GLUE_TABLES_OPS:
        arns.append(f"{base}:table/{db}/*")
    return [Request(f"glue:{op}", arn, why=arn.split(":")[-1].split("/")[0]) for arn in arns]


# ---- Lambda (REST) --------------------------------------------------------------------------

def lambda_requests(call: Call, stack: Stack) -> list[Request]:
    m = re.fullmatch(r"/2015-03-31/event-source-mappings/([0-9a-fA-F-]{36})/?", urlsplit(call.uri).path)
    if call.method != "GET" or not m:
        raise CheckError(f"{call.where}: Lambda request not mapped: {call.brief()}")
    esm = stack.esm_uuid or m.group(1)
    arn = f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{esm}"
    return [Request("lambda:GetEventSourceMapping", arn, why="event source mapping")]


# --------------------------------------------------------------------------------------------
# Templates: CloudFormation intrinsics and each function role's policies
# --------------------------------------------------------------------------------------------

NO_VALUE = object()  # AWS::NoValue: the property or list item is dropped


def digest(*parts: str, n: int = 12) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


class Resolver:
    """Resolves the intrinsics of one template with one parameter set."""

    def __init__(self, template: dict, params: dict[str, str]):
        self.resources = template.get("Resources", {})
        self.conditions = template.get("Conditions", {})
        self.mappings = template.get("Mappings", {})
        self.params = self._parameters(template.get("Parameters", {}), params)
        self._condition_values: dict[str, bool] = {}

    @staticmethod
    def _parameters(declared: dict, given: dict) -> dict:
        values = {}
        for name, decl in declared.items():
            if name in given:
                value = given[name]
            elif "Default" in decl:
                value = decl["Default"]
            else:
                continue  # referenced without a value: an error when (only if) it is used
            if decl.get("Type", "").startswith(("CommaDelimitedList", "List<")):
                value = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
            values[name] = value if isinstance(value, list) else str(value)
        return values

    # -- entry points
    def resolve(self, value):
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if isinstance(value, dict):
            if len(value) == 1:
                (k, arg), = value.items()
                if k == "Ref" or k.startswith("Fn::") or (k == "Condition" and isinstance(arg, str)):
                    return self._intrinsic(k, arg)
            items = {k: self.resolve(v) for k, v in value.items()}
            return {k: v for k, v in items.items() if v is not NO_VALUE}
        return value

    def condition(self, name: str) -> bool:
        if name not in self._condition_values:
            if name not in self.conditions:
                raise CheckError(f"unknown condition {name}")
            self._condition_values[name] = bool(self.resolve(self.conditions[name]))
        return self._condition_values[name]

    def exists(self, logical: str) -> bool:
        res = self.resources[logical]
        return "Condition" not in res or self.condition(res["Condition"])

    # -- intrinsics
    def _intrinsic(self, fn: str, arg):
        handlers = {
            "Ref": self.ref, "Fn::Sub": self._sub, "Fn::GetAtt": self._get_att, "Fn::Join": self._join,
            "Fn::Select": self._select, "Fn::Split": self._split, "Fn::If": self._if,
            "Fn::Equals": self._equals, "Fn::Not": self._not, "Fn::And": self._and, "Fn::Or": self._or,
            "Condition": self.condition, "Fn::FindInMap": self._find_in_map,
        }
        if fn not in handlers:
            raise CheckError(f"intrinsic {fn} is not resolved by the check: {json.dumps({fn: arg})[:200]}")
        return handlers[fn](arg)

    def ref(self, name: str):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.params:
            return self.params[name]
        if name in self.resources:
            return self.physical_ref(name)
        raise CheckError(f"Ref {name}: no such parameter (or it has no value), pseudo parameter or resource")

    def _sub(self, arg):
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def one(m: re.Match) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                value = variables[name]
            elif "." in name and name not in PSEUDO:
                value = self._get_att(name.split(".", 1))
            else:
                value = self.ref(name)
            if not isinstance(value, (str, int, float)):
                raise CheckError(f"Fn::Sub ${{{name}}} is not a string: {value!r}")
            return str(value)

        return re.sub(r"\$\{([^}]*)\}", one, text)

    def _join(self, arg):
        delimiter, items = arg[0], self.resolve(arg[1])
        if not all(isinstance(i, str) for i in items):
            raise CheckError(f"Fn::Join of a non-string: {items!r}")
        return delimiter.join(items)

    def _select(self, arg):
        index, items = int(self.resolve(arg[0])), self.resolve(arg[1])
        return items[index]

    def _split(self, arg):
        return str(self.resolve(arg[1])).split(arg[0])

    def _if(self, arg):
        name, then, otherwise = arg
        return self.resolve(then if self.condition(name) else otherwise)

    def _equals(self, arg):
        a, b = (self.resolve(x) for x in arg)
        return str(a) == str(b) if not isinstance(a, (list, dict)) else a == b

    def _not(self, arg):
        return not self.resolve(arg[0])

    def _and(self, arg):
        return all(self.resolve(x) for x in arg)

    def _or(self, arg):
        return any(self.resolve(x) for x in arg)

    def _find_in_map(self, arg):
        name, top, second = (self.resolve(x) for x in arg)
        return self.mappings[name][top][second]

    # -- stand-ins for what CloudFormation would create
    def _type(self, logical: str) -> str:
        if logical not in self.resources:
            raise CheckError(f"no resource {logical}")
        if not self.exists(logical):
            raise CheckError(f"{logical} is referenced but its condition is false")
        return self.resources[logical]["Type"]

    NAME_PROPERTIES = {
        "AWS::S3::Bucket": "BucketName", "AWS::Lambda::Function": "FunctionName", "AWS::IAM::Role": "RoleName",
        "AWS::Logs::LogGroup": "LogGroupName", "AWS::Athena::WorkGroup": "Name", "AWS::Events::Rule": "Name",
        "AWS::SQS::Queue": "QueueName", "AWS::SNS::Topic": "TopicName",
        "AWS::IAM::ManagedPolicy": "ManagedPolicyName", "AWS::SecretsManager::Secret": "Name",
    }

    def name(self, logical: str) -> str:
        """The resource's name: its name property, or a generated stand-in as CloudFormation would."""
        t = self._type(logical)
        prop = self.resources[logical].get("Properties", {}).get(self.NAME_PROPERTIES.get(t, ""), NO_VALUE)
        value = self.resolve(prop) if prop is not NO_VALUE else NO_VALUE
        if value is not NO_VALUE and value != "":
            return str(value)
        if t == "AWS::Glue::Database":
            return str(self.resolve(self.resources[logical]["Properties"]["DatabaseInput"]["Name"]))
        generated = f"{STACK_NAME}-{logical}-{digest(STACK_ID, logical).upper()}"
        return generated.lower()[:63] if t == "AWS::S3::Bucket" else generated

    def uuid_of(self, logical: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{STACK_ID}/{logical}"))

    def physical_ref(self, logical: str):
        t = self._type(logical)
        arn_refs = {"AWS::SNS::Topic", "AWS::IAM::ManagedPolicy", "AWS::SecretsManager::Secret"}
        if t == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{self.name(logical)}"
        if t in arn_refs:
            return self._get_att([logical, "Arn"])
        if t in ("AWS::Lambda::EventSourceMapping", "AWS::KMS::Key"):
            return self.uuid_of(logical)
        return self.name(logical)

    def _get_att(self, arg):
        logical, attr = arg.split(".", 1) if isinstance(arg, str) else arg
        t = self._type(logical)
        name = self.name(logical) if t not in ("AWS::Lambda::EventSourceMapping", "AWS::KMS::Key") else None
        arns = {
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{name}",
            "AWS::SQS::Queue": f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::SNS::Topic": f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{name}",
            "AWS::KMS::Key": f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/{self.uuid_of(logical)}",
            "AWS::Lambda::Function": f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}",
            "AWS::IAM::ManagedPolicy": f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{name}",
            "AWS::Logs::LogGroup": f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
            "AWS::Events::Rule": f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:rule/{name}",
            "AWS::SecretsManager::Secret": f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf",
            "AWS::Lambda::EventSourceMapping":
                f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{self.uuid_of(logical)}",
        }
        others = {
            ("AWS::SQS::Queue", "QueueName"): name, ("AWS::SQS::Queue", "QueueUrl"): self.physical_ref(logical)
            if t == "AWS::SQS::Queue" else None,
            ("AWS::SNS::Topic", "TopicName"): name, ("AWS::SNS::Topic", "TopicArn"): arns.get(t),
            ("AWS::KMS::Key", "KeyId"): self.uuid_of(logical),
            ("AWS::Lambda::EventSourceMapping", "Id"): self.uuid_of(logical),
            ("AWS::Lambda::EventSourceMapping", "EventSourceMappingArn"): arns.get(t),
        }
        if attr == "Arn" and t in arns:
            return arns[t]
        if (t, attr) in others:
            return others[(t, attr)]
        raise CheckError(f"Fn::GetAtt {logical}.{attr} ({t}) is not resolved by the check")


@dataclass
class Statement:
    effect: str
    actions: list | None
    not_actions: list | None
    resources: list | None
    not_resources: list | None
    condition: dict
    label: str  # Sid, or policy#index


def statements_of(doc: dict, origin: str) -> list[Statement]:
    raw = doc.get("Statement", [])
    out = []
    for i, s in enumerate(raw if isinstance(raw, list) else [raw]):
        if "Principal" in s or "NotPrincipal" in s:
            raise CheckError(f"{origin}: an identity policy statement with a Principal: {s}")
        as_list = lambda v: None if v is None else (v if isinstance(v, list) else [v])  # noqa: E731
        st = Statement(s["Effect"], as_list(s.get("Action")), as_list(s.get("NotAction")),
                       as_list(s.get("Resource")), as_list(s.get("NotResource")), s.get("Condition") or {},
                       s.get("Sid") or f"{origin}#{i}")
        for r in (st.resources or []) + (st.not_resources or []):
            if not isinstance(r, str) or "${" in r:
                raise CheckError(f"{origin}: resource {r!r} is not resolved (policy variables are not supported)")
        out.append(st)
    return out


def managed_statements(arn: str) -> list[Statement]:
    name = arn.rsplit("/", 1)[-1]
    if not arn.startswith(f"arn:{PARTITION}:iam::aws:policy/") or name not in MANAGED_POLICIES:
        raise CheckError(f"managed policy {arn} is not known to the check (add it to MANAGED_POLICIES)")
    return [Statement("Allow", MANAGED_POLICIES[name], None, ["*"], None, {}, f"managed {name}")]


def attached_policies(r: Resolver, role: str) -> list[Statement]:
    """AWS::IAM::Policy / ManagedPolicy resources naming the role in Roles, and RolePolicy ones."""
    out, name = [], r.name(role)
    for logical, res in r.resources.items():
        kind, props = res.get("Type"), res.get("Properties", {})
        if kind not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy") \
                or not r.exists(logical):
            continue
        roles = [r.resolve(props["RoleName"])] if kind == "AWS::IAM::RolePolicy" else r.resolve(props.get("Roles", []))
        if name in roles:
            out += statements_of(r.resolve(props["PolicyDocument"]), logical)
    return out


def role_statements(r: Resolver, role: str) -> list[Statement]:
    """Every identity policy statement that applies to one IAM role of the template."""
    props = r.resources[role].get("Properties", {})
    out = []
    for p in r.resolve(props.get("Policies", [])):
        out += statements_of(p["PolicyDocument"], f"{role}/{p.get('PolicyName', '?')}")
    managed = props.get("ManagedPolicyArns", [])
    for raw in managed if isinstance(managed, list) else r.resolve(managed):
        if isinstance(raw, dict) and raw.get("Ref") in r.resources:
            continue  # a ManagedPolicy of this template: attached_policies() reads it
        value = r.resolve(raw)
        out += managed_statements(value) if value is not NO_VALUE else []
    return out + attached_policies(r, role)


def role_of_function(r: Resolver, logical: str) -> tuple[str | None, str]:
    """(role suffix of its FunctionName or None, the logical ID of its IAM role)."""
    props = r.resources[logical].get("Properties", {})
    suffix = str(r.resolve(props["FunctionName"])).rsplit("-", 1)[-1] if "FunctionName" in props else None
    role = props.get("Role")
    if not (isinstance(role, dict) and "Fn::GetAtt" in role):
        raise CheckError(f"{logical}: Role {role!r} is not a role of this template")
    att = role["Fn::GetAtt"]
    return (suffix if suffix in ROLES else None), (att.split(".")[0] if isinstance(att, str) else att[0])


def function_roles(template: dict, params: dict) -> tuple[dict[str, list[Statement]], Resolver, list[str]]:
    """{role suffix: statements} for every function of the template (FunctionName ends -<role>),
    and notes on the functions skipped (CDK's own helpers, with no such name)."""
    r = Resolver(template, params)
    roles, notes = {}, []
    for logical, res in r.resources.items():
        if res.get("Type") != "AWS::Lambda::Function" or not r.exists(logical):
            continue
        suffix, role = role_of_function(r, logical)
        if suffix is None:
            notes.append(f"function {logical} is not a -<role> function ({'/'.join(ROLES)}): not checked")
        elif suffix in roles:
            raise CheckError(f"two functions end with -{suffix}")
        else:
            roles[suffix] = role_statements(r, role)
    return roles, r, notes


def stack_names(r: Resolver) -> Stack:
    """The data bucket, the Glue database and the event source mapping the calls' names stand for."""
    def single(kind: str, prefer: str) -> str | None:
        found = [k for k, v in r.resources.items() if v.get("Type") == kind and r.exists(k)]
        if len(found) > 1:
            found = [k for k in found if k.startswith(prefer)] or found
        if len(found) > 1:
            raise CheckError(f"several {kind} resources ({found}): which do the calls stand for?")
        return found[0] if found else None

    bucket = single("AWS::S3::Bucket", "DataBucket")
    if bucket is None:
        raise CheckError("the template has no bucket")
    database = single("AWS::Glue::Database", "GlueDatabase")
    esm = single("AWS::Lambda::EventSourceMapping", "Ingest")
    return Stack(r.name(bucket), r.name(database) if database else None, r.uuid_of(esm) if esm else None)


# --------------------------------------------------------------------------------------------
# The evaluator
# --------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern:
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(rx, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM wildcards: * any run of characters, ? one character; nothing else is special."""
    return _wildcard(pattern, ignore_case).fullmatch(value) is not None


def arn_like(pattern: str, arn: str) -> bool:
    """ARNs compare segment by segment ("Condition operators", ARN condition operators)."""
    if pattern == "*":
        return True
    p, a = pattern.split(":", 5), arn.split(":", 5)
    if len(p) == 6 and len(a) == 6:
        return all(glob(x, y) for x, y in zip(p, a))
    return glob(pattern, arn)


NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
           "StringNotLike": "StringLike", "NumericNotEquals": "NumericEquals", "ArnNotEquals": "ArnEquals",
           "ArnNotLike": "ArnLike"}
NUMERIC = {"NumericEquals": lambda a, b: a == b, "NumericLessThan": lambda a, b: a < b,
           "NumericLessThanEquals": lambda a, b: a <= b, "NumericGreaterThan": lambda a, b: a > b,
           "NumericGreaterThanEquals": lambda a, b: a >= b}


def positive_match(op: str, value: str, wanted: list[str]) -> bool:
    """Does one request value match any of the condition's values (values are OR'd)?"""
    if op == "StringEquals":
        return value in wanted
    if op == "StringEqualsIgnoreCase":
        return value.lower() in (w.lower() for w in wanted)
    if op == "StringLike":
        return any(glob(w, value) for w in wanted)
    if op in ("ArnEquals", "ArnLike"):
        return any(arn_like(w, value) for w in wanted)
    if op == "Bool":
        return value.lower() in (w.lower() for w in wanted)
    if op in NUMERIC:
        try:
            return any(NUMERIC[op](float(value), float(w)) for w in wanted)
        except ValueError:
            return False
    raise CheckError(f"condition operator {op} is not supported by the check")


def key_holds(operator: str, values: list[str], present: list[str] | None) -> bool:
    """One operator on one key ("Condition operators"; "Single-valued vs. multivalued context keys")."""
    qualifier, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists") and op != "IfExists"
    op = op.removesuffix("IfExists") if if_exists else op
    if op == "Null":
        return any((present is None) == (v.lower() == "true") for v in values)
    base = NEGATED.get(op, op)
    if present is None:
        if if_exists or qualifier == "ForAllValues":
            return True
        return qualifier != "ForAnyValue" and op in NEGATED  # negated operators hold on an absent key
    one = (lambda v: not positive_match(base, v, values)) if op in NEGATED else \
        (lambda v: positive_match(base, v, values))
    if qualifier == "ForAllValues":
        return all(one(v) for v in present)
    if qualifier == "ForAnyValue":
        return any(one(v) for v in present)
    if qualifier:
        raise CheckError(f"condition qualifier {qualifier} is not known")
    if len(present) != 1:
        raise CheckError(f"{operator} on a multivalued key needs ForAnyValue/ForAllValues")
    return one(present[0])


@dataclass
class ConditionResult:
    holds: bool
    failed: str = ""  # the first operator/key that failed
    unknown: set = field(default_factory=set)  # keys the check cannot know


def conditions_hold(block: dict, req: Request) -> ConditionResult:
    """All operators and all keys must hold (AND); a key the check cannot know counts as absent."""
    result = ConditionResult(True)
    for operator, keys in block.items():
        for key, raw in keys.items():
            values = [str(v).lower() if isinstance(v, bool) else str(v) for v in
                      (raw if isinstance(raw, list) else [raw])]
            k = key.lower()
            if k not in req.context and k not in req.known_keys:
                result.unknown.add(key)
            present = req.context.get(k)
            if not key_holds(operator, values, present) and result.holds:
                result.holds = False
                result.failed = f"{operator} {key} {values} " + \
                    ("(key absent)" if present is None else f"(request has {present})")
    return result


def matches_action(st: Statement, action: str) -> list[str]:
    """The Action patterns that match (for NotAction: ['NotAction'] when none of its patterns do)."""
    if st.actions is not None:
        return [a for a in st.actions if glob(a, action, ignore_case=True)]
    return [] if any(glob(a, action, ignore_case=True) for a in st.not_actions or []) else ["NotAction"]


def matches_resource(st: Statement, arn: str) -> list[str]:
    if st.resources is not None:
        return [r for r in st.resources if arn_like(r, arn)]
    return [] if any(arn_like(r, arn) for r in st.not_resources or []) else ["NotResource"]


@dataclass
class Decision:
    allowed: bool
    denied_by: Statement | None = None
    allows: list = field(default_factory=list)  # (statement, action patterns, resource patterns)
    closest: str = ""
    unknown_keys: set = field(default_factory=set)


def near_miss(st: Statement, acts: list, ress: list, cond: ConditionResult) -> str:
    if not acts:
        return "action not granted"
    if not ress:
        return f"resource not in {st.resources}" if st.resources is not None else f"NotResource {st.not_resources}"
    return f"condition {cond.failed}"


def decide(statements: list[Statement], req: Request) -> Decision:
    """"Policy evaluation logic": an explicit Deny wins, else some Allow must match, else denied."""
    d = Decision(False)
    best = (-1, "")
    for st in statements:
        acts, ress = matches_action(st, req.action), matches_resource(st, req.resource)
        cond = conditions_hold(st.condition, req) if acts and ress else ConditionResult(False, "not reached")
        d.unknown_keys |= cond.unknown
        if st.effect == "Deny" and acts and ress and (cond.holds or cond.unknown):
            d.denied_by = st  # an unknowable key in a Deny: assume it applies (fail closed)
        elif st.effect == "Allow" and acts and ress and cond.holds:
            d.allows.append((st, acts, ress))
        elif st.effect == "Allow":
            score = 2 * bool(acts) + bool([r for r in ress if r != "*"])  # "*" is near nothing
            best = max(best, (score, f"{st.label}: {near_miss(st, acts, ress, cond)}"), key=lambda b: b[0])
    d.allowed = bool(d.allows) and d.denied_by is None
    d.closest = f"explicit Deny {d.denied_by.label}" if d.denied_by else \
        best[1] if best[0] > 0 else f"no statement grants {req.action}"
    return d


# --------------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------------

@dataclass
class Report:
    lines: list = field(default_factory=list)
    denied: int = 0
    unused: int = 0
    errors: int = 0
    summaries: list = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.denied or self.unused or self.errors else 0


def decisions_for(call: Call, stack: Stack, roles: dict) -> list[tuple[Request, Decision]]:
    statements = roles.get(call.role)
    missing = Decision(False, closest=f"the template has no function ending -{call.role}")
    return [(req, missing if statements is None else decide(statements, req)) for req in requests_for(call, stack)]


@dataclass
class Tally:
    """One template's results over all calls."""
    allowed: int = 0
    denied_calls: int = 0
    used: set = field(default_factory=set)  # (role, statement label, "action"|"resource", pattern)
    unknown_keys: set = field(default_factory=set)
    denials: dict = field(default_factory=dict)  # one line per distinct denial -> [text, count]

    def add(self, label: str, call: Call, decisions: list[tuple[Request, Decision]]) -> None:
        denied = False
        for req, d in decisions:
            self.unknown_keys |= d.unknown_keys
            if d.allowed:
                self.allowed += 1
                for st, acts, ress in d.allows:
                    self.used |= {(call.role, st.label, "action", a) for a in acts}
                    self.used |= {(call.role, st.label, "resource", r) for r in ress}
                continue
            denied = True
            key = (call.role, call.method, urlsplit(call.uri).path, call.status, req.action, req.resource)
            text = f"[{label}] DENIED {call.brief()}: {req.action} on {req.resource} ({req.why}); " \
                   f"closest: {d.closest}  [{call.where}]"
            self.denials.setdefault(key, [text, 0])[1] += 1
        self.denied_calls += denied

    def lines(self, label: str) -> list[str]:
        out = [text + (f" (x{n})" if n > 1 else "") for text, n in self.denials.values()]
        if self.unknown_keys:
            out.append(f"[{label}] note: condition keys the check cannot know (taken as absent): "
                       f"{sorted(self.unknown_keys)}")
        return out


def check_template(label: str, template: dict, params: dict, calls: list[Call],
                   service_used: dict, report: Report) -> None:
    roles, resolver, notes = function_roles(template, params)
    report.lines += [f"[{label}] note: {n}" for n in notes]
    stack = stack_names(resolver)
    tally = Tally()
    for call in calls:
        try:
            tally.add(label, call, decisions_for(call, stack, roles))
        except CheckError as e:
            report.errors += 1
            report.lines.append(f"[{label}] UNMAPPED {e}")
    report.lines += tally.lines(label)
    unused = unused_grants(roles, tally.used, service_used)
    report.lines += [f"[{label}] UNUSED {u}" for u in unused]
    report.denied += tally.denied_calls
    report.unused += len(unused)
    report.summaries.append(f"{label}: {len(calls)} calls, {tally.allowed} requests allowed")


def service_reason(role: str, action: str, resource: str, service_used: dict) -> str | None:
    """Why an AWS service (not our code) uses a grant, if SERVICE_USED says so."""
    for pattern, reason in service_used.items():
        m = re.fullmatch(r"(?:\[(\w+)\]\s*)?(\S+)(?: on (\S+))?", pattern.strip())
        if not m:
            raise CheckError(f"service-used pattern {pattern!r} is not '[role] action on resource'")
        who, act, res = m.groups()
        if who not in (None, role) or not glob(act, action, ignore_case=True):
            continue
        if res is None or arn_like(res, resource):
            return reason
    return None


def unused_grants(roles: dict, used: set, service_used: dict) -> list[str]:
    """Every action of every Allow statement, and every resource it names, must be exercised."""
    out = []
    for role, statements in sorted(roles.items()):
        for st in (s for s in statements if s.effect == "Allow"):
            out += [f"{role}: {st.label}: {u}" for u in unused_in(role, st, used, service_used)]
    return out


def unused_in(role: str, st: Statement, used: set, service_used: dict) -> list[str]:
    if st.actions is None:
        return ["NotAction in an Allow grants every other action; not checkable"]
    resources = st.resources or ["*"]  # NotResource: only its actions are checked
    actions = [a for a in st.actions if (role, st.label, "action", a) not in used
               and not all(service_reason(role, a, r, service_used) for r in resources)]
    if actions and len(actions) == len(st.actions):
        return [f"{', '.join(actions)} on {resources}: the statement is never exercised"]
    out = [f"{a} on {resources} is never exercised" for a in actions]
    out += [f"resource {r} ({', '.join(st.actions)}) is never exercised" for r in st.resources or []
            if (role, st.label, "resource", r) not in used
            and not any(service_reason(role, a, r, service_used) for a in st.actions)]
    return out


def run(calls_dir: Path, templates: dict[str, Path], params: dict, service_used: dict) -> Report:
    report = Report()
    try:
        calls = load_calls(calls_dir)
    except CheckError as e:
        report.errors += 1
        report.lines.append(f"error: {e}")
        return report
    if not calls:
        report.errors += 1
        report.lines.append(f"error: no recorded calls under {calls_dir} (a check that saw nothing fails)")
        return report
    unknown_roles = sorted({c.role for c in calls} - set(ROLES))
    if unknown_roles:
        report.lines.append(f"note: calls from roles {unknown_roles} (not one of {list(ROLES)})")
    for label, path in templates.items():
        try:
            template = json.loads(Path(path).read_text())
            check_template(label, template, params, calls, service_used, report)
        except (OSError, ValueError, CheckError) as e:
            report.errors += 1
            report.lines.append(f"[{label}] error: {e}")
    return report


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", required=True, type=Path, help="directory of recorded *.jsonl calls")
    ap.add_argument("--template", action="append", required=True, metavar="LABEL=PATH",
                    help="a CloudFormation JSON template (SAM-transformed or cdk synth)")
    ap.add_argument("--param", action="append", default=[], metavar="K=V", help="a template parameter")
    ap.add_argument("--service-used", type=Path, help="JSON {pattern: reason} added to SERVICE_USED")
    args = ap.parse_args(argv)
    pairs = lambda items, what: dict(_pair(i, what) for i in items)  # noqa: E731
    return args, pairs(args.template, "--template"), pairs(args.param, "--param")


def _pair(item: str, what: str) -> tuple[str, str]:
    k, sep, v = item.partition("=")
    if not sep or not k:
        raise SystemExit(f"{what} wants K=V, not {item!r}")
    return k, v


def main(argv=None) -> int:
    args, templates, given = parse_args(argv)
    service_used = dict(SERVICE_USED)
    if args.service_used:
        service_used.update(json.loads(args.service_used.read_text()))
    report = run(args.calls, {k: Path(v) for k, v in templates.items()}, {**DEFAULT_PARAMS, **given},
                 service_used)
    for line in report.lines:
        print(line)
    print(f"iam check: {'; '.join(report.summaries) or 'no template checked'}; {report.denied} denied, "
          f"{report.unused} unused grants" + (f", {report.errors} errors" if report.errors else ""))
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
