"""What the DAGs' tasks decide, without Airflow: the uploads of a run, the batches, the job command lines, the
status events."""

from __future__ import annotations

import json

import pytest

from triplake import orchestration
from triplake.events import FAILED, SUCCEEDED
from triplake.inbox import Receipt
from triplake.lease import LakeBusyError
from triplake.orchestration import UsageError, uploads_of_run
from triplake.settings import Settings

PREFIX = "incoming/"


def s3_body(*keys: str) -> str:
    return json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "landing"},
                                                                           "object": {"key": key}}} for key in keys]})


def receipt(ingestion_id: str, uri: str, size: int | None = 10) -> Receipt:
    return Receipt(upload_id=f"u-{ingestion_id}", ingestion_id=ingestion_id, source_uri=uri, size=size,
                   uploaded_at="2026-12-04T15:07:41.523Z", received_at="2026-12-04T15:07:42+00:00", dag_run_id="run-1")


def asset_event_extra(*bodies: str) -> dict:
    """What Airflow stores for an event of MessageQueueTrigger(scheme="sqs"): the trigger payload under "payload"."""
    messages = [{"MessageId": str(number), "ReceiptHandle": "r", "Body": body} for number, body in enumerate(bodies)]
    return {"from_trigger": True, "payload": {"status": "success", "message_batch": messages}}


def test_a_run_takes_every_record_of_every_message_of_every_asset_event_once():
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "landing"})
    extras = [
        asset_event_extra(test_event, s3_body("incoming/a.csv", "incoming/May+2018/b%281%29.csv.gz")),
        asset_event_extra("not json at all", s3_body("incoming/notes.txt", "incoming/a.csv")),
        asset_event_extra(s3_body("incoming/c.csv")),
        None,  # an event without extra (e.g. a manual asset event) names no file
    ]
    uploads, skipped = uploads_of_run(extras, None, PREFIX)
    assert [(upload.uri, upload.ingestible) for upload in uploads] == [
        ("s3://landing/incoming/a.csv", True), ("s3://landing/incoming/May 2018/b(1).csv.gz", True),
        ("s3://landing/incoming/notes.txt", False), ("s3://landing/incoming/c.csv", True)]
    reasons = [item.reason for item in skipped]
    assert reasons[0] == "s3:TestEvent sent when the notification was configured"
    assert any("not JSON" in reason for reason in reasons)


def test_an_unsupported_upload_is_answered_failed_with_what_it_got_and_what_is_taken():
    event = orchestration.unsupported_event(receipt("i-9", "s3://landing/incoming/notes.txt"))
    assert event["status"] == FAILED and event["error"]["kind"] == "unsupported_file"
    assert "'notes.txt'" in event["error"]["message"] and ".csv or .csv.gz" in event["error"]["message"]


def test_a_run_started_by_hand_takes_the_source_uris_of_its_conf_and_refuses_anything_else():
    uploads, skipped = uploads_of_run([], {"source_uris": ["s3://landing/incoming/a.csv"] * 2}, PREFIX)
    assert [upload.uri for upload in uploads] == ["s3://landing/incoming/a.csv"] and not skipped
    again, _ = uploads_of_run([], {"source_uris": ["s3://landing/incoming/a.csv"]}, PREFIX)
    assert again[0].upload_id != uploads[0].upload_id, "named by hand again: a new upload"
    several, _ = uploads_of_run([], {"source_uris": [f"s3://landing/incoming/{name}.csv" for name in "cab"]}, PREFIX)
    receipts = [Receipt(upload.upload_id, "i", upload.uri, None, upload.event_time, "t", "r") for upload in several]
    assert [receipt.name for receipt in sorted(receipts, key=lambda receipt: receipt.inbox_key)] == [
        "c.csv", "a.csv", "b.csv"], "waiting in the inbox in the conf's order"
    for bad in ("/home/me/a.csv", "s3://landing", 42):
        with pytest.raises(UsageError, match="s3://bucket/key"):
            uploads_of_run([], {"source_uris": [bad]}, PREFIX)
    assert uploads_of_run([], {}, PREFIX) == ([], [])


def test_the_ingestion_job_gets_its_batch_and_a_stage_run_by_hand_gets_one_file():
    assert orchestration.job_arguments("ingestion", "s3://lake/root", batch_id="batch-1") == [
        "--batch-id", "batch-1", "--lake-root", "s3://lake/root"]
    assert orchestration.job_arguments("ingest", "s3://lake/root", ingestion_id="i-1", source_uri="s3://l/a b.csv") == [
        "--input", "s3://l/a b.csv", "--lake-root", "s3://lake/root", "--ingestion-id", "i-1"]
    assert orchestration.job_arguments("build_weekly", "s3://lake/root", ingestion_id="i-1") == [
        "--lake-root", "s3://lake/root", "--ingestion-id", "i-1"]
    with pytest.raises(ValueError, match="unknown Spark job"):
        orchestration.job_arguments("drop_everything", "s3://lake/root", batch_id="b")


def test_the_cloud_runners_need_their_settings_and_say_where_they_come_from():
    batch = orchestration.Batch("batch-1", (receipt("i", "s3://b/k.csv"),))
    with pytest.raises(UsageError, match="TRIPLAKE_EMR_PACKAGE_URI"):
        orchestration.emr_job_driver(batch, Settings(emr_package_uri=None))
    with pytest.raises(UsageError, match="TRIPLAKE_EMR_APPLICATION_ID"):
        orchestration.cloud_job_runs(batch, Settings(spark_runner="emr-serverless"), client=None)


