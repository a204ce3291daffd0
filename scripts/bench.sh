#!/usr/bin/env bash
# The benchmark suite, from a fresh clone, in one command. Generates 1,000,000 customer_data
# records (fixed seed), measures Tributary's ingest core, ingest handler, compaction (and its
# amplification as a partition grows file by file) and start-up
# (release build, one thread each) and, in the same run on the same data, DuckDB, polars and
# pyarrow (one thread each, zstd); then writes docs/benchmarks.md and docs/benchmarks.png.
# Not part of CI: it takes several minutes and its figures are timings.
#
#   ./scripts/bench.sh            RECORDS=200000 ./scripts/bench.sh   (a quicker, smaller run)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

scripts/install-test-deps.sh
venv_install scripts/requirements-bench.txt
"$VENV/bin/python" -c "import polars, matplotlib" || { echo "bench: polars/matplotlib missing from $VENV" >&2; exit 1; }

echo "bench: cargo build --release (the Lambda profile)"
cargo build --release --locked -p tributary-bench -p tributary-ingest --bins
bin="$CARGO_TARGET_DIR/release"
py="$VENV/bin/python"
# One thread for every engine.
export POLARS_MAX_THREADS=1 OMP_NUM_THREADS=1 RAYON_NUM_THREADS=1

records="${RECORDS:-1000000}"
work="${TRIBUTARY_BENCH_DIR:-$TRIBUTARY_CACHE/bench}"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
jsonl="$work/customer.jsonl"

step() { echo "bench: $*" >&2; }
step "generating $records records"
"$bin/tributary-bench" gen "$jsonl" "$records" > "$work/gen.json"

step "ingest: tributary core, tributary handler"
"$bin/tributary-bench" ingest-core "$jsonl" "$work/core.parquet" > "$work/ingest-core.json"
# The same records, 1 % of them with a type conflict (age as a string) for the rescued-data column.
step "ingest: tributary core, 1 % type conflicts"
"$bin/tributary-bench" gen "$work/conflicts.jsonl" "$records" 100 > "$work/gen-conflicts.json"
"$bin/tributary-bench" ingest-core "$work/conflicts.jsonl" /dev/null > "$work/ingest-core-conflicts.json"
rm -f "$work/conflicts.jsonl"
"$bin/tributary-bench" ingest-handler "$jsonl" > "$work/ingest-handler.json"
for engine in duckdb polars pyarrow; do
  step "ingest: $engine"
  "$py" scripts/bench/peers.py ingest "$engine" "$jsonl" "$work/$engine.parquet" > "$work/ingest-$engine.json"
done
rm -f "$work"/*.parquet

partition=s3/bench/tables/customer_data/dt=2026-11-22/hr=03

# Compaction at scale: one open partition grows file by file (2,500 records each), every file's
# event delivered to the compactor as EventBridge does, then its window closes and the sweep runs
# until nothing is due. Read and write amplification, compactions, the largest one, copies.
for n in 200 1000 2000; do
  step "compaction at scale: $n files (in-memory store, then the embedded S3 server)"
  "$bin/tributary-bench" compact-scale-memory "$work/scale" "$n" 2500 "${SCALE_TARGET_BYTES:-33554432}" > "$work/scale-$n-memory.json"
  "$bin/tributary-bench" compact-scale "$work/scale" "$n" 2500 "${SCALE_TARGET_BYTES:-33554432}" > "$work/scale-$n-s3.json"
done
rm -rf "$work/scale"
compaction() { # name files rows hex
  step "compaction ($1): generating $2 files of $3 rows"
  "$bin/tributary-bench" compact-gen "$work/$1" "$2" "$3" "$4" > "$work/gen-$1.json"
  step "compaction ($1): tributary"
  "$bin/tributary-bench" compact "$work/$1" > "$work/compact-$1-tributary.json"
  if [[ "$1" == small ]]; then
    # The compactor's own work, without the embedded S3 server: at the policy's zstd level, and at 1.
    "$bin/tributary-bench" compact-memory "$work/$1" > "$work/compact-$1-tributary_memory.json"
    "$bin/tributary-bench" compact-memory "$work/$1" 1 > "$work/compact-$1-tributary_memory_zstd1.json"
  fi
  for engine in duckdb polars pyarrow; do
    step "compaction ($1): $engine"
    "$py" scripts/bench/peers.py compact "$engine" "$work/$1/$partition" "$work/$1-$engine.parquet" > "$work/compact-$1-$engine.json"
    rm -f "$work/$1-$engine.parquet"
  done
  rm -rf "${work:?}/$1"
}
compaction small 200 5000 0
# A quarter and over a gigabyte of Parquet (each row carries 512 random hex characters Parquet
# cannot shrink): peak memory must not grow with the input.
compaction medium 200 "${MEDIUM_ROWS:-4400}" 512
compaction large 200 "${LARGE_ROWS:-17500}" 512

step "start-up (Lambda Runtime API stand-in, S3 on moto)"
"$py" scripts/bench/startup.py "$bin/ingest" events/msk-batch.json 10 > "$work/startup.json"

"$py" - "$work" > "$work/results.json" <<'EOF'
import json, os, platform, subprocess, sys, datetime
w = sys.argv[1]
load = lambda n: json.load(open(os.path.join(w, n)))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(json.dumps({
    "date": datetime.date.today().isoformat(),
    "machine": f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.machine()}",
    "ingest": {"tributary_core": load("ingest-core.json"), "tributary_handler": load("ingest-handler.json"),
               "tributary_core_conflicts": load("ingest-core-conflicts.json"),
               **{e: load(f"ingest-{e}.json") for e in ("duckdb", "polars", "pyarrow")}},
    "compact_small": {"tributary": load("compact-small-tributary.json"),
                      "tributary_memory": load("compact-small-tributary_memory.json"),
                      "tributary_memory_zstd1": load("compact-small-tributary_memory_zstd1.json"),
                      **{e: load(f"compact-small-{e}.json") for e in ("duckdb", "polars", "pyarrow")}},
    "compact_medium": {"tributary": load("compact-medium-tributary.json"),
                       **{e: load(f"compact-medium-{e}.json") for e in ("duckdb", "polars", "pyarrow")}},
    "compact_large": {"tributary": load("compact-large-tributary.json"),
                      **{e: load(f"compact-large-{e}.json") for e in ("duckdb", "polars", "pyarrow")}},
    "compact_scale": {store: [load(f"scale-{n}-{store}.json") for n in (200, 1000, 2000)] for store in ("memory", "s3")},
    "startup": load("startup.json"),
}))
EOF
cp "$work/results.json" docs/benchmarks.json
"$py" scripts/bench/report.py docs/benchmarks.json docs
echo "bench: wrote docs/benchmarks.md, docs/benchmarks.png, docs/benchmarks.json"
