"""End to end through `triplake stack up`: a real moto server and a real `airflow standalone`, nothing in-process.

Uploads are made as users make them: with the AWS CLI, in a shell prepared by nothing but `eval "$(triplake stack
env)"`. S3 notifies the landing queue, the triggerer's asset watcher starts trips_receive, trips_ingest runs the
batches as spark-submit subprocesses, and `triplake watch` receives the status events over HTTP from SNS. With
`--aws localstack` (make test-localstack) the stack is `stack up --aws localstack`, and `triplake watch` trusts
LocalStack's signing certificate: it confirms its subscription and accepts only deliveries whose signature checks out.

Where an outcome could depend on which process is faster, the test fixes the order itself: two uploads are made to
reach the watcher in one poll (their notifications held back, then sent in one batch), a message is delivered again
in the same poll as a file whose answer marks that the poll was handled, and counts are checked in a form that holds
whichever writer takes the lake first.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.conftest import SAMPLE, s3_notification
from triplake import cli
from triplake.aws import clients
from triplake.local import aws_cli as aws_cli_shell
from triplake.local import localstack, stack
from triplake.local.bootstrap import connect_landing_notifications
from triplake.processes import alive
from triplake.query.local import LocalEngine
from triplake.query.statement import Statement
from triplake.settings import Settings

# The timeout only bounds a failure: a passing run never waits for it.
WATCH_TIMEOUT = 900
BASE = Settings(spark_master="local[2]", spark_driver_memory="1g", spark_shuffle_partitions=4)
LANDING = "s3://triplake-landing/incoming"


class Stack:
    """The stack of this module; a test may stop it and bring it up again in the same directory."""

    def __init__(self, directory: Path, aws: str) -> None:
        self.directory, self.aws = directory, aws
        self.state = self.up(say=lambda _: None)

    def up(self, say) -> stack.StackState:
        return stack.up(BASE, directory=self.directory, say=say, aws=self.aws)

    def __getattr__(self, name):
        return getattr(self.state, name)


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory, local_aws):
    current = Stack(tmp_path_factory.mktemp("stack"), local_aws)
    try:
        yield current
    finally:
        pids = current.state.pids
        stack.down(current.directory, say=lambda _: None, forget=True)
        assert not any(alive(pid) for pid in pids), "stack down stops every process it started"


def lake_count(state: stack.StackState, query: str, **values: str) -> list[dict]:
    """A query's rows as a reader sees them (the views of sql/views on DuckDB), its :parameters bound."""
    return LocalEngine(state.env["TRIPLAKE_LAKE_ROOT"], stack.settings_of(state)).run(Statement(query), values).records()


