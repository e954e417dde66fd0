"""Event latency on the local stack (`make bench-events`): how long a user waits, after uploading a file, for
RECEIVED and for SUCCEEDED to reach an HTTP subscriber of the status topic.

Each round starts a fresh stack (`triplake stack up`: moto server + airflow standalone), subscribes an endpoint
like `triplake watch` does, uploads the 100-line sample (or --file, e.g. a generated 1M-line file) into the
landing bucket, and times the two events from the moment the upload call starts. The stack is stopped after every
round. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import psutil

from triplake.aws import clients
from triplake.aws.s3 import upload_file
from triplake.events import RECEIVED, SUCCEEDED
from triplake.local import stack
from triplake.settings import REPO_ROOT, Settings
from triplake.watch import StatusReceiver, subscribe

SAMPLE = REPO_ROOT / "tests" / "fixtures" / "trips_sample.csv"
TIMEOUT = 600.0


def one_round(base: Settings, upload: Path = SAMPLE) -> dict[str, float]:
    directory = Path(tempfile.mkdtemp(prefix="triplake-bench-stack-"))
    started = time.perf_counter()
    state = stack.up(base, directory=directory, say=lambda _: None)
    stack_seconds = time.perf_counter() - started
    try:
        settings = stack.settings_of(state)
        s3, sns = clients(settings, "s3", "sns")
        with StatusReceiver(verify_signatures=False) as receiver:
            subscribe(sns, state.resources["status_topic_arn"], receiver.url)
            uploaded = time.perf_counter()
            upload_file(s3, upload, settings.landing_bucket, f"{settings.landing_prefix}{upload.name}", emulator=True)
            arrived: dict[str, float] = {}
            while SUCCEEDED not in arrived:
                event = receiver.events.get(timeout=TIMEOUT)
                arrived.setdefault(event["status"], time.perf_counter() - uploaded)
                if event["status"] not in (RECEIVED, SUCCEEDED):
                    raise RuntimeError(f"the ingestion failed: {event['error']}")
        return {"stack_up_s": stack_seconds, "received_s": arrived[RECEIVED], "succeeded_s": arrived[SUCCEEDED]}
    finally:
        stack.down(directory, say=lambda _: None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--file", type=Path, default=SAMPLE, help="the file to upload (default: the 100-line sample)")
    args = parser.parse_args(argv)
    base = Settings()
    rounds = []
    for number in range(1, args.rounds + 1):
        rounds.append(one_round(base, args.file))
        print(f"round {number}: " + ", ".join(f"{name} {value:.1f}" for name, value in rounds[-1].items()), flush=True)
    summary = {
        name: {"median": round(statistics.median(r[name] for r in rounds), 1), "max": round(max(r[name] for r in rounds), 1)}
        for name in rounds[0]
    }
    machine = {"cpus": psutil.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30),
               "python": platform.python_version(), "spark_master": base.spark_master}
    print(json.dumps({"file": str(args.file), "rounds": rounds, "summary": summary, "machine": machine}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
