"""The report of `make bench-scale`, from scale.json alone: a picture of time and memory against trips, and the
markdown tables of docs/scalability.md (so no figure there is copied by hand)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt  # noqa: E402

from bench.bench_ingest import BENCH_DIR  # noqa: E402

STAGES = (("ingest_s", "ingest"), ("routes_s", "routes"), ("weekly_s", "weekly"))


def plot(report: dict, out: Path) -> None:
    sizes = report["sizes"]
    millions = [size["rows"] / 1e6 for size in sizes]
    figure, (times, memory) = plt.subplots(1, 2, figsize=(11, 4.2))

    times.plot(millions, [size["wall_s"] / 60 for size in sizes], "o-", color="black", label="whole run (wall)")
    for key, label in STAGES:
        times.plot(millions, [size[key] / 60 for size in sizes], "o--", label=label)
    # Linear growth through the 10M point (or the largest below it): at 1M the fixed costs (JVM, model fit) rule.
    base = max((size for size in sizes if size["rows"] <= 10_000_000), key=lambda size: size["rows"], default=sizes[0])
    times.plot(millions, [base["wall_s"] / 60 * size["rows"] / base["rows"] for size in sizes], ":", color="grey",
               label=f"linear through {base['rows'] / 1e6:g}M")
    times.set(xlabel="trips (millions)", ylabel="minutes", title="Time against trips (log-log)", xscale="log", yscale="log")
    times.legend(fontsize=8)
    times.grid(alpha=0.3)

    memory.plot(millions, [size["peak_rss_gib"] for size in sizes], "o-", color="tab:red", label="peak RSS, process tree")
    memory.axhline(16, color="grey", linestyle=":", label="target 16 GiB")
    memory.set(xlabel="trips (millions)", ylabel="GiB", title="Peak memory against trips", ylim=(0, 24), xscale="log")
    memory.legend(fontsize=8)
    memory.grid(alpha=0.3)

    figure.suptitle(f"make bench-scale, {report['machine']}", fontsize=9)
    figure.tight_layout()
    figure.savefig(out, dpi=110)


def _row(*cells) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _table(header: list[str], rows: list[list]) -> str:
    align = ["---:" if index else "---" for index in range(len(header))]
    return "\n".join([_row(*header), _row(*align), *[_row(*row) for row in rows]])


def _stage(size: dict, stage: str) -> str:
    return f"{size[f'{stage}_s']:,.0f} ({size[f'{stage}_cpu_s']:,.0f})"


def pipeline_table(report: dict) -> str:
    return _table(
        ["trips", "files", "wall (s)", "CPU (s)", "ingest (CPU) s", "routes (CPU) s", "weekly (CPU) s", "rows/s",
         "peak memory (GiB)", "Parquet (MiB)", "trips files", "shuffle written (MiB)", "spilled to disk (MiB)"],
        [[f"{size['rows']:,}", size["files"], f"{size['wall_s']:,.0f}", f"{size['cpu_s']:,.0f}", _stage(size, "ingest"),
          _stage(size, "routes"), _stage(size, "weekly"), f"{size['rows_per_s']:,}", size["peak_rss_gib"],
          f"{size['parquet_mib']:,}", size["trips_files"], f"{size['spark']['shuffle_written_mib']:,}",
          f"{size['spark']['spill_disk_mib']:,}"] for size in report["sizes"]],
    )


def queries_table(report: dict) -> str:
    rows = []
    for size in report["sizes"]:
        for area, result in size["queries"].items():
            scanned = (f"{result['row_groups_read']} of {result['row_groups_total']} ({result['fraction_read']:.0%})"
                       if "row_groups_read" in result else "- (weekly_trips)")
            rows.append([f"{size['rows']:,}", area, f"{result['trips']:,}", result["median_s"], result["max_s"], scanned])
    return _table(["trips", "area", "answer (trips)", "median of 5 (s)", "worst (s)", "row groups read"], rows)


def increments_table(report: dict) -> str:
    rows = []
    for size in report["sizes"]:
        for kind in ("next_week_increment", "worst_case_increment"):
            if kind not in size:
                continue
            run = size[kind]
            rows.append([kind.replace("_increment", "").replace("_", " "), f"{run['lake_trips_before']:,}",
                         f"{run['rows']:,}", f"{run['already_present']:,}", f"{run['wall_s']:,.0f}",
                         f"{run['ingest_s']:,.1f}", f"{run['routes_s']:,.1f}", f"{run['weekly_s']:,.1f}",
                         f"{run['wall_s'] / size['wall_s']:.3f}", run["peak_rss_gib"]])
    return _table(["1M file", "trips in the lake before", "lines", "already in the lake", "wall (s)", "ingest (s)",
                   "routes (s)", "weekly (s)", "wall / full run of the lake", "peak memory (GiB)"], rows)


def per_file_table(report: dict) -> str:
    largest = report["sizes"][-1]
    return _table(["file of the largest lake", *[str(n) for n in range(1, largest["files"] + 1)]],
                  [["ingest (s)", *largest["per_file_ingest_s"]]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("report", type=Path, nargs="?", default=BENCH_DIR / "scale.json")
    parser.add_argument("--plot", type=Path, default=BENCH_DIR / "scale_plot.png")
    args = parser.parse_args(argv)
    report = json.loads(args.report.read_text())
    plot(report, args.plot)
    print(f"Machine: {report['machine']}; command: {report['command']}; started {report['started']}.\n")
    for table in (pipeline_table, per_file_table, queries_table, increments_table):
        print(table(report), end="\n\n")
    print(f"wrote {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
