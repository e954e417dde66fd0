"""S3 notifications parsed into uploaded files, and status events published to SNS (read back through SQS)."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.conftest import MOTO_CREDENTIALS
from triplake.aws.sns import publish_status
from triplake.terminal import event_line
from triplake.events import (
    FAILED,
    RECEIVED,
    STATUS_SCHEMA,
    SUCCEEDED,
    is_ingestible,
    status_event,
    uploaded_files,
)

LANDING = "incoming/"


def record(key: str, event_name: str = "ObjectCreated:Put", bucket: str = "triplake-landing", sequencer: str = "01") -> dict:
    return {"eventName": event_name, "s3": {"bucket": {"name": bucket},
                                            "object": {"key": key, "size": 10, "sequencer": sequencer}}}


def body(*records: dict) -> str:
    return json.dumps({"Records": list(records)})


# The records as each S3 sends them (captured from LocalStack 4.13.1 and moto 5.2.5, trimmed to what matters): two
# uploads of one key 9 ms apart, and, from moto, a multipart upload.
def localstack_record(event_time: str, request_id: str) -> dict:
    return {"eventVersion": "2.1", "eventSource": "aws:s3", "eventTime": event_time, "eventName": "ObjectCreated:Put",
            "responseElements": {"x-amz-request-id": request_id, "x-amz-id-2": "eftixk72aD6Ap51TnqcoF8eFidJG9Z/2"},
            "s3": {"bucket": {"name": "land"}, "object": {"key": "incoming/a%20b.csv", "sequencer": "0055AED6DCD90281E5",
                                                          "eTag": "043212bb9834e334677e9c9659294bd4", "size": 4}}}


def moto_record(event_time: str, event_name: str = "ObjectCreated:Put", key: str = "incoming%2Fa+b.csv",
                e_tag: str = "043212bb9834e334677e9c9659294bd4") -> dict:
    return {"eventVersion": "2.1", "eventSource": "aws:s3", "eventTime": event_time, "eventName": event_name,
            "s3": {"bucket": {"name": "land"}, "object": {"key": key, "size": 4, "eTag": e_tag}}}


def test_the_test_event_is_skipped_and_url_encoded_keys_are_decoded():
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "triplake-landing"})
    files, skipped = uploaded_files([test_event, body(record("incoming/May+2018/trips%20%281%29.csv"))], LANDING)
    assert [(file.bucket, file.key) for file in files] == [("triplake-landing", "incoming/May 2018/trips (1).csv")]
    assert files[0].uri == "s3://triplake-landing/incoming/May 2018/trips (1).csv"
    assert [skip.reason for skip in skipped] == ["s3:TestEvent sent when the notification was configured"]


def test_several_records_in_several_messages_each_upload_once_in_order():
    bodies = [body(record("incoming/a.csv"), record("incoming/b.csv.gz")),
              body(record("incoming/c.CSV"), record("incoming/a.csv"), record("incoming/a.csv", sequencer="02"))]
    files, skipped = uploaded_files(bodies, LANDING)
    # a.csv's record delivered twice is one upload; a.csv uploaded again (a new sequencer) is another
    assert [file.key for file in files] == ["incoming/a.csv", "incoming/b.csv.gz", "incoming/c.CSV", "incoming/a.csv"]
    assert len({file.upload_id for file in files}) == 4 and files[0].size == 10
    assert skipped == []


@pytest.mark.parametrize("together", [True, False], ids=["one poll", "two polls"])
def test_localstack_two_uploads_of_one_key_with_one_sequencer_are_two_and_a_redelivery_is_one(together):
    first = localstack_record("2026-12-04T15:07:41.523Z", "1d02fffd")
    second = localstack_record("2026-12-04T15:07:41.532Z", "f473dcd3")
    polls = [[body(first), body(second), body(first)]] if together else [[body(first)], [body(second), body(first)]]
    ids = [file.upload_id for poll in polls for file in uploaded_files(poll, LANDING)[0]]
    assert len(set(ids)) == 2, "two uploads, each once however its message came"
    (again,) = uploaded_files([body(second)], LANDING)[0]
    assert again.upload_id == ids[1] and again.key == "incoming/a b.csv" and again.event_time.endswith("41.532Z")


def test_moto_uploads_differ_by_their_time_and_a_multipart_upload_announced_twice_is_one():
    plain = [moto_record("2026-12-04T15:07:32.607Z"), moto_record("2026-12-04T15:07:32.613Z")]
    multipart_tag = "5bc1ae1e83c198879f015c121516613a-1"
    multipart = [moto_record("2026-12-04T15:07:32.711Z", key="incoming%2Fbig.csv", e_tag=multipart_tag),
                 moto_record("2026-12-04T15:07:32.712Z", "ObjectCreated:CompleteMultipartUpload", "incoming%2Fbig.csv",
                             multipart_tag)]
    files, _ = uploaded_files([body(*plain), body(multipart[0]), body(multipart[1])], LANDING)
    assert [file.key for file in files] == ["incoming/a b.csv", "incoming/a b.csv", "incoming/big.csv"]
    (later,) = uploaded_files([body(multipart[1])], LANDING)[0]  # the second announcement, in another run
    assert later.upload_id == files[2].upload_id


def test_aws_uploads_are_told_apart_by_their_sequencer_and_one_delivered_twice_is_one():
    def aws(sequencer: str) -> dict:
        return {"eventTime": "2026-12-01T10:00:00.001Z", "eventName": "ObjectCreated:CompleteMultipartUpload",
                "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810"},
                "s3": {"bucket": {"name": "b"}, "object": {"key": "incoming/a.csv", "eTag": "e1-2", "sequencer": sequencer}}}

    files, _ = uploaded_files([body(aws("0A1B2C3D4E5F678901"), aws("0A1B2C3D4E5F678902")), body(aws("0A1B2C3D4E5F678901"))],
                              LANDING)
    assert len(files) == 2


@pytest.mark.parametrize(("name", "ingested"), [
    ("trips.csv", True), ("TRIPS.CSV", True), ("May.Csv.Gz", True), ("trips.csv.gz", True),
    ("notes.txt", False), ("trips.csv.zip", False), ("trips.gz", False), ("folder.csv/", False), ("trips.xlsx", False),
])
def test_one_rule_says_what_starts_an_ingestion(name, ingested):
    assert is_ingestible(name) == ingested


def test_every_upload_under_the_landing_prefix_is_returned_and_what_is_not_an_upload_is_skipped_with_its_reason():
    bodies = [
        body(record("incoming/notes.txt"), record("elsewhere/trips.csv"), record("incoming/old.csv", "ObjectRemoved:Delete"),
             record("incoming/ok.csv"), {"eventName": "ObjectCreated:Put"}, record("incoming/folder/")),
        "this is not json",
        json.dumps(["a", "list"]),
        json.dumps({"no": "records"}),
    ]
    files, skipped = uploaded_files(bodies, LANDING)
    assert [(file.key, file.ingestible) for file in files] == [("incoming/notes.txt", False), ("incoming/ok.csv", True)]
    assert [skip.reason for skip in skipped] == [
        "outside the landing prefix 'incoming/'",
        "ObjectRemoved:Delete is not a new object",
        "not an S3 record (no eventName, bucket or key)",
        "a folder marker, not a file",
        "not an S3 notification (the message body is not JSON)",
        "not an S3 notification (the message body is not a JSON object)",
        "not an S3 notification (no Records)",
    ]
    assert skipped[0].what == "s3://triplake-landing/elsewhere/trips.csv"


def test_status_events_follow_the_design_and_a_failure_carries_its_error():
    counts = {"rows_read": 3, "rows_valid": 2, "rows_rejected": 1, "duplicates_in_batch": 0, "already_present": 0, "rows_written": 2}
    routes = {"Turin": {"model_version": 2, "fitted": "grew 4.1x since v1 was trained (100 -> 410 trips)"},
              "Prague": {"model_version": 1, "fitted": None}}
    event = status_event(ingestion_id="i-1", status=SUCCEEDED, source_uri="s3://b/incoming/a.csv", counts=counts,
                         started_at="2026-11-25T10:00:00Z", finished_at="2026-11-25T10:00:09Z", dag_run_id="run-1",
                         routes=routes)
    assert event == {"schema": STATUS_SCHEMA, "ingestion_id": "i-1", "status": "SUCCEEDED", "source_uri": "s3://b/incoming/a.csv",
                     "counts": counts, "started_at": "2026-11-25T10:00:00Z", "finished_at": "2026-11-25T10:00:09Z",
                     "error": None, "dag_run_id": "run-1", "routes": routes}
    assert list(event["routes"]) == ["Prague", "Turin"]
    assert event_line(event).endswith("routes fitted: Turin v2 (grew 4.1x since v1 was trained (100 -> 410 trips))")
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
