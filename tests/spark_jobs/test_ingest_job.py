"""The ingest job end to end on real files in a file:// lake, read back with pyarrow."""

from __future__ import annotations

import base64
import gzip
import shutil
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from spark_jobs import ingest
from spark_jobs.common import parse
from spark_jobs.common import publish
from spark_jobs.common.lake import Lake
from spark_jobs.common.lakefs import LakeFs
from tests.conftest import BAD_ROWS, SAMPLE, lake_rows, read_table
from triplake.generate import GenerateOptions, generate


def lake_path(lake_root: str) -> Path:
    return Path(lake_root.removeprefix("file://"))


def trips(lake_root: str):
    return read_table(lake_root, "curated/trips", partitioned=True)


def ingest_committed(spark, uri: str, lake_root: str) -> ingest.IngestionResult:
    """The ingest step, then the commit (what build_weekly does after the routes): the ingestion as readers see it."""
    result = ingest.ingest_file(spark, uri, lake_root)
    if result.status == "SUCCEEDED":
        publish.commit(spark, LakeFs(spark), Lake(lake_root), result.ingestion_id)
    return result


def test_sample_file_end_to_end(spark, lake_root):
    result = ingest_committed(spark, SAMPLE.as_uri(), lake_root)

    assert result.status == "SUCCEEDED"
    counts = result.counts
    assert (counts.rows_read, counts.rows_valid, counts.rows_rejected) == (100, 100, 0)
    assert (counts.duplicates_in_batch, counts.already_present, counts.rows_written) == (0, 0, 100)
    table = trips(lake_root)
    assert table.num_rows == 100
    assert sorted(pc.unique(table["region"]).to_pylist()) == ["Hamburg", "Prague", "Turin"]
    assert sorted(str(week) for week in pc.unique(table["week_start"]).to_pylist()) == [
        "2018-04-30", "2018-05-07", "2018-05-14", "2018-05-21", "2018-05-28"
    ]
    assert len(set(table["trip_id"].to_pylist())) == 100
    assert set(table["ingestion_id"].to_pylist()) == {result.ingestion_id}
    assert len(result.partitions_written) == 15
    # the raw file is kept byte for byte
    raw = lake_path(lake_root) / "raw" / result.ingestion_id / SAMPLE.name
    assert raw.read_bytes() == SAMPLE.read_bytes()
    # one committed ingestions row with the same counts
    record = read_table(lake_root, "curated/ingestions").to_pylist()
    assert len(record) == 1
    assert record[0]["status"] == "SUCCEEDED" and record[0]["rows_written"] == 100
    assert not (lake_path(lake_root) / "_staging" / result.ingestion_id).exists()


def test_sample_ingested_twice_writes_nothing_the_second_time(spark, lake_root):
    first = ingest_committed(spark, SAMPLE.as_uri(), lake_root)
    files_after_first = sorted(p.name for p in (lake_path(lake_root) / "curated/trips").rglob("*.parquet"))
    second = ingest_committed(spark, SAMPLE.as_uri(), lake_root)

    assert second.counts.rows_written == 0
    assert second.counts.already_present == second.counts.rows_valid == 100
    assert second.ingestion_id != first.ingestion_id
    assert trips(lake_root).num_rows == 100
    assert sorted(p.name for p in (lake_path(lake_root) / "curated/trips").rglob("*.parquet")) == files_after_first
    assert read_table(lake_root, "curated/ingestions").num_rows == 2


