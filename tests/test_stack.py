"""End to end through `triplake stack up`: a real moto server and a real `airflow standalone`, nothing in-process.

An upload to the landing bucket makes S3 notify the queue, the triggerer's asset watcher starts the DAG, the Spark
jobs run as spark-submit subprocesses, and `triplake watch` receives the status events over HTTP from SNS.
With `--aws localstack` (make test-localstack) the stack is `stack up --aws localstack`, and `triplake watch` trusts
LocalStack's signing certificate: it confirms its subscription and accepts only deliveries whose signature checks out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SAMPLE
from triplake import cli
from triplake.aws import clients
from triplake.local import localstack, stack
from triplake.processes import alive
from triplake.settings import Settings
from triplake.query.local import LocalEngine
from triplake.query.statement import Statement

# Three ingestions one after the other take 240-260 s on 2 cores against moto; on a slow day one took twice its
# time. The timeout only bounds a failure: a passing run never waits for it.
WATCH_TIMEOUT = 600


BASE = Settings(spark_master="local[2]", spark_driver_memory="1g", spark_shuffle_partitions=4)


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


def lake_engine(state: stack.StackState) -> LocalEngine:
    return LocalEngine(state.env["TRIPLAKE_LAKE_ROOT"], stack.settings_of(state))


def triplake(state: stack.StackState, *arguments: str, **options) -> subprocess.Popen:
    environment = os.environ | state.env
    if state.localstack_endpoint:  # only a test trusts LocalStack's certificate
        environment |= {"TRIPLAKE_SNS_TRUSTED_CERTIFICATE_URL": localstack.certificate_url_prefix(state.localstack_endpoint)}
    return subprocess.Popen([str(Path(sys.executable).with_name("triplake")), *arguments], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options)


def watching(state: stack.StackState, ingestions: int, *options: str) -> subprocess.Popen:
    """`triplake watch --until-done`, once it is subscribed (it says so on stderr)."""
    watcher = triplake(state, "watch", "--until-done", "--ingestions", str(ingestions), "--json",
                       "--timeout", str(WATCH_TIMEOUT), *options)
    line = watcher.stderr.readline()
    assert line.startswith("watching"), line + watcher.stderr.read()
    return watcher


def upload(state: stack.StackState, path: Path) -> None:
    uploader = triplake(state, "upload", str(path))
    out, err = uploader.communicate(timeout=60)
    assert uploader.returncode == 0, err


def events_of(watcher: subprocess.Popen) -> tuple[int, list[dict]]:
    """The status events watch printed (and, with --progress, its progress lines: {"progress": ...})."""
    out, err = watcher.communicate(timeout=WATCH_TIMEOUT + 30)
    return watcher.returncode, [json.loads(line) for line in out.splitlines()]


@pytest.mark.event_path
def test_stack_status_names_what_runs_and_where(local_stack):
    report = stack.status(Path(local_stack.directory))
    assert report["up"] and report["airflow"]["running"] and report["moto"]["running"]
    assert report["aws"] == local_stack.aws and ("localstack" in report) == (local_stack.aws == "localstack")
    assert report["airflow"]["url"].startswith("http://127.0.0.1:")
    assert report["airflow"]["login"]["user"] == "admin" and report["airflow"]["login"]["password"]
    assert report["resources"]["landing_queue_url"] == local_stack.env["TRIPLAKE_LANDING_QUEUE_URL"]


@pytest.mark.event_path
def test_every_upload_is_answered_and_a_triplake_run_beside_the_dag_counts_every_trip_once(local_stack, tmp_path):
    generated = tmp_path / "generated.csv"
    assert cli.main(["generate", "--rows", "280", "--seed", "11", "--out", str(generated)]) == 0
    header, *lines = generated.read_text().splitlines()
    sample_lines = SAMPLE.read_text().splitlines()[1:]
    # Overlapping writers: the batch run's file holds 20 trips of the sample too, so the lake must hold each once
    # whichever writer gets the lake first. The upload's name is in upper case with a space, as some exporters write it.
    uploaded, batch_part = tmp_path / "TRIPS SAMPLE.CSV", tmp_path / "batch.csv"
    uploaded.write_bytes(SAMPLE.read_bytes())
    batch_part.write_text("\n".join([header, *sample_lines[:20], *lines]) + "\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("not trips\n")

    watcher = watching(local_stack, 3, "--progress")
    batch = triplake(local_stack, "run", "--json", "--input", str(batch_part))
    for path in (uploaded, uploaded):  # the same file twice in a row: two uploads, two ingestions
        upload(local_stack, path)
    (s3,) = clients(stack.settings_of(local_stack.state), "s3")
    s3.put_object(Bucket="triplake-landing", Key="incoming/notes.txt", Body=notes.read_bytes())  # not by `upload`
    returncode, printed = events_of(watcher)
    assert returncode == 1, printed  # notes.txt failed
    events = [line for line in printed if "progress" not in line]
    # Between RECEIVED and its end, each stage an ingestion was seen in, in order (polled: a short one may be missed).
    for position, line in enumerate(printed):
        if progress := line.get("progress"):
            story = [(event["status"], index) for index, event in enumerate(printed)
                     if event.get("ingestion_id") == progress["ingestion_id"]]
            assert story[0][1] < position < story[-1][1], (progress, story)
    shown = [line["progress"]["stage"] for line in printed if "progress" in line]
    assert shown and set(shown) <= {"group_routes", "build_weekly"}, shown
    out, err = batch.communicate(timeout=WATCH_TIMEOUT)
    assert batch.returncode == 0, err

    by_ingestion: dict[str, list[dict]] = {}
    for event in events:
        by_ingestion.setdefault(event["ingestion_id"], []).append(event)
    assert all([event["status"] for event in story][0] == "RECEIVED" for story in by_ingestion.values())
    finished = {ingestion: story[-1] for ingestion, story in by_ingestion.items()}
    names = sorted((event["source_uri"].rsplit("/", 1)[1], event["status"]) for event in finished.values())
    assert names == [("TRIPS SAMPLE.CSV", "SUCCEEDED"), ("TRIPS SAMPLE.CSV", "SUCCEEDED"), ("notes.txt", "FAILED")]
    (unsupported,) = [event for event in finished.values() if event["status"] == "FAILED"]
    assert unsupported["error"]["kind"] == "unsupported_file"
    assert all(event["dag_run_id"].startswith("asset_triggered__") for event in finished.values()), \
        "the uploads, not a person, started the runs"
    samples = sorted((event["counts"] for event in finished.values() if event["status"] == "SUCCEEDED"),
                     key=lambda count: count["rows_written"])
    assert (samples[0]["rows_written"], samples[0]["already_present"]) == (0, 100), \
        "the second upload of the same file writes nothing and says so"
    (batch_ingestion,) = json.loads(out)["ingestions"]
    counts = [*samples, batch_ingestion]
    assert all(count["rows_read"] == count["rows_written"] + count["already_present"] + count["duplicates_in_batch"]
               + count["rows_rejected"] for count in counts), counts
    assert sum(count["rows_written"] for count in counts) == 100 + len(set(lines)) == 380
    assert sum(count["already_present"] + count["duplicates_in_batch"] for count in counts) == 100 + 20

    query = Statement("select count(*) as trips, count(distinct trip_id) as distinct_trips from trips")
    (row,) = lake_engine(local_stack.state).run(query, {}).records()
    assert row == {"trips": 380, "distinct_trips": 380}, "the sample's 100 and the 280 generated, each once"


def test_down_and_up_keep_the_lake_and_a_killed_stack_fails_the_run_it_left_behind(local_stack):
    counted = Statement("select count(*) as trips from trips")
    before = lake_engine(local_stack.state).run(counted, {}).records()
    assert before == [{"trips": 380}]
    said = []
    stack.down(local_stack.directory, say=said.append)
    assert any(line.startswith("saved ") for line in said), said
    local_stack.state = local_stack.up(say=said.append)
    assert lake_engine(local_stack.state).run(counted, {}).records() == before, "the lake came back with the stack"
    assert any(line.startswith("restored ") for line in said), said

    # Kill the whole stack (no `down`) while a run ingests: the next `up` fails that run and announces it.
    watcher = watching(local_stack.state, ingestions=1)
    upload(local_stack.state, SAMPLE)
    received = json.loads(watcher.stdout.readline())
    assert received["status"] == "RECEIVED"
    (s3,) = clients(stack.settings_of(local_stack.state), "s3")
    deadline = time.monotonic() + 120
    while "Contents" not in s3.list_objects_v2(Bucket="triplake-lake", Prefix="lake/_lease.json"):
        assert time.monotonic() < deadline, "the ingestion never took the lake"
        time.sleep(0.5)
    for pid in local_stack.state.pids:
        os.killpg(pid, 9)
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in local_stack.state.pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    watcher.kill()
    said.clear()
    local_stack.state = local_stack.up(say=said.append)
    assert any(f"FAILED announced for {received['ingestion_id']}" in line for line in said), said
