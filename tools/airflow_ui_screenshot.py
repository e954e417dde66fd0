"""What a user sees in the Airflow UI after uploading files, in a real browser (`make screenshot`).

Starts a fresh local stack in a temporary directory, uploads the sample split into one file per region (three files
at once, as a user's exporter would), waits until each is SUCCEEDED on the status topic, then opens the trips_ingest
run's mapped `spark_ingestion` task in headless Chromium (driven by Playwright) and checks that the page names each
batch by its files, not "Map Index 0". Writes docs/img/airflow_run.png. Needs Debian's `chromium` package (the browser
Playwright drives: its own download site is not reachable from the build machines).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from triplake.aws import clients
from triplake.aws.s3 import upload_file
from triplake.events import RECEIVED, SUCCEEDED
from triplake.local import stack
from triplake.orchestration import PLAN_TASK, SPARK_TASK
from triplake.settings import REPO_ROOT, Settings
from triplake.watch import StatusReceiver, subscribe

SAMPLE = REPO_ROOT / "tests" / "fixtures" / "trips_sample.csv"
OUT = REPO_ROOT / "docs" / "img" / "airflow_run.png"
TIMEOUT = 600.0


def files_per_region(directory: Path) -> list[Path]:
    """The sample as one upload per region: trips_hamburg.csv, trips_prague.csv, trips_turin.csv."""
    with SAMPLE.open(newline="") as sample:
        reader = csv.DictReader(sample)
        by_region: dict[str, list[dict]] = {}
        for row in reader:
            by_region.setdefault(row["region"], []).append(row)
    paths = []
    for region, rows in sorted(by_region.items()):
        path = directory / f"trips_{region.lower()}.csv"
        with path.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=reader.fieldnames)
            writer.writeheader()
            writer.writerows(rows)
        paths.append(path)
    return paths


def airflow_token(url: str, user: str, password: str) -> str:
    body = json.dumps({"username": user, "password": password}).encode()
    request = urllib.request.Request(f"{url}/auth/token", data=body,  # noqa: S310 - the stack's loopback endpoint
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request) as response:  # noqa: S310 - the stack's own loopback endpoint
        return json.load(response)["access_token"]


def runs_of(url: str, token: str, source_uris: set[str]) -> dict[str, list[str]]:
    """The trips_ingest runs that ingested the uploaded files, with the labels of their batches (from the plan)."""
    def get(path: str) -> dict:
        request = urllib.request.Request(f"{url}/api/v2{path}",  # noqa: S310 - the stack's loopback endpoint
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request) as response:  # noqa: S310 - the stack's own loopback endpoint
            return json.load(response)

    found = {}
    for run in get("/dags/trips_ingest/dagRuns?order_by=-run_after&limit=20")["dag_runs"]:
        run_id = run["dag_run_id"]
        plan = get(f"/dags/trips_ingest/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{PLAN_TASK}"
                   "/xcomEntries/return_value?deserialize=true")["value"]
        if isinstance(plan, str):
            plan = json.loads(plan)
        labels = [batch["label"] for batch in plan
                  if any(receipt["source_uri"] in source_uris for receipt in batch["receipts"])]
        if labels:
            found[run_id] = labels
    return found


def screenshot(url: str, token: str, run_id: str, names: list[str], out: Path, browser_path: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_context(viewport={"width": 1400, "height": 820}).new_page()
        page.context.add_cookies([{"name": "_token", "value": token, "url": url}])
        page.goto(f"{url}/dags/trips_ingest/runs/{urllib.parse.quote(run_id)}/tasks/batch.{SPARK_TASK}/mapped")
        for name in names:
            page.get_by_text(name, exact=True).first.wait_for(timeout=60_000)
        page.screenshot(path=str(out))
        browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--browser", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args(argv)
    base = Settings()
    directory = Path(tempfile.mkdtemp(prefix="triplake-screenshot-"))
    state = stack.up(base, directory=directory / "stack", say=print)
    try:
        settings = stack.settings_of(state)
        s3, sns = clients(settings, "s3", "sns")
        uploads = files_per_region(directory)
        with StatusReceiver(verify_signatures=False) as receiver:
            subscribe(sns, state.resources["status_topic_arn"], receiver.url)
            sources = {upload_file(s3, path, settings.landing_bucket, f"{settings.landing_prefix}{path.name}",
                                   emulator=True) for path in uploads}
            succeeded: set[str] = set()
            deadline = time.monotonic() + TIMEOUT
            while succeeded != sources:
                event = receiver.events.get(timeout=max(1.0, deadline - time.monotonic()))
                print(f"{event['status']}: {event['source_uri']}")
                if event["status"] not in (RECEIVED, SUCCEEDED):
                    raise RuntimeError(f"the ingestion failed: {event['error']}")
                if event["status"] == SUCCEEDED:
                    succeeded.add(event["source_uri"])
        login = stack.status(directory / "stack")["airflow"]["login"]
        token = airflow_token(str(state.airflow_url), login["user"], login["password"])
        runs = runs_of(str(state.airflow_url), token, sources)
        # Files received together are one batch: the run whose batches ingested most of the files is shown.
        run_id, names = max(runs.items(), key=lambda run: len(run[1]))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        screenshot(str(state.airflow_url), token, run_id, names, args.out, args.browser)
        print(f"{len(runs)} run(s) ingested the {len(uploads)} files; {run_id} (batches {', '.join(names)}): {args.out}")
    finally:
        stack.down(directory / "stack", say=print)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
