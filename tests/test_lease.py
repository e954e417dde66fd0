"""The lake's writer lease on both stores (a file:// lake and an s3:// lake in moto): one holder at a time, a busy
lake says who holds it, a dead or silent holder is taken over, renewals keep it, and the jobs' fence reads it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from spark_jobs.common.lease import LeaseLostError, LeaseRecord, check_held
from tests.conftest import MOTO_CREDENTIALS
from triplake.lake_objects import FileObjects, S3Objects
from triplake.lease import LakeBusyError, LakeLease, lease_objects
from triplake.settings import Settings


class WithoutConditionalDeletes:
    """An S3 client that answers a conditional DeleteObject as LocalStack 4.13 does (NotImplemented)."""

    def __init__(self, client) -> None:
        self._client = client

    def __getattr__(self, name):
        return getattr(self._client, name)

    def delete_object(self, **kwargs):
        if "IfMatch" in kwargs:
            raise ClientError({"Error": {"Code": "NotImplemented", "Message": "A header you provided implies "
                                         "functionality that is not implemented"}}, "DeleteObject")
        return self._client.delete_object(**kwargs)


@pytest.fixture(params=["file", "s3", "s3 without conditional deletes"])
def store_factory(request, tmp_path, moto_endpoint):
    """Makes stores that all point at the same lease, as two writers on two machines would."""
    if request.param == "file":
        return lambda: FileObjects(tmp_path / "lake")
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", **MOTO_CREDENTIALS)
    bucket = f"lease-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    if request.param == "s3 without conditional deletes":
        s3 = WithoutConditionalDeletes(s3)
    return lambda: S3Objects(s3, bucket, "lake")


def lease(store_factory, writer: str, seconds: float = 60.0, pid: int | None = None) -> LakeLease:
    return LakeLease(store_factory(), writer, [f"{writer}-1", f"{writer}-2"], owner=f"test writer {writer}",
                     seconds=seconds, pid=pid)


def holder(store_factory) -> str:
    return lease(store_factory, "reader").read()[0].writer


def test_one_writer_at_a_time_and_a_busy_lake_names_its_holder(store_factory):
    first, second = lease(store_factory, "first"), lease(store_factory, "second")
    first.acquire(wait_seconds=0)
    with pytest.raises(LakeBusyError, match="being written by first \\(test writer first\\)") as busy:
        second.acquire(wait_seconds=0)
    assert busy.value.holder.writer == "first"
    first.release()
    second.acquire(wait_seconds=0)
    assert holder(store_factory) == "second"


def test_a_waiting_writer_gets_the_lake_when_it_is_released_and_hears_who_held_it(store_factory):
    first, second = lease(store_factory, "first"), lease(store_factory, "second")
    first.acquire(wait_seconds=0)
    heard, released = [], threading.Event()

    def release() -> None:
        released.set()
        first.release()

    threading.Timer(1.5, release).start()
    second.acquire(wait_seconds=60, on_wait=heard.append)
    assert released.is_set(), "it got the lake only once the first writer gave it back"
    assert [held.writer for held in heard] == ["first"]  # said once, not at every poll


def test_only_one_of_many_simultaneous_writers_wins(store_factory):
    winners, barrier = [], threading.Barrier(8)

    def contend(number: int) -> None:
        writer = lease(store_factory, f"writer-{number}")
        barrier.wait()
        try:
            writer.acquire(wait_seconds=0)
            winners.append(number)
        except LakeBusyError:
            pass

    threads = [threading.Thread(target=contend, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert holder(store_factory) == f"writer-{winners[0]}"


def test_an_expired_lease_is_taken_over_and_its_old_holder_cannot_renew_it(store_factory):
    silent = lease(store_factory, "silent", seconds=0.5)
    silent.acquire(wait_seconds=0)
    time.sleep(0.8)
    lease(store_factory, "next").acquire(wait_seconds=0)
    with pytest.raises(LeaseLostError, match="now held by next"):
        silent.renew()
    silent.release()  # not its lease any more: nothing happens
    assert holder(store_factory) == "next"


def test_a_lease_kept_alive_outlives_its_first_expiry(store_factory):
    kept = lease(store_factory, "kept", seconds=1.5)  # renewed every 0.5 s: a renewal a second late still holds it
    kept.acquire(wait_seconds=0)
    with kept.kept_alive():
        time.sleep(3.5)
        with pytest.raises(LakeBusyError):
            lease(store_factory, "other").acquire(wait_seconds=0)
    assert kept.lost is None


class VirtualClock:
    """time.monotonic and time.sleep for the lease module: each sleep of the waiter (one poll) advances the clock and
    lets the test act, so what the waiter sees between its polls is fixed, not raced."""

    def __init__(self, on_poll) -> None:
        self.now, self.polls, self.on_poll = 0.0, 0, on_poll

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.polls += 1
        self.on_poll(self.polls)


def test_a_writer_waits_for_as_long_as_the_holder_renews_and_gives_up_once_the_lease_stands_still(
        tmp_path, monkeypatch):
    store = lambda: FileObjects(tmp_path / "lake")  # noqa: E731
    holder_lease = LakeLease(store(), "long", ["long-1"], owner="a long batch", seconds=3600.0)
    holder_lease.acquire(wait_seconds=0)
    renewals = 30  # the holder renews at each of the waiter's first 30 polls: 30 s of progress against a 5 s wait
    clock = VirtualClock(lambda poll: holder_lease.renew() if poll <= renewals else None)
    monkeypatch.setattr("triplake.lease.time", clock)
    heard = []
    with pytest.raises(LakeBusyError, match="has not changed for 5 s") as busy:
        LakeLease(store(), "next", ["next-1"], owner="an upload", seconds=60.0).acquire(wait_seconds=5,
                                                                                      on_wait=heard.append)
    assert busy.value.holder.writer == "long"
    assert renewals + 4 <= clock.polls <= renewals + 6, "refused 5 s after the last renewal, not 5 s after it began"
    assert [held.writer for held in heard] == ["long"], "said once per holder, not at every renewal"

    clock.polls, clock.on_poll = 0, lambda poll: holder_lease.release() if poll == 40 else holder_lease.renew()
    LakeLease(store(), "next", ["next-1"], owner="an upload", seconds=60.0).acquire(wait_seconds=5)
    assert clock.polls == 40 and holder(store) == "next", "a holder that keeps renewing is waited for to its end"


def test_a_lease_whose_process_on_this_machine_is_gone_is_taken_at_once(store_factory):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    lease(store_factory, "crashed", seconds=3600, pid=dead_pid).acquire(wait_seconds=0)
    lease(store_factory, "next").acquire(wait_seconds=0)
    assert holder(store_factory) == "next"


def test_the_jobs_fence_refuses_another_holder_and_an_expired_lease():
    record = LeaseRecord("batch-7", ("first", "second"), "test", "host", None, "2026-01-01T00:00:00+00:00",
                         "2999-01-01T00:00:00+00:00", "t")
    check_held(None, "anyone")  # no lease at all: a job run by hand on a lake nobody else writes
    check_held(record.to_json(), "first")
    check_held(record.to_json(), "second")  # every ingestion of the writer's batch may publish
    with pytest.raises(LeaseLostError, match="being written by batch-7"):
        check_held(record.to_json(), "intruder")
    expired = json.loads(record.to_json()) | {"expires_at": "2000-01-01T00:00:00+00:00"}
    with pytest.raises(LeaseLostError, match="lease of batch-7 expired"):
        check_held(json.dumps(expired), "first")


def test_the_store_follows_the_lake_root(tmp_path):
    assert isinstance(lease_objects(tmp_path.as_uri(), Settings()), FileObjects)
    store = lease_objects("s3://bucket/some/prefix", Settings(), s3_client=object())
    assert isinstance(store, S3Objects) and store.location("_lease.json") == "s3://bucket/some/prefix/_lease.json"
    with pytest.raises(ValueError, match="unsupported lake root"):
        lease_objects("gs://bucket/lake", Settings())


def test_where_s3_cannot_delete_conditionally_a_release_marks_the_lease_released_and_frees_the_lake(
        moto_endpoint, caplog):
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", **MOTO_CREDENTIALS)
    s3.create_bucket(Bucket=(bucket := f"lease-{uuid.uuid4().hex[:12]}"))
    store = S3Objects(WithoutConditionalDeletes(s3), bucket, "lake")
    first = LakeLease(store, "first", ["first"], owner="test", seconds=60.0)
    first.acquire(wait_seconds=0)
    first.release()
    released, _ = first.read()
    assert released.writer == "first" and released.released_at, "kept, marked released"
    check_held(released.to_json(), "a job started by hand")  # a released lease holds nothing, like no lease
    with pytest.raises(LeaseLostError, match="first lost the lake's lease"):
        first.renew()  # given back: it cannot be renewed into being held again
    with caplog.at_level("WARNING", logger="triplake.lease"):
        LakeLease(store, "second", ["second"], owner="test", seconds=60.0).acquire(wait_seconds=0)
    assert first.read()[0].writer == "second" and first.read()[0].released_at is None
    assert not [record for record in caplog.records if "took the lake over" in record.getMessage()], \
        "a released lake is not a takeover"
