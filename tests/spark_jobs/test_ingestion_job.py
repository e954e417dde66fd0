"""The DAG's Spark job: one ingestion in one application, each stage leaving its report, a failed stage rolling
the whole ingestion back."""

from __future__ import annotations

import json

import pytest

from spark_jobs import ingestion
from tests.conftest import SAMPLE, lake_rows, read_table
from triplake.uris import local_path


def test_one_application_ingests_routes_counts_and_commits_leaving_each_stages_report(spark, lake_root, capsys):
    arguments = ["--input", SAMPLE.as_uri(), "--lake-root", lake_root, "--ingestion-id", "20261201T000000Z-job00001"]
    assert ingestion.main(arguments) == 0
    reports = local_path(lake_root) / "_reports" / "20261201T000000Z-job00001"
    assert sorted(path.stem for path in reports.glob("*.json")) == ["build_weekly", "group_routes", "ingest", "ingestion"]
    ingest = json.loads((reports / "ingest.json").read_text())
    assert ingest["rows_written"] == 100 and len(ingest["partitions_written"]) == 15
    assert json.loads((reports / "build_weekly.json").read_text())["committed"]
    assert lake_rows(lake_root, "select count(*) as trips from trips_with_routes where route_id is not null") == [
        {"trips": 100}]


def test_a_failed_stage_rolls_the_whole_ingestion_back_and_names_the_stage(spark, lake_root, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ingestion, "build_weekly", broken)
    with pytest.raises(ingestion.StageFailed, match="build_weekly failed: disk full"):
        ingestion.run_ingestion(spark, SAMPLE.as_uri(), lake_root, "20261201T000000Z-job00002")
    (record,) = read_table(lake_root, "curated/ingestions").to_pylist()
    assert record["status"] == "FAILED"
    assert json.loads(record["error"]) == {"kind": "task_failed", "message": "build_weekly failed: disk full",
                                           "task": "build_weekly"}
    assert read_table(lake_root, "curated/trips", partitioned=True).num_rows == 0, "its trips were rolled back"
    assert read_table(lake_root, "curated/trip_routes", partitioned=True).num_rows == 0
    assert not (local_path(lake_root) / "_staging").exists() or not list((local_path(lake_root) / "_staging").iterdir())


def test_a_batch_ingests_its_files_in_order_each_its_own_ingestion_and_a_bad_file_fails_alone(spark, lake_root, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("vehicle,from,to\n1,2,3\n")
    batch = [{"ingestion_id": f"20261201T000000Z-batch{number:03d}", "source_uri": uri}
             for number, uri in enumerate([SAMPLE.as_uri(), bad.as_uri(), SAMPLE.as_uri()])]
    manifest = local_path(lake_root) / "_batches" / "b-1.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"batch_id": "b-1", "ingestions": batch}))

    assert ingestion.main(["--batch-id", "b-1", "--lake-root", lake_root]) == 0, "the batch went through every file"
    reports = local_path(lake_root) / "_reports"
    outcomes = [json.loads((reports / item["ingestion_id"] / "ingestion.json").read_text()) for item in batch]
    assert [(outcome["status"], (outcome["error"] or {}).get("kind")) for outcome in outcomes] == [
        ("SUCCEEDED", None), ("FAILED", "invalid_file"), ("SUCCEEDED", None)]
    written = [json.loads((reports / item["ingestion_id"] / "ingest.json").read_text()) for item in (batch[0], batch[2])]
    assert [(report["rows_written"], report["already_present"]) for report in written] == [(100, 0), (0, 100)], \
        "in order: the third file finds the first one's trips in the lake"
    summary = json.loads((reports / "b-1" / "ingestion.json").read_text())
    assert [item["status"] for item in summary["ingestions"]] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
    assert lake_rows(lake_root, "select status, count(*) as n from ingestions group by status order by status") == [
        {"status": "FAILED", "n": 1}, {"status": "SUCCEEDED", "n": 2}]

    # Run again (as after an interruption): every file is recorded already, so nothing is ingested twice.
    assert ingestion.main(["--batch-id", "b-1", "--lake-root", lake_root]) == 0
    assert lake_rows(lake_root, "select count(*) as trips from trips") == [{"trips": 100}]
    again = [json.loads((reports / item["ingestion_id"] / "ingestion.json").read_text())["status"] for item in batch]
    assert again == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
