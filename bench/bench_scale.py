"""Scale benchmark (`make bench-scale`): the whole batch pipeline at growing sizes, into fresh file:// lakes.

The trips arrive the way uploads do: files of at most 10M rows, each covering the next 36 days from 2018-01-01,
so that two consecutive files share a week and every later file meets trips of the lake in the partitions it
touches (100M trips = 10 files = 360 days). Each size runs `triplake run --json` over its files as one child
process (local Spark, every core) while the process tree's resident memory and CPU time are sampled. Recorded per
size: wall and CPU time, each stage's time and CPU time summed over the files (ingest, routes, weekly), rows/s,
peak memory, Parquet size, Spark's shuffle and spill (from its event log); then the weekly-average latencies of
bench_queries on that lake; then one more 1M-row file of the next week into that lake. The largest lake also
takes the worst case: 1M rows spread over every week it holds, a tenth of them copies of trips it already has.

Results go to .local/bench/scale.json (and scale_plot.png). A benchmark, not a test: no figure fails it.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import psutil
from deltalake import DeltaTable
from rich.console import Console

from bench.bench_ingest import BENCH_DIR, machine
from bench.bench_queries import measure as measure_queries
from triplake.generate import GenerateOptions, generate

FILE_ROWS = 10_000_000  # uploads arrive as files of at most this many rows
DAYS_PER_FILE = 36  # not a whole number of weeks: consecutive files share a week, as real uploads do
FIRST_DAY = date(2018, 1, 1)
INCREMENT_ROWS = 1_000_000
INCREMENT_DAYS = 7
WORST_CASE_KNOWN_SHARE = 0.1  # of the worst-case increment: lines copied from the lake's first file
FILES_DIR = BENCH_DIR / "scale_files"
SAMPLE_SECONDS = 0.5
console = Console(stderr=True)


@dataclass(frozen=True)
class InputFile:
    """One generated upload: its rows, period and seed name it, so sizes share their files."""

    rows: int
    start: date
    days: int
    seed: int

    @property
    def path(self) -> Path:
        return FILES_DIR / f"trips_{self.start}_{self.days}d_{self.rows}_seed{self.seed}.csv"

    def create(self) -> Path:
        if not self.path.exists():
            started = time.perf_counter()
            FILES_DIR.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_suffix(".partial")
            options = GenerateOptions(rows=self.rows, seed=self.seed, duplicate_rate=0.01, start=self.start, days=self.days)
            generate(options, partial, None, progress=True)
            partial.rename(self.path)
            console.print(f"generated {self.path.name} in {time.perf_counter() - started:.1f} s")
        return self.path


def upload_files(rows: int, file_rows: int = FILE_ROWS) -> list[InputFile]:
    """The files of a lake of `rows` trips: files of file_rows over consecutive periods (the last one smaller)."""
    return [
        InputFile(min(file_rows, rows - index * file_rows), FIRST_DAY + timedelta(days=index * DAYS_PER_FILE),
                  DAYS_PER_FILE, seed=42 + index)
        for index in range(math.ceil(rows / file_rows))
    ]


def next_week_file(uploads: list[InputFile]) -> InputFile:
    """1M trips of the week after the lake's last day: what the next upload of a running system looks like."""
    return InputFile(INCREMENT_ROWS, uploads[-1].start + timedelta(days=DAYS_PER_FILE), INCREMENT_DAYS, seed=1042)


def worst_case_file(uploads: list[InputFile]) -> Path:
    """1M lines over every day of the lake, a tenth of them copied from its first file (trips it already holds)."""
    days = len(uploads) * DAYS_PER_FILE
    known = int(INCREMENT_ROWS * WORST_CASE_KNOWN_SHARE)
    spread = InputFile(INCREMENT_ROWS - known, FIRST_DAY, days, seed=2042)
    path = FILES_DIR / f"worst_case_{days}d_{INCREMENT_ROWS}_from_{uploads[0].path.stem}.csv"
    if not path.exists():
        with path.open("wb") as out, spread.create().open("rb") as new, uploads[0].create().open("rb") as old:
            out.write(new.readline())
            shutil.copyfileobj(new, out)
            old.readline()
            for _ in range(known):
                out.write(old.readline())
    return path


