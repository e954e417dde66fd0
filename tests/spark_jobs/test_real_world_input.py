"""Files as real exporters write them, through `triplake run`: RFC 4180 quoting, bytes that are not UTF-8,
truncated or mislabelled gzip, binary files, upper-case names. Valid data is ingested exactly; anything else gets a
reason, keeps its bytes, and never reaches trips."""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from spark_jobs.common.input_format import RAW_BYTES_PREFIX
from tests.conftest import SAMPLE, lake_rows, read_table
from triplake.cli import main

HEADER = ["region", "origin_coord", "destination_coord", "datetime", "datasource"]


def run(capsys, lake: Path, *files: Path) -> tuple[int, dict, str]:
    capsys.readouterr()
    code = main(["run", "--json", "--lake-root", str(lake), "--input", *map(str, files)])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def trips_of(lake: Path) -> list[dict]:
    return lake_rows(lake.as_uri(), "select region, origin_lon, origin_lat, destination_lon, destination_lat, "
                                    "started_at, datasource from trips order by started_at")


def test_quoted_fields_with_commas_and_doubled_quotes_are_ingested_as_their_values(spark, capsys, tmp_path):
    source = tmp_path / "quoted.csv"
    source.write_text(
        "region,origin_coord,destination_coord,datetime,datasource\n"
        '"Washington, D.C.",POINT (-77.03 38.89),POINT (-77.01 38.90),2018-05-28 09:00:00,"cheap, mobile"\n'
        '"Turin ""Centro""","POINT (7.68 45.07)", POINT (7.69 45.06) ,2018-05-28 10:00:00,funny_car\n'
        'Prague,POINT (14.49 50.00),POINT (14.43 50.04),2018-05-28 11:00:00,""\n'
        '"Prague,POINT (14.49 50.00),POINT (14.43 50.04),2018-05-28 12:00:00,funny_car\n'
        '"a","b","c","d","e","f"\n'
    )
    code, result, _ = run(capsys, tmp_path / "lake", source)
    assert code == 0
    (ingestion,) = result["ingestions"]
    assert ingestion["rejected_by_reason"] == {"unclosed_quote": 1, "wrong_field_count": 1, "empty_datasource": 1}
    assert (ingestion["rows_read"], ingestion["rows_written"]) == (5, 2)
    trips = trips_of(tmp_path / "lake")
    assert [(trip["region"], trip["datasource"]) for trip in trips] == [
        ("Washington, D.C.", "cheap, mobile"), ('Turin "Centro"', "funny_car")]
    assert (trips[1]["origin_lon"], trips[1]["destination_lat"]) == (7.68, 45.06)
    rejected = {row["reason"]: row["raw_line"] for row in lake_rows((tmp_path / "lake").as_uri(), "select * from rejected_rows")}
    assert rejected["unclosed_quote"] == source.read_text().splitlines()[4]


def test_a_line_that_is_not_utf8_is_rejected_with_its_exact_bytes_and_never_reaches_trips(spark, capsys, tmp_path):
    latin1 = "São Paulo,POINT (-46.63 -23.55),POINT (-46.60 -23.50),2018-05-28 09:00:00,funny_car".encode("latin-1")
    utf8 = "München,POINT (11.57 48.13),POINT (11.60 48.14),2018-05-28 10:00:00,funny_car".encode("utf-8")
    source = tmp_path / "mixed.csv"
    source.write_bytes(b"region,origin_coord,destination_coord,datetime,datasource\n" + latin1 + b"\n" + utf8 + b"\n")
    code, result, _ = run(capsys, tmp_path / "lake", source)
    assert code == 0
    (ingestion,) = result["ingestions"]
    assert ingestion["rejected_by_reason"] == {"bad_encoding": 1} and ingestion["rows_written"] == 1
    assert [trip["region"] for trip in trips_of(tmp_path / "lake")] == ["München"]
    (rejected,) = lake_rows((tmp_path / "lake").as_uri(), "select line_number, raw_line, reason from rejected_rows")
    assert rejected["line_number"] == 2 and rejected["reason"] == "bad_encoding"
    assert base64.b64decode(rejected["raw_line"].removeprefix(RAW_BYTES_PREFIX)) == latin1
    raw = next((tmp_path / "lake" / "raw").rglob("mixed.csv"))
    assert raw.read_bytes() == source.read_bytes()


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data)


