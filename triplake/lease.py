"""The lake's writer lease: one ingestion writes the lake at a time, whatever starts it.

`triplake run`, the DAG's tasks, a second Airflow or an admin's rerun all take the same lease before the first
step of an ingestion and hold it until the ingestion has committed. It is one object at the lake root,
`_lease.json` (spark_jobs.common.lease), written atomically:

- on S3 with conditional writes: created with `If-None-Match: *`, renewed and taken over with `If-Match` on the
  ETag that was read (AWS S3 and moto both refuse the write when the object changed in between);
- on file:// with O_EXCL to create it, and a lock file (flock) around every compare-and-swap.

A second writer waits (bounded, saying who holds the lake) and then fails with LakeBusyError. A lease whose
holder stopped renewing expires and is taken over; so is one held by a process of this machine that no longer
exists. The interrupted ingestion is then rolled back by the new holder's first step (spark_jobs.common.publish).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol
from urllib.parse import urlparse

from spark_jobs.common.lease import LEASE_FILE, LeaseLostError, LeaseRecord
from triplake.processes import alive
from triplake.settings import Settings
from triplake.uris import local_path

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0


class LakeBusyError(RuntimeError):
    """Another ingestion held the lake for longer than this writer was willing to wait."""

    def __init__(self, message: str, holder: LeaseRecord) -> None:
        super().__init__(message)
        self.holder = holder


class LeaseStore(Protocol):
    """Where the lease lives; every write is a compare-and-swap against the version that was read."""

    location: str

    def read(self) -> tuple[LeaseRecord, str] | None: ...

    def create(self, record: LeaseRecord) -> bool: ...

    def replace(self, record: LeaseRecord, version: str) -> bool: ...

    def delete(self, version: str) -> bool: ...


class FileLeaseStore:
    """The lease of a file:// lake: a JSON file created with O_EXCL, changed only under an exclusive flock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        self._lock_path = path.with_name(path.name + ".lock")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read_unlocked(self) -> tuple[LeaseRecord, str] | None:
        try:
            record = LeaseRecord.from_json(self.path.read_text())
        except FileNotFoundError:
            return None
        return record, record.token

    def read(self) -> tuple[LeaseRecord, str] | None:
        with self._locked():
            return self._read_unlocked()

    def create(self, record: LeaseRecord) -> bool:
        with self._locked():
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(descriptor, "w") as lease:
                lease.write(record.to_json())
            return True

    def replace(self, record: LeaseRecord, version: str) -> bool:
        with self._locked():
            current = self._read_unlocked()
            if current is None or current[1] != version:
                return False
            partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            partial.write_text(record.to_json())
            partial.replace(self.path)
            return True

    def delete(self, version: str) -> bool:
        with self._locked():
            current = self._read_unlocked()
            if current is None or current[1] != version:
                return False
            self.path.unlink()
            return True


