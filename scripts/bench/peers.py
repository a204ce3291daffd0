"""The peers of the benchmark: DuckDB, pyarrow and polars, one thread each, same data, same
compression (zstd). Each measurement runs in a process of its own (so its peak RSS is its own)
and prints one JSON object.

    peers.py ingest ENGINE JSONL OUT        JSON Lines -> Parquet (zstd)
    peers.py compact ENGINE DIR OUT         the Parquet files of DIR -> one Parquet file (zstd)
"""
import glob
import json
import os
import resource
import sys
import time


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def duckdb_one_thread():
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 1")
    return con


def pyarrow_one_thread():
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


def ingest(engine, src, out):
    if engine == "duckdb":
        con = duckdb_one_thread()
        t = time.perf_counter()
        con.execute(
            f"COPY (SELECT * FROM read_json('{src}', format = 'newline_delimited')) "
            f"TO '{out}' (FORMAT parquet, COMPRESSION zstd)"
        )
        secs = time.perf_counter() - t
        rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    elif engine == "pyarrow":
        import pyarrow.json as pj
        import pyarrow.parquet as pq

        pyarrow_one_thread()
        t = time.perf_counter()
        table = pj.read_json(src, read_options=pj.ReadOptions(use_threads=False))
        pq.write_table(table, out, compression="zstd")
        secs = time.perf_counter() - t
        rows = table.num_rows
    elif engine == "polars":
        import polars as pl

        t = time.perf_counter()
        df = pl.read_ndjson(src)
        df.write_parquet(out, compression="zstd")
        secs = time.perf_counter() - t
        rows = df.height
    else:
        raise SystemExit(f"unknown engine {engine}")
    size = os.path.getsize(src)
    return {
        "engine": engine, "rows": rows, "seconds": secs, "input_bytes": size,
        "input_mb_per_second": size / 1e6 / secs, "records_per_second": rows / secs,
        "output_bytes": os.path.getsize(out), "peak_rss_mb": peak_rss_mb(),
    }


def compact(engine, src_dir, out):
    files = sorted(glob.glob(os.path.join(src_dir, "*.parquet")))
    if not files:
        raise SystemExit(f"no Parquet files in {src_dir}")
    size = sum(os.path.getsize(f) for f in files)
    if engine == "duckdb":
        con = duckdb_one_thread()
        t = time.perf_counter()
        con.execute(f"COPY (SELECT * FROM read_parquet({files!r})) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
        secs = time.perf_counter() - t
        rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    elif engine == "pyarrow":
        import pyarrow.parquet as pq

        pyarrow_one_thread()
        t = time.perf_counter()
        # Streaming, file by file, so memory stays bounded as for the others.
        schema = pq.read_schema(files[0])
        rows = 0
        with pq.ParquetWriter(out, schema, compression="zstd") as w:
            for f in files:
                for batch in pq.ParquetFile(f).iter_batches(use_threads=False):
                    w.write_batch(batch)
                    rows += batch.num_rows
        secs = time.perf_counter() - t
    elif engine == "polars":
        import polars as pl

        t = time.perf_counter()
        pl.scan_parquet(files).sink_parquet(out, compression="zstd")
        secs = time.perf_counter() - t
        rows = pl.scan_parquet(out).select(pl.len()).collect().item()
    else:
        raise SystemExit(f"unknown engine {engine}")
    return {
        "engine": engine, "files": len(files), "rows": rows, "seconds": secs, "input_bytes": size,
        "input_mb_per_second": size / 1e6 / secs, "rows_per_second": rows / secs,
        "output_bytes": os.path.getsize(out), "peak_rss_mb": peak_rss_mb(),
    }


if __name__ == "__main__":
    # One thread for every engine (polars reads this before it starts its pool).
    os.environ.setdefault("POLARS_MAX_THREADS", "1")
    what, engine, src, out = sys.argv[1:5]
    result = ingest(engine, src, out) if what == "ingest" else compact(engine, src, out)
    print(json.dumps(result))
