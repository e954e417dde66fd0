"""The lake's guarantees, tested the way they fail: real processes killed with SIGKILL at the publish points, and
writers started at the same moment, on a file:// lake and on an s3:// lake (moto). Every `triplake run` here is a
process of its own, as a user's would be."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3
import pyarrow as pa
import pytest
from pyarrow import fs as pafs

from spark_jobs.common.delta import open_table
from tests.conftest import MOTO_CREDENTIALS, SAMPLE, lake_rows
from triplake.generate import GenerateOptions, generate
from triplake.lake_files import delta_storage, filesystem, read_text
from triplake.pipeline import run_pipeline
from triplake.settings import Settings

TRIPLAKE = Path(sys.executable).with_name("triplake")
# Publish points where a run is killed before its ingestion commits (spark_jobs.common.publish): after the first
# trips file moved into place, after the refit's models and routes are all in place, in the middle of the weekly
# counts. The last kill comes after the commit, before the clean-up.
KILLED_BEFORE_THE_COMMIT = ["ingest:moving", "group_routes:moved", "build_weekly:moving"]
KILLED_AFTER_THE_COMMIT = "commit:recorded"
# The stage a killed run's progress note names (`triplake watch --progress` reads it); none before routes.
STAGE_AT = {"ingest:moving": [], "group_routes:moved": ["group_routes"], "build_weekly:moving": ["build_weekly"]}


@dataclass(frozen=True)
class LakeUnderTest:
    """A lake as the tests see it: its root, the settings that reach it, the environment a `triplake run` process
    needs for it, and its files read without the code under test."""

    uri: str
    settings: Settings
    env: dict[str, str]

    def files(self, under: str) -> list[str]:
        """The paths, relative to the root, of every file below a folder of the lake."""
        fs, root = filesystem(self.uri, self.settings)
        selector = pafs.FileSelector(f"{root}/{under}", allow_not_found=True, recursive=True)
        return sorted(info.path.removeprefix(f"{root}/") for info in fs.get_file_info(selector)
                      if info.type == pafs.FileType.File)

    def progress_notes(self) -> list[dict]:
        return [json.loads(read_text(self.uri, path, self.settings)) for path in self.files("_staging")
                if path.endswith("/progress.json")]

    def table(self, relative: str) -> pa.Table:
        """A table's current snapshot, read with delta-rs."""
        return open_table(f"{self.uri}/{relative}", delta_storage(self.settings)).to_pyarrow_table()


