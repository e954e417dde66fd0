"""What the two DAGs do, as plain functions of Settings and injected AWS clients: the DAGs only wire them.

trips_receive answers every upload at once: each file named by its run's asset events (each event holds a batch of
SQS messages, each message a batch of S3 records) or, for a run started by hand, by `source_uris` in its conf, gets
its receipt and RECEIVED, then waits in the lake's inbox (triplake.inbox); an upload that is not a .csv or .csv.gz
is answered FAILED at once. trips_ingest, one run at a time, takes the inbox in order and in bounded batches: each
batch is one Spark application under the lake's writer lease (spark_jobs.ingestion: each file its own ingestion),
then each file's SUCCEEDED or FAILED. The Spark jobs leave their results as JSON reports in the
lake (`_reports/<ingestion>/<job>.json`), so the DAG reads the same thing whether a batch ran in a local
spark-submit, on EMR Serverless or on Glue.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import urlparse

from spark_jobs.common import locations
from spark_jobs.common.ingestions import COUNT_FIELDS, JIT_OPTIONS
from triplake import inbox
from triplake.cloud_runs import EmrServerlessRuns, GlueRuns, JobRuns
from triplake.events import (
    FAILED,
    RECEIVED,
    SUCCEEDED,
    UNSUPPORTED_FILE,
    Skipped,
    UploadedFile,
    status_event,
    unsupported_file_message,
    uploaded_files,
)
from triplake.inbox import Receipt
from triplake.lake_objects import LakeObjects
from triplake.lease import LakeBusyError, LakeLease
from triplake.settings import Settings

logger = logging.getLogger(__name__)

# The entry points of spark_jobs/: the DAG runs INGESTION_JOB (every stage of every file of a batch in one Spark
# application); the stage jobs run one stage of one file each, for a rerun by hand.
INGESTION_JOB = "ingestion"
SPARK_JOBS = (INGESTION_JOB, "ingest", "group_routes", "build_weekly")
RECEIVE_TASK = "receive_uploads"
PLAN_TASK = "plan_batches"
SPARK_TASK = "spark_ingestion"
PACKAGE_ZIP = "spark_jobs.zip"
# EMR Serverless and Glue take the JVM options as Spark settings, for the driver and the executors.
# The Python of the jobs' EMR Serverless image (infra/emr-image/Dockerfile): EMR 7's own is 3.9, deltalake needs 3.10.
EMR_PYTHON = "/usr/bin/python3.11"
EMR_PYTHON_CONF = (f"spark.emr-serverless.driverEnv.PYSPARK_PYTHON={EMR_PYTHON} "
                   f"--conf spark.executorEnv.PYSPARK_PYTHON={EMR_PYTHON}")
JIT_SPARK_CONF = f"spark.driver.extraJavaOptions={JIT_OPTIONS} --conf spark.executor.extraJavaOptions={JIT_OPTIONS}"
# What a Spark task leaves in XCom when its batch failed as a whole (the announcement of each file says why).
BATCH_FAILURE_KEY = "batch_failure"

# The Airflow UI labels each mapped batch with its files (what a user looks for), not "Map Index 0".
MAP_INDEX_TEMPLATE = "{{ ti.xcom_pull(task_ids='" + PLAN_TASK + "')[ti.map_index]['label'] }}"
# What readers see change when an ingestion succeeds: the tables a downstream DAG schedules on (Airflow Assets).
PUBLISHED_TABLES = {"trips": locations.TRIPS, "weekly_trips": locations.WEEKLY_TRIPS, "routes": locations.ROUTE_MODELS}


def published_table_uris(lake_root: str) -> dict[str, str]:
    """The Asset URI of each published table: where its files live in the lake."""
    return {name: f"{lake_root.rstrip('/')}/{path}" for name, path in PUBLISHED_TABLES.items()}


def inbox_uri(lake_root: str) -> str:
    """The Asset URI of the received uploads: trips_receive updates it, trips_ingest is scheduled on it."""
    return f"{lake_root.rstrip('/')}/{inbox.INBOX}"


class UsageError(ValueError):
    """A run was started with a conf that cannot work; the message says what to send instead."""


def sqs_bodies(asset_event_extras: Iterable[Mapping[str, Any] | None]) -> list[Any]:
    """The SQS message bodies inside asset events made by MessageQueueTrigger(scheme="sqs"): the trigger's payload
    is {"status": "success", "message_batch": [<SQS message>, ...]} and Airflow keeps it under extra["payload"]."""
    bodies = []
    for extra in asset_event_extras:
        payload = (extra or {}).get("payload") or {}
        for message in payload.get("message_batch") or []:
            bodies.append(message.get("Body") if isinstance(message, Mapping) else message)
    return bodies


def uploads_of_run(asset_event_extras: Iterable[Mapping[str, Any] | None], run_conf: Mapping[str, Any] | None,
                   landing_prefix: str) -> tuple[list[UploadedFile], list[Skipped]]:
    """Every upload of a trips_receive run in order, each once (the same upload delivered twice is one; the same
    file uploaded twice is two), then each `source_uris` entry of a run started by hand; and what was skipped."""
    files, skipped = uploaded_files(sqs_bodies(asset_event_extras), landing_prefix)
    by_hand: list[str] = []
    for uri in (run_conf or {}).get("source_uris") or []:
        if not isinstance(uri, str) or urlparse(uri).scheme != "s3" or not urlparse(uri).path.strip("/"):
            raise UsageError(f"source_uris must be s3://bucket/key strings; got {uri!r}")
        if uri not in by_hand:
            by_hand.append(uri)
    return [*files, *inbox.named_by_hand(by_hand)], skipped


@dataclass(frozen=True)
class Received:
    """What a trips_receive run did with its uploads."""

    ingestible: list[Receipt]  # received now, RECEIVED announced, waiting in the inbox
    unsupported: list[Receipt]  # received now, answered FAILED (unsupported_file) at once
    delivered_again: list[Receipt]  # received before (a redelivered event): answered by the run that received them


def receive_uploads(objects: LakeObjects, uploads: Sequence[UploadedFile], dag_run_id: str | None) -> Received:
    """Each upload's receipt (a redelivered event finds the one it got before: triplake.inbox)."""
    received = Received([], [], [])
    for upload in uploads:
        receipt, new = inbox.receive(objects, upload, dag_run_id)
        if not new:
            received.delivered_again.append(receipt)
        else:
            (received.ingestible if upload.ingestible else received.unsupported).append(receipt)
    return received


