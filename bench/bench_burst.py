"""A folder of uploads at once on the local stack (`make bench-burst`): N generated files copied into the landing
bucket with one `aws s3 cp --recursive`, as a data source's export arrives; how long until every upload is
answered, how many SUCCEEDED, and whether the ingestions were committed in the order S3 took the uploads.

One fresh stack (`triplake stack up`: moto server + airflow standalone), the AWS CLI in a shell that knows the
stack only through `eval "$(triplake stack env)"`, the status events taken by an HTTP subscriber of the topic as
`triplake watch` takes them. The stack is stopped at the end. A benchmark, not a test: nothing here fails on a
figure (the target, issue 27: 100 files of 500 trips all SUCCEEDED in upload order within 10 minutes).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import psutil

from triplake.aws import clients
from triplake.events import RECEIVED
from triplake.generate import GenerateOptions, generate
from triplake.local import aws_cli, stack
from triplake.settings import Settings
from triplake.watch import StatusReceiver, subscribe

TIMEOUT = 3600.0


def folder_of_uploads(folder: Path, files: int, rows: int) -> None:
    """files weekly exports of rows trips each, one week after the other, each file its own seed."""
    folder.mkdir(parents=True)
    for number in range(files):
        week = date(2018, 6, 4) + timedelta(weeks=number)
        generate(GenerateOptions(rows=rows, seed=100 + number, start=week, days=7), folder / f"part-{number:03d}.csv")


def copy_folder(stack_dir: Path, folder: Path, target: str) -> None:
    copied = aws_cli.run(stack_dir, folder.parent, f'aws s3 cp --recursive --only-show-errors "{folder.name}" "{target}"')
    if copied.returncode != 0:
        raise RuntimeError(f"aws s3 cp failed: {copied.stdout}{copied.stderr}")


def committed_in_upload_order(state: stack.StackState, answered: set[str]) -> bool:
    """Whether the answered ingestions were committed (ingestions.finished_at) in the order S3 took the uploads."""
    return ([ingestion for ingestion in aws_cli.commit_order(state) if ingestion in answered]
            == [ingestion for ingestion in aws_cli.upload_order(state) if ingestion in answered])


def burst(base: Settings, files: int, rows: int) -> dict:
    directory = Path(tempfile.mkdtemp(prefix="triplake-bench-burst-"))
    folder_of_uploads(directory / "folder", files, rows)
    stack_dir = directory / "stack"
    state = stack.up(base, directory=stack_dir, say=lambda _: None)
    try:
        settings = stack.settings_of(state)
        sns = clients(settings, "sns")[0]
        with StatusReceiver(verify_signatures=False) as receiver:
            subscribe(sns, state.resources["status_topic_arn"], receiver.url)
            started = time.perf_counter()
            copy_folder(stack_dir, directory / "folder", f"s3://{settings.landing_bucket}/{settings.landing_prefix}burst/")
            copied = time.perf_counter() - started
            answered: dict[str, tuple[str, float]] = {}
            while len(answered) < files:
                event = receiver.events.get(timeout=TIMEOUT)
                if event["status"] != RECEIVED:
                    answered[event["ingestion_id"]] = (event["status"], round(time.perf_counter() - started, 1))
        statuses = Counter(status for status, _ in answered.values())
        return {"files": files, "rows_each": rows, "copy_s": round(copied, 1),
                "all_answered_s": max(seconds for _, seconds in answered.values()), "statuses": dict(statuses),
                "answer_times_s": sorted(seconds for _, seconds in answered.values()),
                "in_upload_order": committed_in_upload_order(state, set(answered))}
    finally:
        stack.down(stack_dir, say=lambda _: None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--rows", type=int, default=500, help="trips per file")
    args = parser.parse_args(argv)
    if not aws_cli.AWS_CLI.exists():
        parser.error(f"the AWS CLI is not installed in {aws_cli.AWS_CLI.parent.parent}: run `make bench-burst`, which installs it")
    result = burst(Settings(), args.files, args.rows)
    result["machine"] = {"cpus": psutil.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30),
                         "python": platform.python_version()}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