def test_bad_rows_are_kept_with_line_number_and_reason_and_counts_reconcile(spark, lake_root):
    result = ingest_committed(spark, BAD_ROWS.as_uri(), lake_root)

    counts = result.counts
    assert counts.reconciles()
    assert (counts.rows_read, counts.rows_valid, counts.rows_rejected) == (18, 3, 15)
    assert (counts.duplicates_in_batch, counts.already_present, counts.rows_written) == (1, 0, 2)
    rejected = read_table(lake_root, "curated/rejected_rows").to_pylist()
    lines = BAD_ROWS.read_bytes().split(b"\n")
    assert [row["line_number"] for row in rejected] == [*range(4, 17), 19, 20]
    kept = {row["line_number"]: row["raw_line"] for row in rejected}
    assert kept.pop(19) == "base64:" + base64.b64encode(lines[18]).decode(), "the Latin-1 line, byte for byte"
    assert all(text.encode() == lines[number - 1] for number, text in kept.items())
    assert {row["reason"] for row in rejected} == set(parse.REJECT_REASONS)
    assert counts.rejected_by_reason == {
        "bad_encoding": 1, "unclosed_quote": 1,
        "wrong_field_count": 1, "empty_region": 1, "unsafe_region": 2, "bad_origin_coord": 2,
        "origin_out_of_range": 2, "bad_destination_coord": 1, "destination_out_of_range": 1,
        "bad_datetime": 2, "empty_datasource": 1,
    }
    table = trips(lake_root).to_pylist()
    assert sorted((row["region"], row["datasource"]) for row in table) == [
        ("Prague", "funny_car"),  # line 2 wins over its copy on line 3
        ("Turin", "baba_car"),    # loose spacing and quotes are still a point
    ]


def test_unsafe_regions_cannot_escape_their_partition_directory(spark, lake_root):
    ingest_committed(spark, BAD_ROWS.as_uri(), lake_root)
    trips_dir = lake_path(lake_root) / "curated" / "trips"
    assert sorted(p.name for p in trips_dir.iterdir() if p.name != "_delta_log") == ["region=Prague", "region=Turin"]
    assert not (lake_path(lake_root) / "curated" / "etc").exists()
    assert not any("a=b" in str(p) for p in lake_path(lake_root).rglob("*"))


def test_wrong_header_fails_the_file_and_writes_no_trips(spark, lake_root, tmp_path):
    bad_header = tmp_path / "bad_header.csv"
    bad_header.write_text(SAMPLE.read_text().replace("destination_coord", "dest", 1))

    result = ingest_committed(spark, bad_header.as_uri(), lake_root)

    assert result.status == "FAILED"
    assert result.error["kind"] == "invalid_file"
    assert "missing: 'destination_coord'" in result.error["message"]
    assert "unknown: 'dest'" in result.error["message"]
    assert not (lake_path(lake_root) / "curated" / "trips").exists()
    assert (lake_path(lake_root) / "raw" / result.ingestion_id / "bad_header.csv").read_bytes() == bad_header.read_bytes()
    (record,) = read_table(lake_root, "curated/ingestions").to_pylist()
    assert record["status"] == "FAILED" and "invalid_file" in record["error"]


