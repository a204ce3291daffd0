"""Reads the rescued-data column of Parquet files with pyarrow and DuckDB, and checks each row's
rescued fields against the record as it was sent.

Usage: read_rescued.py SENT.json FILE.parquet...  where SENT.json maps each Kafka offset to the
record's value (UTF-8 text). Prints, as JSON, per offset: the rescued keys in order, whether both
readers read the same text, and whether every rescued (key, value) pair is one of the record's own
top-level pairs, values compared as parsed by Python's json (integers exact, digit for digit).
"""
import json
import sys

import duckdb
import pyarrow.parquet as pq


def pairs(text):
    return json.loads(text, object_pairs_hook=lambda p: p)


sent = {int(k): v for k, v in json.load(open(sys.argv[1])).items()}
files = sys.argv[2:]
by_arrow = {}
for f in files:
    t = pq.read_table(f)
    # Files written before the table needed the column have none: NULL there, as Athena reads it.
    rescued = t.column("_rescued_data").to_pylist() if "_rescued_data" in t.column_names else [None] * t.num_rows
    for o, r in zip(t.column("_kafka_offset").to_pylist(), rescued):
        by_arrow[o] = r
con = duckdb.connect()
by_duck = dict(con.execute("select _kafka_offset, _rescued_data from read_parquet(?, union_by_name = true)", [files]).fetchall())
out = {}
for offset, text in sorted(by_arrow.items()):
    row = {"same_in_duckdb": by_duck.get(offset) == text, "keys": None, "original": None}
    if text is not None:
        rescued = pairs(text)
        original = pairs(sent[offset].lstrip("\ufeff"))
        row["keys"] = [k for k, _ in rescued]
        row["original"] = all(p in original for p in rescued)
        # The 128-bit integer of the corpus, digit for digit.
        row["digits"] = [str(v) for _, v in rescued if isinstance(v, int) and abs(v) >= 2**63]
    out[offset] = row
print(json.dumps(out))
