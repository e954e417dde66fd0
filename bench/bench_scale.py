"""Scale benchmark (`make bench-scale`): the whole batch pipeline at growing sizes, into fresh file:// lakes.

For each size it generates the trips once (seed 42) and splits them into files of at most 10M rows, the way uploads
arrive, then runs `triplake run --json` over those files as one child process (local Spark, every core) while
sampling the resident memory and CPU time of the whole process tree. It records per size: wall and CPU time, the
time of each stage summed over the files (ingest, routes, weekly), rows/s, peak memory, Parquet size; then the
weekly-average latencies of bench_queries on that lake; and, for the largest size, the time one more 1M-row file
takes into the full lake. Results go to .local/bench/scale.json. A benchmark, not a test: no figure fails it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import psutil
from rich.console import Console

from bench.bench_ingest import BENCH_DIR, machine
from bench.bench_queries import measure as measure_queries
from triplake.generate import GenerateOptions, generate

FILE_ROWS = 10_000_000  # uploads arrive as files of at most this many rows
INCREMENT_ROWS = 1_000_000
console = Console(stderr=True)


def split_lines(source: Path, rows_per_file: int, out_dir: Path) -> list[Path]:
    """Cuts a generated CSV into files of at most rows_per_file data lines, each with the header."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    with source.open("rb") as lines:
        header = lines.readline()
        target, written = None, rows_per_file
        for line in lines:
            if written == rows_per_file:
                if target:
                    target.close()
                files.append(out_dir / f"{source.stem}_part{len(files):03d}.csv")
                target, written = files[-1].open("wb", buffering=16 * 2**20), 0
                target.write(header)
            target.write(line)
            written += 1
        if target:
            target.close()
    return files


def input_files(rows: int) -> list[Path]:
    parts_dir = BENCH_DIR / f"scale_{rows}"
    parts = sorted(parts_dir.glob("*.csv"))
    if parts:
        return parts
    whole = BENCH_DIR / f"scale_{rows}.csv"
    started = time.perf_counter()
    generate(GenerateOptions(rows=rows, seed=42, duplicate_rate=0.01), whole, None, progress=True)
    console.print(f"generated {rows:,} rows in {time.perf_counter() - started:.1f} s")
    if rows <= FILE_ROWS:
        parts_dir.mkdir(parents=True, exist_ok=True)
        return [whole.rename(parts_dir / whole.name)]
    parts = split_lines(whole, FILE_ROWS, parts_dir)
    whole.unlink()
    return parts


def run_pipeline(files: list[Path], lake: Path, driver_memory: str) -> dict:
    """`triplake run` over the files; wall time, CPU time and peak memory of the process tree, stage times."""
    command = [sys.executable, "-m", "triplake.cli", "run", "--json", "--lake-root", str(lake), "--input",
               *map(str, files)]
    env = {**os.environ, "TRIPLAKE_SPARK_DRIVER_MEMORY": driver_memory}
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, text=True)
    root = psutil.Process(child.pid)
    peak, cpu_by_pid = 0, {}
    while child.poll() is None:
        rss = 0
        for member in [root, *root.children(recursive=True)]:
            try:
                rss += member.memory_info().rss
                times = member.cpu_times()
                cpu_by_pid[member.pid] = times.user + times.system
            except psutil.Error:
                pass
        peak = max(peak, rss)
        console.print(f"  {time.perf_counter() - started:7.0f} s  memory {rss / 2**30:5.1f} GiB", end="\r")
        time.sleep(0.5)
    wall = time.perf_counter() - started
    output = child.stdout.read() if child.stdout else ""
    if child.returncode != 0:
        raise SystemExit(f"the pipeline failed ({child.returncode}): {output[-2000:]}")
    ingestions = json.loads(output)["ingestions"]
    ingest_s = sum((datetime.fromisoformat(i["finished_at"]) - datetime.fromisoformat(i["started_at"])).total_seconds()
                   for i in ingestions)
    rows = sum(i["rows_read"] for i in ingestions)
    return {
        "rows": rows,
        "files": len(files),
        "rows_written": sum(i["rows_written"] for i in ingestions),
        "wall_s": round(wall, 1),
        "cpu_s": round(sum(cpu_by_pid.values()), 1),
        "ingest_s": round(ingest_s, 1),
        "routes_s": round(sum((i.get("routes") or {}).get("seconds", 0) for i in ingestions), 1),
        "weekly_s": round(sum((i.get("weekly") or {}).get("seconds", 0) for i in ingestions), 1),
        "rows_per_s": round(rows / wall),
        "peak_rss_gib": round(peak / 2**30, 2),
        "parquet_mib": round(sum(p.stat().st_size for p in (lake / "curated").rglob("*.parquet")) / 2**20),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000, 30_000_000, 100_000_000])
    parser.add_argument("--driver-memory", default="12g")
    parser.add_argument("--no-increment", action="store_true", help="skip the extra 1M file into the largest lake")
    args = parser.parse_args(argv)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine(), "command": "make bench-scale", "driver_memory": args.driver_memory, "sizes": []}
    for rows in args.rows:
        lake = BENCH_DIR / f"scale_lake_{rows}"
        shutil.rmtree(lake, ignore_errors=True)
        files = input_files(rows)
        console.print(f"{rows:,} trips in {len(files)} files")
        result = run_pipeline(files, lake, args.driver_memory)
        result["queries"] = measure_queries(lake)
        report["sizes"].append(result)
        console.print(result)
        (BENCH_DIR / "scale.json").write_text(json.dumps(report, indent=2))
    if not args.no_increment:
        largest = BENCH_DIR / f"scale_lake_{max(args.rows)}"
        extra = BENCH_DIR / "scale_increment.csv"
        if not extra.exists():
            generate(GenerateOptions(rows=INCREMENT_ROWS, seed=43, duplicate_rate=0.01), extra, None)
        report["increment"] = run_pipeline([extra], largest, args.driver_memory) | {"into_lake_of": max(args.rows)}
        console.print(report["increment"])
        (BENCH_DIR / "scale.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