@pytest.mark.parametrize(("name", "content", "says"), [
    ("cut.csv.gz", lambda: gzipped(SAMPLE.read_bytes())[:600], "truncated or cut off"),
    ("plain.csv.gz", lambda: SAMPLE.read_bytes(), "not gzip data"),
    ("sheet.csv", lambda: b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00binary\x00\x00\n" * 3, "not a UTF-8 text CSV"),
    ("utf16.csv", lambda: SAMPLE.read_text().encode("utf-16"), "not a UTF-8 text CSV"),
])
def test_an_unreadable_file_fails_as_invalid_file_in_one_line_and_is_recorded(spark, capsys, tmp_path, name, content,
                                                                              says):
    source = tmp_path / name
    source.write_bytes(content())
    code, result, err = run(capsys, tmp_path / "lake", source)
    assert code == 1
    (ingestion,) = result["ingestions"]
    assert ingestion["status"] == "FAILED" and ingestion["error"]["kind"] == "invalid_file"
    assert says in ingestion["error"]["message"]
    assert "Traceback" not in err and "at org.apache" not in err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        f"error: {source.as_uri()}: {ingestion['error']['message']}"]
    lake = tmp_path / "lake"
    assert lake_rows(lake.as_uri(), "select count(*) as trips from trips") == [{"trips": 0}]
    (record,) = lake_rows(lake.as_uri(), "select status, error from ingestion_reconciliation")
    assert record["status"] == "FAILED" and says in json.loads(record["error"])["message"]
    (raw,) = (lake / "raw").rglob(name)
    assert raw.read_bytes() == source.read_bytes(), "the file is kept as it was sent"


def test_upper_case_names_are_ingested_gzip_included(spark, capsys, tmp_path):
    upper = tmp_path / "TRIPS.CSV.GZ"
    upper.write_bytes(gzipped(SAMPLE.read_bytes()))
    code, result, _ = run(capsys, tmp_path / "lake", upper)
    assert code == 0 and result["ingestions"][0]["rows_written"] == 100
    assert result["ingestions"][0]["raw_uri"].endswith("/TRIPS.CSV.gz")


def random_text(rng: random.Random) -> str:
    """A region or datasource name: letters of several scripts, commas, quotes and inner blanks."""
    alphabet = "abcxyzÄÖüßéñøłŁ東京Ωж ,\"'-_."
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))).strip()
    return text if text and "/" not in text and "=" not in text and ".." not in text else "plain"


def test_random_valid_trips_written_by_pythons_csv_module_round_trip_exactly(spark, capsys, tmp_path):
    rng = random.Random(20261201)
    start = datetime(2018, 5, 1)
    regions = [random_text(rng) for _ in range(4)]  # few regions: each is a partition and a route model
    expected, buffer = {}, io.StringIO()
    writer = csv.writer(buffer, lineterminator=rng.choice(["\n", "\r\n"]))
    writer.writerow(HEADER)
    for _ in range(400):
        region, datasource = rng.choice(regions), random_text(rng)
        origin = (round(rng.uniform(-180, 180), 7), round(rng.uniform(-90, 90), 7))
        destination = (round(rng.uniform(-180, 180), 7), round(rng.uniform(-90, 90), 7))
        started = start + timedelta(seconds=rng.randrange(14 * 24 * 3600))
        row = [region, f"POINT ({origin[0]} {origin[1]})", f"POINT ({destination[0]} {destination[1]})",
               started.strftime("%Y-%m-%d %H:%M:%S"), datasource]
        quoting = rng.choice([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC])
        csv.writer(buffer, quoting=quoting, lineterminator=writer.dialect.lineterminator).writerow(row)
        expected[(region, *origin, *destination, started)] = datasource
    source = tmp_path / "random.csv"
    source.write_text(buffer.getvalue(), encoding="utf-8")

    code, result, _ = run(capsys, tmp_path / "lake", source)
    assert code == 0 and result["ingestions"][0]["rows_rejected"] == 0
    found = {(trip["region"], trip["origin_lon"], trip["origin_lat"], trip["destination_lon"], trip["destination_lat"],
              trip["started_at"]): trip["datasource"] for trip in trips_of(tmp_path / "lake")}
    assert found == expected
    assert read_table((tmp_path / "lake").as_uri(), "curated/trips", partitioned=True).num_rows == len(expected)
