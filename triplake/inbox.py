"""Every upload received once and answered once: the lake's receipts and its inbox.

The DAG trips_receive gives each upload a receipt as its S3 event arrives, `_uploads/<upload id>.json`, created with
a conditional write (triplake.lake_objects): the same event delivered again, in the same poll, a later one or
another run, finds its receipt and is not received twice, while two uploads of one key are two receipts
(triplake.events.upload_version). A receipt names the ingestion the upload becomes and never changes.

A received upload waits in the inbox, `_inbox/<when S3 took it>-<upload id>.json`, until its outcome is announced.
The DAG trips_ingest takes the inbox in that order, in bounded batches, so a folder of uploads is ingested first in,
first out, and an upload received while a batch runs is in the next one. The inbox holds only what is waiting, so
reading it costs the same after ten uploads or ten million; the receipts are read one by one, by key, never listed.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable, Sequence
from urllib.parse import urlparse

from spark_jobs.common.ingestions import new_ingestion_id
from triplake.events import UploadedFile
from triplake.lake_objects import LakeObjects

logger = logging.getLogger(__name__)

RECEIPTS = "_uploads"
INBOX = "_inbox"


@dataclass(frozen=True)
class Receipt:
    """One upload, received: the ingestion it becomes and where it stands in the inbox's order."""

    upload_id: str
    ingestion_id: str
    source_uri: str
    size: int | None  # bytes, when the event said (a batch is bounded by its bytes)
    uploaded_at: str  # when S3 took the upload (ISO 8601): the inbox's order
    received_at: str
    dag_run_id: str | None  # the run that received it

    @property
    def name(self) -> str:
        return self.source_uri.rsplit("/", 1)[-1]

    @property
    def inbox_key(self) -> str:
        return f"{INBOX}/{_sortable(self.uploaded_at)}-{self.upload_id}.json"

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict()).encode()

    @classmethod
    def from_dict(cls, data: dict) -> Receipt:
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__})

    @classmethod
    def from_json(cls, body: bytes) -> Receipt:
        return cls.from_dict(json.loads(body))


def named_by_hand(uris: Sequence[str]) -> list[UploadedFile]:
    """The files a run's conf names (`source_uris`): a new upload each time one is named, in the conf's order (each
    a microsecond after the one before it)."""
    now = datetime.now(timezone.utc)
    return [UploadedFile(urlparse(uri).netloc, urlparse(uri).path.lstrip("/"), version=f"by hand/{uuid.uuid4().hex}",
                         event_time=(now + timedelta(microseconds=position)).isoformat())
            for position, uri in enumerate(uris)]


def receive(objects: LakeObjects, upload: UploadedFile, dag_run_id: str | None) -> tuple[Receipt, bool]:
    """The upload's receipt, and whether this run received it: False when its event was delivered before (to
    another run), which has answered it or will. A run that retries gets its own receipt back."""
    now = datetime.now(timezone.utc).isoformat()
    receipt = Receipt(upload_id=upload.upload_id, ingestion_id=new_ingestion_id(), source_uri=upload.uri,
                      size=upload.size, uploaded_at=upload.event_time or now, received_at=now, dag_run_id=dag_run_id)
    key = f"{RECEIPTS}/{upload.upload_id}.json"
    if objects.create(key, receipt.to_json()):
        return receipt, True
    existing = objects.read(key)
    if existing is None:  # a receipt is never deleted but with the lake: only a wiped lake gets here
        raise RuntimeError(f"the receipt {objects.location(key)} vanished while it was being read")
    earlier = Receipt.from_json(existing[0])
    if earlier.dag_run_id == dag_run_id:
        return earlier, True
    logger.info("%s was delivered again: received already as ingestion %s by run %s", upload.uri,
                earlier.ingestion_id, earlier.dag_run_id)
    return earlier, False


def enqueue(objects: LakeObjects, receipt: Receipt) -> None:
    objects.put(receipt.inbox_key, receipt.to_json())


def waiting(objects: LakeObjects) -> list[Receipt]:
    """The received uploads not answered yet, in the order S3 took them."""
    receipts = []
    for key in objects.keys(INBOX):
        found = objects.read(key)
        if found is not None:  # answered between the listing and the read
            receipts.append(Receipt.from_json(found[0]))
    return receipts


def answered(objects: LakeObjects, receipts: Iterable[Receipt]) -> None:
    """The uploads' outcomes are announced: they leave the inbox (their receipts stay)."""
    for receipt in receipts:
        objects.remove(receipt.inbox_key)


def batches(receipts: Sequence[Receipt], max_files: int, max_bytes: int) -> list[list[Receipt]]:
    """The waiting uploads cut, in order, into batches of at most max_files files and max_bytes bytes (a file
    larger than that is a batch of its own)."""
    cut: list[list[Receipt]] = []
    size = 0
    for receipt in receipts:
        if not cut or len(cut[-1]) >= max_files or (cut[-1] and size + (receipt.size or 0) > max_bytes):
            cut.append([])
            size = 0
        cut[-1].append(receipt)
        size += receipt.size or 0
    return cut


def _sortable(moment: str) -> str:
    """An ISO 8601 time as a name that sorts in time order (microseconds, UTC; S3's times have milliseconds)."""
    try:
        parsed = datetime.fromisoformat(moment).astimezone(timezone.utc)
    except ValueError:
        return moment
    return f"{parsed:%Y%m%dT%H%M%S%f}Z"
