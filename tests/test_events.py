"""S3 notifications parsed into uploaded files, and status events published to SNS (read back through SQS)."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.conftest import MOTO_CREDENTIALS
from triplake.aws.sns import publish_status
from triplake.events import FAILED, RECEIVED, SUCCEEDED, STATUS_SCHEMA, UploadedFile, status_event, uploaded_files

LANDING = "incoming/"


def record(key: str, event_name: str = "ObjectCreated:Put", bucket: str = "triplake-landing") -> dict:
    return {"eventName": event_name, "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 10}}}


def body(*records: dict) -> str:
    return json.dumps({"Records": list(records)})


def test_the_test_event_is_skipped_and_url_encoded_keys_are_decoded():
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "triplake-landing"})
    files, skipped = uploaded_files([test_event, body(record("incoming/May+2018/trips%20%281%29.csv"))], LANDING)
    assert files == [UploadedFile("triplake-landing", "incoming/May 2018/trips (1).csv")]
    assert files[0].uri == "s3://triplake-landing/incoming/May 2018/trips (1).csv"
    assert [skip.reason for skip in skipped] == ["s3:TestEvent sent when the notification was configured"]


def test_several_records_in_several_messages_each_file_once_in_order():
    bodies = [body(record("incoming/a.csv"), record("incoming/b.csv.gz")), body(record("incoming/c.CSV"), record("incoming/a.csv"))]
    files, skipped = uploaded_files(bodies, LANDING)
    assert [file.key for file in files] == ["incoming/a.csv", "incoming/b.csv.gz", "incoming/c.CSV"]
    assert skipped == []


def test_what_is_not_a_new_csv_under_the_landing_prefix_is_skipped_with_its_reason():
    bodies = [
        body(record("incoming/notes.txt"), record("elsewhere/trips.csv"), record("incoming/old.csv", "ObjectRemoved:Delete"),
             record("incoming/ok.csv"), {"eventName": "ObjectCreated:Put"}),
        "this is not json",
        json.dumps(["a", "list"]),
        json.dumps({"no": "records"}),
    ]
    files, skipped = uploaded_files(bodies, LANDING)
    assert [file.key for file in files] == ["incoming/ok.csv"]
    assert [skip.reason for skip in skipped] == [
        "not a .csv or .csv.gz file",
        "outside the landing prefix 'incoming/'",
        "ObjectRemoved:Delete is not a new object",
        "not an S3 record (no eventName, bucket or key)",
        "not an S3 notification (the message body is not JSON)",
        "not an S3 notification (the message body is not a JSON object)",
        "not an S3 notification (no Records)",
    ]
    assert skipped[0].what == "s3://triplake-landing/incoming/notes.txt"


def test_status_events_follow_the_design_and_a_failure_carries_its_error():
    counts = {"rows_read": 3, "rows_valid": 2, "rows_rejected": 1, "duplicates_in_batch": 0, "already_present": 0, "rows_written": 2}
    event = status_event(ingestion_id="i-1", status=SUCCEEDED, source_uri="s3://b/incoming/a.csv", counts=counts,
                         started_at="2026-11-25T10:00:00Z", finished_at="2026-11-25T10:00:09Z", dag_run_id="run-1")
    assert event == {"schema": STATUS_SCHEMA, "ingestion_id": "i-1", "status": "SUCCEEDED", "source_uri": "s3://b/incoming/a.csv",
                     "counts": counts, "started_at": "2026-11-25T10:00:00Z", "finished_at": "2026-11-25T10:00:09Z",
                     "error": None, "dag_run_id": "run-1"}
    with pytest.raises(ValueError, match="FAILED event carries an error"):
        status_event(ingestion_id="i-1", status=FAILED, source_uri="s3://b/a.csv")
    with pytest.raises(ValueError, match="unknown status"):
        status_event(ingestion_id="i-1", status="DONE", source_uri="s3://b/a.csv")


def test_a_published_status_reaches_an_sqs_subscriber_with_filterable_attributes(moto_endpoint, test_settings):
    clients = {"endpoint_url": moto_endpoint, "region_name": test_settings.aws_region, **MOTO_CREDENTIALS}
    sns, sqs = boto3.client("sns", **clients), boto3.client("sqs", **clients)
    topic_arn = sns.create_topic(Name="triplake-ingestion-status-events-test")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="status-events-test")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                  Attributes={"FilterPolicy": json.dumps({"status": ["FAILED"]})})

    received = status_event(ingestion_id="i-2", status=RECEIVED, source_uri="s3://b/incoming/a.csv")
    failed = status_event(ingestion_id="i-2", status=FAILED, source_uri="s3://b/incoming/a.csv",
                          error={"kind": "invalid_file", "message": "the header is not region,origin_coord,..."})
    for event in (received, failed):
        publish_status(sns, topic_arn, event)

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    delivered = [json.loads(json.loads(message["Body"])["Message"]) for message in messages]
    assert delivered == [failed]  # the filter policy on the status attribute let only FAILED through
    attributes = json.loads(messages[0]["Body"])["MessageAttributes"]
    assert attributes["ingestion_id"]["Value"] == "i-2" and attributes["status"]["Value"] == "FAILED"
