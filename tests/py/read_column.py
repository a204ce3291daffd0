"""Prints, as JSON, one column of a Parquet file as pyarrow reads it (DuckDB must agree);
decimals as their exact text."""
import json
import sys

import duckdb
import pyarrow.parquet as pq

path, column = sys.argv[1], sys.argv[2]
values = pq.read_table(path, columns=[column]).column(column).to_pylist()
duck = [r[0] for r in duckdb.connect().execute(f'select "{column}" from read_parquet(?)', [path]).fetchall()]
assert duck == values, (duck, values)
print(json.dumps(values, default=str))
