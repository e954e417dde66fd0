"""The lake's writer lease: one ingestion writes the lake at a time, whatever starts it.

`triplake run`, the DAG's batches, a second Airflow or an admin's rerun all take the same lease before the first
step of their ingestions and hold it until the last has committed. It is one object at the lake root,
`_lease.json` (spark_jobs.common.lease), created, renewed, taken over and released with compare-and-swap writes
(triplake.lake_objects: S3 conditional writes, or O_EXCL and flock on file://).

A second writer waits, saying who holds the lake, for as long as the lake shows progress (the lease renewed or
taken), so uploads queued behind long ingestions are never refused for waiting; it fails with LakeBusyError only
when the lease has not changed for its wait. A lease whose holder stopped renewing expires and is taken over; so
is one held by a process of this machine that no longer exists. The interrupted ingestion is then rolled back by
the new holder's first step (spark_jobs.common.publish).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Iterator

from spark_jobs.common.lease import LEASE_FILE, LeaseLostError, LeaseRecord
from triplake.lake_objects import ConditionalDeleteUnsupported, LakeObjects, lake_objects
from triplake.processes import alive
from triplake.settings import Settings

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0


class LakeBusyError(RuntimeError):
    """Another ingestion held the lake for longer than this writer was willing to wait."""

    def __init__(self, message: str, holder: LeaseRecord) -> None:
        super().__init__(message)
        self.holder = holder


class StillWriting(RuntimeError):
    """Something may still be writing the lake for this writer (a job run that could not be stopped): its lease is
    left to expire instead of being given back, so no other writer starts beside it before then."""


def lease_objects(lake_root: str, settings: Settings, s3_client: Any | None = None) -> LakeObjects:
    """Where the lease of a lake root lives (its control objects: triplake.lake_objects)."""
    return lake_objects(lake_root, settings, s3_client)


def holder_gone(record: LeaseRecord, now: datetime | None = None) -> str | None:
    """Why the lease's holder can no longer write (released, expired, or its process on this machine is gone)."""
    if record.released_at:
        return f"it released the lake at {record.released_at}"
    if record.expired(now):
        return f"its lease expired at {record.expires_at}"
    if record.pid is not None and record.host == socket.gethostname() and not alive(record.pid):
        return f"its process {record.pid} on this machine no longer exists"
    return None


