"""End to end through `triplake stack up`: a real moto server and a real `airflow standalone`, nothing in-process.

An upload to the landing bucket makes S3 notify the queue, the triggerer's asset watcher starts the DAG, the Spark
jobs run as spark-submit subprocesses, and `triplake watch` receives the status events over HTTP from SNS.
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
from triplake.local import stack
from triplake.settings import Settings
from triplake.sql_engine import LocalEngine, Statement

WATCH_TIMEOUT = 400


BASE = Settings(spark_master="local[2]", spark_driver_memory="1g", spark_shuffle_partitions=4)


class Stack:
    """The stack of this module; a test may stop it and bring it up again in the same directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state = stack.up(BASE, directory=directory, say=lambda _: None)

    def __getattr__(self, name):
        return getattr(self.state, name)


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory):
    current = Stack(tmp_path_factory.mktemp("stack"))
    try:
        yield current
    finally:
        pids = current.state.pids
        stack.down(current.directory, say=lambda _: None, forget=True)
        assert not any(stack._alive(pid) for pid in pids), "stack down stops every process it started"


def lake_engine(state: stack.StackState) -> LocalEngine:
    settings = Settings(aws_endpoint_url=state.env["TRIPLAKE_AWS_ENDPOINT_URL"],
                        aws_access_key_id=state.env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=state.env["AWS_SECRET_ACCESS_KEY"])
    return LocalEngine(state.env["TRIPLAKE_LAKE_ROOT"], settings)


def triplake(state: stack.StackState, *arguments: str, **options) -> subprocess.Popen:
    environment = os.environ | state.env
    return subprocess.Popen([str(Path(sys.executable).with_name("triplake")), *arguments], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options)


def watching(state: stack.StackState, ingestions: int) -> subprocess.Popen:
    """`triplake watch --until-done`, once it is subscribed (it says so on stderr)."""
    watcher = triplake(state, "watch", "--until-done", "--ingestions", str(ingestions), "--json",
                       "--timeout", str(WATCH_TIMEOUT))
    line = watcher.stderr.readline()
    assert line.startswith("watching"), line + watcher.stderr.read()
    return watcher


def upload(state: stack.StackState, path: Path) -> None:
    uploader = triplake(state, "upload", str(path))
    out, err = uploader.communicate(timeout=60)
    assert uploader.returncode == 0, err


def events_of(watcher: subprocess.Popen) -> tuple[int, list[dict]]:
    out, err = watcher.communicate(timeout=WATCH_TIMEOUT + 30)
    return watcher.returncode, [json.loads(line) for line in out.splitlines()]


def test_stack_status_names_what_runs_and_where(local_stack):
    report = stack.status(Path(local_stack.directory))
    assert report["up"] and report["airflow"]["running"] and report["moto"]["running"]
    assert report["airflow"]["url"].startswith("http://127.0.0.1:")
    assert report["airflow"]["login"]["user"] == "admin" and report["airflow"]["login"]["password"]
    assert report["resources"]["landing_queue_url"] == local_stack.env["TRIPLAKE_LANDING_QUEUE_URL"]


def test_an_upload_starts_the_dag_and_its_success_arrives_at_watch(local_stack):
    watcher = watching(local_stack, ingestions=1)
    upload(local_stack, SAMPLE)
    returncode, events = events_of(watcher)
    assert returncode == 0
    assert [event["status"] for event in events] == ["RECEIVED", "SUCCEEDED"]
    assert events[1]["source_uri"].endswith("/incoming/trips_sample.csv")
    assert events[1]["counts"]["rows_written"] == 100
    assert events[1]["dag_run_id"].startswith("asset_triggered__"), "the upload, not a person, started the run"


def test_three_uploads_and_a_triplake_run_at_the_same_time_count_every_trip_exactly_once(local_stack, tmp_path):
    generated = tmp_path / "generated.csv"
    assert cli.main(["generate", "--rows", "300", "--seed", "11", "--out", str(generated)]) == 0
    header, *lines = generated.read_text().splitlines()
    # Overlapping slices: 20 lines are in two uploads each, and the batch run's 100 lines are all in an upload
    # too, so the lake must hold each of them once whichever writer gets the lake first.
    slices = {"part a.csv": lines[0:120], "part b.csv": lines[100:220], "part c.csv": lines[200:300],
              "batch.csv": lines[50:150]}
    files = {}
    for name, part in slices.items():
        files[name] = tmp_path / name
        files[name].write_text("\n".join([header, *part]) + "\n")

    watcher = watching(local_stack, ingestions=3)
    batch = triplake(local_stack, "run", "--json", "--input", str(files.pop("batch.csv")))
    for path in files.values():
        upload(local_stack, path)
    returncode, events = events_of(watcher)
    assert returncode == 0, events
    out, err = batch.communicate(timeout=WATCH_TIMEOUT)
    assert batch.returncode == 0, err
    (batch_ingestion,) = json.loads(out)["ingestions"]
    finished = [event["counts"] for event in events if event["status"] == "SUCCEEDED"] + [batch_ingestion]
    assert sorted(event["source_uri"].rsplit("/", 1)[1] for event in events if event["status"] == "SUCCEEDED") == \
        sorted(files)
    written = sum(counts["rows_written"] for counts in finished)
    seen_before = sum(counts["already_present"] + counts["duplicates_in_batch"] for counts in finished)
    assert written == len(set(lines)) == 300 and seen_before == 140

    query = Statement("select count(*) as trips, count(distinct trip_id) as distinct_trips from trips")
    (row,) = lake_engine(local_stack.state).run(query, {}).records()
    assert row == {"trips": 400, "distinct_trips": 400}, "the sample's 100 and the 300 generated, each once"


def test_down_and_up_keep_the_lake_and_a_killed_stack_fails_the_run_it_left_behind(local_stack):
    counted = Statement("select count(*) as trips from trips")
    before = lake_engine(local_stack.state).run(counted, {}).records()
    assert before == [{"trips": 400}]
    said = []
    stack.down(local_stack.directory, say=said.append)
    assert any(line.startswith("saved ") for line in said), said
    local_stack.state = stack.up(BASE, directory=local_stack.directory, say=said.append)
    assert lake_engine(local_stack.state).run(counted, {}).records() == before, "the lake came back with the stack"
    assert any(line.startswith("restored ") for line in said), said

    # Kill the whole stack (no `down`) while a run ingests: the next `up` fails that run and announces it.
    watcher = watching(local_stack.state, ingestions=1)
    upload(local_stack.state, SAMPLE)
    received = json.loads(watcher.stdout.readline())
    assert received["status"] == "RECEIVED"
    for pid in local_stack.state.pids:
        os.killpg(pid, 9)
    watcher.kill()
    said.clear()
    local_stack.state = stack.up(BASE, directory=local_stack.directory, say=said.append)
    assert any(f"FAILED announced for {received['ingestion_id']}" in line for line in said), said
