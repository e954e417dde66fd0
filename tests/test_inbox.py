"""Receipts and the inbox on both stores (a file:// lake and an s3:// lake in moto): an upload is received once
however often and by however many runs its event comes, and waits in the order S3 took it until it is answered."""

from __future__ import annotations

import threading
import uuid

import boto3
import pytest

from tests.conftest import MOTO_CREDENTIALS
from triplake import inbox
from triplake.events import UploadedFile
from triplake.lake_objects import FileObjects, S3Objects


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path, moto_endpoint):
    if request.param == "file":
        return FileObjects(tmp_path / "lake")
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", **MOTO_CREDENTIALS)
    s3.create_bucket(Bucket=(bucket := f"inbox-{uuid.uuid4().hex[:12]}"))
    return S3Objects(s3, bucket, "lake")


def upload(key: str, event_time: str, version: str = "v1", size: int = 10) -> UploadedFile:
    return UploadedFile("landing", key, version=version, size=size, event_time=event_time)


def test_an_upload_delivered_to_two_runs_is_received_once_and_a_retry_of_the_same_run_gets_its_receipt(store):
    first, new = inbox.receive(store, upload("incoming/a.csv", "2026-12-04T15:07:41.523Z"), "run-1")
    assert new and first.source_uri == "s3://landing/incoming/a.csv" and first.dag_run_id == "run-1"
    again, new = inbox.receive(store, upload("incoming/a.csv", "2026-12-04T15:07:41.523Z"), "run-2")
    assert not new and again == first, "delivered again to another run: received already"
    retried, new = inbox.receive(store, upload("incoming/a.csv", "2026-12-04T15:07:41.523Z"), "run-1")
    assert new and retried == first, "the run that received it, trying again, carries on with its own receipt"
    other, new = inbox.receive(store, upload("incoming/a.csv", "2026-12-04T15:07:41.532Z", version="v2"), "run-2")
    assert new and other.ingestion_id != first.ingestion_id, "the same key uploaded again is another upload"


def test_many_runs_receiving_one_upload_at_once_make_one_receipt(store):
    results, barrier = [], threading.Barrier(6)

    def receive(number: int) -> None:
        barrier.wait()
        results.append(inbox.receive(store, upload("incoming/a.csv", "2026-12-04T15:07:41.523Z"), f"run-{number}"))

    threads = [threading.Thread(target=receive, args=(number,)) for number in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(new for _, new in results) == 1
    assert len({receipt.ingestion_id for receipt, _ in results}) == 1


def test_the_inbox_gives_waiting_uploads_in_the_order_s3_took_them_until_they_are_answered(store):
    times = ["2026-12-04T15:07:41.900Z", "2026-12-04T15:07:41.100Z", "2026-12-04T16:00:00.000Z", "2026-12-04T15:07:41.500Z"]
    receipts = [inbox.receive(store, upload(f"incoming/{number}.csv", moment), "run-1")[0]
                for number, moment in enumerate(times)]
    for receipt in receipts:
        inbox.enqueue(store, receipt)
    assert [receipt.name for receipt in inbox.waiting(store)] == ["1.csv", "3.csv", "0.csv", "2.csv"]

    inbox.answered(store, [receipts[1], receipts[3]])
    assert [receipt.name for receipt in inbox.waiting(store)] == ["0.csv", "2.csv"]
    _, new = inbox.receive(store, upload("incoming/1.csv", times[1]), "run-9")
    assert not new, "answered and delivered again: still received once"
    assert [receipt.name for receipt in inbox.waiting(store)] == ["0.csv", "2.csv"]


def test_stack_up_ingests_the_uploads_a_stopped_stack_left_waiting_and_nothing_when_none_wait(tmp_path):
    from triplake.local import restart
    from triplake.settings import Settings

    settings = Settings(lake_root=(tmp_path / "lake").as_uri())
    triggered, said = [], []
    restart.answer_waiting_uploads(settings, lambda: triggered.append(True), said.append)
    assert triggered == [] and said == []
    store = FileObjects(tmp_path / "lake")
    inbox.enqueue(store, inbox.receive(store, upload("incoming/a.csv", "2026-12-04T15:07:41.523Z"), "run-1")[0])
    restart.answer_waiting_uploads(settings, lambda: triggered.append(True), said.append)
    assert triggered == [True] and said == ["1 uploads received before the stack stopped were waiting: trips_ingest "
                                            "takes them now"]
