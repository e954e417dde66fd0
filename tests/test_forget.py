"""`triplake forget`: a data source's trips go from every table, raw copy, rejected row and log, for good; what is
left answers as if they had never come; the erasure is recorded."""

from __future__ import annotations

import contextlib
import getpass
import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import boto3
import pyarrow.parquet as pq
from pyarrow import fs as pafs
import pytest

from tests.conftest import MOTO_CREDENTIALS, SAMPLE, lake_rows
from triplake import cli
from triplake.erasure import Selection, SelectionError, header_positions, line_fields, trip_id_of
from triplake import lake_snapshot
from triplake.forget import finish_killed_erasures, forget
from triplake.lake_files import delete_old_versions
from triplake.lake_snapshot import plan_bodies
from triplake.pipeline import run_pipeline
from triplake.raw_copies import is_gzip, read_lines
from triplake.settings import Settings
from triplake.weekly_average import BoundingBox

ERASED = "cheap_mobile"
REJECTED = "Prague,POINT (14.4 50.0),POINT (14.5 50.1),not a time,cheap_mobile"  # a line of ERASED the ingest rejects


def sample_lines() -> tuple[str, list[str]]:
    header, *lines = SAMPLE.read_text().splitlines()
    return header, lines


def erased_lines() -> list[dict[str, str]]:
    header, lines = sample_lines()
    positions = header_positions(header)
    return [fields for line in lines if (fields := line_fields(line, positions))["datasource"] == ERASED]


@pytest.fixture(scope="module")
def built_lake(spark, tmp_path_factory) -> Path:
    """The sample, then a second upload: one of the erased trips again under another data source (a duplicate the
    lake drops, whose raw line still holds it), a cheap_mobile line the ingest rejects, and a trip to keep."""
    folder = tmp_path_factory.mktemp("forget")
    header, lines = sample_lines()
    again = next(line for line in lines if line.endswith("," + ERASED)).replace(ERASED, "funny_car")
    second = folder / "second.csv"
    second.write_text("\n".join([header, again, REJECTED,
                                 "Prague,POINT (14.41 50.01),POINT (14.51 50.11),2018-05-29 10:00:00,funny_car"]) + "\n")
    lake = folder / "lake"
    assert run_pipeline(spark, [SAMPLE.as_uri(), second.as_uri()], lake.as_uri()).succeeded
    return lake


@pytest.fixture
def lake(built_lake, tmp_path) -> Path:
    copy = tmp_path / "lake"
    shutil.copytree(built_lake, copy)
    return copy


def weekly_average(lake: Path, region: str) -> dict:
    out = run_cli(["weekly-average", "--region", region, "--lake-root", str(lake), "--json"])
    return json.loads(out)


def run_cli(arguments: list[str]) -> str:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli.main(arguments) == 0
    return printed.getvalue()


def text_of(name: str, body: bytes) -> str:
    """A file as text: Parquet (data files and Delta checkpoints) row by row, gzip decompressed, the rest as bytes."""
    if name.endswith(".parquet"):
        return json.dumps(pq.read_table(io.BytesIO(body)).to_pylist(), default=str)
    if name.endswith(".gz"):
        return gzip.decompress(body).decode(errors="replace")
    return body.decode(errors="replace")


def every_file_text(lake: Path) -> dict[str, str]:
    return {str(path): text_of(path.name, path.read_bytes()) for path in sorted(lake.rglob("*")) if path.is_file()}


def needles(erased_ids: set[str]) -> list[str]:
    """What shows an erased trip in a file: its id, the origin of its line and that origin's longitude as a number
    (13-16 digits: no false match), and the rejected line's origin."""
    origins = [fields["origin_coord"] for fields in erased_lines()]
    longitudes = [repr(float(origin.split("(")[1].split()[0])) for origin in origins]
    return [*erased_ids, *origins, *longitudes, REJECTED.split(",")[1]]


