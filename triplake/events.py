"""S3 upload notifications in, ingestion status events out (docs/architecture.md); pure functions, no AWS calls.

An SQS message from an S3 bucket notification holds a JSON body with `Records`; the first message after the
notification is configured is an `s3:TestEvent` without records, object keys arrive URL-encoded, and one
message may carry several records. The landing notification covers every object created under the landing
prefix; `is_ingestible` is the one rule for what starts an ingestion (`triplake upload`, the DAG, the local
stack and Terraform all use it), and every other upload is answered with FAILED `unsupported_file`. Each upload is
one ingestion, told apart by everything S3 says of that one upload, not by its key alone: the same file uploaded
twice is two ingestions, and one event delivered twice is one (`UploadedFile.upload_id`). What is not an upload
(test events, other prefixes, deletions) is skipped with a reason, never failing the run for the files that are
fine.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping
from urllib.parse import unquote_plus

logger = logging.getLogger(__name__)

STATUS_SCHEMA = "triplake.ingestion-status/1"
RECEIVED, SUCCEEDED, FAILED = "RECEIVED", "SUCCEEDED", "FAILED"
STATUSES = (RECEIVED, SUCCEEDED, FAILED)
INPUT_SUFFIXES = (".csv", ".csv.gz")  # in any case: TRIPS.CSV, trips.Csv.Gz
UNSUPPORTED_FILE = "unsupported_file"


def is_ingestible(name: str) -> bool:
    """The one rule for what starts an ingestion: a .csv or .csv.gz file, whatever the case of its suffix."""
    return name.lower().endswith(INPUT_SUFFIXES) and not name.endswith("/")


def unsupported_file_message(name: str) -> str:
    return (f"{name!r} is not a file triplake ingests: it takes CSV files of trips named .csv or .csv.gz (any "
            "case); nothing was read. Upload the trips under such a name.")


@dataclass(frozen=True)
class UploadedFile:
    bucket: str
    key: str
    version: str = ""  # which upload of the key: upload_version() of its record
    size: int | None = None  # bytes, as the event says
    event_time: str = ""  # when S3 took the upload (ISO 8601): uploads are ingested in this order

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def upload_id(self) -> str:
        """The upload's name, the same however often and in however many runs its event is delivered."""
        return hashlib.sha256(f"{self.bucket}\0{self.key}\0{self.version}".encode()).hexdigest()[:32]

    @property
    def ingestible(self) -> bool:
        return is_ingestible(self.key)


@dataclass(frozen=True)
class Skipped:
    what: str
    reason: str


def uploaded_files(bodies: Iterable[str | Mapping[str, Any]], landing_prefix: str) -> tuple[list[UploadedFile], list[Skipped]]:
    """Every upload under the landing prefix named by S3 notification bodies (in order, each upload once even when
    SQS delivers its message twice), ingestible or not, and what was skipped and why."""
    files: dict[str, UploadedFile] = {}
    skipped: list[Skipped] = []
    for body in bodies:
        try:
            notification = json.loads(body) if isinstance(body, (str, bytes)) else dict(body)
        except (TypeError, ValueError):
            skipped.append(Skipped(_preview(body), "not an S3 notification (the message body is not JSON)"))
            continue
        if not isinstance(notification, dict):
            skipped.append(Skipped(_preview(body), "not an S3 notification (the message body is not a JSON object)"))
            continue
        if notification.get("Event") == "s3:TestEvent":
            skipped.append(Skipped(str(notification.get("Bucket", "?")), "s3:TestEvent sent when the notification was configured"))
            continue
        records = notification.get("Records")
        if not isinstance(records, list):
            skipped.append(Skipped(_preview(body), "not an S3 notification (no Records)"))
            continue
        for record in records:
            uploaded, reason = _uploaded_file(record, landing_prefix)
            if uploaded is not None:
                files.setdefault(uploaded.upload_id, uploaded)
            else:
                skipped.append(Skipped(_describe(record), reason))
    for skip in skipped:
        logger.info("skipped %s: %s", skip.what, skip.reason)
    return list(files.values()), skipped


