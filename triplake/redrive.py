"""`triplake redrive`: the landing queue's dead-letter messages sent back through the pipeline, each upload answered.

An S3 notification reaches the dead-letter queue when the landing queue delivered it as often as its redrive policy
allows and nobody deleted it (the triggerer failed while it held the message, the watcher was down for longer than
the queue keeps trying). Each message is looked at before anything moves, which SQS's own StartMessageMoveTask does
not do (it moves every message blindly and says nothing of any):

- a message naming an upload the lake has no receipt for goes back onto the landing queue, so the asset watcher
  takes it like a fresh upload: RECEIVED, then SUCCEEDED or FAILED (its other uploads, received before, are not
  received twice: triplake.inbox);
- a message whose uploads were all received already is deleted: their ingestions answered them (it says which);
- a message that names no upload (not JSON, a test event, another prefix) stays in the dead-letter queue, with why;
- a message naming an upload made before an erasure that takes some of its lines stays in the dead-letter queue,
  held, naming the erasure: the upload was not in the lake when the erasure ran, and sent back it would bring the
  erased trips in. An erasure of listed trip ids holds every upload made before it (its record keeps no ids to
  check the lines with). docs/runbook.md says what to do with a held upload.

Sending comes before deleting, so a redrive stopped between the two leaves the message in both queues, and the
receipts make the second delivery harmless.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from triplake.erasure import Selection
from triplake.events import Skipped, UploadedFile, uploaded_files
from triplake.inbox import RECEIPTS, Receipt
from triplake.lake_objects import LakeObjects
from triplake.raw_copies import scan, stream_lines

SENT_BACK, ANSWERED, LEFT = "sent back", "answered already", "left in the dead-letter queue"
HELD = "held in the dead-letter queue: it holds lines of an erasure made after it was uploaded"
# Long enough to look at every message of one pass once: a message left behind is made visible again at the end.
PASS_VISIBILITY_SECONDS = 300


class RedriveError(ValueError):
    """The landing queue cannot be redriven; the message says why and what to do."""


@dataclass(frozen=True)
class Upload:
    uri: str
    ingestion_id: str | None  # the ingestion that received it, or None when it was never received
    held_by: tuple[str, ...] = ()  # the erasures, made after it was uploaded, that take lines of it


@dataclass(frozen=True)
class PastErasure:
    erasure_id: str
    selection: Selection | None  # None: it named trip ids, which its record does not keep
    erased_at: datetime


class ErasureCheck:
    """Which erasures made after an upload take lines of it (an upload the lake never received was not there to be
    erased). The upload is read as a stream, and only when such an erasure exists."""

    def __init__(self, erasures: list[PastErasure], open_upload: Callable[[UploadedFile], Any]) -> None:
        self.erasures, self.open_upload = erasures, open_upload

    def __call__(self, upload: UploadedFile) -> tuple[str, ...]:
        uploaded = datetime.fromisoformat(upload.event_time) if upload.event_time else None
        later = [erasure for erasure in self.erasures if uploaded is None or erasure.erased_at > uploaded]
        checkable = [erasure for erasure in later if erasure.selection is not None]
        taken_by = {erasure.erasure_id for erasure in later if erasure.selection is None}
        if checkable:
            def takes(fields: dict[str, str]) -> bool:
                by = {erasure.erasure_id for erasure in checkable if erasure.selection.takes_line(fields)}
                taken_by.update(by)
                return bool(by)

            with contextlib.closing(self.open_upload(upload)) as stream:
                scan(stream_lines(stream, upload.uri), takes)
        return tuple(sorted(taken_by))


def past_erasures(rows: list[dict]) -> list[PastErasure]:
    """The erasures of the lake's `erasures` rows."""
    return [PastErasure(row["erasure_id"], Selection.from_record(json.loads(row["selection"])), row["erased_at"])
            for row in rows]


@dataclass(frozen=True)
class Message:
    """One dead-letter message and what redrive did with it."""

    message_id: str
    action: str  # SENT_BACK, ANSWERED or LEFT
    uploads: list[Upload] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "action": self.action,
                "uploads": [{"uri": upload.uri, "received_as": upload.ingestion_id, "held_by": list(upload.held_by)}
                            for upload in self.uploads],
                "skipped": [{"what": item.what, "reason": item.reason} for item in self.skipped]}


def dead_letter_queue_url(sqs: Any, landing_queue_url: str) -> str:
    """The dead-letter queue the landing queue's redrive policy names."""
    attributes = sqs.get_queue_attributes(QueueUrl=landing_queue_url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
    if "RedrivePolicy" not in attributes:
        raise RedriveError(f"the landing queue {landing_queue_url} has no dead-letter queue (no RedrivePolicy): "
                           "nothing to redrive. Terraform (infra/landing_events.tf) and `triplake stack up` give it one.")
    target_arn = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]
    account, name = target_arn.split(":")[4:6]
    return sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


def decide(uploads: list[UploadedFile], objects: LakeObjects,
           held_by: Callable[[UploadedFile], tuple[str, ...]]) -> tuple[str, list[Upload]]:
    """What to do with a message naming these uploads: each upload's receipt, if it has one, tells, and for one the
    lake never received, the erasures made after it."""
    found = []
    for upload in uploads:
        ingestion_id = _received_as(objects, upload)
        found.append(Upload(upload.uri, ingestion_id, () if ingestion_id else held_by(upload)))
    if not found:
        return LEFT, found
    if any(upload.held_by for upload in found):
        return HELD, found
    return (ANSWERED if all(upload.ingestion_id for upload in found) else SENT_BACK), found


def redrive(sqs: Any, landing_queue_url: str, landing_prefix: str, objects: LakeObjects,
            held_by: Callable[[UploadedFile], tuple[str, ...]], dry_run: bool = False) -> list[Message]:
    """Every message of the landing queue's dead-letter queue looked at once, and (unless dry_run) acted on.
    held_by: the erasures that hold an upload back (ErasureCheck)."""
    dead_letters = dead_letter_queue_url(sqs, landing_queue_url)
    done: list[Message] = []
    held: list[str] = []  # receipt handles of the messages left where they are, made visible again at the end
    try:
        while batch := sqs.receive_message(QueueUrl=dead_letters, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                           VisibilityTimeout=PASS_VISIBILITY_SECONDS).get("Messages", []):
            for message in batch:
                uploads, skipped = uploaded_files([message["Body"]], landing_prefix)
                action, found = decide(uploads, objects, held_by)
                if dry_run or action in (LEFT, HELD):
                    held.append(message["ReceiptHandle"])
                else:
                    if action == SENT_BACK:
                        sqs.send_message(QueueUrl=landing_queue_url, MessageBody=message["Body"])
                    sqs.delete_message(QueueUrl=dead_letters, ReceiptHandle=message["ReceiptHandle"])
                done.append(Message(message["MessageId"], action, found, skipped))
    finally:
        for handle in held:
            sqs.change_message_visibility(QueueUrl=dead_letters, ReceiptHandle=handle, VisibilityTimeout=0)
    return done


def _received_as(objects: LakeObjects, upload: UploadedFile) -> str | None:
    found = objects.read(f"{RECEIPTS}/{upload.upload_id}.json")
    return Receipt.from_json(found[0]).ingestion_id if found else None