def test_forget_a_datasource_leaves_the_other_trips_and_no_file_holding_an_erased_one(lake):
    erased_ids = {row["trip_id"] for row in lake_rows(lake.as_uri(), f"select trip_id from trips where datasource = '{ERASED}'")}
    assert len(erased_ids) == 33 and lake_rows(lake.as_uri(), "select count(*) as n from trips") == [{"n": 101}]
    assert lake_rows(lake.as_uri(), "select count(*) as n from rejected_rows") == [{"n": 1}]

    def files_holding_erased_trips() -> dict[str, list[str]]:
        held = {path: [needle for needle in needles(erased_ids) if needle in text]
                for path, text in every_file_text(lake).items()}
        return {path.removeprefix(str(lake)): found for path, found in held.items() if found}

    before = files_holding_erased_trips()
    for place in ("/raw/", "/curated/trips/region=", "/curated/trips/_delta_log/", "/curated/trip_routes/region=",
                  "/curated/rejected_rows/"):
        assert any(path.startswith(place) for path in before), f"the check finds erased trips in {place} before"

    printed = json.loads(run_cli(["forget", "--datasource", ERASED, "--lake-root", str(lake), "--json"]))

    assert lake_rows(lake.as_uri(), "select count(*) as n from trips") == [{"n": 68}]  # the sample's 67 and the kept one
    assert lake_rows(lake.as_uri(), f"select count(*) as n from trips where datasource = '{ERASED}'") == [{"n": 0}]
    assert lake_rows(lake.as_uri(), "select count(*) as n from rejected_rows") == [{"n": 0}]
    # Every trip left still has its route, and the weekly counts are the trips left.
    assert lake_rows(lake.as_uri(), "select count(*) as n from trips_with_routes where route_id is not null") == [{"n": 68}]
    assert lake_rows(lake.as_uri(), "select sum(trips) as n from weekly_trips") == [{"n": 68}]
    assert lake_rows(lake.as_uri(), "select sum(trips) as n from routes") == [{"n": 68}]
    assert printed | {"erasure_id": None, "selection": None} == {
        "erasure_id": None, "selection": None, "dry_run": False, "trips": 33, "trip_routes": 33,
        "weekly_partitions": printed["weekly_partitions"], "rejected_rows": 1, "raw_lines": 35, "raw_files": 2,
        "files_deleted": printed["files_deleted"], "object_versions_deleted": 0, "erased_by": getpass.getuser()}
    assert printed["weekly_partitions"] > 0 and printed["files_deleted"] > 0

    # Nothing under the lake root holds an erased trip: not a table file of any version, a log entry's statistics,
    # a raw copy, a rejected row; looked for by trip id and by the origin of each erased line.
    assert files_holding_erased_trips() == {}

    record = lake_rows(lake.as_uri(), "select * from erasures")
    assert [(row["erasure_id"], row["trips"], json.loads(row["selection"])["datasource"]) for row in record] == [
        (printed["erasure_id"], 33, ERASED)]


def test_files_no_commit_references_any_more_are_searched_too(lake):
    """Maintenance leaves the files its compaction replaced for its vacuum's retention (readers may still read
    them): every table version's files, not only the current one's, must lose the erased trips."""
    erased_ids = {row["trip_id"] for row in lake_rows(lake.as_uri(), f"select trip_id from trips where datasource = '{ERASED}'")}
    compacted = json.loads(run_cli(["maintain", "--lake-root", str(lake), "--json"]))
    assert any(table["files_compacted"] for table in compacted["tables"]), compacted

    run_cli(["forget", "--datasource", ERASED, "--lake-root", str(lake), "--json"])

    held = {path: [needle for needle in needles(erased_ids) if needle in text] for path, text in every_file_text(lake).items()}
    assert {path.removeprefix(str(lake)): found for path, found in held.items() if found} == {}
    assert lake_rows(lake.as_uri(), "select count(*) as n from trips") == [{"n": 68}]


AFTER = {
    "select count(*) as n from trips": [{"n": 68}],
    "select count(*) as n from trip_routes": [{"n": 68}],
    "select sum(trips) as n from weekly_trips": [{"n": 68}],
    "select count(*) as n from rejected_rows": [{"n": 0}],
    "select count(*) as n from erasures": [{"n": 1}],
    "select sum(trips) as n from routes": [{"n": 68}],
}


