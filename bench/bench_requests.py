"""S3 requests of one ingestion (`make bench-requests`): `triplake run` of a file into an `s3://` lake on a moto
server, counted from the server's request log, by method. The count does not depend on the machine's speed, so it
is the figure to compare designs by (docs/benchmarks.md). A benchmark, not a test.

For each file: a fresh bucket, the file ingested into the empty lake, then the same file again (nothing new to
write). The file is read from the local disk, so every request counted is the lake's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import boto3

from triplake.generate import GenerateOptions, generate
from triplake.local.moto_server import running_moto_server
from triplake.settings import REPO_ROOT

SAMPLE = REPO_ROOT / "tests" / "fixtures" / "trips_sample.csv"
# The server's log colours the lines of some statuses (206, 204, 404...) with terminal escapes: strip them first.
COLOUR = re.compile(r"\x1b\[[0-9;]*m")
REQUEST_LINE = re.compile(r'"(GET|PUT|POST|HEAD|DELETE) (\S+) HTTP/[\d.]+" (\d{3})')
LAKE_PREFIX = "triplake/"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def logged_requests(log: Path, offset: int) -> list[tuple[str, str]]:
    """(method, target) of each request the server logged after byte offset."""
    with log.open("rb") as lines:
        lines.seek(offset)
        return [match.group(1, 2) for line in lines
                if (match := REQUEST_LINE.search(COLOUR.sub("", line.decode(errors="replace"))))]


def where(target: str) -> str:
    """What a request touched, in the lake's terms: a table's log, data files or folders, or a top-level folder."""
    url = urlparse(target)
    prefix = parse_qs(url.query).get("prefix", [""])[0]
    key = unquote(url.path).lstrip("/").split("/", 1)[-1] if "/" in url.path.strip("/") else prefix
    parts = key.removeprefix(LAKE_PREFIX).split("/")
    listing = " (list)" if "list-type" in url.query or "delimiter" in url.query else ""
    if parts[0] == "curated" and len(parts) > 1:
        inside = "log" if "_delta_log" in parts else "data file" if key.endswith(".parquet") else "folder"
        return f"curated/{parts[1]} {inside}{listing}"
    return (parts[0] or "(the lake's root)") + listing


def ingest(endpoint: str, lake_root: str, file: Path) -> dict:
    environment = os.environ | CREDENTIALS | {"TRIPLAKE_AWS_ENDPOINT_URL": endpoint, "TRIPLAKE_AWS_REGION": "us-east-1"}
    command = [str(Path(sys.executable).with_name("triplake")), "run", "--json", "--lake-root", lake_root,
               "--input", str(file)]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"triplake run failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)["ingestions"][0]


def measure(file: Path, label: str) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="triplake-bench-requests-") as directory:
        log = Path(directory) / "moto.log"
        with running_moto_server(request_log=log) as endpoint:
            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              **{name.lower(): value for name, value in CREDENTIALS.items()})
            s3.create_bucket(Bucket="lake")
            for attempt in ("into an empty lake", "the same file again"):
                offset = log.stat().st_size
                ingestion = ingest(endpoint, "s3://lake/triplake", file)
                requests = logged_requests(log, offset)
                counts = Counter(method for method, _ in requests)
                rows.append({"file": label, "ingestion": attempt, "requests": sum(counts.values()),
                             **{method: counts.get(method, 0) for method in ("PUT", "HEAD", "GET", "POST", "DELETE")},
                             "rows_written": ingestion["rows_written"],
                             "where": Counter(f"{method} {where(target)}" for method, target in requests).most_common()})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=[20_000],
                        help="also generated files of these many trips (default: 20000)")
    args = parser.parse_args(argv)
    files = [(SAMPLE, "the 100-line sample")]
    with tempfile.TemporaryDirectory(prefix="triplake-bench-files-") as directory:
        for rows in args.rows:
            generated = Path(directory) / f"trips_{rows}.csv"
            generate(GenerateOptions(rows=rows, seed=7), generated)
            files.append((generated, f"{rows:,} generated trips"))
        results = [row for file, label in files for row in measure(file, label)]
    print("| file | ingestion | S3 requests | PUT / HEAD / GET / POST / DELETE | rows written |")
    print("|---|---|---:|---|---:|")
    for row in results:
        methods = " / ".join(str(row[method]) for method in ("PUT", "HEAD", "GET", "POST", "DELETE"))
        print(f"| {row['file']} | {row['ingestion']} | {row['requests']:,} | {methods} | {row['rows_written']:,} |")
    for row in results:
        print(f"\n{row['file']}, {row['ingestion']}: where the requests went (the most first)")
        print("\n".join(f"  {count:5d}  {what}" for what, count in row["where"][:25]))
    print(json.dumps(results), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
