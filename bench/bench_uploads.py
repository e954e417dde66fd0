"""Many small uploads against one file (`make bench-uploads`): the same generated trips ingested into one fresh lake
as one file and into another as N uploads of equal size, each lake by one `triplake run` process; what each table's
snapshot holds, the weekly-average queries on both lakes, then `triplake maintain` on the lake of many uploads and
its queries again. The file counts do not depend on the machine; the times are measured side by side in one run.
A benchmark, not a test: nothing here fails on a figure.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from deltalake import DeltaTable

from bench.bench_queries import measure
from triplake.generate import GenerateOptions, generate
from triplake.maintain import table_locations
from triplake.settings import LOCAL_DIR

TRIPLAKE = str(Path(sys.executable).with_name("triplake"))


def split(source: Path, parts: int, folder: Path, by_time: bool = False) -> list[Path]:
    """The file's trips as `parts` uploads of consecutive lines, each with the header; by_time: the lines ordered by
    their start first (uploads that arrive as the trips happen), else in the generator's order (each upload spans
    the whole month)."""
    header, *lines = source.read_text().splitlines()
    if by_time:
        column = next(csv.reader([header])).index("datetime")
        lines.sort(key=lambda line: next(csv.reader([line]))[column])
    size = -(-len(lines) // parts)
    uploads = []
    for part in range(parts):
        uploads.append(folder / f"upload_{part + 1:04d}.csv")
        uploads[-1].write_text("\n".join([header, *lines[part * size:(part + 1) * size]]) + "\n")
    return uploads


def timed(command: list[str]) -> tuple[float, dict]:
    started = time.perf_counter()
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return round(time.perf_counter() - started, 1), json.loads(output)


def files_per_table(lake: Path) -> dict[str, int]:
    """How many data files each table's current snapshot holds (what every reader opens)."""
    return {location.rsplit("/", 1)[-1]: len(DeltaTable(str(lake / location)).file_uris())
            for location in table_locations() if DeltaTable.is_deltatable(str(lake / location))}


def upload_seconds(run: dict) -> list[dict]:
    """Each upload's steps, in upload order: ingest (from its record's start to its finish), routes, weekly."""
    steps = []
    for ingestion in run["ingestions"]:
        ingest = (datetime.fromisoformat(ingestion["finished_at"]) - datetime.fromisoformat(ingestion["started_at"]))
        steps.append({"ingest": round(ingest.total_seconds(), 2), "routes": ingestion["routes"]["seconds"],
                      "weekly": ingestion["weekly"]["seconds"]})
        steps[-1]["total"] = round(sum(steps[-1].values()), 2)
    return steps


def growth(steps: list[dict], edge: int = 5) -> dict:
    """The median of the last `edge` uploads' step times over that of the first `edge`: how an upload's cost grows
    with the lake's history (1.0: not at all)."""
    return {step: round(statistics.median(upload[step] for upload in steps[-edge:])
                        / max(statistics.median(upload[step] for upload in steps[:edge]), 0.01), 2)
            for step in steps[0]}


def plot(steps: list[dict], path: Path, title: str) -> None:
    """Each upload's step times against its number."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(8, 4))
    numbers = range(1, len(steps) + 1)
    for step in ("total", "ingest", "routes", "weekly"):
        axes.plot(numbers, [upload[step] for upload in steps], marker="." if step == "total" else None, label=step)
    axes.set(xlabel="upload number", ylabel="seconds", title=title, ylim=(0, None))
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--uploads", type=int, default=40)
    parser.add_argument("--out", type=Path, default=LOCAL_DIR / "bench" / "uploads")
    parser.add_argument("--by-time", action="store_true",
                        help="split the trips in the order they started (uploads as the trips happen)")
    args = parser.parse_args(argv)
    shutil.rmtree(args.out, ignore_errors=True)
    (args.out / "uploads").mkdir(parents=True)
    one_file = args.out / "trips.csv"
    generate(GenerateOptions(rows=args.rows, seed=7), one_file)
    uploads = split(one_file, args.uploads, args.out / "uploads", args.by_time)

    results: dict = {"rows": args.rows, "uploads": args.uploads, "by_time": args.by_time}
    for name, inputs in (("one_file", [one_file]), ("many_uploads", uploads)):
        lake = args.out / f"lake_{name}"
        seconds, run = timed([TRIPLAKE, "run", "--json", "--lake-root", str(lake), "--input", *map(str, inputs)])
        written = sum(ingestion["rows_written"] for ingestion in run["ingestions"])
        results[name] = {"run_s": seconds, "rows_written": written, "files": files_per_table(lake),
                         "queries": measure(lake)}
        print(json.dumps({name: results[name]}), flush=True)
    steps = upload_seconds(run)
    results["many_uploads"] |= {"upload_seconds": steps, "growth": growth(steps),
                                "run_ratio": round(results["many_uploads"]["run_s"] / results["one_file"]["run_s"], 2)}
    plot(steps, args.out / "upload_times.png",
         f"{args.uploads} uploads of {args.rows // args.uploads:,} trips" + (", in time order" if args.by_time else ""))
    lake = args.out / "lake_many_uploads"
    seconds, report = timed([TRIPLAKE, "maintain", "--json", "--lake-root", str(lake)])
    results["many_uploads_maintained"] = {"maintain_s": seconds, "files": files_per_table(lake),
                                          "queries": measure(lake), "report": report}
    print(json.dumps({"many_uploads_maintained": results["many_uploads_maintained"]}), flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(markdown(results))
    return 0


def markdown(results: dict) -> str:
    lakes = {"one file": results["one_file"], f"{results['uploads']} uploads": results["many_uploads"],
             f"{results['uploads']} uploads, then `triplake maintain`": results["many_uploads_maintained"]}
    tables = list(results["one_file"]["files"])
    areas = list(results["one_file"]["queries"])
    lines = ["| lake | " + " | ".join(f"{table} files" for table in tables) + " | "
             + " | ".join(f"{area} (s)" for area in areas) + " |",
             "|---|" + "---:|" * (len(tables) + len(areas))]
    for label, lake in lakes.items():
        lines.append(f"| {label} | " + " | ".join(str(lake["files"].get(table, 0)) for table in tables) + " | "
                     + " | ".join(str(lake["queries"][area]["median_s"]) for area in areas) + " |")
    many = results["many_uploads"]
    lines.append(f"\n{results['uploads']} uploads took {many['run_ratio']}x the one file's `triplake run`; the last "
                 f"five uploads' steps against the first five's (median): " + ", ".join(
                     f"{step} {ratio}x" for step, ratio in many["growth"].items()))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
