"""`triplake redrive`: the landing queue's dead-letter messages sent back through the pipeline, each upload answered.

An S3 notification reaches the dead-letter queue when the landing queue delivered it as often as its redrive policy
allows and nobody deleted it (the triggerer failed while it held the message, the watcher was down for longer than
the queue keeps trying). Each message is looked at before anything moves, which SQS's own StartMessageMoveTask does
not do (it moves every message blindly and says nothing of any):

- a message naming an upload the lake has no receipt for goes back onto the landing queue, so the asset watcher
  takes it like a fresh upload: RECEIVED, then SUCCEEDED or FAILED (its other uploads, received before, are not
  received twice: triplake.inbox);
- a message whose uploads were all received already is deleted: their ingestions answered them (it says which);
- a message that names no upload (not JSON, a test event, another prefix) stays in the dead-letter queue, with why.

Sending comes before deleting, so a redrive stopped between the two leaves the message in both queues, and the
receipts make the second delivery harmless. A redriven upload is read again from the landing bucket, which
`triplake forget` does not touch: delete an erased data source's originals there first (docs/runbook.md), or its
trips come back with the upload.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from triplake.events import Skipped, UploadedFile, uploaded_files
from triplake.inbox import RECEIPTS, Receipt
from triplake.lake_objects import LakeObjects

SENT_BACK, ANSWERED, LEFT = "sent back", "answered already", "left in the dead-letter queue"
# Long enough to look at every message of one pass once: a message left behind is made visible again at the end.
PASS_VISIBILITY_SECONDS = 300


class RedriveError(ValueError):
    """The landing queue cannot be redriven; the message says why and what to do."""


@dataclass(frozen=True)
class Upload:
    uri: str
    ingestion_id: str | None  # the ingestion that received it, or None when it was never received


@dataclass(frozen=True)
class Message:
    """One dead-letter message and what redrive did with it."""

    message_id: str
    action: str  # SENT_BACK, ANSWERED or LEFT
    uploads: list[Upload] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "action": self.action,
                "uploads": [{"uri": upload.uri, "received_as": upload.ingestion_id} for upload in self.uploads],
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


def decide(uploads: list[UploadedFile], objects: LakeObjects) -> tuple[str, list[Upload]]:
    """What to do with a message naming these uploads: each upload's receipt, if it has one, tells."""
    found = [Upload(upload.uri, _received_as(objects, upload)) for upload in uploads]
    if not found:
        return LEFT, found
    return (ANSWERED if all(upload.ingestion_id for upload in found) else SENT_BACK), found


def redrive(sqs: Any, landing_queue_url: str, landing_prefix: str, objects: LakeObjects,
            dry_run: bool = False) -> list[Message]:
    """Every message of the landing queue's dead-letter queue looked at once, and (unless dry_run) acted on."""
    dead_letters = dead_letter_queue_url(sqs, landing_queue_url)
    done: list[Message] = []
    held: list[str] = []  # receipt handles of the messages left where they are, made visible again at the end
    try:
        while batch := sqs.receive_message(QueueUrl=dead_letters, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                           VisibilityTimeout=PASS_VISIBILITY_SECONDS).get("Messages", []):
            for message in batch:
                uploads, skipped = uploaded_files([message["Body"]], landing_prefix)
                action, found = decide(uploads, objects)
                if dry_run or action == LEFT:
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
