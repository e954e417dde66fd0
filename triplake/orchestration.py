"""What the trips_ingest DAG does, as plain functions of Settings and injected AWS clients: the DAG only wires them.

One DAG run takes every file named by its triggering asset events (each event holds a batch of SQS messages, each
message a batch of S3 records) or, for a run started by hand, by `source_uris` in its conf. Each file becomes one
ingestion: RECEIVED -> the lake's writer lease -> ingest -> group_routes -> build_weekly (which commits) -> lease
released -> Glue partitions -> SUCCEEDED, or FAILED at the step that failed. The Spark jobs leave their results as
JSON reports in the lake (`_reports/<ingestion>/<job>.json`), so the DAG reads the same thing whether a job ran in a
local spark-submit, on EMR Serverless or on Glue.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlparse

from spark_jobs.common import locations
from spark_jobs.common.ingestions import COUNT_FIELDS, JIT_OPTIONS, new_ingestion_id, report_path
from triplake.events import (
    FAILED,
    RECEIVED,
    SUCCEEDED,
    UNSUPPORTED_FILE,
    Skipped,
    is_ingestible,
    status_event,
    unsupported_file_message,
    uploaded_files,
)
from triplake.lease import LakeBusyError, LakeLease
from triplake.settings import Settings

logger = logging.getLogger(__name__)

# The entry points of spark_jobs/: the DAG runs INGESTION_JOB (all stages of one file in one Spark application);
# the stage jobs run one stage each, for a rerun by hand.
INGESTION_JOB = "ingestion"
SPARK_JOBS = (INGESTION_JOB, "ingest", "group_routes", "build_weekly")
SPARK_TASK = "spark_ingestion"
LEASE_TASK = "acquire_lake_lease"
PLAN_TASK = "plan_ingestions"
PACKAGE_ZIP = "spark_jobs.zip"
# EMR Serverless and Glue take the JVM options as Spark settings, for the driver and the executors.
JIT_SPARK_CONF = f"spark.driver.extraJavaOptions={JIT_OPTIONS} --conf spark.executor.extraJavaOptions={JIT_OPTIONS}"


# The Airflow UI labels each mapped ingestion with its file (what a user looks for), not "Map Index 0": every task of
# the group reads its own entry of the plan.
MAP_INDEX_TEMPLATE = ("{{ ti.xcom_pull(task_ids='" + PLAN_TASK + "')[ti.map_index]['source_uri'].rsplit('/', 1)[-1] }}")
# What readers see change when an ingestion succeeds: the tables a downstream DAG schedules on (Airflow Assets).
PUBLISHED_TABLES = {"trips": locations.TRIPS, "weekly_trips": locations.WEEKLY_TRIPS, "routes": locations.ROUTE_MODELS}


def published_table_uris(lake_root: str) -> dict[str, str]:
    """The Asset URI of each published table: where its files live in the lake."""
    return {name: f"{lake_root.rstrip('/')}/{path}" for name, path in PUBLISHED_TABLES.items()}


class UsageError(ValueError):
    """A run was started with a conf that cannot work; the message says what to send instead."""


@dataclass(frozen=True)
class Ingestion:
    """One file on its way into the lake; a plain dict in XCom."""

    ingestion_id: str
    source_uri: str

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> Ingestion:
        return cls(ingestion_id=data["ingestion_id"], source_uri=data["source_uri"])

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def sqs_bodies(asset_event_extras: Iterable[Mapping[str, Any] | None]) -> list[Any]:
    """The SQS message bodies inside asset events made by MessageQueueTrigger(scheme="sqs"): the trigger's payload
    is {"status": "success", "message_batch": [<SQS message>, ...]} and Airflow keeps it under extra["payload"]."""
    bodies = []
    for extra in asset_event_extras:
        payload = (extra or {}).get("payload") or {}
        for message in payload.get("message_batch") or []:
            bodies.append(message.get("Body") if isinstance(message, Mapping) else message)
    return bodies


@dataclass(frozen=True)
class Plan:
    """What a run does: the files it ingests, the uploads it answers FAILED (unsupported_file), what it skips."""

    ingestions: list[Ingestion]
    unsupported: list[Ingestion]
    skipped: list[Skipped]


def planned_ingestions(
    asset_event_extras: Iterable[Mapping[str, Any] | None], run_conf: Mapping[str, Any] | None, landing_prefix: str
) -> Plan:
    """Every upload of this run in order, each with a new ingestion id: one per upload (the same file uploaded twice
    is two), and one per `source_uris` entry of a run started by hand."""
    files, skipped = uploaded_files(sqs_bodies(asset_event_extras), landing_prefix)
    uris = [file.uri for file in files]
    by_hand = []
    for uri in (run_conf or {}).get("source_uris") or []:
        if not isinstance(uri, str) or urlparse(uri).scheme != "s3" or not urlparse(uri).path.strip("/"):
            raise UsageError(f"source_uris must be s3://bucket/key strings; got {uri!r}")
        if uri not in by_hand:
            by_hand.append(uri)
    planned = [Ingestion(new_ingestion_id(), uri) for uri in [*uris, *by_hand]]
    return Plan(
        ingestions=[ingestion for ingestion in planned if is_ingestible(ingestion.source_uri)],
        unsupported=[ingestion for ingestion in planned if not is_ingestible(ingestion.source_uri)],
        skipped=skipped,
    )


def unsupported_event(ingestion: Ingestion, dag_run_id: str | None) -> dict[str, Any]:
    """FAILED at once for an upload that is not a file triplake ingests: what it got and what it takes."""
    name = ingestion.source_uri.rsplit("/", 1)[-1]
    return status_event(ingestion_id=ingestion.ingestion_id, status=FAILED, source_uri=ingestion.source_uri,
                        started_at=_now(), finished_at=_now(), dag_run_id=dag_run_id,
                        error={"kind": UNSUPPORTED_FILE, "message": unsupported_file_message(name), "task": PLAN_TASK})


def ingestion_lease(settings: Settings, ingestion: Ingestion, dag_run_id: str | None, s3_client: Any,
                    seconds: float | None = None) -> LakeLease:
    """The lake's writer lease as the DAG holds it for one ingestion: taken before ingest, renewed while a job
    runs, released after build_weekly committed (or when a step failed). Any task of the ingestion may renew it:
    the lease belongs to the ingestion, not to one process."""
    lease = LakeLease.for_lake(settings.lake_root, settings, ingestion.ingestion_id,
                               owner=f"DAG trips_ingest, run {dag_run_id}", s3_client=s3_client)
    if seconds is not None:
        lease.seconds = seconds
    return lease


class LakeBusy(RuntimeError):
    """The lake is being written by another ingestion: this try of the lease task waits for the next one."""


def acquire_or_wait(lease: LakeLease) -> None:
    """Takes the lease if the lake is free (or its holder is gone); else raises LakeBusy naming the holder."""
    try:
        lease.acquire(wait_seconds=0)
    except LakeBusyError as busy:
        raise LakeBusy(f"waiting for the lake: it is being written by {busy.holder.describe()}") from None


def job_arguments(job: str, ingestion: Ingestion, lake_root: str) -> list[str]:
    """The command line of a job of spark_jobs/ (the same for spark-submit and EMR Serverless)."""
    if job not in SPARK_JOBS:
        raise ValueError(f"unknown Spark job {job!r}: one of {', '.join(SPARK_JOBS)}")
    arguments = ["--lake-root", lake_root, "--ingestion-id", ingestion.ingestion_id]
    return (["--input", ingestion.source_uri] if job in ("ingest", INGESTION_JOB) else []) + arguments


def emr_job_driver(job: str, ingestion: Ingestion, settings: Settings) -> dict[str, Any]:
    """The jobDriver of an EMR Serverless job run: the job's file as entry point, spark_jobs/ as a zip beside it."""
    package = _package_uri(settings)
    return {
        "sparkSubmit": {
            "entryPoint": f"{package}/{job}.py",
            "entryPointArguments": job_arguments(job, ingestion, settings.lake_root),
            "sparkSubmitParameters": f"--py-files {package}/{PACKAGE_ZIP} --conf {JIT_SPARK_CONF}",
        }
    }


