"""Each upload of a batch is answered once its file has ended, in upload order, and once: while the batch's job runs
(announce_finished, announcing_as_files_end), and the rest when the batch ends (announce_batch)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from spark_jobs.common.ingestions import report_path
from triplake import inbox
from triplake.announce import announce_batch, announce_finished, announcing_as_files_end
from triplake.events import FAILED, SUCCEEDED
from triplake.inbox import Receipt
from triplake.lake_objects import FileObjects
from triplake.orchestration import COUNT_FIELDS, Batch
from triplake.settings import Settings


def batch_of(store: FileObjects, count: int) -> Batch:
    receipts = tuple(Receipt(upload_id=f"u{number}", ingestion_id=f"20261205T000000Z-file{number:04d}",
                             source_uri=f"s3://landing/incoming/part-{number}.csv", size=10,
                             uploaded_at=f"2026-12-05T00:00:0{number}.000Z", received_at="2026-12-05T00:00:10+00:00",
                             dag_run_id="run-1") for number in range(count))
    for receipt in receipts:
        inbox.enqueue(store, receipt)
    return Batch("batch-1", receipts)


def ended(store: FileObjects, receipt: Receipt, status: str = SUCCEEDED) -> None:
    """What the job leaves when a file ends: its stage reports, then its outcome."""
    counts = dict.fromkeys(COUNT_FIELDS, 0) | {"rows_read": 5, "rows_valid": 5, "rows_written": 5}
    store.put(report_path(receipt.ingestion_id, "ingest"), json.dumps({"status": status} | counts).encode())
    error = None if status == SUCCEEDED else {"kind": "invalid_file", "message": "the header does not match"}
    store.put(report_path(receipt.ingestion_id, "ingestion"), json.dumps({"status": status, "error": error}).encode())


def test_files_are_announced_as_they_end_in_upload_order_and_the_batch_end_announces_only_the_rest(tmp_path: Path):
    store = FileObjects(tmp_path / "lake")
    batch = batch_of(store, 4)
    first, second, third, fourth = batch.receipts
    published: list[dict] = []
    announced: set[str] = set()

    ended(store, first)
    ended(store, third, FAILED)  # ended (as no job would, before the second): it must wait for the second
    announce_finished(batch, store, published.append, "run-1", announced)
    assert [event["ingestion_id"] for event in published] == [first.ingestion_id]
    assert [receipt.ingestion_id for receipt in inbox.waiting(store)] == [second.ingestion_id, third.ingestion_id,
                                                                           fourth.ingestion_id]

    ended(store, second)
    announce_finished(batch, store, published.append, "run-1", announced)
    assert [(event["ingestion_id"], event["status"]) for event in published] == [
        (first.ingestion_id, SUCCEEDED), (second.ingestion_id, SUCCEEDED), (third.ingestion_id, FAILED)]

    # The batch ends with the fourth file never reached: only that one is announced now, failed with the reason.
    failure = {"kind": "task_failed", "message": "the Spark application was killed"}
    statuses = announce_batch(batch, Settings(lake_root=(tmp_path / "lake").as_uri()), store, published.append,
                              "run-1", failure)
    assert statuses == {fourth.ingestion_id: FAILED}
    assert [event["ingestion_id"] for event in published] == [receipt.ingestion_id for receipt in batch.receipts]
    assert inbox.waiting(store) == []


def test_the_announcer_runs_beside_the_job_and_stops_with_it(tmp_path: Path):
    store = FileObjects(tmp_path / "lake")
    batch = batch_of(store, 2)
    published: list[dict] = []
    heard = threading.Event()

    def publish(event: dict) -> None:
        published.append(event)
        heard.set()

    with announcing_as_files_end(batch, store, publish, "run-1", every_seconds=0.05) as announced:
        ended(store, batch.receipts[0])
        assert heard.wait(timeout=60), "the first file is announced while the job still runs"
    # The block has ended and its thread with it (joined): what it announced is final.
    assert announced == {batch.receipts[0].ingestion_id}
    assert [receipt.ingestion_id for receipt in inbox.waiting(store)] == [batch.receipts[1].ingestion_id]
    ended(store, batch.receipts[1])  # after the block: the batch's end announces it, not the stopped thread
    assert [event["ingestion_id"] for event in published] == [batch.receipts[0].ingestion_id]