def received_event(receipt: Receipt) -> dict[str, Any]:
    return status_event(ingestion_id=receipt.ingestion_id, status=RECEIVED, source_uri=receipt.source_uri,
                        started_at=receipt.received_at, dag_run_id=receipt.dag_run_id)


def unsupported_event(receipt: Receipt) -> dict[str, Any]:
    """FAILED at once for an upload that is not a file triplake ingests: what it got and what it takes."""
    return status_event(ingestion_id=receipt.ingestion_id, status=FAILED, source_uri=receipt.source_uri,
                        started_at=receipt.received_at, finished_at=_now(), dag_run_id=receipt.dag_run_id,
                        error={"kind": UNSUPPORTED_FILE, "message": unsupported_file_message(receipt.name),
                               "task": RECEIVE_TASK})


@dataclass(frozen=True)
class Batch:
    """Files one Spark application ingests, in order, under one hold of the lake's lease; a plain dict in XCom."""

    batch_id: str
    receipts: tuple[Receipt, ...]

    @property
    def ingestion_ids(self) -> list[str]:
        return [receipt.ingestion_id for receipt in self.receipts]

    @property
    def label(self) -> str:
        names = [receipt.name for receipt in self.receipts]
        return names[0] if len(names) == 1 else f"{len(names)} files: {names[0]} ... {names[-1]}"

    def manifest(self) -> bytes:
        """What the Spark job reads (`_batches/<id>.json`): the files and their ingestion ids, in order."""
        return json.dumps({"batch_id": self.batch_id, "ingestions": [
            {"ingestion_id": receipt.ingestion_id, "source_uri": receipt.source_uri} for receipt in self.receipts]}).encode()

    def to_dict(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "label": self.label, "receipts": [receipt.to_dict() for receipt in self.receipts]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Batch:
        return cls(data["batch_id"], tuple(Receipt.from_dict(item) for item in data["receipts"]))


def plan_batches(waiting: Sequence[Receipt], settings: Settings) -> list[Batch]:
    """The waiting uploads, in the order S3 took them, as batches bounded by TRIPLAKE_BATCH_MAX_FILES and _BYTES."""
    return [Batch(f"batch-{receipts[0].ingestion_id}", tuple(receipts))
            for receipts in inbox.batches(waiting, settings.batch_max_files, settings.batch_max_bytes)]


def batch_lease(settings: Settings, batch: Batch, dag_run_id: str | None, s3_client: Any) -> LakeLease:
    """The lake's writer lease as one batch of the DAG holds it: taken before its Spark application starts, renewed
    while it runs, given back once it has ended. The task's process holds it: if that process dies, the lease is
    taken over at once on this machine, and after its expiry anywhere."""
    return LakeLease.for_lake(settings.lake_root, settings, batch.batch_id, batch.ingestion_ids,
                              owner=f"DAG trips_ingest, run {dag_run_id}", pid=os.getpid(), s3_client=s3_client)


def batch_failure(failure: BaseException) -> dict[str, str]:
    """Why a batch's Spark task failed as a whole, as each of its files not ingested is told."""
    if isinstance(failure, LakeBusyError):
        return {"kind": "lake_busy",
                "message": "the writer holding the lake's lease neither renewed it nor let it expire for "
                           "TRIPLAKE_LAKE_LEASE_WAIT_SECONDS; "
                           "nothing of this file was written. Ingest it again once the lake is free (docs/runbook.md)."}
    detail = (str(failure).strip().splitlines() or [type(failure).__name__])[-1]
    return {"kind": "task_failed",
            "message": f"the batch's Spark job stopped before this file was ingested ({detail}); whatever it had "
                       "written is rolled back by the next writer. Ingest the file again (docs/runbook.md)."}


def job_arguments(job: str, lake_root: str, *, batch_id: str | None = None, ingestion_id: str | None = None,
                  source_uri: str | None = None) -> list[str]:
    """The command line of a job of spark_jobs/ (the same for spark-submit, EMR Serverless and Glue): a batch for
    the ingestion job, or one file's ingestion for a stage run by hand."""
    if job not in SPARK_JOBS:
        raise ValueError(f"unknown Spark job {job!r}: one of {', '.join(SPARK_JOBS)}")
    if batch_id is not None:
        return ["--batch-id", batch_id, "--lake-root", lake_root]
    arguments = ["--lake-root", lake_root, "--ingestion-id", str(ingestion_id)]
    return (["--input", str(source_uri)] if job in ("ingest", INGESTION_JOB) else []) + arguments


def emr_job_driver(batch: Batch, settings: Settings) -> dict[str, Any]:
    """The jobDriver of an EMR Serverless job run: the job's file as entry point, spark_jobs/ as a zip beside it."""
    package = _package_uri(settings)
    return {
        "sparkSubmit": {
            "entryPoint": f"{package}/{INGESTION_JOB}.py",
            "entryPointArguments": job_arguments(INGESTION_JOB, settings.lake_root, batch_id=batch.batch_id),
            "sparkSubmitParameters": f"--py-files {package}/{PACKAGE_ZIP} --conf {JIT_SPARK_CONF} --conf {EMR_PYTHON_CONF}",
        }
    }


def glue_job_arguments(batch: Batch, settings: Settings) -> dict[str, str]:
    """The Arguments of an AWS Glue job run of the same job: its command line as `--name value` pairs, spark_jobs/
    as extra Python files, the jobs' pinned libraries for Glue to install, and the JIT flag (Glue takes further
    Spark settings inside the value of one --conf). The job's file is the Glue job's script (infra/glue.tf)."""
    command_line = job_arguments(INGESTION_JOB, settings.lake_root, batch_id=batch.batch_id)
    return dict(zip(command_line[::2], command_line[1::2])) | {
        "--extra-py-files": f"{_package_uri(settings)}/{PACKAGE_ZIP}",
        "--additional-python-modules": ",".join(jobs_requirements()),
        "--conf": JIT_SPARK_CONF,
    }


def jobs_requirements() -> list[str]:
    """The pins of spark_jobs/requirements.txt: the libraries a cloud runner installs beside its own Spark."""
    text = (resources.files("spark_jobs") / "requirements.txt").read_text()
    return [pin for line in text.splitlines() if (pin := line.split("#", 1)[0].strip())]


def cloud_job_runs(batch: Batch, settings: Settings, client: Any) -> JobRuns:
    """The batch's job run on the configured cloud runner (client: that service's boto3 client)."""
    if settings.spark_runner == "glue":
        return GlueRuns(client, settings.glue_job_name, glue_job_arguments(batch, settings))
    if not (settings.emr_application_id and settings.emr_execution_role_arn):
        raise UsageError("the emr-serverless runner needs TRIPLAKE_EMR_APPLICATION_ID and "
                         "TRIPLAKE_EMR_EXECUTION_ROLE_ARN (terraform output triplake_settings)")
    return EmrServerlessRuns(client, settings.emr_application_id, settings.emr_execution_role_arn,
                             emr_job_driver(batch, settings), name=f"triplake-{batch.batch_id}")


def _package_uri(settings: Settings) -> str:
    if not settings.emr_package_uri:
        raise UsageError("TRIPLAKE_EMR_PACKAGE_URI is not set: upload the `make package` output to S3 and set it "
                         "to that s3:// prefix (terraform output triplake_settings)")
    return settings.emr_package_uri.rstrip("/")


def counts_of(ingest_report: Mapping[str, Any]) -> dict[str, Any]:
    return {field: int(ingest_report[field]) for field in COUNT_FIELDS} | {
        "rejected_by_reason": dict(ingest_report.get("rejected_by_reason") or {})
    }


def routes_of(routes_report: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """region -> {model_version, fitted}: which model the ingestion's routes come from, and why it was fitted for
    this ingestion ("new region", "grew 4.1x ...", "refit asked"; None when the region's model was reused)."""
    return {region["region"]: {"model_version": int(region["model_version"]), "fitted": region.get("fit_reason")}
            for region in (routes_report or {}).get("regions", [])}


def outcome_event(receipt: Receipt, outcome: Mapping[str, Any] | None, reports: Callable[[str], Mapping[str, Any] | None],
                  dag_run_id: str | None, failure: Mapping[str, str] | None = None) -> dict[str, Any]:
    """SUCCEEDED or FAILED for one file of a batch: its outcome ({status, error}), with counts and routes from its
    reports in the lake (reports(job) reads one: `ingest`, `group_routes`). A file without an outcome was not
    ingested: it fails with the batch's failure."""
    ingest = reports("ingest") or {}
    counts = counts_of(ingest) if ingest.get("status") == SUCCEEDED else {}
    started_at = ingest.get("started_at") or receipt.received_at
    if outcome is not None and outcome["status"] == SUCCEEDED:
        return status_event(ingestion_id=receipt.ingestion_id, status=SUCCEEDED, source_uri=receipt.source_uri,
                            counts=counts, started_at=started_at, finished_at=_now(), dag_run_id=dag_run_id,
                            routes=routes_of(reports("group_routes")))
    if outcome is not None:
        error = dict(outcome["error"])
        if error.get("kind") == "task_failed":
            error["message"] += ". Its ingestion was rolled back; fix the cause, then ingest the file again (docs/runbook.md)."
    else:
        error = dict(failure or batch_failure(RuntimeError("it ended without a word about this file")))
    return status_event(ingestion_id=receipt.ingestion_id, status=FAILED, source_uri=receipt.source_uri,
                        counts=counts, started_at=started_at, finished_at=_now(),
                        error={"task": SPARK_TASK} | error, dag_run_id=dag_run_id)


def topic_arn(settings: Settings, account_number: Callable[[], str]) -> str:
    """The status topic's ARN: as configured, or built from its name and the account (asked only then)."""
    if settings.status_topic_arn:
        return settings.status_topic_arn
    return f"arn:aws:sns:{settings.aws_region}:{account_number()}:{settings.status_topic_name}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