def glue_job_arguments(job: str, ingestion: Ingestion, settings: Settings) -> dict[str, str]:
    """The Arguments of an AWS Glue job run of the same job: its command line as `--name value` pairs, spark_jobs/
    as extra Python files, and the JIT flag (Glue takes further Spark settings inside the value of one --conf).
    The job's file is the Glue job's script (infra/glue.tf)."""
    command_line = job_arguments(job, ingestion, settings.lake_root)
    return dict(zip(command_line[::2], command_line[1::2])) | {
        "--extra-py-files": f"{_package_uri(settings)}/{PACKAGE_ZIP}",
        "--conf": JIT_SPARK_CONF,
    }


def _package_uri(settings: Settings) -> str:
    if not settings.emr_package_uri:
        raise UsageError("TRIPLAKE_EMR_PACKAGE_URI is not set: upload the `make package` output to S3 and set it "
                         "to that s3:// prefix (terraform output triplake_settings)")
    return settings.emr_package_uri.rstrip("/")


def report_key(lake_root: str, ingestion_id: str, job: str) -> tuple[str, str]:
    """Bucket and key of a job's report in an s3:// lake."""
    parsed = urlparse(lake_root)
    if parsed.scheme not in ("s3", "s3a"):
        raise UsageError(f"the DAG needs an s3:// lake root (TRIPLAKE_LAKE_ROOT), not {lake_root!r}")
    return parsed.netloc, "/".join(part for part in (parsed.path.strip("/"), report_path(ingestion_id, job)) if part)


