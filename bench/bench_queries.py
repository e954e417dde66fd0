"""Query benchmark (part of `make bench`): weekly-average latency on a benchmark lake, and bbox row-group pruning.

Latency is what a user waits for: `triplake weekly-average ... --json` run as a fresh process, from its start
to its answer (Python start, imports, DuckDB planning, the scan), the median and the worst of several runs.
Pruning is DuckDB's own account of the bbox scan (profiling: row groups scanned of row groups to scan, bytes
read). This is a benchmark, not a test: nothing here fails on a figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from triplake.settings import Settings
from triplake.query.local import LocalEngine
from triplake.query.statement import statement
from triplake.weekly_average import MATCH_MODES

# A box in central Prague (lon 14.40-14.48, lat 50.03-50.10), a fraction of the region's extent.
BBOX = "14.40,50.03,14.48,50.10"
RUNS = 5


def cli_latency(lake: Path, area: list[str], runs: int = RUNS) -> dict:
    """Seconds from process start to answer of `triplake weekly-average`, over several fresh processes."""
    command = [str(Path(sys.executable).with_name("triplake")), "weekly-average", *area, "--json", "--lake-root", str(lake)]
    seconds, answer = [], None
    for _ in range(runs):
        started = time.perf_counter()
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        seconds.append(time.perf_counter() - started)
        answer = json.loads(output)
    return {"median_s": round(statistics.median(seconds), 3), "max_s": round(max(seconds), 3),
            "trips": answer["trips"], "weekly_average": answer["weekly_average"]}


def bbox_scan(engine: LocalEngine, lake: Path, match: str) -> dict:
    """DuckDB's profile of the bbox query: the row groups and bytes it read."""
    profile = lake.parent / f"profile_{lake.name}_{match}.json"
    engine.connection.execute("pragma enable_profiling = 'json'")
    engine.connection.execute("set profiling_mode = 'detailed'")
    engine.connection.execute(f"pragma profiling_output = '{profile}'")  # our own path, not user input
    lake_weeks = engine.run(statement("queries/lake_weeks"), {}).single()
    min_lon, min_lat, max_lon, max_lat = BBOX.split(",")
    engine.run(statement(f"queries/weekly_average_bbox_{match}"), {
        "min_lon": min_lon, "min_lat": min_lat, "max_lon": max_lon, "max_lat": max_lat,
        "from_date": lake_weeks["first_week"].isoformat(), "to_date": lake_weeks["last_week"].isoformat()})
    query = json.loads(profile.read_text())["query"]
    profile.unlink()
    return {
        "row_groups_read": query["total_row_groups_scanned"],
        "row_groups_total": query["total_row_groups_to_scan"],
        "fraction_read": round(query["total_row_groups_scanned"] / query["total_row_groups_to_scan"], 3),
        "mib_read": round(query["total_bytes_scanned"] / 2**20, 1),
    }


def measure(lake: Path) -> dict:
    engine = LocalEngine(lake.resolve().as_uri(), Settings())
    results = {"region": cli_latency(lake, ["--region", "Prague"])}
    for match in MATCH_MODES:
        results[f"bbox_{match}"] = cli_latency(lake, ["--bbox", BBOX, "--match", match]) | bbox_scan(engine, lake, match)
    return results


def markdown(rows: int, results: dict) -> str:
    lines = ["| rows | area | answer (trips) | latency, median of 5 (s) | worst (s) | row groups read | MiB read |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for area, result in results.items():
        label = "--region Prague" if area == "region" else f"--bbox {BBOX} --match {area.removeprefix('bbox_')}"
        groups = (f"{result['row_groups_read']} of {result['row_groups_total']} ({result['fraction_read']:.0%})"
                  if "row_groups_read" in result else "- (weekly_trips)")
        lines.append(f"| {rows:,} | `{label}` | {result['trips']:,} | {result['median_s']} | {result['max_s']} "
                     f"| {groups} | {result.get('mib_read', '-')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("lakes", type=Path, nargs="+", help="benchmark lakes, e.g. .local/bench/lake_10000000")
    args = parser.parse_args(argv)
    for lake in args.lakes:
        rows = int(lake.name.rsplit("_", 1)[-1])
        results = measure(lake)
        (lake.parent / f"queries_{rows}.json").write_text(json.dumps(results, indent=2))
        print(markdown(rows, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