def test_waiting_uploads_are_cut_into_batches_in_order_bounded_by_files_and_bytes():
    waiting = [receipt(f"i-{number}", f"s3://l/incoming/{number}.csv", size) for number, size in
               enumerate([10, 10, 10, 100, 10, 10, 10])]
    settings = Settings(batch_max_files=3, batch_max_bytes=50)
    batches = orchestration.plan_batches(waiting, settings)
    assert [[item.ingestion_id for item in batch.receipts] for batch in batches] == [
        ["i-0", "i-1", "i-2"], ["i-3"], ["i-4", "i-5", "i-6"]], "a file over the bytes is a batch of its own"
    assert [batch.batch_id for batch in batches] == ["batch-i-0", "batch-i-3", "batch-i-4"]
    assert batches[0].label == "3 files: 0.csv ... 2.csv" and batches[1].label == "3.csv"
    assert orchestration.Batch.from_dict(batches[0].to_dict()) == batches[0]
    assert json.loads(batches[1].manifest()) == {"batch_id": "batch-i-3", "ingestions": [
        {"ingestion_id": "i-3", "source_uri": "s3://l/incoming/3.csv"}]}


def test_each_file_is_answered_from_its_outcome_and_one_the_batch_never_reached_with_the_batchs_reason():
    this = receipt("i-1", "s3://landing/incoming/a.csv")
    ingested = {"status": SUCCEEDED, "started_at": "t0", **{field: 1 for field in orchestration.COUNT_FIELDS}}
    routes = {"regions": [{"region": "Turin", "model_version": 2, "fit_reason": "refit asked"}]}
    reports = {"ingest": ingested, "group_routes": routes}.get

    succeeded = orchestration.outcome_event(this, {"status": SUCCEEDED, "error": None}, reports, "run-1")
    assert succeeded["status"] == SUCCEEDED and succeeded["counts"]["rows_written"] == 1
    assert succeeded["routes"] == {"Turin": {"model_version": 2, "fitted": "refit asked"}}

    refused = {"status": FAILED, "error": {"kind": "invalid_file", "message": "the header does not match"}}
    event = orchestration.outcome_event(this, refused, {}.get, "run-1")
    assert event["status"] == FAILED and event["counts"] == {}
    assert event["error"] == {"kind": "invalid_file", "message": "the header does not match", "task": "spark_ingestion"}

    stage = {"status": FAILED, "error": {"kind": "task_failed", "message": "group_routes failed: java.lang.OutOfMemoryError",
                                         "task": "group_routes"}}
    event = orchestration.outcome_event(this, stage, reports, "run-1")
    assert event["error"]["kind"] == "task_failed" and event["error"]["task"] == "group_routes"
    assert "OutOfMemoryError" in event["error"]["message"] and "again" in event["error"]["message"]
    assert event["counts"]["rows_written"] == 1, "what was ingested before the failure is reported"

    busy = orchestration.batch_failure(LakeBusyError("held by someone", holder=None))
    event = orchestration.outcome_event(this, None, {}.get, "run-1", busy)
    assert event["error"]["kind"] == "lake_busy" and "TRIPLAKE_LAKE_LEASE_WAIT_SECONDS" in event["error"]["message"]
    crashed = orchestration.batch_failure(RuntimeError("spark job ingestion exited with 137; last output:\nKilled"))
    assert crashed["kind"] == "task_failed" and "(Killed)" in crashed["message"]


def test_a_glue_job_run_gets_the_jobs_own_command_line_and_the_job_tells_it_from_glues_arguments():
    import argparse

    from spark_jobs import ingestion as ingestion_job
    from spark_jobs.common.job import parse_arguments

    settings = Settings(lake_root="s3://lake/root", emr_package_uri="s3://lake/packages/triplake-0.1.0/")
    batch = orchestration.Batch("batch-20260101T000000Z-abcdef01", (receipt("i", "s3://b/k.csv"),))
    arguments = orchestration.glue_job_arguments(batch, settings)
    assert arguments == {
        "--batch-id": "batch-20260101T000000Z-abcdef01", "--lake-root": "s3://lake/root",
        "--extra-py-files": "s3://lake/packages/triplake-0.1.0/spark_jobs.zip",
        "--additional-python-modules": "numpy==2.4.6,pyarrow==25.0.1,deltalake==1.6.6,arro3-core==0.9.1,"
                                       "deprecated==1.3.1,wrapt==2.5.2,typing_extensions==4.16.0",
        "--conf": "spark.driver.extraJavaOptions=-XX:-DontCompileHugeMethods "
                  "--conf spark.executor.extraJavaOptions=-XX:-DontCompileHugeMethods",
    }

    parser = argparse.ArgumentParser()
    parser.add_argument("--lake-root", required=True)
    ingestion_job._arguments(parser)
    # What the script's sys.argv holds in a Glue job run: Glue's own arguments around the run's Arguments.
    glue_argv = ["--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_1", "--JOB_NAME", "triplake-ingestion", "--TempDir", "s3://t/",
                 *[item for pair in arguments.items() for item in pair]]
    parsed = parse_arguments(parser, glue_argv)
    assert (parsed.batch_id, parsed.lake_root) == (batch.batch_id, "s3://lake/root")
    with pytest.raises(SystemExit):  # outside Glue, an argument the job does not know is a mistake
        parse_arguments(parser, ["--lake-root", "x", "--batch-id", "y", "--TempDir", "s3://t/"])