def counts_of(ingest_report: Mapping[str, Any]) -> dict[str, Any]:
    return {field: int(ingest_report[field]) for field in COUNT_FIELDS} | {
        "rejected_by_reason": dict(ingest_report.get("rejected_by_reason") or {})
    }


def received_event(ingestion: Ingestion, dag_run_id: str | None) -> dict[str, Any]:
    return status_event(ingestion_id=ingestion.ingestion_id, status=RECEIVED, source_uri=ingestion.source_uri,
                        started_at=_now(), dag_run_id=dag_run_id)


def routes_of(routes_report: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """region -> {model_version, fitted}: which model the ingestion's routes come from, and why it was fitted for
    this ingestion ("new region", "grew 4.1x ...", "refit asked"; None when the region's model was reused)."""
    return {region["region"]: {"model_version": int(region["model_version"]), "fitted": region.get("fit_reason")}
            for region in (routes_report or {}).get("regions", [])}


def succeeded_event(ingestion: Ingestion, ingest_report: Mapping[str, Any], dag_run_id: str | None,
                    routes_report: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return status_event(ingestion_id=ingestion.ingestion_id, status=SUCCEEDED, source_uri=ingestion.source_uri,
                        counts=counts_of(ingest_report), started_at=ingest_report.get("started_at"),
                        finished_at=_now(), dag_run_id=dag_run_id, routes=routes_of(routes_report))


def failed_event(ingestion: Ingestion, task: str, failure: BaseException | str | None,
                 ingest_report: Mapping[str, Any] | None, dag_run_id: str | None) -> dict[str, Any]:
    """FAILED at `task`. A file the ingest refused (bad header, unreadable) is `invalid_file` with the ingest's own
    words; anything else is `task_failed` with the exception, and the Airflow log holds the rest."""
    report_error = (ingest_report or {}).get("error")
    if report_error:  # the ingest stage refused the file as a whole
        error = {"kind": report_error["kind"], "message": report_error["message"]}
    elif task == LEASE_TASK:
        error = {"kind": "lake_busy",
                 "message": "another ingestion held the lake's writer lease for longer than TRIPLAKE_LAKE_LEASE_WAIT_SECONDS; "
                            "nothing was written. Trigger the file again once the lake is free (docs/runbook.md)."}
    else:
        detail = str(failure).strip().splitlines()[-1] if failure and str(failure).strip() else "see the task log"
        error = {"kind": "task_failed",
                 "message": f"{task} failed: {detail}. Its ingestion was rolled back; fix the cause, then "
                            "ingest the file again (docs/runbook.md)."}
    counts = counts_of(ingest_report) if ingest_report and ingest_report.get("status") == SUCCEEDED else {}
    return status_event(ingestion_id=ingestion.ingestion_id, status=FAILED, source_uri=ingestion.source_uri,
                        counts=counts, started_at=(ingest_report or {}).get("started_at"), finished_at=_now(),
                        error=error | {"task": task}, dag_run_id=dag_run_id)


def topic_arn(settings: Settings, account_number: Callable[[], str]) -> str:
    """The status topic's ARN: as configured, or built from its name and the account (asked only then)."""
    if settings.status_topic_arn:
        return settings.status_topic_arn
    return f"arn:aws:sns:{settings.aws_region}:{account_number()}:{settings.status_topic_name}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
