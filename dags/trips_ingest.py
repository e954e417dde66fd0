"""
### trips_ingest — an upload to the landing bucket becomes trips in the lake, announced on SNS

An S3 `ObjectCreated` notification lands on the landing queue; the asset watcher turns it into an asset event and
this DAG runs. For each new `.csv`/`.csv.gz` under the landing prefix — or each `source_uris` entry
of a run started by hand with conf `{"source_uris": ["s3://bucket/key.csv"]}`:

RECEIVED → the lake's writer lease → one Spark application: **ingest** → **group_routes** → **build_weekly** (the
commit) → lease released → Glue partitions → SUCCEEDED, or FAILED naming the task and stage that failed (a failed
stage rolls its ingestion back). One
ingestion holds the lake at a time, whoever else writes it (`triplake run`, another Airflow): a waiting file's lease
task is rescheduled, so it holds no worker slot while it waits.

Wiring only: what each task does lives in `triplake.orchestration` (tested without Airflow). Nothing here calls AWS
when the file is parsed.
"""

from __future__ import annotations

import json
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.hooks.sns import SnsHook
from airflow.providers.amazon.aws.hooks.sts import StsHook
from airflow.providers.amazon.aws.operators.emr import EmrServerlessStartJobOperator
from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
from airflow.sdk import Asset, AssetWatcher, chain, dag, task, task_group

from triplake import orchestration
from triplake.events import message_attributes, status_subject
from triplake.settings import get_settings