class TreeSampler:
    """Resident memory and CPU time of a process and all its descendants, sampled as it runs."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak_rss = 0
        self.cpu_by_pid: dict[int, float] = {}
        self.timeline: list[tuple[float, float]] = []  # (unix time, CPU seconds of the tree so far)

    def sample(self) -> float:
        rss = 0
        for member in [self.root, *self.root.children(recursive=True)]:
            try:
                rss += member.memory_info().rss
                times = member.cpu_times()
                self.cpu_by_pid[member.pid] = times.user + times.system
            except psutil.Error:
                pass  # it ended between the listing and the reading
        self.peak_rss = max(self.peak_rss, rss)
        self.timeline.append((time.time(), sum(self.cpu_by_pid.values())))
        return rss

    def cpu_between(self, start: float, end: float) -> float:
        """CPU seconds the tree used between two unix times (interpolated between samples)."""
        return self._cpu_at(end) - self._cpu_at(start)

    def _cpu_at(self, moment: float) -> float:
        times = [at for at, _ in self.timeline]
        index = bisect.bisect_left(times, moment)
        if index == 0:
            return self.timeline[0][1] if self.timeline else 0.0
        if index == len(times):
            return self.timeline[-1][1]
        (t0, c0), (t1, c1) = self.timeline[index - 1], self.timeline[index]
        return c0 + (c1 - c0) * (moment - t0) / (t1 - t0)


def spark_task_metrics(event_log_dir: Path) -> dict:
    """Shuffle written and bytes spilled, summed over every task of the run's Spark event log."""
    totals = {"shuffle_written_mib": 0.0, "spill_memory_mib": 0.0, "spill_disk_mib": 0.0, "tasks": 0}
    for log in event_log_dir.glob("*"):
        with log.open() as events:
            for line in events:
                if '"SparkListenerTaskEnd"' not in line:
                    continue
                metrics = json.loads(line).get("Task Metrics") or {}
                totals["tasks"] += 1
                totals["shuffle_written_mib"] += metrics.get("Shuffle Write Metrics", {}).get("Shuffle Bytes Written", 0) / 2**20
                totals["spill_memory_mib"] += metrics.get("Memory Bytes Spilled", 0) / 2**20
                totals["spill_disk_mib"] += metrics.get("Disk Bytes Spilled", 0) / 2**20
    return {name: round(value) for name, value in totals.items()}


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def run_pipeline(files: list[Path], lake: Path, driver_memory: str, label: str) -> dict:
    """`triplake run --json` over the files into the lake, measured from outside."""
    command = [sys.executable, "-m", "triplake.cli", "run", "--json", "--lake-root", str(lake), "--input", *map(str, files)]
    event_log = BENCH_DIR / "eventlog" / label
    shutil.rmtree(event_log, ignore_errors=True)
    event_log.mkdir(parents=True)
    env = {**os.environ, "TRIPLAKE_SPARK_DRIVER_MEMORY": driver_memory,
           "TRIPLAKE_SPARK_EVENT_LOG_DIR": event_log.resolve().as_uri()}
    trips_before = _parquet_rows(lake)
    # The run's JSON goes to a file: a pipe would fill (64 KiB) and block the child until it is read.
    with tempfile.TemporaryFile("w+") as stdout:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=stdout, env=env, text=True)
        sampler = TreeSampler(child.pid)
        while child.poll() is None:
            rss = sampler.sample()
            console.print(f"  {label}: {time.perf_counter() - started:6.0f} s, memory {rss / 2**30:5.1f} GiB", end="\r")
            time.sleep(SAMPLE_SECONDS)
        wall = time.perf_counter() - started
        stdout.seek(0)
        output = stdout.read()
    if child.returncode != 0:
        raise SystemExit(f"the pipeline failed ({child.returncode}): {output[-2000:]}")
    ingestions = json.loads(output)["ingestions"]

    stages = {"ingest": [0.0, 0.0], "routes": [0.0, 0.0], "weekly": [0.0, 0.0]}  # [wall s, CPU s]
    for ingestion in ingestions:
        # The steps of a file run one after the other: ingest's own interval, then routes, then weekly.
        begin = datetime.fromisoformat(ingestion["started_at"]).timestamp()
        durations = (_seconds(ingestion["started_at"], ingestion["finished_at"]),
                     ingestion["routes"]["seconds"], ingestion["weekly"]["seconds"])
        for stage, seconds in zip(stages, durations):
            stages[stage][0] += seconds
            stages[stage][1] += sampler.cpu_between(begin, begin + seconds)
            begin += seconds
    rows = sum(ingestion["rows_read"] for ingestion in ingestions)
    return {
        "rows": rows,
        "files": len(files),
        "lake_trips_before": trips_before,
        "rows_written": sum(ingestion["rows_written"] for ingestion in ingestions),
        "already_present": sum(ingestion["already_present"] for ingestion in ingestions),
        "duplicates_in_batch": sum(ingestion["duplicates_in_batch"] for ingestion in ingestions),
        "wall_s": round(wall, 1),
        "cpu_s": round(sum(sampler.cpu_by_pid.values()), 1),
        **{f"{stage}_s": round(wall_s, 1) for stage, (wall_s, _) in stages.items()},
        **{f"{stage}_cpu_s": round(cpu_s, 1) for stage, (_, cpu_s) in stages.items()},
        "per_file_ingest_s": [round(_seconds(i["started_at"], i["finished_at"]), 1) for i in ingestions],
        "rows_per_s": round(rows / wall),
        "peak_rss_gib": round(sampler.peak_rss / 2**30, 2),
        "parquet_mib": round(sum(p.stat().st_size for p in (lake / "curated").rglob("*.parquet")) / 2**20),
        "trips_files": len(DeltaTable(str(lake / "curated" / "trips")).file_uris()),  # the current snapshot's
        "spark": spark_task_metrics(event_log),
    }


