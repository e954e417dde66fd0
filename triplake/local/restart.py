"""What `triplake stack up` does about what the last stack left behind, so every upload is still answered.

- Runs of the DAGs left queued or running are failed (triplake.local.interrupted_runs reads Airflow's database).
- Uploads received since the state was last saved and never answered: after a kill, the moto server (which keeps
  everything in memory) is back to that save, so the lake, the inbox and the uploaded files themselves are gone;
  each such upload is answered FAILED (`interrupted`), to be uploaded again. What `down` stopped is not lost: `down`
  saves the inbox with the lake.
- Uploads waiting in the (restored) inbox are ingested now: a run of trips_ingest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

from triplake import inbox
from triplake.aws import clients
from triplake.aws.sns import publish_status
from triplake.events import FAILED, status_event
from triplake.lake_objects import lake_objects
from triplake.lake_records import read_record, write_failed_record
from triplake.local import saved_state
from triplake.settings import Settings

INGEST_DAG = "trips_ingest"
LOST = {"kind": "interrupted", "message": "the local stack was killed after this upload was received, and its AWS "
        "(in memory) lost everything since it was last saved, the uploaded file too: upload it again"}


class RestartError(RuntimeError):
    """Airflow's database could not be read; the message says where the log is."""


def fail_interrupted_runs(env: dict[str, str], log: Path, saved: Path, settings: Settings,
                          say: Callable[[str], None]) -> None:
    """Fails the runs the last stack left running, and answers FAILED the uploads it lost."""
    since = saved_state.saved_at(saved)
    with log.open("a") as output:
        completed = subprocess.run([sys.executable, "-m", "triplake.local.interrupted_runs",
                                    *(["--since", since] if since else [])], env=env,
                                   stdout=subprocess.PIPE, stderr=output, text=True)
    if completed.returncode != 0:
        raise RestartError(f"could not check Airflow for interrupted runs; see {log}")
    left = json.loads(completed.stdout)
    for run in left["interrupted_runs"]:
        say(f"run {run['dag_run_id']} of {run['dag_id']} was left running by the last stack: marked failed")
    waiting = {receipt.ingestion_id for receipt in inbox.waiting(lake_objects(settings.lake_root, settings))}
    (sns,) = clients(settings, "sns")
    for receipt in map(inbox.Receipt.from_dict, left["unanswered_receipts"]):
        if receipt.ingestion_id in waiting or read_record(settings.lake_root, settings, receipt.ingestion_id):
            continue  # saved with the lake: the next trips_ingest run answers it, or it was answered
        write_failed_record(settings.lake_root, settings, receipt.ingestion_id, receipt.source_uri, LOST)
        publish_status(sns, str(settings.status_topic_arn), status_event(
            ingestion_id=receipt.ingestion_id, status=FAILED, source_uri=receipt.source_uri, error=LOST,
            dag_run_id=receipt.dag_run_id))
        say(f"FAILED announced for {receipt.ingestion_id} ({receipt.source_uri}): received, then lost with the "
            "killed stack")


def answer_waiting_uploads(settings: Settings, trigger_ingest: Callable[[], None], say: Callable[[str], None]) -> None:
    """Uploads received before the stack stopped and not answered yet are ingested now: a run of trips_ingest."""
    waiting = inbox.waiting(lake_objects(settings.lake_root, settings))
    if waiting:
        trigger_ingest()
        say(f"{len(waiting)} uploads received before the stack stopped were waiting: trips_ingest takes them now")
