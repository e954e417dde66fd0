"""
### trips_receive — every upload to the landing bucket answered in seconds, then queued for trips_ingest

An S3 `ObjectCreated` notification lands on the landing queue; the asset watcher turns it into an asset event and
this DAG runs, as many runs at once as uploads come. For each upload under the landing prefix — or each
`source_uris` entry of a run started by hand with conf `{"source_uris": ["s3://bucket/key.csv"]}`:

- its **receipt** in the lake, `_uploads/<upload id>.json`, written once: an S3 event that SQS delivers again, in
  this run or a later one, finds it and is not received twice, while the same file uploaded twice is two uploads;
- **RECEIVED** on SNS, naming the ingestion the upload becomes;
- a `.csv` or `.csv.gz` file waits in the lake's **inbox** (`_inbox/`), in the order S3 took it, and the Asset
  `triplake_received_uploads` is updated, which schedules trips_ingest; anything else is answered **FAILED**
  (`unsupported_file`) at once.

Wiring only: what the task does lives in `triplake.orchestration` and `triplake.inbox` (tested without Airflow).
Nothing here calls AWS when the file is parsed.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
from airflow.sdk import Asset, AssetWatcher, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from triplake import orchestration
from triplake.settings import get_settings

settings = get_settings()

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
received_uploads = Asset(name="triplake_received_uploads", uri=orchestration.inbox_uri(settings.lake_root))


@dag(
    dag_id=Path(__file__).stem,
    schedule=[landing_uploads],
    catchup=False,
    tags=["triplake"],
    description="Every upload to the landing bucket answered in seconds (RECEIVED, or FAILED when it is no CSV), "
                "then queued for trips_ingest",
    doc_md=__doc__,
)
def trips_receive():
    # The SQS messages are deleted once the watcher has them: a failed try is tried again, and a retry gets back the
    # receipts this run made, so nothing is received twice (RECEIVED may be said twice).
    @task(task_id=orchestration.RECEIVE_TASK, outlets=[received_uploads], retries=3, retry_delay=timedelta(seconds=5))
    def receive_uploads(**context) -> list[dict]:
        """Receipts, RECEIVED, and the inbox for each upload of the triggering asset events (or of the run's conf)."""
        from triplake import dag_io, inbox
        from triplake.lake_records import write_failed_record

        extras = [event.extra for events in context["triggering_asset_events"].values() for event in events]
        uploads, skipped = orchestration.uploads_of_run(extras, context["dag_run"].conf, settings.landing_prefix)
        for item in skipped:
            print(f"skipped {item.what}: {item.reason}")
        store = dag_io.objects()
        received = orchestration.receive_uploads(store, uploads, context["dag_run"].run_id)
        for receipt in received.delivered_again:
            print(f"skipped {receipt.source_uri}: delivered again, received already as ingestion {receipt.ingestion_id} "
                  f"by run {receipt.dag_run_id}")
        for receipt in [*received.ingestible, *received.unsupported]:
            dag_io.publish(orchestration.received_event(receipt))
        for receipt in received.unsupported:
            event = orchestration.unsupported_event(receipt)
            write_failed_record(settings.lake_root, settings, receipt.ingestion_id, receipt.source_uri, event["error"])
            dag_io.publish(event)
        for receipt in received.ingestible:  # after RECEIVED: no batch may answer an upload before it is received
            inbox.enqueue(store, receipt)
        if not received.ingestible:
            raise AirflowSkipException("nothing to ingest: no new .csv or .csv.gz upload in this run")
        return [receipt.to_dict() for receipt in received.ingestible]

    receive_uploads()


trips_receive()
