"""Ingestion records written from Python (an unsupported upload, a lake that stayed busy): the same columns and
types as the records the Spark jobs write, visible in ingestion_reconciliation, invisible to every data table."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deltalake import DeltaTable

from tests.conftest import SAMPLE, lake_rows
from triplake.lake_records import read_record, write_failed_record
from triplake.query.local import LocalEngine
from triplake.query.statement import SqlError
from triplake.settings import Settings
from triplake.uris import local_path


def test_a_failed_record_has_the_jobs_schema_and_shows_in_the_reconciliation(sample_lake, tmp_path):
    shutil.copytree(local_path(sample_lake), tmp_path / "lake")  # the shared sample lake stays as it is
    sample_lake = (tmp_path / "lake").as_uri()
    error = {"kind": "unsupported_file", "message": "'notes.txt' is not a file triplake ingests", "task": "plan"}
    table = DeltaTable(str(local_path(sample_lake) / "curated" / "ingestions"))
    schema_of_the_jobs, version = table.schema(), table.version()
    row = write_failed_record(sample_lake, Settings(), "20261201T000000Z-00000000", "s3://l/incoming/notes.txt", error)

    table = DeltaTable(str(local_path(sample_lake) / "curated" / "ingestions"))
    assert (table.version(), table.schema()) == (version + 1, schema_of_the_jobs)
    assert read_record(sample_lake, Settings(), "20261201T000000Z-00000000") == row
    rows = {row["ingestion_id"]: row for row in lake_rows(sample_lake, "select * from ingestion_reconciliation")}
    failed = rows["20261201T000000Z-00000000"]
    assert failed["status"] == "FAILED" and failed["reconciles"] and failed["rows_read"] == 0
    assert json.loads(failed["error"]) == error
    assert lake_rows(sample_lake, "select count(*) as trips from trips") == [{"trips": 100}]


def test_a_lake_of_the_older_layout_is_refused_by_readers_and_writers_with_what_to_do(tmp_path):
    """Before its tables were Delta tables, triplake kept each ingestions record as a file of its own."""
    records = tmp_path / "old_lake" / "curated" / "ingestions"
    records.mkdir(parents=True)
    pq.write_table(pa.table({"ingestion_id": ["20261201T000000Z-00000000"]}), records / "20261201T000000Z-00000000.parquet")
    lake = (tmp_path / "old_lake").as_uri()

    with pytest.raises(SqlError, match=r"older triplake .* Ingest its raw files \(under raw/\) again into a new lake root"):
        LocalEngine(lake, Settings())
    run = subprocess.run([str(Path(sys.executable).with_name("triplake")), "run", "--lake-root", lake, "--input",
                          str(SAMPLE)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "written by an older triplake" in " ".join(run.stderr.split()), run.stderr
    assert sorted(path.name for path in (tmp_path / "old_lake").rglob("*")) == [
        "20261201T000000Z-00000000.parquet", "curated", "ingestions"], "refused before anything was written"
