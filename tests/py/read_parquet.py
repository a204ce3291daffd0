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
# Row group statistics of the offset column, checked against the values (the compactor merges
# them when it copies pages): readers skip row groups by them.
stats_ok = True
for f in files:
    pf = pq.ParquetFile(f)
    col = pf.schema_arrow.get_field_index("_kafka_offset")
    for g in range(pf.metadata.num_row_groups):
        st = pf.metadata.row_group(g).column(col).statistics
        values = pf.read_row_group(g, columns=["_kafka_offset"]).column(0).to_pylist()
        stats_ok &= st is not None and st.has_min_max and (st.min, st.max) == (min(values), max(values))
out["parquet"]["offset_statistics_match"] = stats_ok
if "n" in out["pyarrow"]["types"]:
    # The test tables write each record's offset into n: a row whose columns came apart differs.
    out["duckdb"]["n_is_offset"] = con.execute(
        "select count(*) from read_parquet(?) where n = _kafka_offset", [files]
    ).fetchone()[0]
    out["duckdb"]["filtered"] = con.execute(
        "select count(*) from read_parquet(?) where _kafka_offset between 100 and 299", [files]
    ).fetchone()[0]
print(json.dumps(out))
