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

from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.operators.emr import EmrServerlessStartJobOperator
from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
from airflow.sdk import Asset, AssetWatcher, chain, dag, task, task_group

from triplake import orchestration
from triplake.aws.sns import publish_status
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


def aws_client(service: str) -> Any:
    return AwsBaseHook(aws_conn_id=settings.airflow_aws_conn_id, client_type=service).get_conn()


def publish(event: dict) -> None:
    publish_status(aws_client("sns"), orchestration.topic_arn(settings, aws_client("sts")), event)


def lake_lease(ingestion: orchestration.Ingestion, dag_run_id: str, seconds: float | None = None):
    return orchestration.ingestion_lease(settings, ingestion, dag_run_id, aws_client("s3"), seconds)


def announce_failure(context: Any) -> None:
    """on_failure_callback of every step: FAILED, naming the task and what went wrong; the lake is given back."""
    task_instance = context["ti"]
    ingestion = orchestration.Ingestion.from_dict(
        task_instance.xcom_pull(task_ids="plan_ingestions")[task_instance.map_index]
    )
    ingest_report = orchestration.read_report(aws_client("s3"), settings.lake_root, ingestion.ingestion_id, "ingest")
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
    @task(task_id=orchestration.LEASE_TASK, retries=LEASE_TRIES, retry_delay=LEASE_POLL)
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

        s3, catalog, ingestion_id = aws_client("s3"), aws_client("glue"), ingestion["ingestion_id"]
        trips_paths = orchestration.read_report(s3, settings.lake_root, ingestion_id, "ingest")["partition_paths"]
        weekly_paths = orchestration.read_report(s3, settings.lake_root, ingestion_id, "build_weekly")["partition_paths"]
        paths = {"trips_files": trips_paths, "trip_routes_files": trips_paths, "weekly_trips_files": weekly_paths}
        return {
            table.name: glue.register_partitions(catalog, settings.glue_database, table, settings.lake_root,
                                                 paths[table.name])
            for table in glue.partitioned_tables()
        }

    @task
    def announce_succeeded(ingestion: dict[str, str], **context) -> dict[str, Any]:
        report = orchestration.read_report(aws_client("s3"), settings.lake_root, ingestion["ingestion_id"], "ingest")
        event = orchestration.succeeded_event(orchestration.Ingestion.from_dict(ingestion), report,
                                              context["dag_run"].run_id)
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

        @task(task_id=f"{orchestration.SPARK_TASK}_job_driver")
        def job_driver(ingestion: dict[str, str], **context) -> dict[str, Any]:
            this = orchestration.Ingestion.from_dict(ingestion)
            # The job run is deferred while it runs and nothing renews the lease: it is extended for the whole run.
            lake_lease(this, context["dag_run"].run_id, settings.emr_lease_seconds).renew()
            return orchestration.emr_job_driver(job, this, settings)

        driver = job_driver(ingestion)
        run_on_emr = EmrServerlessStartJobOperator(
            task_id=orchestration.SPARK_TASK,
            application_id=settings.emr_application_id,
            execution_role_arn=settings.emr_execution_role_arn,
            job_driver=driver,
            configuration_overrides={},
            name=f"triplake-{job}",
            aws_conn_id=settings.airflow_aws_conn_id,
            deferrable=True,
            waiter_delay=settings.emr_poll_seconds,
            pool=settings.lake_writers_pool,
        )
        return [driver, run_on_emr]

    @task_group(group_id="ingestion")
    def one_file(ingestion):
        chain(acquire_lake_lease(ingestion), *spark_ingestion(ingestion), release_lake_lease(ingestion),
              register_partitions(ingestion), announce_succeeded(ingestion))

    one_file.expand(ingestion=plan_ingestions())


trips_ingest()