def triplake(state: stack.StackState, *arguments: str) -> subprocess.Popen:
    environment = os.environ | state.env
    if state.localstack_endpoint:  # only a test trusts LocalStack's certificate
        environment |= {"TRIPLAKE_SNS_TRUSTED_CERTIFICATE_URL": localstack.certificate_url_prefix(state.localstack_endpoint)}
    return subprocess.Popen([str(Path(sys.executable).with_name("triplake")), *arguments], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def watching(state: stack.StackState, ingestions: int, *options: str) -> subprocess.Popen:
    """`triplake watch --until-done`, once it is subscribed (it says so on stderr)."""
    watcher = triplake(state, "watch", "--until-done", "--ingestions", str(ingestions), "--json",
                       "--timeout", str(WATCH_TIMEOUT), *options)
    line = watcher.stderr.readline()
    assert line.startswith("watching"), line + watcher.stderr.read()
    return watcher


def events_of(watcher: subprocess.Popen) -> tuple[int, list[dict]]:
    """The status events watch printed (and, with --progress, its progress lines: {"progress": ...})."""
    out, err = watcher.communicate(timeout=WATCH_TIMEOUT + 30)
    return watcher.returncode, [json.loads(line) for line in out.splitlines()]


def finished_by_ingestion(events: list[dict]) -> dict[str, dict]:
    """Each ingestion's last event, after checking that each one began with RECEIVED and ended once."""
    stories: dict[str, list[str]] = {}
    for event in events:
        stories.setdefault(event["ingestion_id"], []).append(event["status"])
    assert all(story[0] == "RECEIVED" and len(story) == 2 for story in stories.values()), stories
    return {event["ingestion_id"]: event for event in events if event["status"] != "RECEIVED"}


def aws_cli(state: stack.StackState, directory: Path, *commands: str) -> None:
    """AWS CLI commands in a shell that knows the stack only through `eval "$(triplake stack env)"`."""
    done = aws_cli_shell.run(state.directory, directory, *commands, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@contextlib.contextmanager
def notifications_held(state: stack.StackState, uploads: int, held: list[str]):
    """The S3 notifications of the uploads made inside go to a queue of their own, not to the landing queue; their
    bodies are kept in held, in the order they came."""
    settings = stack.settings_of(state)
    (sqs,) = clients(settings, "sqs")
    holding = sqs.create_queue(QueueName=f"held-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    connect_landing_notifications(settings, holding)
    try:
        yield
        deadline = time.monotonic() + 60
        while len(held) < uploads:
            assert time.monotonic() < deadline, f"{len(held)} of {uploads} notifications came"
            for message in sqs.receive_message(QueueUrl=holding, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                if "Records" in json.loads(message["Body"]):  # not the s3:TestEvent of the configuration
                    held.append(message["Body"])
    finally:
        connect_landing_notifications(settings, state.resources["landing_queue_url"])


@contextlib.contextmanager
def delivered_in_one_poll(state: stack.StackState, uploads: int, held: list[str]):
    """The notifications of the uploads made inside go into the landing queue in one batch, so the watcher takes them
    in one poll whatever the machine's speed. Their bodies are kept in held."""
    with notifications_held(state, uploads, held):
        yield
    send_together(state, held)


def send_together(state: stack.StackState, bodies: list[str]) -> None:
    (sqs,) = clients(stack.settings_of(state), "sqs")
    sqs.send_message_batch(QueueUrl=state.resources["landing_queue_url"], Entries=[
        {"Id": str(number), "MessageBody": body} for number, body in enumerate(bodies)])


@pytest.mark.event_path
def test_stack_status_names_what_runs_and_where(local_stack):
    report = stack.status(Path(local_stack.directory))
    assert report["up"] and report["airflow"]["running"] and report["moto"]["running"]
    assert report["aws"] == local_stack.aws and ("localstack" in report) == (local_stack.aws == "localstack")
    assert report["airflow"]["url"].startswith("http://127.0.0.1:")
    assert report["airflow"]["login"]["user"] == "admin" and report["airflow"]["login"]["password"]
    assert report["resources"]["landing_queue_url"] == local_stack.env["TRIPLAKE_LANDING_QUEUE_URL"]


@pytest.mark.event_path
def test_uploads_with_the_aws_cli_are_each_answered_once_and_a_triplake_run_beside_them_counts_every_trip_once(
        local_stack, tmp_path):
    generated = tmp_path / "generated.csv"
    assert cli.main(["generate", "--rows", "330", "--seed", "11", "--out", str(generated)]) == 0
    header, *lines = generated.read_text().splitlines()
    sample_lines = SAMPLE.read_text().splitlines()[1:]
    # The name is in upper case with a space, as some exporters write it; the batch run's file holds 20 trips of the
    # sample too, so the lake must hold each once whichever writer gets the lake first.
    (tmp_path / "TRIPS SAMPLE.CSV").write_bytes(SAMPLE.read_bytes())
    (tmp_path / "more.csv").write_text("\n".join([header, *lines[280:]]) + "\n")
    (tmp_path / "batch.csv").write_text("\n".join([header, *sample_lines[:20], *lines[:280]]) + "\n")

    watcher = watching(local_stack, 3, "--progress")
    batch = triplake(local_stack, "run", "--json", "--input", str(tmp_path / "batch.csv"))
    held: list[str] = []
    with delivered_in_one_poll(local_stack, 2, held):  # the same key twice, back to back: two uploads
        aws_cli(local_stack, tmp_path, *[f'aws s3 cp "TRIPS SAMPLE.CSV" "{LANDING}/TRIPS SAMPLE.CSV"'] * 2)
    aws_cli(local_stack, tmp_path, f"aws s3 cp more.csv {LANDING}/more.csv")
    returncode, printed = events_of(watcher)
    assert returncode == 0, printed
    events = [line for line in printed if "progress" not in line]
    # Between RECEIVED and its end, each stage an ingestion was seen in, in order (polled: a short one may be missed).
    for position, line in enumerate(printed):
        if progress := line.get("progress"):
            story = [index for index, event in enumerate(printed) if event.get("ingestion_id") == progress["ingestion_id"]]
            assert story[0] < position < story[-1], (progress, story)
    out, err = batch.communicate(timeout=WATCH_TIMEOUT)
    assert batch.returncode == 0, err

    finished = finished_by_ingestion(events)
    names = sorted((event["source_uri"].rsplit("/", 1)[1], event["status"]) for event in finished.values())
    assert names == [("TRIPS SAMPLE.CSV", "SUCCEEDED"), ("TRIPS SAMPLE.CSV", "SUCCEEDED"), ("more.csv", "SUCCEEDED")]
    assert all(event["dag_run_id"].startswith("asset_triggered__") for event in events), "the uploads started the runs"
    (batch_ingestion,) = json.loads(out)["ingestions"]
    counts = [*(event["counts"] for event in finished.values()), batch_ingestion]
    assert all(count["rows_read"] == count["rows_written"] + count["already_present"] + count["duplicates_in_batch"]
               + count["rows_rejected"] for count in counts), counts
    assert sum(count["rows_written"] for count in counts) == 100 + len(set(lines)) == 430
    assert sum(count["already_present"] + count["duplicates_in_batch"] for count in counts) == 100 + 20
    assert lake_count(local_stack.state, "select count(*) as trips, count(distinct trip_id) as distinct_trips "
                                         "from trips") == [{"trips": 430, "distinct_trips": 430}]

    # The first upload's message delivered again (as SQS does after a visibility timeout), in one poll with an
    # upload that is answered at once: when that one is answered, the poll was handled, and the redelivery was not
    # received again.
    watcher = watching(local_stack, 1)
    send_together(local_stack, [held[0], s3_notification("incoming/notes.txt")])
    returncode, events = events_of(watcher)
    assert [(event["status"], event["source_uri"].rsplit("/", 1)[1]) for event in events] == [
        ("RECEIVED", "notes.txt"), ("FAILED", "notes.txt")]
    assert events[1]["error"]["kind"] == "unsupported_file"
    assert lake_count(local_stack.state, "select status, count(*) as n from ingestions group by status "
                                         "order by status") == [{"status": "FAILED", "n": 1}, {"status": "SUCCEEDED", "n": 4}]


def test_a_folder_copied_at_once_with_the_aws_cli_is_ingested_every_file_succeeded_in_upload_order(local_stack,
                                                                                                      tmp_path):
    # Twenty weekly exports, as a data source sends them: each its own week of the three regions.
    folder = tmp_path / "folder"
    folder.mkdir()
    for number in range(20):
        week = date(2018, 6, 4) + timedelta(weeks=number)
        assert cli.main(["generate", "--rows", "25", "--seed", str(100 + number), "--start", week.isoformat(),
                         "--days", "7", "--out", str(folder / f"part-{number:02d}.csv")]) == 0
    watcher = watching(local_stack, 20)
    aws_cli(local_stack, tmp_path, f"aws s3 cp --recursive folder {LANDING}/folder/")
    returncode, events = events_of(watcher)
    assert returncode == 0, [event for event in events if event["status"] == "FAILED"]
    finished = finished_by_ingestion(events)
    assert sorted(event["source_uri"].rsplit("/", 1)[1] for event in finished.values()) == [
        f"part-{number:02d}.csv" for number in range(20)]
    assert {event["status"] for event in finished.values()} == {"SUCCEEDED"}
    assert sum(event["counts"]["rows_written"] for event in finished.values()) == 20 * 25
    (s3,) = clients(stack.settings_of(local_stack.state), "s3")
    assert "Contents" not in s3.list_objects_v2(Bucket="triplake-lake", Prefix="lake/_inbox/"), "every upload answered"

    # First in, first out: the ingestions were committed in the order S3 took the uploads (the receipts say when,
    # the ingestions table when each finished; the CLI sends the files in parallel, so that order is S3's own).
    uploaded = [ingestion for ingestion in aws_cli_shell.upload_order(local_stack.state) if ingestion in finished]
    committed = [ingestion for ingestion in aws_cli_shell.commit_order(local_stack.state) if ingestion in finished]
    assert len(uploaded) == 20 and committed == uploaded


@pytest.mark.event_path
def test_an_upload_in_the_dead_letter_queue_is_redriven_and_answered_and_a_replay_of_it_counts_what_the_lake_holds(
        local_stack, tmp_path):
    # An upload whose notification ended in the dead-letter queue, as after five receives nobody deleted.
    assert cli.main(["generate", "--rows", "40", "--seed", "77", "--start", "2019-03-04", "--days", "7",
                     "--out", str(tmp_path / "dead letter.csv")]) == 0
    held: list[str] = []
    with notifications_held(local_stack, 1, held):
        aws_cli(local_stack, tmp_path, f'aws s3 cp "dead letter.csv" "{LANDING}/dead letter.csv"')
    (sqs,) = clients(stack.settings_of(local_stack.state), "sqs")
    sqs.send_message(QueueUrl=local_stack.resources["dead_letter_queue_url"], MessageBody=held[0])

    watcher = watching(local_stack, 1)
    redrive = triplake(local_stack, "redrive", "--json")
    out, err = redrive.communicate(timeout=300)
    assert redrive.returncode == 0, err
    (message,) = json.loads(out)["messages"]
    assert message["action"] == "sent back" and message["uploads"][0]["uri"].endswith("/dead letter.csv")
    returncode, events = events_of(watcher)
    assert returncode == 0, events
    assert [(event["status"], event["source_uri"].rsplit("/", 1)[1]) for event in events] == [
        ("RECEIVED", "dead letter.csv"), ("SUCCEEDED", "dead letter.csv")]
    assert events[1]["counts"]["rows_written"] == 40

    # Again, the upload is received already: the same message redriven now is deleted, naming its ingestion.
    sqs.send_message(QueueUrl=local_stack.resources["dead_letter_queue_url"], MessageBody=held[0])
    redrive = triplake(local_stack, "redrive", "--json")
    out, err = redrive.communicate(timeout=300)
    assert redrive.returncode == 0, err
    (message,) = json.loads(out)["messages"]
    assert (message["action"], message["uploads"][0]["received_as"]) == ("answered already", events[0]["ingestion_id"])

    # Its raw copy replayed from the CLI, on the stack's lake: a new ingestion that finds every trip there already.
    replay = triplake(local_stack, "replay", events[0]["ingestion_id"], "--json")
    out, err = replay.communicate(timeout=WATCH_TIMEOUT)
    assert replay.returncode == 0, err
    (replayed,) = json.loads(out)["ingestions"]
    assert replayed["ingestion_id"] != events[0]["ingestion_id"]
    assert (replayed["status"], replayed["rows_read"], replayed["already_present"], replayed["rows_written"]) == (
        "SUCCEEDED", 40, 40, 0)


def test_down_and_up_keep_the_lake_and_a_killed_stack_answers_the_upload_it_lost(local_stack):
    counted = "select count(*) as trips from trips"
    before = lake_count(local_stack.state, counted)
    (s3,) = clients(stack.settings_of(local_stack.state), "s3")
    s3.put_object(Bucket="triplake-lake", Key="lake/notes/kept.txt", Body=b"kept")
    said = []
    stack.down(local_stack.directory, say=said.append)
    assert any(line.startswith("saved ") for line in said), said
    local_stack.state = local_stack.up(say=said.append)
    assert lake_count(local_stack.state, counted) == before, "the lake came back with the stack"
    (s3,) = clients(stack.settings_of(local_stack.state), "s3")
    assert s3.get_object(Bucket="triplake-lake", Key="lake/notes/kept.txt")["Body"].read() == b"kept"
    assert any(line.startswith("restored ") for line in said), said

    # Kill the whole stack (no `down`) while a batch ingests: the moto server loses everything since the save above
    # (the lake, the inbox, the file), Airflow's database does not. The next `up` fails the runs the stack left and
    # answers the upload it lost FAILED, from the receipt trips_receive returned.
    watcher = watching(local_stack.state, ingestions=1)
    s3.upload_file(str(SAMPLE), "triplake-landing", "incoming/killed.csv")
    received = json.loads(watcher.stdout.readline())
    assert received["status"] == "RECEIVED"
    staging = f"lake/_staging/{received['ingestion_id']}/"
    deadline = time.monotonic() + 300
    while "Contents" not in s3.list_objects_v2(Bucket="triplake-lake", Prefix=staging):
        assert time.monotonic() < deadline, "the ingestion never began"
        time.sleep(0.2)
    for pid in local_stack.state.pids:
        os.killpg(pid, 9)
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in local_stack.state.pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    watcher.kill()
    said.clear()
    local_stack.state = local_stack.up(say=said.append)
    assert any("of trips_ingest was left running by the last stack: marked failed" in line for line in said), said
    assert any(f"FAILED announced for {received['ingestion_id']}" in line for line in said), said
    (record,) = lake_count(local_stack.state, "select status, error from ingestions where ingestion_id = :id",
                           id=received["ingestion_id"])
    assert record["status"] == "FAILED" and json.loads(record["error"])["kind"] == "interrupted"
    assert lake_count(local_stack.state, counted) == before
