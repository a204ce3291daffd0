"""Reads Parquet files with two independent readers (pyarrow and DuckDB) and prints, as JSON,
what each sees: rows, column types, Kafka offsets, and the Parquet physical/logical types."""
import json
import sys

import duckdb
import pyarrow.parquet as pq

files = sys.argv[1:]
out = {"pyarrow": {}, "duckdb": {}, "parquet": {}}
tables = [pq.read_table(f) for f in files]
out["pyarrow"]["rows"] = sum(t.num_rows for t in tables)
out["pyarrow"]["types"] = {f.name: str(f.type) for f in tables[0].schema}
out["pyarrow"]["offsets"] = sorted(o for t in tables for o in t.column("_kafka_offset").to_pylist())
md = pq.ParquetFile(files[0]).metadata
out["parquet"]["physical"] = {md.schema.column(i).path: md.schema.column(i).physical_type for i in range(md.num_columns)}
out["parquet"]["logical"] = {md.schema.column(i).path: str(md.schema.column(i).logical_type) for i in range(md.num_columns)}
out["parquet"]["compression"] = sorted({md.row_group(0).column(i).compression for i in range(md.num_columns)})
con = duckdb.connect()
out["duckdb"]["rows"] = con.execute("select count(*) from read_parquet(?)", [files]).fetchone()[0]
out["duckdb"]["types"] = {r[0]: r[1] for r in con.execute("describe select * from read_parquet(?)", [files]).fetchall()}
out["duckdb"]["distinct_offsets"] = con.execute(
    "select count(distinct (_kafka_topic, _kafka_partition, _kafka_offset)) from read_parquet(?)", [files]
).fetchone()[0]
print(json.dumps(out))