@pytest.fixture(params=["file", "s3"])
def new_lake(request, tmp_path, test_settings) -> Callable[[str], LakeUnderTest]:
    """Makes empty lakes of one kind: folders of tmp_path, or prefixes of a new bucket on the tests' moto server."""
    if request.param == "file":
        return lambda name: LakeUnderTest((tmp_path / name).as_uri(), Settings(), dict(os.environ))
    bucket = f"guarantees-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=test_settings.endpoint_url("s3"), region_name=test_settings.aws_region,
                 **MOTO_CREDENTIALS).create_bucket(Bucket=bucket)
    env = os.environ | {"TRIPLAKE_AWS_ENDPOINT_URL": test_settings.aws_endpoint_url,
                        "TRIPLAKE_AWS_ENDPOINT_URL_S3": test_settings.endpoint_url("s3"),
                        "TRIPLAKE_AWS_REGION": test_settings.aws_region,
                        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    return lambda name: LakeUnderTest(f"s3://{bucket}/{name}", test_settings, env)


def triplake_run(lake: LakeUnderTest, *inputs: Path, fault_at: str | None = None,
                 refit: bool = False) -> subprocess.CompletedProcess:
    environment = {name: value for name, value in lake.env.items() if name != "TRIPLAKE_FAULT_AT"}
    if fault_at:
        environment["TRIPLAKE_FAULT_AT"] = fault_at
    command = [str(TRIPLAKE), "run", "--json", "--lake-root", lake.uri, "--input", *map(str, inputs)]
    return subprocess.run(command + (["--refit"] if refit else []), env=environment, capture_output=True, text=True,
                          timeout=900)


def snapshot(lake: LakeUnderTest) -> dict[str, list]:
    """Every table as readers see it, without what differs between two equal runs (ingestion ids, fit times)."""
    def rows(query: str) -> list[tuple]:
        return sorted(tuple(row.values()) for row in lake_rows(lake.uri, query, lake.settings))
    return {
        "trips": rows("select trip_id, region, origin_lon, origin_lat, destination_lon, destination_lat, started_at, "
                      "datasource, week_start from trips"),
        "trip_routes": rows("select trip_id, region, route_id, week_start, model_version from trip_routes"),
        "weekly_trips": rows("select * from weekly_trips"),
        "routes": rows("select region, route_id, trips, origin_lon, origin_lat, destination_lon, destination_lat, "
                       "typical_hour, k, silhouette, model_version from routes"),
        "rejected_rows": rows("select line_number, raw_line, reason from rejected_rows"),
        "succeeded": rows("select source_uri, rows_read, rows_valid, rows_rejected, duplicates_in_batch, "
                          "already_present, rows_written from ingestions where status = 'SUCCEEDED'"),
    }


@pytest.fixture(scope="module")
def turin_file(tmp_path_factory) -> Path:
    """200 new Turin trips and 10 the sample holds already: one region, refitted when it comes in with --refit."""
    folder = tmp_path_factory.mktemp("turin")
    generated = folder / "generated.csv"
    generate(GenerateOptions(rows=600, seed=21), generated)
    header, *lines = generated.read_text().splitlines()
    sample_turin = [line for line in SAMPLE.read_text().splitlines() if line.startswith("Turin")]
    turin = folder / "turin.csv"
    turin.write_text("\n".join([header, *[line for line in lines if line.startswith("Turin")][:200],
                                *sample_turin[:10]]) + "\n")
    return turin


def test_a_run_killed_at_any_publish_point_is_invisible_and_the_next_run_leaves_what_one_clean_run_leaves(
        spark, new_lake, turin_file):
    clean = new_lake("clean")
    run_pipeline(spark, [SAMPLE.as_uri()], clean.uri, settings=clean.settings)
    run_pipeline(spark, [turin_file.as_uri()], clean.uri, refit=True, settings=clean.settings)
    expected = snapshot(clean)

    lake = new_lake("lake")
    run_pipeline(spark, [SAMPLE.as_uri()], lake.uri, settings=lake.settings)
    before = snapshot(lake)
    for point in KILLED_BEFORE_THE_COMMIT:
        killed = triplake_run(lake, turin_file, fault_at=point, refit=True)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        assert snapshot(lake) == before, f"killed at {point}, readers must see the lake as it was"
        notes = lake.progress_notes()
        assert [note["stage"] for note in notes] == STAGE_AT[point]
        lines = len(turin_file.read_text().splitlines()) - 1
        assert all(note["done"]["ingest"]["rows_read"] == lines for note in notes), notes

    # Killed after its commit: readers see the whole ingestion, the refit's old routes no longer count...
    committed = triplake_run(lake, turin_file, fault_at=KILLED_AFTER_THE_COMMIT, refit=True)
    assert committed.returncode == -signal.SIGKILL, committed.stderr[-2000:]
    assert snapshot(lake) == expected
    # ...and the next writer only finishes its clean-up (here a file whose trips the lake all holds).
    again = run_pipeline(spark, [turin_file.as_uri()], lake.uri, settings=lake.settings)
    assert again.succeeded and again.ingestions[0].counts.rows_written == 0
    assert {key: value for key, value in snapshot(lake).items() if key != "succeeded"} == {
        key: value for key, value in expected.items() if key != "succeeded"}

    records = lake.table("curated/ingestions").to_pylist()
    interrupted = [json.loads(row["error"]) for row in records if row["status"] == "FAILED"]
    assert [error["kind"] for error in interrupted] == ["interrupted"] * len(KILLED_BEFORE_THE_COMMIT)
    assert all(row["rows_written"] == 0 for row in records if row["status"] == "FAILED")
    assert lake.files("_staging") == [], "every interrupted ingestion was cleaned up"
    turin_routes = lake.table("curated/trip_routes").to_pylist()
    assert {row["model_version"] for row in turin_routes if row["region"] == "Turin"} == {2}, \
        "the superseded model's routes are deleted once the refit committed"


# The same file twice. The DAG and a `triplake run` beside it, with overlapping files, is test_stack's every-upload
# test, on moto in `make test` and on LocalStack in `make test-localstack`.
def test_two_runs_started_at_the_same_moment_leave_every_trip_once(tmp_path, new_lake):
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(SAMPLE.read_text())
    second.write_text(SAMPLE.read_text())
    lake = new_lake("lake")
    command = [str(TRIPLAKE), "run", "--json", "--lake-root", lake.uri, "--input"]
    runs = [subprocess.Popen(command + [str(path)], env=lake.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for path in (first, second)]
    outputs = [run.communicate(timeout=900) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outputs]
    assert any("waiting for the lake" in err for _, err in outputs), "one of them found the lake busy and waited"

    counts = [json.loads(out)["ingestions"][0] for out, _ in outputs]
    assert sum(count["rows_written"] for count in counts) == 100
    assert sum(count["rows_valid"] for count in counts) == sum(count["rows_written"] + count["already_present"]
                                                                + count["duplicates_in_batch"] for count in counts)
    tables = snapshot(lake)
    assert len(tables["trips"]) == len({row[0] for row in tables["trips"]}) == 100
    assert len(tables["trip_routes"]) == 100 and sum(row[-1] for row in tables["weekly_trips"]) == 100
    for region, trips in (("Prague", 34), ("Turin", 38), ("Hamburg", 28)):
        assert sum(row[2] for row in tables["routes"] if row[0] == region) == trips
