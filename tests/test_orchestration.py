"""What the DAG's tasks decide, without Airflow: the files of a run, the job command lines, the status events."""

from __future__ import annotations

import json

import pytest

from triplake import orchestration
from triplake.events import FAILED, SUCCEEDED
from triplake.orchestration import Ingestion, UsageError, planned_ingestions
from triplake.settings import Settings

PREFIX = "incoming/"


def s3_body(*keys: str) -> str:
    return json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "landing"},
                                                                           "object": {"key": key}}} for key in keys]})


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
    plan = planned_ingestions(extras, None, PREFIX)
    assert [ingestion.source_uri for ingestion in plan.ingestions] == [
        "s3://landing/incoming/a.csv", "s3://landing/incoming/May 2018/b(1).csv.gz", "s3://landing/incoming/c.csv"]
    assert [ingestion.source_uri for ingestion in plan.unsupported] == ["s3://landing/incoming/notes.txt"]
    assert len({ingestion.ingestion_id for ingestion in plan.ingestions + plan.unsupported}) == 4
    reasons = [item.reason for item in plan.skipped]
    assert reasons[0] == "s3:TestEvent sent when the notification was configured"
    assert any("not JSON" in reason for reason in reasons)


def test_an_unsupported_upload_is_answered_failed_with_what_it_got_and_what_is_taken():
    event = orchestration.unsupported_event(Ingestion("i-9", "s3://landing/incoming/notes.txt"), "run-9")
    assert event["status"] == FAILED and event["error"]["kind"] == "unsupported_file"
    assert "'notes.txt'" in event["error"]["message"] and ".csv or .csv.gz" in event["error"]["message"]


def test_a_run_started_by_hand_takes_the_source_uris_of_its_conf_and_refuses_anything_else():
    plan = planned_ingestions([], {"source_uris": ["s3://landing/incoming/a.csv"]}, PREFIX)
    assert [ingestion.source_uri for ingestion in plan.ingestions] == ["s3://landing/incoming/a.csv"]
    assert not plan.skipped and not plan.unsupported
    for bad in ("/home/me/a.csv", "s3://landing", 42):
        with pytest.raises(UsageError, match="s3://bucket/key"):
            planned_ingestions([], {"source_uris": [bad]}, PREFIX)
    assert planned_ingestions([], {}, PREFIX) == orchestration.Plan([], [], [])


def test_each_job_gets_the_lake_and_the_ingestion_and_only_the_ingest_gets_the_file():
    ingestion = Ingestion("20260101T000000Z-0123abcd", "s3://landing/incoming/a b.csv")
    assert orchestration.job_arguments("ingest", ingestion, "s3://lake/root") == [
        "--input", "s3://landing/incoming/a b.csv", "--lake-root", "s3://lake/root", "--ingestion-id", ingestion.ingestion_id]
    assert orchestration.job_arguments("ingestion", ingestion, "s3://lake/root")[:2] == ["--input", ingestion.source_uri]
    assert orchestration.job_arguments("build_weekly", ingestion, "s3://lake/root") == [
        "--lake-root", "s3://lake/root", "--ingestion-id", ingestion.ingestion_id]
    with pytest.raises(ValueError, match="unknown Spark job"):
        orchestration.job_arguments("drop_everything", ingestion, "s3://lake/root")


def test_the_emr_runner_needs_the_package_location_and_says_where_it_comes_from():
    with pytest.raises(UsageError, match="TRIPLAKE_EMR_PACKAGE_URI"):
        orchestration.emr_job_driver("ingest", Ingestion("i", "s3://b/k.csv"), Settings(emr_package_uri=None))


def test_failed_events_say_which_task_failed_and_why():
    ingestion = Ingestion("i-1", "s3://landing/incoming/a.csv")
    refused = {"status": FAILED, "error": {"kind": "invalid_file", "message": "the header does not match"}}
    event = orchestration.failed_event(ingestion, "ingest", RuntimeError("spark job ingest exited with 1"), refused, "run-1")
    assert event["status"] == FAILED and event["counts"] == {}
    assert event["error"] == {"kind": "invalid_file", "message": "the header does not match", "task": "ingest"}

    ingested = {"status": SUCCEEDED, "started_at": "t0", **{field: 1 for field in orchestration.COUNT_FIELDS}}
    event = orchestration.failed_event(ingestion, "group_routes", RuntimeError("boom\njava.lang.OutOfMemoryError"), ingested, "run-1")
    assert event["error"]["kind"] == "task_failed" and event["error"]["task"] == "group_routes"
    assert "java.lang.OutOfMemoryError" in event["error"]["message"] and "again" in event["error"]["message"]
    assert event["counts"]["rows_written"] == 1, "what was ingested before the failure is reported"


def test_a_glue_job_run_gets_the_jobs_own_command_line_and_the_job_tells_it_from_glues_arguments():
    import argparse

    from spark_jobs import ingestion as ingestion_job
    from spark_jobs.common.job import parse_arguments

    settings = Settings(lake_root="s3://lake/root", emr_package_uri="s3://lake/packages/triplake-0.1.0/")
    this = Ingestion(ingestion_id="20260101T000000Z-abcdef01", source_uri="s3://landing/incoming/a b.csv")
    arguments = orchestration.glue_job_arguments(orchestration.INGESTION_JOB, this, settings)
    assert arguments == {
        "--input": "s3://landing/incoming/a b.csv", "--lake-root": "s3://lake/root",
        "--ingestion-id": "20260101T000000Z-abcdef01",
        "--extra-py-files": "s3://lake/packages/triplake-0.1.0/spark_jobs.zip",
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
    assert (parsed.input, parsed.lake_root, parsed.ingestion_id) == (this.source_uri, "s3://lake/root", this.ingestion_id)
    with pytest.raises(SystemExit):  # outside Glue, an argument the job does not know is a mistake
        parse_arguments(parser, ["--lake-root", "x", "--input", "y", "--ingestion-id", "z", "--TempDir", "s3://t/"])
