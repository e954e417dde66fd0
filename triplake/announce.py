"""The end of a batch: every file of the batch is answered. (Nothing is registered in the Glue catalog: Athena reads
the Delta tables' partitions from their logs, so a file is queryable the moment it commits.)

Each file's outcome is in its reports in the lake (spark_jobs.ingestion leaves them as each file ends). A file with
no outcome was not ingested (the batch failed as a whole, or stopped during it): its ingestions record says how it
ended if it has one (a commit just before the batch died counts), else it fails with the batch's reason and gets
its FAILED record. Announced files leave the inbox; nothing is announced twice for a file that has left it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from typing import Any, Callable, Iterator, Mapping

from spark_jobs.common.ingestions import report_path
from triplake import inbox, orchestration
from triplake.inbox import Receipt
from triplake.lake_objects import LakeObjects
from triplake.lake_records import read_record, write_failed_record
from triplake.settings import Settings

logger = logging.getLogger(__name__)

class Reports:
    """The reports of one file, each read at most once."""

    def __init__(self, store: LakeObjects, ingestion_id: str) -> None:
        self.store, self.ingestion_id = store, ingestion_id
        self._read: dict[str, Mapping[str, Any] | None] = {}

    def __call__(self, job: str) -> Mapping[str, Any] | None:
        if job not in self._read:
            found = self.store.read(report_path(self.ingestion_id, job))
            self._read[job] = json.loads(found[0]) if found else None
        return self._read[job]


def announce_finished(batch: orchestration.Batch, store: LakeObjects, publish: Callable[[dict], None],
                      dag_run_id: str | None, announced: set[str]) -> None:
    """While the batch's job runs: announces, in the batch's order, each file whose outcome report is in the lake and
    that is not in `announced` yet, and takes it out of the inbox. The job ends the files in order, so the first file
    with no outcome yet stops the round: no file is announced before one uploaded earlier."""
    for receipt in batch.receipts:
        if receipt.ingestion_id in announced:
            continue
        reports = Reports(store, receipt.ingestion_id)
        outcome = reports("ingestion")
        if outcome is None:
            return
        event = orchestration.outcome_event(receipt, outcome, reports, dag_run_id)
        publish(event)
        inbox.answered(store, [receipt])
        announced.add(receipt.ingestion_id)
        logger.info("%s %s: %s", receipt.ingestion_id, receipt.name, event["status"])


@contextlib.contextmanager
def announcing_as_files_end(batch: orchestration.Batch, store: LakeObjects, publish: Callable[[dict], None],
                            dag_run_id: str | None, every_seconds: float) -> Iterator[set[str]]:
    """Runs announce_finished every few seconds, in a thread, while the block (the batch's job) runs: an upload is
    answered once its file commits, not once the last file of its batch does. What it has not announced when the
    block ends, announce_batch does."""
    announced: set[str] = set()
    stop = threading.Event()

    def announce_while_running() -> None:
        while not stop.wait(every_seconds):
            try:
                announce_finished(batch, store, publish, dag_run_id, announced)
            except Exception:  # the batch's end announces what this could not
                logger.exception("could not announce the files that have ended; the batch's end will")

    announcer = threading.Thread(target=announce_while_running, name="announce-as-files-end", daemon=True)
    announcer.start()
    try:
        yield announced
    finally:
        stop.set()
        announcer.join()


def announce_batch(batch: orchestration.Batch, settings: Settings, store: LakeObjects, publish: Callable[[dict], None],
                   dag_run_id: str | None, failure: Mapping[str, str] | None) -> dict[str, str]:
    """Publishes SUCCEEDED or FAILED for each file of the batch still in the inbox (those announced while the job ran
    have left it) and empties the batch out of the inbox; returns the status of each file it announced."""
    waiting = set(store.keys(inbox.INBOX))
    receipts = [receipt for receipt in batch.receipts if receipt.inbox_key in waiting]
    reports = {receipt.ingestion_id: Reports(store, receipt.ingestion_id) for receipt in receipts}
    outcomes = {receipt.ingestion_id: _outcome(receipt, reports[receipt.ingestion_id], settings)
                for receipt in receipts}
    statuses = {}
    for receipt in receipts:
        outcome = outcomes[receipt.ingestion_id]
        event = orchestration.outcome_event(receipt, outcome, reports[receipt.ingestion_id], dag_run_id, failure)
        if outcome is None:  # never reached: it gets the record of an attempt that wrote nothing
            write_failed_record(settings.lake_root, settings, receipt.ingestion_id, receipt.source_uri, event["error"])
        publish(event)
        statuses[receipt.ingestion_id] = event["status"]
        logger.info("%s %s: %s", receipt.ingestion_id, receipt.name, event["status"])
    inbox.answered(store, receipts)
    return statuses


def _outcome(receipt: Receipt, reports: Reports, settings: Settings) -> Mapping[str, Any] | None:
    """The file's outcome report, or what its ingestions record says when the batch stopped before the report."""
    outcome = reports("ingestion")
    if outcome is not None:
        return outcome
    record = read_record(settings.lake_root, settings, receipt.ingestion_id)
    if record is None:
        return None
    return {"status": record["status"], "error": json.loads(record["error"]) if record["error"] else None}