class LakeLease:
    """The writer lease of one writer (an ingestion, or a batch of ingestions) on one lake."""

    def __init__(self, objects: LakeObjects, writer: str, ingestions: Iterable[str], owner: str, seconds: float,
                 pid: int | None = None) -> None:
        self.objects, self.writer, self.owner, self.seconds, self.pid = objects, writer, owner, seconds, pid
        self.ingestions = tuple(ingestions)
        self.lost: str | None = None

    @classmethod
    def for_lake(cls, lake_root: str, settings: Settings, writer: str, ingestions: Iterable[str], owner: str,
                 pid: int | None = None, s3_client: Any | None = None) -> LakeLease:
        return cls(lease_objects(lake_root, settings, s3_client), writer, ingestions, owner,
                   settings.lake_lease_seconds, pid)

    @property
    def location(self) -> str:
        return self.objects.location(LEASE_FILE)

    def read(self) -> tuple[LeaseRecord, str] | None:
        """The lease as it is now, and the version a compare-and-swap of it compares."""
        current = self.objects.read(LEASE_FILE)
        return None if current is None else (LeaseRecord.from_json(current[0].decode()), current[1])

    def _record(self, acquired_at: str | None = None) -> LeaseRecord:
        now = datetime.now(timezone.utc)
        return LeaseRecord(
            writer=self.writer,
            ingestions=self.ingestions,
            owner=self.owner,
            host=socket.gethostname(),
            pid=self.pid,
            acquired_at=acquired_at or now.isoformat(),
            expires_at=(now + timedelta(seconds=self.seconds)).isoformat(),
            token=uuid.uuid4().hex,
        )

    def _replace(self, record: LeaseRecord, version: str) -> bool:
        return self.objects.replace(LEASE_FILE, record.to_json().encode(), version)

    def acquire(self, wait_seconds: float, on_wait: Callable[[LeaseRecord], None] | None = None) -> LeaseRecord:
        """Takes the lake, waiting while another writer holds it and shows progress; LakeBusyError once the lake has
        shown none for wait_seconds.

        Progress is the lease changing: its holder renewing it (every third of its life while it works) or another
        writer taking it. So a writer is never refused because the writers ahead of it were long, only because the
        one holding the lake stopped renewing and its lease has not expired yet (a lease that expires is taken over)."""
        deadline = time.monotonic() + wait_seconds
        seen_token, announced = None, None
        while True:
            record = self._record()
            if self.objects.create(LEASE_FILE, record.to_json().encode()):
                return record
            current = self.read()
            if current is None:
                continue  # released between our two calls
            held, version = current
            gone = holder_gone(held)
            if held.writer == self.writer or gone:
                if self._replace(record, version):
                    if gone and held.writer != self.writer and not held.released_at:
                        logger.warning("took the lake over from %s: %s", held.describe(), gone)
                    return record
                continue  # it changed in between: look again
            if seen_token is not None and held.token != seen_token:
                deadline = time.monotonic() + wait_seconds  # renewed or taken: the lake is moving
            seen_token = held.token
            if time.monotonic() >= deadline:
                raise LakeBusyError(
                    f"the lake is being written by {held.describe()}, whose lease has not changed for "
                    f"{wait_seconds:.0f} s (TRIPLAKE_LAKE_LEASE_WAIT_SECONDS) and has not expired either. Run again "
                    f"once it has finished or its lease has expired (it is {self.location}; see docs/runbook.md)",
                    held,
                )
            if on_wait is not None and announced != held.writer:
                on_wait(held)
                announced = held.writer
            time.sleep(POLL_SECONDS)

    def renew(self) -> LeaseRecord:
        """Extends the lease; LeaseLostError when it is no longer this writer's."""
        current = self.read()
        if current is None or current[0].writer != self.writer or current[0].released_at:
            holder = current[0].describe() if current and not current[0].released_at else "nobody"
            raise LeaseLostError(f"{self.writer} lost the lake's lease (now held by {holder})")
        held, version = current
        record = self._record(acquired_at=held.acquired_at)
        if not self._replace(record, version):
            raise LeaseLostError(f"{self.writer} lost the lake's lease while renewing it")
        return record

    def check(self) -> None:
        """LeaseLostError when the keep-alive found the lease taken over (kept_alive): stop writing."""
        if self.lost:
            raise LeaseLostError(self.lost)

    def release(self) -> None:
        """Gives the lake back, if this writer still holds it."""
        current = self.read()
        if current is None or current[0].writer != self.writer or current[0].released_at:
            return
        held, version = current
        try:
            self.objects.delete(LEASE_FILE, version)
        except ConditionalDeleteUnsupported:
            # An S3 without conditional deletes (LocalStack 4.13): mark the lease released with a conditional write,
            # which it has; an unconditional delete could remove a lease another writer has just taken over.
            self._replace(replace(held, released_at=datetime.now(timezone.utc).isoformat(), token=uuid.uuid4().hex),
                          version)

    @contextlib.contextmanager
    def kept_alive(self) -> Iterator[LakeLease]:
        """Renews the (already acquired) lease every third of its life while the block runs."""
        stop = threading.Event()

        def renew_until_stopped() -> None:
            while not stop.wait(self.seconds / 3):
                try:
                    self.renew()
                except LeaseLostError as lost:
                    self.lost = str(lost)
                    logger.error("%s", lost)
                    return
                except Exception:  # a network hiccup: try again at the next beat, the lease has time left
                    logger.warning("could not renew the lake's lease; trying again", exc_info=True)

        thread = threading.Thread(target=renew_until_stopped, name=f"lease-{self.writer}", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()

    @contextlib.contextmanager
    def held(self, wait_seconds: float, on_wait: Callable[[LeaseRecord], None] | None = None) -> Iterator[LakeLease]:
        """Acquires the lease, keeps it alive while the block runs, and releases it at the end (but after StillWriting,
        when it is left to expire)."""
        self.acquire(wait_seconds, on_wait)
        try:
            with self.kept_alive():
                yield self
        except StillWriting:
            logger.error("%s may still be writing the lake: its lease is left to expire", self.writer)
            raise
        except BaseException:
            self.release()
            raise
        self.release()
