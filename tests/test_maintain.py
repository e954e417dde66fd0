"""`triplake maintain`: many small uploads' files compacted, replaced files vacuumed, logs checkpointed, and the
answers the same as before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable

from spark_jobs.common.publish import INTENT
from tests.conftest import SAMPLE, lake_rows
from triplake.lease import LakeLease
from triplake.maintain import MaintenanceRefused, maintain
from triplake.pipeline import run_pipeline
from triplake.settings import Settings

ANSWERS = {
    "trips": "select trip_id, region, started_at, week_start from trips order by trip_id",
    "weekly": "select region, route_id, week_start, trips from weekly_trips order by region, route_id, week_start",
    "routes": "select region, route_id, trips, model_version from routes order by region, route_id",
    "ingestions": "select ingestion_id, status, rows_written from ingestions order by ingestion_id",
    "rejected": "select ingestion_id, line_number, reason from rejected_rows order by ingestion_id, line_number",
}


def answers(lake_root: str) -> dict[str, list[dict]]:
    return {name: lake_rows(lake_root, query) for name, query in ANSWERS.items()}


def split_sample(folder: Path, parts: int) -> list[Path]:
    header, *lines = SAMPLE.read_text().splitlines()
    files = []
    for part in range(parts):
        files.append(folder / f"part{part}.csv")
        files[-1].write_text("\n".join([header, *lines[part::parts]]) + "\n")
    return files


@pytest.fixture
def lake_of_small_uploads(spark, tmp_path) -> Path:
    """The sample as four uploads: each touches most of the 15 partitions, so each partition holds several files."""
    lake = tmp_path / "lake"
    run_pipeline(spark, [path.as_uri() for path in split_sample(tmp_path, 4)], lake.as_uri())
    return lake


def test_maintain_compacts_vacuums_and_checkpoints_and_every_answer_stays_the_same(spark, lake_of_small_uploads):
    lake = lake_of_small_uploads
    before = answers(lake.as_uri())
    trips = DeltaTable(str(lake / "curated" / "trips"))
    files_before, version_before = set(trips.file_uris()), trips.version()
    assert len(files_before) > 15, "several files per partition"

    done = {table.table: table for table in maintain(lake.as_uri(), Settings(vacuum_retention_hours=0))}

    trips = DeltaTable(str(lake / "curated" / "trips"))
    assert len(trips.file_uris()) == 15 == done["trips"].files_after, "one file per (region, week) partition"
    assert done["trips"].files_compacted == len(files_before) and trips.version() > version_before
    assert not any(Path(uri).exists() for uri in files_before), "the replaced files are gone from storage"
    assert done["ingestions"].files_after == 1 < done["ingestions"].files_before
    assert (lake / "curated" / "trips" / "_delta_log" / "_last_checkpoint").exists()
    assert answers(lake.as_uri()) == before

    # The lake goes on: the sample again is found in the compacted files, nothing is written twice.
    counts = run_pipeline(spark, [SAMPLE.as_uri()], lake.as_uri()).ingestions[0].counts
    assert (counts.rows_written, counts.already_present) == (0, 100)


def test_a_maintenance_killed_at_any_step_changes_no_answer_and_the_next_one_finishes_its_work(lake_of_small_uploads):
    lake = lake_of_small_uploads
    before = answers(lake.as_uri())
    command = [str(Path(sys.executable).with_name("triplake")), "maintain", "--lake-root", str(lake)]
    environment = os.environ | {"TRIPLAKE_VACUUM_RETENTION_HOURS": "0"}
    # After the trips table's compaction committed; after its vacuum; in the middle of the last table.
    for point in ("maintain:compacted:trips", "maintain:vacuumed:trips", "maintain:compacted:ingestions"):
        killed = subprocess.run(command, env=environment | {"TRIPLAKE_FAULT_AT": point}, capture_output=True,
                                text=True, timeout=600)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        assert answers(lake.as_uri()) == before, f"killed at {point}, readers see the same answers"

    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    trips = DeltaTable(str(lake / "curated" / "trips"))
    on_disk = {path for path in (lake / "curated" / "trips").rglob("*.parquet") if "_delta_log" not in path.parts}
    assert len(trips.file_uris()) == 15 and on_disk == {Path(uri) for uri in trips.file_uris()}, \
        "one file per partition, and every file the killed runs replaced is gone from storage"
    assert answers(lake.as_uri()) == before


def test_maintain_waits_for_the_lake_and_refuses_while_an_interrupted_ingestion_awaits_its_rollback(tmp_path):
    lake = tmp_path / "lake"
    interrupted = lake / "_staging" / "20261204T000000Z-deadbeef"  # as a killed ingestion leaves it: its intent
    interrupted.mkdir(parents=True)
    (interrupted / INTENT).write_text('{"ingestion_id": "20261204T000000Z-deadbeef"}')
    with pytest.raises(MaintenanceRefused, match=r"1 interrupted ingestion\(s\) await their rollback"):
        maintain(lake.as_uri(), Settings())

    holder = LakeLease.for_lake(lake.as_uri(), Settings(), "someone", ["x"], "a test", pid=None)
    holder.acquire(0)
    try:
        from triplake.lease import LakeBusyError

        with pytest.raises(LakeBusyError):
            maintain(lake.as_uri(), Settings(lake_lease_wait_seconds=0))
    finally:
        holder.release()
