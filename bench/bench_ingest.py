"""Ingest benchmark (`make bench`): generate N trips, ingest them into a fresh file:// lake, measure.

For each size it runs `triplake run --json` as a child process and samples the resident memory of the whole
process tree (Python driver + Spark JVM) every 0.2 s. It prints rows/s, wall time and peak memory, and
writes them to .local/bench/ingest.json. This is a benchmark, not a test: nothing here fails on a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import psutil
from deltalake import DeltaTable
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from triplake.generate import NOISE_ROUTE, GenerateOptions, generate
from triplake.identity import planted_routes
from triplake.settings import LOCAL_DIR

BENCH_DIR = LOCAL_DIR / "bench"
ARI_MAX_ROWS = 1_000_000  # the planted routes are joined line by line in Python: fine for 1M, slow for 10M
console = Console(stderr=True)


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass
    return total


def machine() -> str:
    memory_gib = psutil.virtual_memory().total / 2**30
    processor = platform.processor() or platform.machine()
    return f"{processor}, {psutil.cpu_count()} cores, {memory_gib:.0f} GiB, {platform.system()} {platform.release()}"


def measure_ingest(data: Path, lake: Path, driver_memory: str) -> dict:
    shutil.rmtree(lake, ignore_errors=True)
    command = [sys.executable, "-m", "triplake.cli", "run", "--json", "--lake-root", str(lake), "--input", str(data)]
    env = {**os.environ, "TRIPLAKE_SPARK_DRIVER_MEMORY": driver_memory}
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, text=True)
    process = psutil.Process(child.pid)
    peak = 0
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(f"ingesting {data.name}")
        while child.poll() is None:
            peak = max(peak, tree_rss(process))
            bar.update(task, description=f"ingesting {data.name}, memory {peak / 2**30:.1f} GiB")
            time.sleep(0.2)
    wall = time.perf_counter() - started
    output = child.stdout.read() if child.stdout else ""
    if child.returncode != 0:
        raise SystemExit(f"ingest failed ({child.returncode}): {output}")
    (ingestion,) = json.loads(output)["ingestions"]
    # The ingestion's own time (its started_at..finished_at): what each file costs once Spark runs, as in
    # the DAG; the wall time adds starting Python and the JVM.
    job = (datetime.fromisoformat(ingestion["finished_at"]) - datetime.fromisoformat(ingestion["started_at"])).total_seconds()
    routes = ingestion["routes"]
    parquet_bytes = sum(Path(uri).stat().st_size for uri in DeltaTable(str(lake / "curated" / "trips")).file_uris())
    return {
        "rows": ingestion["rows_read"],
        "rows_written": ingestion["rows_written"],
        "wall_s": round(wall, 1),
        "rows_per_s": round(ingestion["rows_read"] / wall),
        "job_s": round(job, 1),
        "job_rows_per_s": round(ingestion["rows_read"] / job),
        "peak_rss_gib": round(peak / 2**30, 2),
        "routes_s": routes["seconds"],
        "routes_fit_s": max(region["fit_seconds"] or 0 for region in routes["regions"]),
        "routes_assign_s": routes["assign_seconds"],
        "k": {region["region"]: region["k"] for region in routes["regions"]},
        "silhouette": {region["region"]: round(region["silhouette"], 3) for region in routes["regions"]},
        "csv_mib": round(data.stat().st_size / 2**20),
        "parquet_mib": round(parquet_bytes / 2**20),
    }


def adjusted_rand_index(data: Path, truth: Path, lake: Path) -> float:
    """ARI between the planted routes of the generated lines and the routes the pipeline found (noise excluded)."""
    from sklearn.metrics import adjusted_rand_score

    planted = planted_routes(data, truth)
    found = DeltaTable(str(lake / "curated" / "trip_routes")).to_pyarrow_table(columns=["trip_id", "route_id"])
    routes = dict(zip(found["trip_id"].to_pylist(), found["route_id"].to_pylist()))
    routed = [trip for trip, route in planted.items() if route != NOISE_ROUTE]
    return adjusted_rand_score([planted[trip] for trip in routed], [routes[trip] for trip in routed])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--driver-memory", default="8g")
    args = parser.parse_args(argv)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    results = []
    for rows in args.rows:
        data, truth = BENCH_DIR / f"trips_{rows}.csv", BENCH_DIR / f"trips_{rows}.truth.csv"
        with_truth = rows <= ARI_MAX_ROWS
        if not data.exists() or (with_truth and not truth.exists()):
            started = time.perf_counter()
            generate(GenerateOptions(rows=rows, seed=42, duplicate_rate=0.01), data, truth if with_truth else None, progress=True)
            elapsed = time.perf_counter() - started
            console.print(f"generated {rows:,} rows in {elapsed:.1f} s ({rows / elapsed:,.0f} rows/s)")
        result = measure_ingest(data, BENCH_DIR / f"lake_{rows}", args.driver_memory)
        if with_truth:
            result["ari"] = round(adjusted_rand_index(data, truth, BENCH_DIR / f"lake_{rows}"), 4)
        results.append(result)
        console.print(result)
    report = {"machine": machine(), "command": "make bench", "driver_memory": args.driver_memory, "ingest": results}
    (BENCH_DIR / "ingest.json").write_text(json.dumps(report, indent=2))
    print("| rows | ingestion (s) | rows/s | process wall time (s) | rows/s | peak memory, process tree (GiB) "
          "| CSV (MiB) | Parquet (MiB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['rows']:,} | {r['job_s']} | {r['job_rows_per_s']:,} | {r['wall_s']} | {r['rows_per_s']:,} "
              f"| {r['peak_rss_gib']} | {r['csv_mib']} | {r['parquet_mib']} |")
    print("\n| rows | routes step (s) | of which fit, slowest region (s) | assign + publish (s) | k per region | silhouette | ARI |")
    print("|---:|---:|---:|---:|---|---|---:|")
    for r in results:
        print(f"| {r['rows']:,} | {r['routes_s']} | {r['routes_fit_s']} | {r['routes_assign_s']} | {r['k']} "
              f"| {r['silhouette']} | {r.get('ari', 'not computed')} |")
    print(f"\nMachine: {report['machine']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