def test_empty_file_is_an_invalid_file(spark, lake_root, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    result = ingest_committed(spark, empty.as_uri(), lake_root)
    assert result.status == "FAILED"
    assert "the file is empty" in result.error["message"]


def test_header_only_file_succeeds_with_nothing_to_write(spark, lake_root, tmp_path):
    header_only = tmp_path / "header_only.csv"
    header_only.write_text(SAMPLE.read_text().splitlines()[0] + "\n")
    result = ingest_committed(spark, header_only.as_uri(), lake_root)
    assert result.status == "SUCCEEDED"
    assert result.counts.rows_read == 0 and result.counts.rows_written == 0


def test_missing_file_fails_with_a_clear_error(spark, lake_root, tmp_path):
    result = ingest_committed(spark, (tmp_path / "nope.csv").as_uri(), lake_root)
    assert result.status == "FAILED"
    assert "does not exist" in result.error["message"]


def test_gzipped_file_gives_the_same_trips_as_the_plain_one(spark, lake_root, tmp_path):
    gz = tmp_path / "trips_sample.csv.gz"
    with SAMPLE.open("rb") as plain, gzip.open(gz, "wb") as packed:
        shutil.copyfileobj(plain, packed)
    result = ingest_committed(spark, gz.as_uri(), lake_root)
    assert result.counts.rows_written == 100
    assert sorted(trips(lake_root)["trip_id"].to_pylist()) == sorted(
        trips(_ingested_copy(spark, tmp_path))["trip_id"].to_pylist()
    )


def _ingested_copy(spark, tmp_path: Path) -> str:
    root = (tmp_path / "plain-lake").as_uri()
    ingest_committed(spark, SAMPLE.as_uri(), root)
    return root


def _dies(publication):
    raise KeyboardInterrupt("killed before the publish")


def test_a_run_killed_before_its_commit_is_invisible_and_its_files_are_swept_by_the_next(
        spark, lake_root, tmp_path, monkeypatch):
    clean_root = (tmp_path / "clean").as_uri()
    ingest_committed(spark, SAMPLE.as_uri(), clean_root)

    monkeypatch.setattr(publish.Publication, "publish", _dies)
    with pytest.raises(KeyboardInterrupt):
        ingest.ingest_file(spark, SAMPLE.as_uri(), lake_root)
    trips_dir = lake_path(lake_root) / "curated" / "trips"
    killed_files = set(trips_dir.rglob("*.parquet"))
    assert len(killed_files) == 15  # its files are in place, written straight into the table's folders...
    assert not DeltaTable.is_deltatable(str(trips_dir))  # ...and no commit references them...
    assert lake_rows(lake_root, "select count(*) as trips from trips") == [{"trips": 0}]  # ...so nobody reads them

    monkeypatch.undo()
    rerun = ingest_committed(spark, SAMPLE.as_uri(), lake_root)

    assert rerun.counts.rows_written == 100 and rerun.counts.already_present == 0
    assert not killed_files & set(trips_dir.rglob("*.parquet")), "the killed run's files were swept"
    columns = ["trip_id", "region", "origin_lon", "origin_lat", "destination_lon", "destination_lat",
               "started_at", "datasource", "week_start"]
    assert trips(lake_root).select(columns).sort_by("trip_id").equals(
        trips(clean_root).select(columns).sort_by("trip_id")
    )
    # the killed run never committed: the rerun's recovery recorded it as interrupted
    records = {row["status"]: row for row in read_table(lake_root, "curated/ingestions").to_pylist()}
    assert set(records) == {"SUCCEEDED", "FAILED"} and '"kind": "interrupted"' in records["FAILED"]["error"]


def test_each_trips_file_is_sorted_by_origin_latitude(spark, lake_root, tmp_path):
    generated = tmp_path / "generated.csv"
    generate(GenerateOptions(rows=20_000, seed=3, duplicate_rate=0.05), generated)
    result = ingest_committed(spark, generated.as_uri(), lake_root)

    assert result.counts.reconciles() and result.counts.duplicates_in_batch > 0
    files = [Path(uri) for uri in DeltaTable(str(lake_path(lake_root) / "curated" / "trips")).file_uris()]
    assert len(files) == len(result.partitions_written)  # one file per (region, week): no small files
    for file in files:
        # sorted by origin latitude to 7 decimals (the dedupe key): min/max statistics then bound row groups
        latitudes = [round(lat * 10**7) for lat in pq.read_table(file, columns=["origin_lat"])["origin_lat"].to_pylist()]
        assert latitudes == sorted(latitudes), f"{file} is not sorted by origin_lat"


def test_a_second_file_is_deduplicated_against_the_lake_partitions_it_touches(spark, lake_root, tmp_path):
    sample_lines = SAMPLE.read_text().splitlines()
    header, rows = sample_lines[0], sample_lines[1:]
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("\n".join([header, *rows[:60]]) + "\n")
    # 20 trips the lake holds (one of them twice: a duplicate inside the file) and 40 new ones, in another
    # column order
    reordered = [",".join([line.split(",")[4], *line.split(",")[:4]]) for line in rows[40:]]
    second.write_text("\n".join(["datasource,region,origin_coord,destination_coord,datetime", reordered[0], *reordered]) + "\n")

    ingest_committed(spark, first.as_uri(), lake_root)
    result = ingest_committed(spark, second.as_uri(), lake_root)

    counts = result.counts
    assert (counts.rows_read, counts.rows_valid) == (61, 61)
    assert (counts.already_present, counts.duplicates_in_batch, counts.rows_written) == (20, 1, 40)
    table = trips(lake_root)
    assert table.num_rows == 100
    assert sorted(table["trip_id"].to_pylist()) == sorted(trips(_ingested_copy(spark, tmp_path))["trip_id"].to_pylist())
