"""Ingestion records written from Python (an unsupported upload, a lake that stayed busy): the same columns and
types as the records the Spark jobs write, visible in ingestion_reconciliation, invisible to every data table."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq

from tests.conftest import lake_rows
from triplake.lake_records import write_failed_record
from triplake.settings import Settings
from triplake.uris import local_path


def test_a_failed_record_has_the_jobs_schema_and_shows_in_the_reconciliation(sample_lake, tmp_path):
    shutil.copytree(local_path(sample_lake), tmp_path / "lake")  # the shared sample lake stays as it is
    sample_lake = (tmp_path / "lake").as_uri()
    error = {"kind": "unsupported_file", "message": "'notes.txt' is not a file triplake ingests", "task": "plan"}
    path = write_failed_record(sample_lake, Settings(), "20261201T000000Z-00000000", "s3://l/incoming/notes.txt", error)

    spark_written = next(p for p in (local_path(sample_lake) / "curated" / "ingestions").glob("*.parquet")
                         if not p.name.startswith("20261201T000000Z"))
    assert pq.read_schema(path).remove_metadata() == pq.read_schema(spark_written).remove_metadata()
    rows = {row["ingestion_id"]: row for row in lake_rows(sample_lake, "select * from ingestion_reconciliation")}
    failed = rows["20261201T000000Z-00000000"]
    assert failed["status"] == "FAILED" and failed["reconciles"] and failed["rows_read"] == 0
    assert json.loads(failed["error"]) == error
    assert lake_rows(sample_lake, "select count(*) as trips from trips") == [{"trips": 100}]
