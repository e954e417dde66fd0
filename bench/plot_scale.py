"""The picture of `make bench-scale`: time per stage and peak memory against trips, from scale.json alone."""

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
    base = sizes[0]
    times.plot(millions, [base["wall_s"] / 60 * size["rows"] / base["rows"] for size in sizes], ":", color="grey",
               label=f"linear from {millions[0]:g}M")
    times.set(xlabel="trips (millions)", ylabel="minutes", title="Time against trips")
    times.legend(fontsize=8)
    times.grid(alpha=0.3)

    memory.plot(millions, [size["peak_rss_gib"] for size in sizes], "o-", color="tab:red", label="peak RSS, process tree")
    memory.axhline(16, color="grey", linestyle=":", label="target 16 GiB")
    memory.set(xlabel="trips (millions)", ylabel="GiB", title="Peak memory against trips", ylim=(0, 24))
    memory.legend(fontsize=8)
    memory.grid(alpha=0.3)

    figure.suptitle(f"make bench-scale, {report['machine']}", fontsize=9)
    figure.tight_layout()
    figure.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("report", type=Path, nargs="?", default=BENCH_DIR / "scale.json")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "scale_plot.png")
    args = parser.parse_args(argv)
    plot(json.loads(args.report.read_text()), args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