settings = get_settings()
LEASE_POLL = timedelta(seconds=5)
LEASE_TRIES = max(1, int(settings.lake_lease_wait_seconds // LEASE_POLL.total_seconds()))

if not settings.landing_queue_url:
    raise RuntimeError(
        "TRIPLAKE_LANDING_QUEUE_URL is not set: give the DAG the URL of the landing bucket's SQS queue "
        "(`triplake stack up` sets it locally; in AWS it is in `terraform output triplake_settings`)."
    )

landing_uploads = Asset(
    name="triplake_landing_uploads",
    uri=f"s3://{settings.landing_bucket}/{settings.landing_prefix.strip('/')}",
    watchers=[
        AssetWatcher(
            name="triplake_landing_queue",
            trigger=MessageQueueTrigger(
                scheme="sqs",
                sqs_queue=settings.landing_queue_url,
                aws_conn_id=settings.airflow_aws_conn_id,
                max_messages=10,
                waiter_delay=1,
            ),
        )
    ],
)


# Published when an ingestion has succeeded (its outlets): a downstream DAG can be scheduled on weekly_trips.
published_tables = [Asset(name=f"triplake_{name}", uri=uri)
                    for name, uri in orchestration.published_table_uris(settings.lake_root).items()]


@cache
def status_topic_arn() -> str:
    """Asks STS for the account only when the topic's ARN is not configured, and once per task process."""
    return orchestration.topic_arn(settings, StsHook(aws_conn_id=settings.airflow_aws_conn_id).get_account_number)


def publish(event: dict) -> None:
    SnsHook(aws_conn_id=settings.airflow_aws_conn_id).publish_to_target(
        target_arn=status_topic_arn(), message=json.dumps(event), subject=status_subject(event),
        message_attributes=message_attributes(event))


def lake_report(ingestion_id: str, job: str) -> dict[str, Any] | None:
    """A job's report in the lake, or None when the job never got far enough to write one."""
    bucket, key = orchestration.report_key(settings.lake_root, ingestion_id, job)
    s3 = S3Hook(aws_conn_id=settings.airflow_aws_conn_id)
    return json.loads(s3.read_key(key, bucket)) if s3.check_for_key(key, bucket) else None


def lake_lease(ingestion: orchestration.Ingestion, dag_run_id: str, seconds: float | None = None):
    # The lease needs S3's conditional writes (If-None-Match, If-Match), so it takes the hook's client.
    s3 = S3Hook(aws_conn_id=settings.airflow_aws_conn_id).get_conn()
    return orchestration.ingestion_lease(settings, ingestion, dag_run_id, s3, seconds)


def announce_failure(context: Any) -> None:
    """on_failure_callback of every step: FAILED, naming the task and what went wrong; the lake is given back."""
    task_instance = context["ti"]
    ingestion = orchestration.Ingestion.from_dict(
        task_instance.xcom_pull(task_ids="plan_ingestions")[task_instance.map_index]
    )
    ingest_report = lake_report(ingestion.ingestion_id, "ingest")
    task_name = task_instance.task_id.rsplit(".", 1)[-1]
    event = orchestration.failed_event(ingestion, task_name, context.get("exception"), ingest_report,
                                       context["dag_run"].run_id)
    if task_name == orchestration.LEASE_TASK:  # it never held the lake: only its record says it was here
        from triplake.lake_records import write_failed_record

        write_failed_record(settings.lake_root, settings, ingestion.ingestion_id, ingestion.source_uri, event["error"])
    else:
        lake_lease(ingestion, context["dag_run"].run_id).release()
    publish(event)


@dag(
    dag_id=Path(__file__).stem,
    schedule=[landing_uploads],
    catchup=False,
    tags=["triplake"],
    description="An upload to the landing bucket becomes trips in the lake, announced on SNS",
    doc_md=__doc__,
    default_args={"retries": 0, "on_failure_callback": announce_failure},
)
def trips_ingest():
    @task(task_id=orchestration.PLAN_TASK, on_failure_callback=None)
    def plan_ingestions(**context) -> list[dict[str, str]]:
        """One ingestion per upload of the triggering asset events (or per file of the run's conf), RECEIVED for
        each; an upload that is not a .csv or .csv.gz file is answered FAILED (unsupported_file) at once."""
        from triplake.lake_records import write_failed_record

        extras = [event.extra for events in context["triggering_asset_events"].values() for event in events]
        plan = orchestration.planned_ingestions(extras, context["dag_run"].conf, settings.landing_prefix)
        run_id = context["dag_run"].run_id
        for item in plan.skipped:
            print(f"skipped {item.what}: {item.reason}")
        for ingestion in [*plan.ingestions, *plan.unsupported]:
            publish(orchestration.received_event(ingestion, run_id))
        for ingestion in plan.unsupported:
            event = orchestration.unsupported_event(ingestion, run_id)
            write_failed_record(settings.lake_root, settings, ingestion.ingestion_id, ingestion.source_uri, event["error"])
            publish(event)
        return [ingestion.to_dict() for ingestion in plan.ingestions]

    # A busy lake fails the try and Airflow tries again after a pause, holding no worker slot in between (a
    # reschedule-mode sensor would do the same, but Airflow 3.3 sometimes fails those on a late executor event).
    # Each try is a task process (~3 s of CPU): in the lake writers' pool, a waiting file does not try while another
    # file's Spark job runs, and waiting files try one at a time, so the wait does not slow the job it waits for.
    @task(task_id=orchestration.LEASE_TASK, retries=LEASE_TRIES, retry_delay=LEASE_POLL, pool=settings.lake_writers_pool)
    def acquire_lake_lease(ingestion: dict[str, str], **context) -> None:
        """Takes the lake's writer lease for this ingestion; while another ingestion holds it, tries again."""
        orchestration.acquire_or_wait(lake_lease(orchestration.Ingestion.from_dict(ingestion), context["dag_run"].run_id))

    @task
    def release_lake_lease(ingestion: dict[str, str], **context) -> None:
        """The ingestion has committed: the next one may write the lake."""
        lake_lease(orchestration.Ingestion.from_dict(ingestion), context["dag_run"].run_id).release()

    @task
    def register_partitions(ingestion: dict[str, str]) -> dict[str, int]:
        """Adds the partitions the jobs wrote to the Glue catalog, so Athena sees them (no MSCK REPAIR)."""
        from triplake.aws import glue  # reads sql/ddl with sqlglot: at run time, not each time the file is parsed

        catalog = GlueCatalogHook(aws_conn_id=settings.airflow_aws_conn_id).get_conn()
        trips_paths = lake_report(ingestion["ingestion_id"], "ingest")["partition_paths"]
        weekly_paths = lake_report(ingestion["ingestion_id"], "build_weekly")["partition_paths"]
        paths = {"trips_files": trips_paths, "trip_routes_files": trips_paths, "weekly_trips_files": weekly_paths}
        return {
            table.name: glue.register_partitions(catalog, settings.glue_database, table, settings.lake_root,
                                                 paths[table.name])
            for table in glue.partitioned_tables()
        }

    @task(outlets=published_tables)
    def announce_succeeded(ingestion: dict[str, str], **context) -> dict[str, Any]:
        """SUCCEEDED on SNS, once every engine sees the ingestion (committed, partitions registered)."""
        report = lake_report(ingestion["ingestion_id"], "ingest")
        event = orchestration.succeeded_event(orchestration.Ingestion.from_dict(ingestion), report,
                                              context["dag_run"].run_id, lake_report(ingestion["ingestion_id"], "group_routes"))
        publish(event)
        return event["counts"]

    def spark_ingestion(ingestion) -> list:
        """The tasks, in order, that run the file's ingestion (ingest, group_routes, build_weekly and the commit, in one
        Spark application) on the configured runner, in the lake writers' pool."""
        job = orchestration.INGESTION_JOB
        if settings.spark_runner == "local":
            @task(task_id=orchestration.SPARK_TASK, pool=settings.lake_writers_pool)
            def run_locally(ingestion: dict[str, str], **context) -> None:
                from triplake.local.spark_submit import run_spark_job

                this = orchestration.Ingestion.from_dict(ingestion)
                lease = lake_lease(this, context["dag_run"].run_id)
                lease.renew()  # fails at once when the ingestion no longer holds the lake
                with lease.kept_alive():
                    run_spark_job(job, orchestration.job_arguments(job, this, settings.lake_root), settings)

            return [run_locally(ingestion)]

        # A job run in the cloud is deferred while it runs and nothing renews the lease: it is extended for the whole
        # run by the task that prepares the run's arguments (the same command line as spark-submit's).
        @task(task_id=f"{orchestration.SPARK_TASK}_arguments")
        def job_run_arguments(ingestion: dict[str, str], **context) -> dict[str, Any]:
            this = orchestration.Ingestion.from_dict(ingestion)
            lake_lease(this, context["dag_run"].run_id, settings.emr_lease_seconds).renew()
            if settings.spark_runner == "glue":
                return orchestration.glue_job_arguments(job, this, settings)
            return orchestration.emr_job_driver(job, this, settings)

        arguments = job_run_arguments(ingestion)
        if settings.spark_runner == "glue":
            run_in_the_cloud = GlueJobOperator(
                task_id=orchestration.SPARK_TASK,
                job_name=settings.glue_job_name,  # defined by infra/glue.tf: its script is the job's entry point
                script_args=arguments,
                aws_conn_id=settings.airflow_aws_conn_id,
                deferrable=True,
                waiter_delay=settings.emr_poll_seconds,
                stop_job_run_on_kill=True,
                pool=settings.lake_writers_pool,
            )
        else:
            run_in_the_cloud = EmrServerlessStartJobOperator(
                task_id=orchestration.SPARK_TASK,
                application_id=settings.emr_application_id,
                execution_role_arn=settings.emr_execution_role_arn,
                job_driver=arguments,
                configuration_overrides={},
                name=f"triplake-{job}",
                aws_conn_id=settings.airflow_aws_conn_id,
                deferrable=True,
                waiter_delay=settings.emr_poll_seconds,
                pool=settings.lake_writers_pool,
            )
        return [arguments, run_in_the_cloud]

    @task_group(group_id="ingestion", default_args={"map_index_template": orchestration.MAP_INDEX_TEMPLATE})
    def one_file(ingestion):
        chain(acquire_lake_lease(ingestion), *spark_ingestion(ingestion), release_lake_lease(ingestion),
              register_partitions(ingestion), announce_succeeded(ingestion))

    one_file.expand(ingestion=plan_ingestions())


trips_ingest()