def _uploaded_file(record: Any, landing_prefix: str) -> tuple[UploadedFile | None, str]:
    try:
        event_name = str(record["eventName"])
        bucket = str(record["s3"]["bucket"]["name"])
        uploaded = record["s3"]["object"]
        key = unquote_plus(str(uploaded["key"]))
    except (KeyError, TypeError):
        return None, "not an S3 record (no eventName, bucket or key)"
    if not event_name.startswith("ObjectCreated:"):
        return None, f"{event_name} is not a new object"
    if not key.startswith(landing_prefix):
        return None, f"outside the landing prefix {landing_prefix!r}"
    if key.endswith("/"):
        return None, "a folder marker, not a file"
    size = uploaded.get("size")
    return UploadedFile(bucket, key, upload_version(record), int(size) if isinstance(size, int) else None,
                        str(record.get("eventTime") or "")), ""


def upload_version(record: Mapping[str, Any]) -> str:
    """Which upload of a key a record announces: what S3 says of that one upload, since no one field is enough.

    - AWS gives every upload of a key a new, increasing `sequencer` (and a `versionId` in a versioned bucket), and
      every request its own `x-amz-request-id`;
    - LocalStack 4.13 stamps every event with the same sequencer (0055AED6DCD90281E5); its request id and its
      `eventTime` (milliseconds) tell two uploads of one key apart;
    - moto has neither, so its uploads differ by their eventTime alone, and it announces a multipart upload twice
      (ObjectCreated:Put, then :CompleteMultipartUpload a millisecond later) with one multipart eTag (`<md5>-<parts>`):
      there the eventTime is left out, and the two announcements are one upload.
    A message SQS delivers again repeats every field: one upload."""
    uploaded = record["s3"]["object"]
    request_id = (record.get("responseElements") or {}).get("x-amz-request-id")
    e_tag = str(uploaded.get("eTag") or "")
    parts = [uploaded.get("versionId"), uploaded.get("sequencer"), request_id, e_tag]
    announced_twice = not uploaded.get("sequencer") and not request_id and "-" in e_tag
    if not announced_twice:
        parts.append(record.get("eventTime"))
    return "/".join(str(part or "") for part in parts)


def _describe(record: Any) -> str:
    try:
        return f"s3://{record['s3']['bucket']['name']}/{unquote_plus(record['s3']['object']['key'])}"
    except (KeyError, TypeError):
        return _preview(record)


def _preview(value: Any, length: int = 80) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= length else text[: length - 1] + "…"


def status_event(
    *,
    ingestion_id: str,
    status: str,
    source_uri: str,
    counts: Mapping[str, int] | None = None,
    started_at: str | None = None,
    finished_at: str | None = None,
    error: Mapping[str, str] | None = None,
    dag_run_id: str | None = None,
    routes: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The status message (its schema: docs/architecture.md, "Status events"). routes: region -> the model
    version its trips' routes come from and why it was fitted for this ingestion (None: reused), on SUCCEEDED."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
    if (status == FAILED) != (error is not None):
        raise ValueError("a FAILED event carries an error {kind, message}; the others carry none")
    return {
        "schema": STATUS_SCHEMA,
        "ingestion_id": ingestion_id,
        "status": status,
        "source_uri": source_uri,
        "counts": dict(counts or {}),
        "started_at": started_at,
        "finished_at": finished_at,
        # `task` (which step failed) is added when the orchestrator knows it; kind and message are always there.
        "error": None if error is None else {key: error[key] for key in ("kind", "message", "task") if key in error},
        "dag_run_id": dag_run_id,
        "routes": {region: dict(model) for region, model in sorted((routes or {}).items())},
    }


def message_attributes(event: Mapping[str, Any]) -> dict[str, str]:
    """SNS message attributes for subscription filter policies (status, ingestion_id), as plain strings."""
    return {"status": event["status"], "ingestion_id": event["ingestion_id"]}


def status_subject(event: Mapping[str, Any]) -> str:
    """The subject of a status message (what an email subscriber sees first); SNS allows 100 characters."""
    return f"triplake ingestion {event['ingestion_id']}: {event['status']}"[:100]
