"""`triplake redrive` against a moto server's landing queue and dead-letter queue, as `triplake stack up` makes them:
what was never received goes back onto the landing queue, what was received is deleted with the ingestion that has
it, what names no upload stays; a dry run moves nothing. (tests/test_stack.py takes a redriven upload to its answer.)"""

from __future__ import annotations

import contextlib
import io
import json
import uuid

import pytest

from tests.conftest import s3_notification
from triplake import cli
from triplake.aws import clients
from triplake.events import uploaded_files
from triplake.inbox import receive
from triplake.lake_objects import FileObjects
from triplake.local.bootstrap import bootstrap


@pytest.fixture
def queues(moto_cli_settings, tmp_path):
    name = f"redrive-{uuid.uuid4().hex[:8]}"
    settings = moto_cli_settings(TRIPLAKE_LANDING_QUEUE_NAME=name, TRIPLAKE_LANDING_BUCKET=f"{name}-landing",
                                 TRIPLAKE_STATUS_TOPIC_NAME=name, TRIPLAKE_LAKE_ROOT=f"s3://{name}-lake/lake")
    resources = bootstrap(settings, notify=False)
    (sqs,) = clients(settings, "sqs")
    return sqs, resources, settings


def redrive(*options: str) -> tuple[int, dict]:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main(["redrive", "--json", *options])
    return code, json.loads(printed.getvalue()) if printed.getvalue() else {}


def bodies(sqs, queue_url: str) -> list[str]:
    """Every message body of the queue, each message made visible again after it was read."""
    found = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                       VisibilityTimeout=60).get("Messages", []):
        found += batch
    for message in found:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return [message["Body"] for message in found]


def test_redrive_sends_back_what_was_never_received_and_says_who_has_the_rest(queues, tmp_path):
    sqs, resources, settings = queues
    bucket = settings.landing_bucket
    never = s3_notification("incoming/never received.csv", bucket)
    answered = s3_notification("incoming/answered.csv", bucket)
    garbled = "not an S3 notification"
    for body in (never, answered, garbled):
        sqs.send_message(QueueUrl=resources.dead_letter_queue_url, MessageBody=body)
    lake = tmp_path / "lake"
    (upload,), _ = uploaded_files([answered], settings.landing_prefix)
    receipt, _ = receive(FileObjects(lake), upload, "asset_triggered__earlier")

    code, dry = redrive("--dry-run", "--lake-root", str(lake))
    assert code == 0 and dry["dry_run"]
    assert sorted((message["action"], [item["uri"] for item in message["uploads"]]) for message in dry["messages"]) == [
        ("answered already", [f"s3://{bucket}/incoming/answered.csv"]),
        ("left in the dead-letter queue", []),
        ("sent back", [f"s3://{bucket}/incoming/never received.csv"])]
    assert sorted(bodies(sqs, resources.dead_letter_queue_url)) == sorted([never, answered, garbled]), "nothing moved"
    assert bodies(sqs, resources.landing_queue_url) == []

    code, done = redrive("--lake-root", str(lake))
    assert code == 0
    by_action = {message["action"]: message for message in done["messages"]}
    assert by_action["answered already"]["uploads"] == [
        {"uri": f"s3://{bucket}/incoming/answered.csv", "received_as": receipt.ingestion_id}]
    assert by_action["sent back"]["uploads"] == [{"uri": f"s3://{bucket}/incoming/never received.csv", "received_as": None}]
    assert by_action["left in the dead-letter queue"]["skipped"][0]["reason"].startswith("not an S3 notification")
    assert bodies(sqs, resources.landing_queue_url) == [never], "the message itself goes back, as S3 sent it"
    assert bodies(sqs, resources.dead_letter_queue_url) == [garbled], "what names no upload stays"


def test_redrive_of_a_queue_without_a_dead_letter_queue_says_so(moto_cli_settings, tmp_path, capsys):
    settings = moto_cli_settings(TRIPLAKE_LANDING_QUEUE_NAME=f"plain-{uuid.uuid4().hex[:8]}")
    (sqs,) = clients(settings, "sqs")
    sqs.create_queue(QueueName=settings.landing_queue_name)
    assert cli.main(["redrive", "--lake-root", str(tmp_path / "lake")]) == 2
    assert "has no dead-letter queue" in capsys.readouterr().err
