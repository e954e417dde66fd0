"""`triplake redrive` against a moto server's landing queue and dead-letter queue, as `triplake stack up` makes them:
what was never received goes back onto the landing queue, what was received is deleted with the ingestion that has
it, what names no upload stays; a dry run moves nothing. (tests/test_stack.py takes a redriven upload to its answer.)"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from tests.conftest import SAMPLE, s3_notification
from triplake import cli
from triplake.aws import clients
from triplake.erasure import Selection
from triplake.events import UploadedFile, uploaded_files
from triplake.forget import forget
from triplake.inbox import receive
from triplake.lake_objects import FileObjects
from triplake.local.bootstrap import bootstrap
from triplake.redrive import HELD, ErasureCheck, PastErasure
from triplake.weekly_average import BoundingBox


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
        {"uri": f"s3://{bucket}/incoming/answered.csv", "received_as": receipt.ingestion_id, "held_by": []}]
    assert by_action["sent back"]["uploads"] == [
        {"uri": f"s3://{bucket}/incoming/never received.csv", "received_as": None, "held_by": []}]
    assert by_action["left in the dead-letter queue"]["skipped"][0]["reason"].startswith("not an S3 notification")
    assert bodies(sqs, resources.landing_queue_url) == [never], "the message itself goes back, as S3 sent it"
    assert bodies(sqs, resources.dead_letter_queue_url) == [garbled], "what names no upload stays"


def test_an_upload_made_before_an_erasure_that_takes_lines_of_it_is_held_and_the_others_go_back(queues, tmp_path):
    """An upload the lake never received was not there when the erasure ran: sent back, it would bring erased trips
    in. The order is explicit: the uploads' event times are an hour before and after the erasure."""
    sqs, resources, settings = queues
    (s3,) = clients(settings, "s3")
    bucket, header = settings.landing_bucket, SAMPLE.read_text().splitlines()[0]
    erased_line = "Prague,POINT (14.4 50.0),POINT (14.5 50.1),2018-05-29 10:00:00,cheap_mobile"
    kept_line = erased_line.replace("cheap_mobile", "funny_car")
    uploads = {"incoming/mixed.csv": [kept_line, erased_line], "incoming/funny_car only.csv": [kept_line],
               "incoming/after the erasure.csv": [erased_line]}
    for key, lines in uploads.items():
        s3.put_object(Bucket=bucket, Key=key, Body="\n".join([header, *lines]).encode())
    lake = tmp_path / "lake"
    erasure = forget(lake.as_uri(), settings, Selection(datasource="cheap_mobile"))
    hour = timedelta(hours=1)
    now = datetime.now(timezone.utc)
    for key in uploads:
        event_time = now + hour if key.startswith("incoming/after") else now - hour
        sqs.send_message(QueueUrl=resources.dead_letter_queue_url,
                         MessageBody=s3_notification(key, bucket, event_time.isoformat().replace("+00:00", "Z")))

    code, done = redrive("--lake-root", str(lake))

    assert code == 0
    assert sorted((upload["uri"], message["action"], upload["held_by"])
                  for message in done["messages"] for upload in message["uploads"]) == [
        (f"s3://{bucket}/incoming/after the erasure.csv", "sent back", []),
        (f"s3://{bucket}/incoming/funny_car only.csv", "sent back", []),
        (f"s3://{bucket}/incoming/mixed.csv", HELD, [erasure.erasure_id])]
    assert [json.loads(body)["Records"][0]["s3"]["object"]["key"] for body in bodies(sqs, resources.dead_letter_queue_url)] \
        == ["incoming/mixed.csv"], "the held upload stays in the dead-letter queue"


def test_an_erasure_of_listed_trips_holds_every_upload_made_before_it():
    """Its record keeps no trip ids to check an upload's lines with."""
    erased_at = datetime(2026, 12, 6, 12, tzinfo=timezone.utc)
    check = ErasureCheck([PastErasure("erasure-of-ids", None, erased_at)], open_upload=lambda upload: io.BytesIO())
    assert check(UploadedFile("landing", "incoming/a.csv", event_time="2026-12-06T11:00:00Z")) == ("erasure-of-ids",)
    assert check(UploadedFile("landing", "incoming/b.csv", event_time="2026-12-06T13:00:00Z")) == ()


@pytest.mark.parametrize("selection", [
    Selection(datasource="cheap_mobile"),
    Selection(region="Prague", from_date=date(2018, 5, 1), to_date=date(2018, 5, 31)),
    Selection(bbox=BoundingBox(14.40, 50.03, 14.48, 50.10), match="any", from_date=date(2018, 5, 1))])
def test_the_selection_an_erasure_record_describes_is_the_one_it_erased(selection):
    assert Selection.from_record(json.loads(json.dumps(selection.describe()))) == selection


def test_redrive_of_a_queue_without_a_dead_letter_queue_says_so(moto_cli_settings, tmp_path, capsys):
    settings = moto_cli_settings(TRIPLAKE_LANDING_QUEUE_NAME=f"plain-{uuid.uuid4().hex[:8]}")
    (sqs,) = clients(settings, "sqs")
    sqs.create_queue(QueueName=settings.landing_queue_name)
    assert cli.main(["redrive", "--lake-root", str(tmp_path / "lake")]) == 2
    assert "has no dead-letter queue" in capsys.readouterr().err
