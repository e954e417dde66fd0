"""What the local stack keeps across `triplake stack down` and `up`: the moto server holds everything in memory, so
`down` saves the stack's buckets and the landing queue's pending messages to disk, and `up` puts them back before the
bucket notification and the DAG can see anything. The Glue tables need nothing saved: they are Delta tables, whose
partitions and files are in the lake's own logs (in the bucket).

Objects are saved under content-addressed names with an index (keys may hold any character), each object once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

INDEX = "index.json"
OBJECTS = "objects"


def save(directory: Path, s3: Any, sqs: Any, buckets: list[str], queue_url: str | None) -> dict[str, int]:
    """Writes the buckets' objects and the queue's pending messages under directory (replacing what was saved
    before); returns how many of each."""
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / OBJECTS).mkdir(parents=True)
    objects = []
    for bucket in buckets:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                name = hashlib.sha256(body).hexdigest()
                (partial / OBJECTS / name).write_bytes(body)
                objects.append({"bucket": bucket, "key": item["Key"], "file": name})
    messages = _pending_messages(sqs, queue_url) if queue_url else []
    index = {"objects": objects, "messages": messages, "saved_at": datetime.now(timezone.utc).isoformat()}
    (partial / INDEX).write_text(json.dumps(index, indent=1))
    shutil.rmtree(directory, ignore_errors=True)
    partial.rename(directory)  # the saved state is replaced whole or not at all
    return {"objects": len(objects), "messages": len(messages)}


def restore(directory: Path, s3: Any) -> int:
    """Puts the saved objects back (the buckets must exist); returns how many."""
    index = _index(directory)
    if index is None:
        return 0
    for item in index["objects"]:
        s3.put_object(Bucket=item["bucket"], Key=item["key"], Body=(directory / OBJECTS / item["file"]).read_bytes())
    return len(index["objects"])


def restore_messages(directory: Path, sqs: Any, queue_url: str) -> int:
    """Sends the saved pending messages to the (new) landing queue again: uploads nobody had ingested yet."""
    index = _index(directory) or {"messages": []}
    for body in index["messages"]:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    return len(index["messages"])


def saved_at(directory: Path) -> str | None:
    """When the state was saved (ISO 8601), None when nothing is saved: what a killed stack's AWS lost is what
    happened after it."""
    index = _index(directory)
    if index is None:
        return None
    return index.get("saved_at") or datetime.fromtimestamp((directory / INDEX).stat().st_mtime, timezone.utc).isoformat()


def forget(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def _index(directory: Path) -> dict | None:
    path = directory / INDEX
    return json.loads(path.read_text()) if path.exists() else None


def _pending_messages(sqs: Any, queue_url: str) -> list[str]:
    """The bodies of the messages waiting in the queue (S3 notifications of uploads not yet ingested)."""
    bodies = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                          WaitTimeSeconds=0).get("Messages"):
        bodies += [message["Body"] for message in messages]
    return [body for body in bodies if '"s3:TestEvent"' not in body]