def killed_forget(built_lake: Path, tmp_path: Path, point: str) -> Path:
    """A copy of the built lake, and on it a `triplake forget --datasource ERASED` SIGKILLed at the fault point."""
    lake = tmp_path / "lake"
    shutil.copytree(built_lake, lake)
    command = [str(Path(sys.executable).with_name("triplake")), "forget", "--lake-root", str(lake), "--datasource", ERASED]
    killed = subprocess.run(command, env=os.environ | {"TRIPLAKE_FAULT_AT": point}, capture_output=True, text=True,
                            timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    return lake


@pytest.mark.parametrize(("point", "readers_see"), [
    ("forget:planned", "before"), ("forget:committed:trips", "before"), ("forget:committed:weekly_trips", "before"),
    ("forget:committed:route_models", "before"),
    ("forget:committed:rejected_rows", "before"),  # every table committed, the record (the commit point) not yet
    ("forget:recorded", "after"), ("forget:deleted", "after")])
def test_a_forget_killed_at_any_point_leaves_the_lake_before_or_after_and_is_finished_by_the_next_one(
        built_lake, tmp_path, point, readers_see):
    erased_ids = {row["trip_id"] for row in lake_rows(built_lake.as_uri(), f"select trip_id from trips where datasource = '{ERASED}'")}
    before = {query: lake_rows(built_lake.as_uri(), query) for query in AFTER}
    assert before["select count(*) as n from trips"] == [{"n": 101}]
    lake = killed_forget(built_lake, tmp_path, point)
    # A reader of the killed erasure's lake sees the lake before it or the lake after it, never a mix.
    seen = {query: lake_rows(lake.as_uri(), query) for query in AFTER}
    assert seen == (before if readers_see == "before" else AFTER)

    # The next forget, whatever it selects, first finishes the killed one.
    finished = subprocess.run([str(Path(sys.executable).with_name("triplake")), "forget", "--lake-root", str(lake),
                               "--region", "Nowhere"], capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert {query: lake_rows(lake.as_uri(), query) for query in AFTER} == AFTER | {
        "select count(*) as n from erasures": [{"n": 2}]}
    assert [row["trips"] for row in lake_rows(lake.as_uri(), "select trips from erasures order by erasure_id")] == [33, 0]
    held = {path: [needle for needle in needles(erased_ids) if needle in text]
            for path, text in every_file_text(lake).items()}
    assert {path: found for path, found in held.items() if found} == {}
    assert not (lake / "_erasures").exists() or not any((lake / "_erasures").iterdir()), "the plan is gone"


def test_a_forget_killed_between_its_commits_is_finished_by_the_next_ingestion_before_it_writes(built_lake, tmp_path,
                                                                                                   spark):
    lake = killed_forget(built_lake, tmp_path, "forget:committed:trips")
    assert lake_rows(lake.as_uri(), "select sum(trips) as n from weekly_trips") == [{"n": 101}], "readers: the lake before"

    header, _ = sample_lines()
    upload = tmp_path / "next_upload.csv"
    upload.write_text(f"{header}\nTurin,POINT (7.6 45.0),POINT (7.7 45.1),2018-05-29 10:00:00,funny_car\n")
    assert run_pipeline(spark, [upload.as_uri()], lake.as_uri()).succeeded
    assert {query: lake_rows(lake.as_uri(), query) for query in AFTER} == AFTER | {
        "select count(*) as n from trips": [{"n": 69}], "select count(*) as n from trip_routes": [{"n": 69}],
        "select sum(trips) as n from weekly_trips": [{"n": 69}], "select sum(trips) as n from routes": [{"n": 69}]}
    assert not any((lake / "_erasures").iterdir()), "the plan is gone"


def test_a_reader_whose_tables_an_erasure_committed_while_it_read_them_reads_the_lake_again(built_lake, tmp_path,
                                                                                            monkeypatch):
    """The order is made explicit: the reader reads the tables between the killed erasure's trips commit and the
    rest; the erasure is finished before the reader lists the plans, so the plan it would pin by is gone."""
    lake = killed_forget(built_lake, tmp_path, "forget:committed:trips")
    listings = []

    def plans_listed_after_the_erasure_finished(lake_root, storage):
        if not listings:
            assert finish_killed_erasures(lake_root, Settings())
        listings.append(lake_root)
        return plan_bodies(lake_root, storage)

    monkeypatch.setattr(lake_snapshot, "plan_bodies", plans_listed_after_the_erasure_finished)
    assert lake_rows(lake.as_uri(), "select count(*) as n from trips") == [{"n": 68}]
    assert len(listings) == 2, "the first reading saw the erasures table change under it and was made again"
    assert {query: lake_rows(lake.as_uri(), query) for query in AFTER} == AFTER


def test_a_route_fitted_on_an_erased_trip_alone_goes_and_the_model_is_estimated_again_from_the_trips_kept(
        spark, tmp_path):
    """Seven trips of a region, one far from the others: the model's two routes are the six and the one, whose
    centroid is that trip's coordinates (in route_models and in the model's file)."""
    header, _ = sample_lines()
    kept = [f"Solo,POINT (7.{60 + i} 45.0{i}),POINT (7.{70 + i} 45.1{i}),2018-05-2{i} 10:00:00,funny_car" for i in range(6)]
    outlier = "Solo,POINT (9.123456789 47.987654321),POINT (9.2 48.0),2018-05-29 03:00:00,cheap_mobile"
    upload = tmp_path / "solo.csv"
    upload.write_text("\n".join([header, *kept, outlier]) + "\n")
    lake = tmp_path / "lake"
    assert run_pipeline(spark, [upload.as_uri()], lake.as_uri()).succeeded
    routes = "select trips, origin_lon from routes where region = 'Solo' order by trips"
    assert lake_rows(lake.as_uri(), routes) == [{"trips": 1, "origin_lon": 9.123456789},
                                                 {"trips": 6, "origin_lon": pytest.approx(7.625)}]
    (erased_id,) = [row["trip_id"] for row in lake_rows(lake.as_uri(), "select trip_id from trips where datasource = 'cheap_mobile'")]
    outlier_needles = [erased_id, "9.123456789", "47.987654321"]
    assert any(needle in text for text in every_file_text(lake).values() for needle in outlier_needles[1:])

    run_cli(["forget", "--datasource", ERASED, "--lake-root", str(lake), "--json"])

    held = {path: [needle for needle in outlier_needles if needle in text] for path, text in every_file_text(lake).items()}
    assert {path.removeprefix(str(lake)): found for path, found in held.items() if found} == {}
    assert lake_rows(lake.as_uri(), "select route_id, trips, origin_lon, k from routes where region = 'Solo'") == [
        {"route_id": "Solo-01", "trips": 6, "origin_lon": pytest.approx(7.625), "k": 1}]
    # The model estimated again still assigns the region's next trips.
    later = tmp_path / "later.csv"
    later.write_text(f"{header}\nSolo,POINT (7.63 45.03),POINT (7.73 45.13),2018-05-30 10:00:00,funny_car\n")
    assert run_pipeline(spark, [later.as_uri()], lake.as_uri()).succeeded
    assert lake_rows(lake.as_uri(), "select route_id, trips from routes where region = 'Solo'") == [
        {"route_id": "Solo-01", "trips": 7}]


def test_a_gzip_raw_copy_is_read_as_a_stream_and_rewritten_gzip_without_the_erased_lines(spark, tmp_path):
    header, lines = sample_lines()
    upload = tmp_path / "sample.csv.gz"
    upload.write_bytes(gzip.compress(("\n".join([header, *lines]) + "\n").encode()))
    lake = tmp_path / "lake"
    assert run_pipeline(spark, [upload.as_uri()], lake.as_uri()).succeeded

    erasure = forget(lake.as_uri(), Settings(), Selection(datasource=ERASED))
    (copy,) = [path for path in (lake / "raw").rglob("*") if path.is_file()]
    assert copy.name == "sample.csv.gz"
    assert gzip.decompress(copy.read_bytes()).decode().splitlines() == [
        header, *(line for line in lines if not line.endswith(f",{ERASED}"))]
    assert (erasure.trips, erasure.raw_files, erasure.raw_lines) == (33, 1, 33)


def test_raw_copies_the_ingest_refused_are_read_as_far_as_they_go(tmp_path):
    header, lines = sample_lines()
    body = ("\n".join([header, *lines]) + "\n").encode()
    (tmp_path / "truncated.csv.gz").write_bytes(gzip.compress(body)[:-100])  # cut in transfer
    (tmp_path / "not gzip.csv.gz").write_bytes(body)  # named .gz, sent as text
    filesystem = pafs.LocalFileSystem()
    truncated = [line.decode() for line in read_lines(filesystem, str(tmp_path / "truncated.csv.gz"))]
    assert 1 < len(truncated) <= len(lines) and truncated[0] == header + "\n"
    assert all(line.rstrip("\n") in lines for line in truncated[1:-1])
    assert [line.decode().rstrip("\n") for line in read_lines(filesystem, str(tmp_path / "not gzip.csv.gz"))] == [
        header, *lines]
    assert is_gzip(filesystem, str(tmp_path / "truncated.csv.gz"))
    assert not is_gzip(filesystem, str(tmp_path / "not gzip.csv.gz"))


def test_forget_on_an_s3_lake_leaves_no_object_version_holding_an_erased_trip(spark, moto_endpoint, test_settings):
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", **MOTO_CREDENTIALS)
    s3.create_bucket(Bucket="forget-lake")
    s3.put_bucket_versioning(Bucket="forget-lake", VersioningConfiguration={"Status": "Enabled"})
    root = "s3://forget-lake/lake"
    assert run_pipeline(spark, [SAMPLE.as_uri()], root, settings=test_settings).succeeded
    erased_ids = {row["trip_id"] for row in lake_rows(root, f"select trip_id from trips where datasource = '{ERASED}'",
                                                      test_settings)}

    def versions_holding_erased_trips() -> dict[str, list[str]]:
        held = {}
        for page in s3.get_paginator("list_object_versions").paginate(Bucket="forget-lake"):
            for version in page.get("Versions", []):
                body = s3.get_object(Bucket="forget-lake", Key=version["Key"], VersionId=version["VersionId"])["Body"]
                text = text_of(version["Key"], body.read())
                if found := [needle for needle in needles(erased_ids) if needle in text]:
                    held[f"{version['Key']}@{version['VersionId']}"] = found
        return held

    assert any("/raw/" in key for key in versions_holding_erased_trips()), "the check finds the raw copy before"

    erasure = forget(root, test_settings, Selection(datasource=ERASED))

    assert (erasure.trips, erasure.raw_lines) == (33, 33) and erasure.object_versions_deleted > 0
    assert lake_rows(root, "select count(*) as n from trips", test_settings) == [{"n": 67}]
    assert lake_rows(root, "select sum(trips) as n from weekly_trips", test_settings) == [{"n": 67}]
    assert versions_holding_erased_trips() == {}


def test_an_old_version_s3_refuses_to_delete_is_an_error_naming_it(moto_endpoint, test_settings):
    """S3 answers delete_objects per key with HTTP 200: a version it kept (here under an Object Lock legal hold, as
    a missing s3:DeleteObjectVersion would) must not pass for erased."""
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", **MOTO_CREDENTIALS)
    s3.create_bucket(Bucket="locked-lake", ObjectLockEnabledForBucket=True)
    s3.put_object(Bucket="locked-lake", Key="lake/raw/some-ingestion/a.csv", Body=b"erased", ObjectLockLegalHoldStatus="ON")
    s3.put_object(Bucket="locked-lake", Key="lake/raw/some-ingestion/a.csv", Body=b"rewritten")
    s3.put_object(Bucket="locked-lake", Key="lake/raw/other-ingestion/b.csv", Body=b"erased")
    s3.put_object(Bucket="locked-lake", Key="lake/raw/other-ingestion/b.csv", Body=b"rewritten")

    with pytest.raises(PermissionError, match="lake/raw/some-ingestion/a.csv: AccessDenied"):
        delete_old_versions("s3://locked-lake/lake", test_settings, ["raw"])

    kept = [(version["Key"], version["IsLatest"]) for version in s3.list_object_versions(Bucket="locked-lake")["Versions"]]
    assert sorted(kept) == [("lake/raw/other-ingestion/b.csv", True), ("lake/raw/some-ingestion/a.csv", False),
                            ("lake/raw/some-ingestion/a.csv", True)], "what could go went; the locked version is named"


def test_forget_of_the_sample_alone_gives_the_documented_answers(spark, tmp_path):
    lake = tmp_path / "lake"
    assert run_pipeline(spark, [SAMPLE.as_uri()], lake.as_uri()).succeeded
    run_cli(["forget", "--datasource", ERASED, "--lake-root", str(lake), "--json"])
    assert lake_rows(lake.as_uri(), "select count(*) as n from trips") == [{"n": 67}]
    answer = weekly_average(lake, "Prague")
    assert (answer["trips"], answer["weeks"], answer["weekly_average"]) == (21, 5, 4.2)


def test_a_dry_run_counts_and_changes_nothing(lake):
    before = every_file_text(lake)
    printed = json.loads(run_cli(["forget", "--datasource", ERASED, "--lake-root", str(lake), "--json", "--dry-run"]))
    assert (printed["dry_run"], printed["trips"], printed["rejected_rows"], printed["raw_lines"]) == (True, 33, 1, 35)
    after = every_file_text(lake)
    assert {path for path in after if "/_lease" not in path} == {path for path in before if "/_lease" not in path}
    assert lake_rows(lake.as_uri(), "select count(*) as n from trips") == [{"n": 101}]


def test_a_selection_takes_the_lines_its_criteria_name():
    header, lines = sample_lines()
    positions = header_positions(header)
    fields = [line_fields(line, positions) for line in lines]
    box = BoundingBox(14.3, 49.9, 14.6, 50.2)

    def inside(point: str) -> bool:
        lon, lat = (float(number) for number in point.removeprefix("POINT (").removesuffix(")").split())
        return box.min_lon <= lon <= box.max_lon and box.min_lat <= lat <= box.max_lat

    for match, combine in (("origin", lambda o, d: o), ("destination", lambda o, d: d), ("both", all2), ("any", any2)):
        taken = Selection(region="Prague", bbox=box, match=match)
        expected = [line["region"] == "Prague" and combine(inside(line["origin_coord"]), inside(line["destination_coord"]))
                    for line in fields]
        assert [taken.takes_line(line) for line in fields] == expected
    assert 0 < sum(Selection(region="Prague", bbox=box, match="any").takes_line(line) for line in fields) < 34
    day = next(line["datetime"][:10] for line in fields if line["datasource"] == ERASED)
    one_day = Selection(datasource=ERASED, from_date=date.fromisoformat(day), to_date=date.fromisoformat(day))
    assert sum(one_day.takes_line(line) for line in fields) == sum(
        line["datasource"] == ERASED and line["datetime"].startswith(day) for line in fields) > 0
    listed = Selection(trip_ids=frozenset({trip_id_of(fields[0])}))
    assert [listed.takes_line(line) for line in fields].count(True) == 1
    assert not Selection(datasource=ERASED).takes_line({"datasource": "funny_car"})
    with pytest.raises(SelectionError, match="say what to forget"):
        Selection()


def all2(origin: bool, destination: bool) -> bool:
    return origin and destination


def any2(origin: bool, destination: bool) -> bool:
    return origin or destination


def test_a_selection_reads_only_the_trips_files_its_partition_and_statistics_allow():
    week = {"region": "Prague", "week_start": "2018-05-28"}
    low = {"datasource": "bad_diesel_vehicles", "trip_id": "1" * 32, "origin_lon": 14.4, "origin_lat": 50.0,
           "destination_lon": 14.5, "destination_lat": 50.1}
    high = {"datasource": "funny_car", "trip_id": "8" * 32, "origin_lon": 14.5, "origin_lat": 50.1,
            "destination_lon": 14.6, "destination_lat": 50.2}

    def may(**criteria) -> bool:
        return Selection(**criteria).file_may_hold(week, low, high)

    assert may(datasource="cheap_mobile") and not may(datasource="zebra_rides")
    assert may(region="Prague") and not may(region="Turin")
    assert may(region="Prague", from_date=date(2018, 6, 3), to_date=date(2018, 6, 3)), "the Sunday of that week"
    assert not may(region="Prague", from_date=date(2018, 6, 4)) and not may(region="Prague", to_date=date(2018, 5, 27))
    assert may(region="Prague", to_date=date(2018, 5, 28))
    assert not may(trip_ids=frozenset({"9" * 32})) and may(trip_ids=frozenset({"9" * 32, "2" * 32}))
    box = BoundingBox(14.55, 50.15, 14.7, 50.3)  # where the file's destinations may lie, not its origins
    assert may(bbox=box, match="destination") and may(bbox=box, match="any")
    assert not may(bbox=box, match="origin") and not may(bbox=box, match="both")
    assert Selection(datasource="zebra_rides").file_may_hold(week, {}, {}), "no statistics: the file is read"
    assert Selection(datasource="funny_car_sharing").file_may_hold(week, low, high), \
        "a maximum a writer kept as a prefix of a longer name"


def test_forget_without_a_selection_is_a_usage_error(lake, capsys):
    assert cli.main(["forget", "--lake-root", str(lake)]) == 2
    assert "say what to forget" in capsys.readouterr().err


def test_a_trip_id_list_is_checked_and_recorded_by_its_digest(tmp_path):
    listed = tmp_path / "ids.txt"
    listed.write_text("not-an-id\n")
    with pytest.raises(SelectionError, match="not trip ids"):
        Selection.with_trip_ids_from(listed)
    listed.write_text("# erased on request 42\n" + "0" * 32 + "\n\n")
    selection = Selection.with_trip_ids_from(listed)
    assert selection.trip_ids == frozenset({"0" * 32})
    assert selection.describe()["trip_ids"] == 1 and len(selection.describe()["trip_ids_sha256"]) == 64
