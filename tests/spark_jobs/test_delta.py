"""Spark's tasks write a table's files in place and the driver commits them with delta-rs: on a file:// lake and on an
s3:// lake in moto, read back by delta-rs and DuckDB, independent of the code that wrote them."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from spark_jobs.common.delta import DataFile, Storage, commit, file_uris, snapshot_files
from spark_jobs.common.table_files import statistics, write_files

SCHEMA = pa.schema([("trip_id", pa.string()), ("started_at", pa.timestamp("us", tz="UTC")), ("origin_lat", pa.float64()),
                    ("region", pa.string()), ("week_start", pa.string())])
PARTITIONS = ("region", "week_start")


@pytest.fixture(params=["file", "s3"])
def table_uri(request, tmp_path, test_settings):
    if request.param == "file":
        return (tmp_path / "trips").as_uri()
    import boto3

    from tests.conftest import MOTO_CREDENTIALS

    s3 = boto3.client("s3", endpoint_url=test_settings.aws_endpoint_url, region_name="us-east-1", **MOTO_CREDENTIALS)
    s3.create_bucket(Bucket=(bucket := f"delta-{uuid.uuid4().hex[:12]}"))
    return f"s3://{bucket}/lake/trips"


def rows(spark, prefix: str):
    start = datetime(2018, 5, 28, 9, 3, 40, tzinfo=timezone.utc)
    data = [(f"{prefix}-{number}", start, 50.0 - number, region, week)
            for number, (region, week) in enumerate([("Prague", "2018-05-28"), ("Prague", "2018-05-28"),
                                                     ("Turin", "2018-05-21"), ("Prague", "2018-05-21")])]
    data.append((f"{prefix}-null", start, None, "Turin", "2018-05-21"))  # a null is counted, not a minimum
    return spark.createDataFrame(data, "trip_id string, started_at timestamp, origin_lat double, region string, "
                                       "week_start string")


def test_tasks_write_one_sorted_file_per_partition_and_the_commit_makes_them_the_tables_snapshot(spark, table_uri):
    storage = Storage.from_spark(spark)
    first = rows(spark, "a").repartition(2, *PARTITIONS)
    files = write_files(first, table_uri, PARTITIONS, "ingestion-1", storage, sort_by=["origin_lat"])
    assert sorted((tuple(file.partition_values.values()), file.records) for file in files) == [
        (("Prague", "2018-05-21"), 1), (("Prague", "2018-05-28"), 2), (("Turin", "2018-05-21"), 2)]
    assert all(file.path.startswith(f"region={file.partition_values['region']}/") and "ingestion-1-" in file.path
               for file in files)
    assert file_uris(table_uri, storage) == [], "written, not committed: not in any snapshot"

    assert commit(table_uri, SCHEMA, PARTITIONS, files, storage) == 0
    second = write_files(rows(spark, "b").repartition(1, *PARTITIONS), table_uri, PARTITIONS, "ingestion-2", storage)
    assert commit(table_uri, SCHEMA, PARTITIONS, second, storage) == 1

    table = DeltaTable(table_uri, storage_options=storage.delta_options())
    assert table.count() == 10 and len(table.file_uris()) == 6
    read = table.to_pyarrow_table().sort_by("trip_id")
    assert read.column("trip_id").to_pylist()[:3] == ["a-0", "a-1", "a-2"]
    assert set(read.column("region").to_pylist()) == {"Prague", "Turin"}, "partition values restored from the log"
    prague = [file.uri for file in snapshot_files(table_uri, storage, [{"region": "Prague", "week_start": "2018-05-28"}])]
    assert len(prague) == 2 and all("region=Prague/week_start=2018-05-28" in uri for uri in prague)

    if table_uri.startswith("file:"):  # DuckDB reads a local snapshot's files itself (s3:// goes through fsspec)
        counted = duckdb.sql(f"select region, count(*) from read_parquet({table.file_uris()!r}, hive_partitioning = "
                             "true) group by region order by region").fetchall()
        assert counted == [("Prague", 6), ("Turin", 4)]

    # One commit both adds and removes: the first ingestion's files leave the snapshot (they stay on disk until a vacuum).
    assert commit(table_uri, SCHEMA, PARTITIONS, [], storage, removed=[file.path for file in files]) == 2
    assert DeltaTable(table_uri, storage_options=storage.delta_options()).count() == 5


def test_statistics_are_deltas_and_skip_nulls():
    table = pa.table({"n": pa.array([3, None, 1]), "t": pa.array([datetime(2018, 5, 28, tzinfo=timezone.utc)] * 3),
                      "s": pa.array([None, None, None], pa.string())})
    stats = json.loads(statistics(table))
    assert stats["numRecords"] == 3 and stats["nullCount"] == {"n": 1, "t": 0, "s": 3}
    assert stats["minValues"] == {"n": 1, "t": "2018-05-28T00:00:00.000Z"} and stats["maxValues"]["n"] == 3


def test_the_snapshot_file_list_is_spelled_as_the_table_uri_whatever_the_root_and_partition_values_hold(tmp_path):
    # delta-rs gives a local table's root percent-encoded and the rest decoded; readers need one spelling that opens.
    table_uri = f"file://{tmp_path}/a lake 100%/trips"
    value = 'Turin "Centro" 50%'
    folder = tmp_path / "a lake 100%" / "trips" / 'region=Turin %22Centro%22 50%25' / "week_start=2018-05-21"
    folder.mkdir(parents=True)
    rows = pa.table({"trip_id": ["a", "b"], "started_at": pa.array([datetime(2018, 5, 21, tzinfo=timezone.utc)] * 2,
                                                                    pa.timestamp("us", tz="UTC")),
                     "origin_lat": [45.0, 45.1]})
    import pyarrow.parquet as pq

    pq.write_table(rows, folder / "part-1.parquet")
    path = f"{folder.parent.name}/{folder.name}/part-1.parquet"
    written = DataFile(path, (folder / "part-1.parquet").stat().st_size, {"region": value, "week_start": "2018-05-21"},
                       2, statistics(rows))
    commit(table_uri, SCHEMA, PARTITIONS, [written], Storage())

    listed = file_uris(table_uri, Storage())
    assert listed == [file.uri for file in snapshot_files(table_uri, Storage())] == [f"{table_uri}/{path}"]
    assert duckdb.sql(f"select count(*) from read_parquet({[uri.removeprefix('file://') for uri in listed]!r})"
                      ).fetchall() == [(2,)]
