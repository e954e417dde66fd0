"""
### trips_ingest — the received uploads become trips in the lake, in order, a batch at a time, announced on SNS

Scheduled on the Asset `triplake_received_uploads` (trips_receive updates it), one run at a time: a run takes every
upload waiting in the lake's inbox, in the order S3 took them, cut into batches of at most
`TRIPLAKE_BATCH_MAX_FILES` files and `TRIPLAKE_BATCH_MAX_BYTES` bytes; uploads received while it runs are the next
run's. For each batch, one after the other:

**spark_ingestion** — the lake's writer lease, then one Spark application (a spark-submit, or one EMR Serverless or
Glue job run, watched to its end) that ingests each file as its own ingestion: ingest → group_routes →
build_weekly (the commit); a file that fails is rolled back alone. The lease is given back once the application
has ended. While the application runs, a thread of the task announces each file whose outcome is in the lake, in
upload order, so an upload is answered when its file commits. **announce_outcomes** — SUCCEEDED or FAILED for every
file of the batch not announced yet (a file the batch never reached fails with the batch's reason), and the files
leave the inbox; the Delta tables need no Glue partitions. A run
is failed when a batch failed as a whole; a file refused on its own is answered FAILED.

Wiring only: what each task does lives in `triplake.orchestration` (tested without Airflow). Nothing here calls
AWS when the file is parsed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.sdk import Asset, dag, task, task_group
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from triplake import orchestration
from triplake.settings import get_settings

settings = get_settings()

received_uploads = Asset(name="triplake_received_uploads", uri=orchestration.inbox_uri(settings.lake_root))
# Published when a batch has been announced (its outlets): a downstream DAG can be scheduled on weekly_trips.
published_tables = [Asset(name=f"triplake_{name}", uri=uri)
                    for name, uri in orchestration.published_table_uris(settings.lake_root).items()]


@dag(
    dag_id=Path(__file__).stem,
    schedule=[received_uploads],
    max_active_runs=1,  # one run takes the inbox at a time: uploads are ingested in the order they came
    catchup=False,
    tags=["triplake"],
    description="The received uploads become trips in the lake, in order, a batch at a time, announced on SNS",
    doc_md=__doc__,
    default_args={"retries": 0},
)
def trips_ingest():
    @task(task_id=orchestration.PLAN_TASK)
    def plan_batches() -> list[dict[str, Any]]:
        """The uploads waiting in the inbox, in order, as bounded batches."""
        from triplake import dag_io, inbox

        waiting = inbox.waiting(dag_io.objects())
        if not waiting:
            raise AirflowSkipException("the inbox is empty: every received upload is answered")
        batches = orchestration.plan_batches(waiting, settings)
        print(f"{len(waiting)} uploads waiting: {len(batches)} batch(es) of at most {settings.batch_max_files} files")
        return [batch.to_dict() for batch in batches]

    # One batch at a time, in the order of the plan (map index): each holds the lake's lease while its job runs.
    @task(task_id=orchestration.SPARK_TASK, max_active_tis_per_dagrun=1)
    def spark_ingestion(batch: dict[str, Any], **context) -> None:
        """The batch's Spark application, under the lake's writer lease from before it starts until it has ended."""
        from spark_jobs.common.ingestions import batch_path
        from triplake import dag_io
        from triplake.announce import announcing_as_files_end

        this = orchestration.Batch.from_dict(batch)
        dag_io.objects().put(batch_path(this.batch_id), this.manifest())
        lease = orchestration.batch_lease(settings, this, context["dag_run"].run_id, dag_io.s3_client())
        try:
            with lease.held(settings.lake_lease_wait_seconds,
                            on_wait=lambda holder: print(f"waiting for the lake: {holder.describe()}")), \
                    announcing_as_files_end(this, dag_io.objects(), dag_io.publisher(), context["dag_run"].run_id,
                                            settings.announce_poll_seconds):
                run_batch(this, lease)
        except Exception as failure:
            context["ti"].xcom_push(key=orchestration.BATCH_FAILURE_KEY, value=orchestration.batch_failure(failure))
            raise

    def run_batch(batch: orchestration.Batch, lease) -> None:
        from triplake.forget import finish_killed_erasures

        finish_killed_erasures(settings.lake_root, settings)  # a lake a killed erasure left: erased before ingesting
        if settings.spark_runner == "local":
            from triplake.local.spark_submit import run_spark_job

            job = orchestration.INGESTION_JOB
            run_spark_job(job, orchestration.job_arguments(job, settings.lake_root, batch_id=batch.batch_id), settings)
            return
        from airflow.providers.amazon.aws.hooks.emr import EmrServerlessHook
        from airflow.providers.amazon.aws.hooks.glue import GlueJobHook

        from triplake.cloud_runs import run_to_the_end

        hook = GlueJobHook if settings.spark_runner == "glue" else EmrServerlessHook
        runs = orchestration.cloud_job_runs(batch, settings, hook(aws_conn_id=settings.airflow_aws_conn_id).conn)
        run_to_the_end(runs, settings.emr_poll_seconds, keep_going=lease.check)

    @task(trigger_rule="all_done", outlets=published_tables)
    def announce_outcomes(batch: dict[str, Any], **context) -> dict[str, str]:
        """SUCCEEDED or FAILED for every file of the batch; they leave the inbox."""
        from triplake import dag_io
        from triplake.announce import announce_batch

        ti = context["ti"]
        failure = ti.xcom_pull(task_ids=f"batch.{orchestration.SPARK_TASK}", key=orchestration.BATCH_FAILURE_KEY,
                               map_indexes=ti.map_index)
        statuses = announce_batch(orchestration.Batch.from_dict(batch), settings, dag_io.objects(), dag_io.publish,
                                  context["dag_run"].run_id, failure)
        if failure:
            raise AirflowFailException(f"the batch failed as a whole ({failure['kind']}): {failure['message']}")
        return statuses

    @task_group(group_id="batch", default_args={"map_index_template": orchestration.MAP_INDEX_TEMPLATE})
    def one_batch(batch):
        spark_ingestion(batch) >> announce_outcomes(batch)

    one_batch.expand(batch=plan_batches())


trips_ingest()
