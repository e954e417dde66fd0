"""triplake beside a DuckDB reference on the same file (`make bench`): how far the pipeline is from what one
engine on one machine does with the same data.

The reference parses the generated CSV, computes each trip's identity the way the ingest does (md5 of the region,
the coordinates as integers of 10^-7 degrees rounded half to even and the start), keeps one line per trip, and
writes Parquet partitioned by region and ISO week: the core of an ingestion without its guarantees (no rejected
lines, no lake lookup, no publish protocol, no routes). Then `triplake run --json` ingests the same file into a
fresh lake. Recorded: the reference's time, triplake's whole process and its ingest step, and the two ratios
(reference / triplake). A benchmark, not a test: no figure fails it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import duckdb

from bench.bench_ingest import BENCH_DIR, machine, measure_ingest
from triplake.generate import GenerateOptions, generate

REFERENCE_SQL = """
copy (
    with lines as (
        select region,
               string_split(trim(origin_coord, 'POINT ()'), ' ') as origin,
               string_split(trim(destination_coord, 'POINT ()'), ' ') as destination,
               cast(datetime as timestamp) as started_at,
               datasource
        from read_csv($input, header = true, all_varchar = true)
    ),
    trips as (
        select region,
               cast(origin[1] as double) as origin_lon, cast(origin[2] as double) as origin_lat,
               cast(destination[1] as double) as destination_lon, cast(destination[2] as double) as destination_lat,
               started_at, datasource
        from lines
    )
    select md5(concat_ws('|', region,
                         cast(round_even(origin_lon * 1e7, 0) as bigint), cast(round_even(origin_lat * 1e7, 0) as bigint),
                         cast(round_even(destination_lon * 1e7, 0) as bigint),
                         cast(round_even(destination_lat * 1e7, 0) as bigint),
                         epoch_us(started_at))) as trip_id,
           *, cast(date_trunc('week', started_at) as date) as week_start
    from trips
    qualify row_number() over (partition by trip_id order by started_at) = 1
) to '{out}' (format parquet, partition_by (region, week_start), compression zstd)
"""


def reference(data: Path, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    connection = duckdb.connect()
    # COPY ... TO takes no parameter for its target: the path is ours (under .local/bench), never a user's.
    connection.execute(REFERENCE_SQL.format(out=str(out).replace("'", "''")), {"input": str(data)})
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    args = parser.parse_args(argv)
    data = BENCH_DIR / f"trips_{args.rows}.csv"
    if not data.exists():
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        generate(GenerateOptions(rows=args.rows, seed=42, duplicate_rate=0.01), data, None, progress=True)
    reference_s = reference(data, BENCH_DIR / f"reference_lake_{args.rows}")
    run = measure_ingest(data, BENCH_DIR / f"lake_{args.rows}", driver_memory="8g")
    result = {
        "machine": machine(), "command": "make bench", "rows": args.rows,
        "reference_s": round(reference_s, 1), "triplake_wall_s": run["wall_s"], "triplake_ingest_s": run["job_s"],
        "triplake_routes_s": run["routes_s"],
        "end_to_end_ratio": round(reference_s / run["wall_s"], 3), "ingest_ratio": round(reference_s / run["job_s"], 3),
    }
    (BENCH_DIR / "reference.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