class S3LeaseStore:
    """The lease of an s3:// lake: one object written with S3's conditional writes (If-None-Match, If-Match)."""

    _CONFLICT = ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "404", "409", "412")

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.location = f"s3://{bucket}/{key}"

    def read(self) -> tuple[LeaseRecord, str] | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except self.client.exceptions.NoSuchKey:
            return None
        return LeaseRecord.from_json(response["Body"].read().decode()), response["ETag"]

    def _conditional(self, call: Callable[..., Any], **kwargs: Any) -> bool:
        from botocore.exceptions import ClientError

        try:
            call(Bucket=self.bucket, Key=self.key, **kwargs)
        except ClientError as refused:
            if refused.response.get("Error", {}).get("Code") in self._CONFLICT:
                return False
            raise
        return True

    def create(self, record: LeaseRecord) -> bool:
        return self._conditional(self.client.put_object, Body=record.to_json().encode(), IfNoneMatch="*")

    def replace(self, record: LeaseRecord, version: str) -> bool:
        return self._conditional(self.client.put_object, Body=record.to_json().encode(), IfMatch=version)

    def delete(self, version: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            return self._conditional(self.client.delete_object, IfMatch=version)
        except ClientError as refused:
            if refused.response.get("Error", {}).get("Code") != "NotImplemented":
                raise
        # An S3 without conditional deletes (LocalStack 4.13): mark the lease released with a conditional write,
        # which it has; an unconditional delete could remove a lease another writer has just taken over.
        current = self.read()
        if current is None or current[1] != version:
            return False
        released_at = datetime.now(timezone.utc).isoformat()
        return self.replace(replace(current[0], released_at=released_at, token=uuid.uuid4().hex), version)


def lease_store(lake_root: str, settings: Settings, s3_client: Any | None = None) -> LeaseStore:
    """The lease store of a lake root (file:// or s3://)."""
    local = local_path(lake_root)
    if local is not None:
        return FileLeaseStore(local / LEASE_FILE)
    parsed = urlparse(lake_root)
    if parsed.scheme not in ("s3", "s3a"):
        raise ValueError(f"unsupported lake root {lake_root!r}: use file:// or s3://")
    if s3_client is None:
        from triplake.aws import clients

        (s3_client,) = clients(settings, "s3")
    key = "/".join(part for part in (parsed.path.strip("/"), LEASE_FILE) if part)
    return S3LeaseStore(s3_client, parsed.netloc, key)


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
    """The writer lease of one ingestion on one lake."""

    def __init__(self, store: LeaseStore, ingestion_id: str, owner: str, seconds: float, pid: int | None = None) -> None:
        self.store, self.ingestion_id, self.owner, self.seconds, self.pid = store, ingestion_id, owner, seconds, pid
        self.lost: str | None = None

    @classmethod
    def for_lake(cls, lake_root: str, settings: Settings, ingestion_id: str, owner: str, pid: int | None = None,
                 s3_client: Any | None = None) -> LakeLease:
        return cls(lease_store(lake_root, settings, s3_client), ingestion_id, owner, settings.lake_lease_seconds, pid)

    def _record(self, acquired_at: str | None = None) -> LeaseRecord:
        now = datetime.now(timezone.utc)
        return LeaseRecord(
            ingestion_id=self.ingestion_id,
            owner=self.owner,
            host=socket.gethostname(),
            pid=self.pid,
            acquired_at=acquired_at or now.isoformat(),
            expires_at=(now + timedelta(seconds=self.seconds)).isoformat(),
            token=uuid.uuid4().hex,
        )

    def acquire(self, wait_seconds: float, on_wait: Callable[[LeaseRecord], None] | None = None) -> LeaseRecord:
        """Takes the lake, waiting up to wait_seconds while another ingestion holds it; LakeBusyError after that."""
        deadline = time.monotonic() + wait_seconds
        announced = None
        while True:
            record = self._record()
            if self.store.create(record):
                return record
            current = self.store.read()
            if current is None:
                continue  # released between our two calls
            held, version = current
            gone = holder_gone(held)
            if held.ingestion_id == self.ingestion_id or gone:
                if self.store.replace(record, version):
                    if gone and held.ingestion_id != self.ingestion_id and not held.released_at:
                        logger.warning("took the lake over from %s: %s", held.describe(), gone)
                    return record
                continue  # it changed in between: look again
            if time.monotonic() >= deadline:
                raise LakeBusyError(
                    f"the lake is being written by {held.describe()}; waited {wait_seconds:.0f} s for it. "
                    f"Run again once it has finished (its lease is {self.store.location}; see docs/runbook.md)",
                    held,
                )
            if on_wait is not None and announced != held.token:
                on_wait(held)
                announced = held.token
            time.sleep(POLL_SECONDS)

    def renew(self) -> LeaseRecord:
        """Extends the lease; LeaseLostError when it is no longer this ingestion's."""
        current = self.store.read()
        if current is None or current[0].ingestion_id != self.ingestion_id:
            holder = current[0].describe() if current else "nobody"
            raise LeaseLostError(f"ingestion {self.ingestion_id} lost the lake's lease (now held by {holder})")
        held, version = current
        record = replace(self._record(acquired_at=held.acquired_at), owner=self.owner)
        if not self.store.replace(record, version):
            raise LeaseLostError(f"ingestion {self.ingestion_id} lost the lake's lease while renewing it")
        return record

    def release(self) -> None:
        """Gives the lake back, if this ingestion still holds it."""
        current = self.store.read()
        if current is not None and current[0].ingestion_id == self.ingestion_id:
            self.store.delete(current[1])

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

        thread = threading.Thread(target=renew_until_stopped, name=f"lease-{self.ingestion_id}", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()

    @contextlib.contextmanager
    def held(self, wait_seconds: float, on_wait: Callable[[LeaseRecord], None] | None = None) -> Iterator[LakeLease]:
        """Acquires the lease, keeps it alive while the block runs, and releases it at the end."""
        self.acquire(wait_seconds, on_wait)
        try:
            with self.kept_alive():
                yield self
        finally:
            self.release()
