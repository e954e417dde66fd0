"""`triplake upload` against moto: the file lands under the landing prefix, and the bucket's notification
reaches SQS as a body that triplake.events turns back into that very file (TestEvent first, key URL-encoded)."""

from __future__ import annotations

import shutil

import boto3
import pytest

from tests.conftest import MOTO_CREDENTIALS, SAMPLE
from triplake import cli
from triplake.events import uploaded_files


@pytest.fixture
def landing(moto_endpoint, moto_cli_settings):
    settings = moto_cli_settings(TRIPLAKE_LANDING_BUCKET="upload-test-landing")
    clients = {"endpoint_url": moto_endpoint, "region_name": settings.aws_region, **MOTO_CREDENTIALS}
    s3, sqs = boto3.client("s3", **clients), boto3.client("sqs", **clients)
    s3.create_bucket(Bucket=settings.landing_bucket)
    queue_url = sqs.create_queue(QueueName="upload-test-landing")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=settings.landing_bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"], "Filter": {"Key": {
            "FilterRules": [{"Name": "prefix", "Value": settings.landing_prefix}, {"Name": "suffix", "Value": ".csv"}]}}}]})
    return settings, s3, sqs, queue_url


def test_an_uploaded_file_is_announced_on_the_landing_queue(landing, tmp_path, capsys):
    settings, s3, sqs, queue_url = landing
    upload = tmp_path / "May 2018 (sample).csv"
    shutil.copy(SAMPLE, upload)

    assert cli.main(["upload", str(upload)]) == 0
    key = f"{settings.landing_prefix}May 2018 (sample).csv"
    assert capsys.readouterr().out.strip() == f"s3://{settings.landing_bucket}/{key}"
    assert s3.get_object(Bucket=settings.landing_bucket, Key=key)["Body"].read() == SAMPLE.read_bytes()

    bodies = [message["Body"] for message in
              sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2)["Messages"]]
    files, skipped = uploaded_files(bodies, settings.landing_prefix)
    assert [file.uri for file in files] == [f"s3://{settings.landing_bucket}/{key}"]
    assert [skip.reason for skip in skipped] == ["s3:TestEvent sent when the notification was configured"]


def test_upload_refuses_what_cannot_start_an_ingestion(landing, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert cli.main(["upload", str(notes)]) == 2
    assert "is not a file triplake ingests" in capsys.readouterr().err
    assert cli.main(["upload", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