def _parquet_rows(lake: Path) -> int:
    import pyarrow.dataset as ds

    trips = lake / "curated" / "trips"
    if not DeltaTable.is_deltatable(str(trips)):
        return 0
    return ds.dataset(DeltaTable(str(trips)).file_uris(), format="parquet").count_rows()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000, 30_000_000, 100_000_000])
    parser.add_argument("--file-rows", type=int, default=FILE_ROWS, help="rows per upload file (smaller for a quick try)")
    parser.add_argument("--driver-memory", default="12g")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "scale.json")
    args = parser.parse_args(argv)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine(), "command": "make bench-scale", "driver_memory": args.driver_memory,
              "started": datetime.now().isoformat(timespec="seconds"), "sizes": []}
    for rows in args.rows:
        lake = BENCH_DIR / f"scale_lake_{rows}"
        shutil.rmtree(lake, ignore_errors=True)
        uploads = upload_files(rows, args.file_rows)
        files = [upload.create() for upload in uploads]
        console.print(f"{rows:,} trips in {len(files)} files")
        result = run_pipeline(files, lake, args.driver_memory, f"lake_{rows}")
        result["queries"] = measure_queries(lake)
        result["next_week_increment"] = run_pipeline([next_week_file(uploads).create()], lake, args.driver_memory,
                                                     f"next_week_{rows}")
        if rows == max(args.rows):
            result["worst_case_increment"] = run_pipeline([worst_case_file(uploads)], lake, args.driver_memory,
                                                          f"worst_case_{rows}")
        report["sizes"].append(result)
        console.print(result)
        args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
