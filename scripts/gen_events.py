#!/usr/bin/env python3
"""Writes the sample events in events/ (run from the repository root). The events are committed;
this script documents how they were made and regenerates them identically."""
import base64, json, os

T0 = 1795316400000  # 2026-11-22T03:00:00Z


def b64(b):
    return None if b is None else base64.b64encode(b).decode()


def rec(topic, partition, offset, value, key=None, ts=T0, headers=(), tstype="CREATE_TIME"):
    if isinstance(value, (dict, list)):
        value = json.dumps(value).encode()
    return {
        "topic": topic, "partition": partition, "offset": offset, "timestamp": ts,
        "timestampType": tstype, "key": b64(key), "value": b64(value) if isinstance(value, bytes) else value,
        "headers": [{k: [x - 256 if x > 127 else x for x in v]} for k, v in headers],
    }


def customer(i):
    return {"name": f"Customer {i}", "mail": f"c{i}@example.com", "job": "Engineer", "address": f"{i} Main St",
            "country": ["DE", "FR", "GB"][i % 3], "age": 20 + i, "salary": 50000 + 1000 * i,
            "register_date": f"2026-11-{10 + i:02d}", "timestamp": f"2026-11-22T03:{i:02d}:00.{i:06d}"}


def transaction(i):
    return {"branch": ["Moscow", "London", "Berlin", "Paris"][i % 4], "currency": ["RUB", "USD", "EUR", "GBP"][i % 4],
            "amount": (-1 if i % 2 else 1) * (100 + 17 * i)}


msk = {
    "eventSource": "aws:kafka",
    "eventSourceArn": "arn:aws:kafka:us-east-1:123456789012:cluster/tributary-demo/1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d-2",
    "bootstrapServers": "b-1.tributary-demo.abc123.c2.kafka.us-east-1.amazonaws.com:9098",
    "records": {
        "customer_data-0": [rec("customer_data", 0, 100 + i, customer(i), key=f"cust-{i}".encode(), ts=T0 + i * 60000,
                                headers=[("source", b"crm")]) for i in range(5)],
        "customer_data-1": [rec("customer_data", 1, 40 + i, customer(10 + i), key=f"cust-{10 + i}".encode(),
                                ts=T0 + 3600000 + i) for i in range(3)],
        "transaction-events-0": [rec("transaction-events", 0, 7 + i, transaction(i), key=f"tx-{i}".encode(),
                                     ts=T0 + i * 1000, headers=[("trace-id", bytes([0xde, 0xad, 0xbe, 0xef]))],
                                     tstype="LOG_APPEND_TIME") for i in range(6)],
    },
}

names = [
    {"name": "Ann", "gender": "F", "address": "1 Elm St", "city": "Oslo", "nation": "NO",
     "zip": "340282366920938463463374607431768211455", "latitude": 59.91, "longitude": 10.75, "email": "ann@example.com"},
]
self_managed = {
    "eventSource": "SelfManagedKafka",
    "bootstrapServers": "kafka-1.internal:9092,kafka-2.internal:9092",
    "records": {
        "names_topic-0": [
            rec("names_topic", 0, 0, names[0]),
            # zip is an md5 hash sent as a 128-bit JSON integer: dead-lettered, never truncated.
            rec("names_topic", 0, 1, b'{"name":"Bob","gender":"M","address":"2 Oak St","city":"Rome","nation":"IT",'
                                     b'"zip":200867534837927370364254437591549731301,"latitude":41.9,"longitude":12.5,'
                                     b'"email":"bob@example.com"}'),
            rec("names_topic", 0, 2, {"name": "Cy", "gender": "X", "address": "3 Ash St", "city": "Lima", "nation": "PE",
                                      "zip": "e3b0c44298fc1c149afbf4c8996fb924", "latitude": -12.05, "longitude": -77.04,
                                      "email": "cy@example.com"}),
        ],
    },
}

bad_values = [
    b'{"branch": "Paris", "currency": "EUR", "amount": 5',          # truncated JSON
    b'\xff\xfe{"amount": 1}',                                        # invalid UTF-8
    b'[{"amount": 1}]',                                              # not an object
    b'"just a string"',                                              # not an object
    b'{"branch": "Rome", "currency": "EUR", "amount": "lots"}',      # conflicts with bigint amount
    b'{"amount": 1, "amount": 2}',                                   # duplicate key
    b'\xef\xbb\xbf{"amount": 3}',                                    # byte-order mark
    b'{"amount": NaN}',                                              # not JSON
    None,                                                            # tombstone
]
bad = {
    "eventSource": "aws:kafka",
    "eventSourceArn": "arn:aws:kafka:us-east-1:123456789012:cluster/tributary-demo/1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d-2",
    "bootstrapServers": "b-1.tributary-demo.abc123.c2.kafka.us-east-1.amazonaws.com:9098",
    "records": {
        "transaction-events-1": [rec("transaction-events", 1, 500, transaction(1))]
        + [rec("transaction-events", 1, 501 + i, v) for i, v in enumerate(bad_values)]
        + [dict(rec("transaction-events", 1, 510, None), value="%%% not base64 %%%")],
    },
}

s3_put = {"Records": [{
    "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2026-11-22T03:05:00.000Z",
    "eventName": "ObjectCreated:Put", "userIdentity": {"principalId": "AWS:AROAEXAMPLE:tributary-ingest"},
    "requestParameters": {"sourceIPAddress": "10.0.0.1"},
    "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
    "s3": {"s3SchemaVersion": "1.0", "configurationId": "tributary-compact",
           "bucket": {"name": "tributary-demo-data", "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                      "arn": "arn:aws:s3:::tributary-demo-data"},
           "object": {"key": "tables/customer_data/dt%3D2026-11-22/hr%3D03/part-customer_data%7E0%7E00000000000000000100%7E00000000000000000104.parquet",
                      "size": 5120, "eTag": "0123456789abcdef0123456789abcdef", "sequencer": "0A1B2C3D4E5F678901"}}}]}

eventbridge = {
    "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created", "source": "aws.s3",
    "account": "123456789012", "time": "2026-11-22T03:05:00Z", "region": "us-east-1",
    "resources": ["arn:aws:s3:::tributary-123456789012-us-east-1"],
    "detail": {"version": "0", "bucket": {"name": "tributary-123456789012-us-east-1"},
               "object": {"key": "tables/customer_data/dt=2026-11-22/hr=03/part-customer_data~0~00000000000000000100~00000000000000000104.parquet",
                          "size": 5120, "etag": "0123456789abcdef0123456789abcdef", "sequencer": "0A1B2C3D4E5F678901"},
               "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "source-ip-address": "10.0.0.1", "reason": "PutObject"}}

os.makedirs("events", exist_ok=True)
for name, ev, indent in [("msk-batch.json", msk, 2), ("self-managed-kafka-batch.json", self_managed, 2),
                         ("bad-records.json", bad, 2), ("s3-put.json", s3_put, 2),
                         ("eventbridge-object-created.json", eventbridge, 2),
                         ("compact-sweep.json", {"tributary": "sweep"}, None),
                         ("catalog-sync.json", {"tributary": "catalog-sync"}, None)]:
    with open(os.path.join("events", name), "w") as f:
        json.dump(ev, f, indent=indent)
        f.write("\n")
print("wrote events/")
