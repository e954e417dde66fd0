"""`triplake replay`: an ingestion's raw file, or its rejected lines, ingested again as a new ingestion with every
guarantee of `triplake run`."""

from __future__ import annotations

import contextlib
import gzip
import io
import json

from tests.conftest import SAMPLE, lake_rows
from triplake import cli

BAD_LINES = ["Prague,POINT (14.4 50.0),POINT (14.5 50.1),not a time,cheap_mobile",
             "Turin,POINT (7.6 45.0),POINT (7.7 45.1),2018-05-29 10:00:00,"]


def run_json(arguments: list[str]) -> tuple[int, dict]:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main([*arguments, "--json"])
    return code, json.loads(printed.getvalue())


def test_replay_ingests_the_raw_file_or_its_rejected_lines_again_as_new_ingestions(tmp_path):
    header, *lines = SAMPLE.read_text().splitlines()
    upload = tmp_path / "with bad lines.csv"
    upload.write_text("\n".join([header, *lines[:10], *BAD_LINES]) + "\n")
    lake = tmp_path / "lake"
    code, first = run_json(["run", "--input", str(upload), "--lake-root", str(lake)])
    assert code == 0
    original = first["ingestions"][0]
    assert (original["rows_written"], original["rows_rejected"]) == (10, 2)

    code, again = run_json(["replay", original["ingestion_id"], "--lake-root", str(lake)])
    assert code == 0
    replayed = again["ingestions"][0]
    assert replayed["ingestion_id"] != original["ingestion_id"]
    assert replayed["source_uri"].endswith(f"/raw/{original['ingestion_id']}/with bad lines.csv")
    assert (replayed["rows_read"], replayed["already_present"], replayed["rows_written"], replayed["rows_rejected"]) == (
        12, 10, 0, 2)

    code, rejected = run_json(["replay", original["ingestion_id"], "--rejected-only", "--lake-root", str(lake)])
    assert code == 0
    only = rejected["ingestions"][0]
    assert (only["rows_read"], only["rows_rejected"], only["rows_written"]) == (2, 2, 0)
    assert sorted(row["raw_line"] for row in lake_rows(
        lake.as_uri(), f"select raw_line from rejected_rows where ingestion_id = '{only['ingestion_id']}'")) == sorted(BAD_LINES)
    assert lake_rows(lake.as_uri(), "select count(*) as n from trips") == [{"n": 10}]
    assert lake_rows(lake.as_uri(), "select count(*) as n from ingestions where status = 'SUCCEEDED'") == [{"n": 3}]


def test_replay_of_an_unknown_ingestion_says_so(tmp_path, capsys):
    assert cli.main(["replay", "20261205T000000Z-nothere", "--lake-root", str(tmp_path / "lake")]) == 2
    assert "has no raw copy" in capsys.readouterr().err
    assert cli.main(["replay", "../etc", "--lake-root", str(tmp_path / "lake")]) == 2
    assert "is not an ingestion id" in capsys.readouterr().err


def test_replay_of_the_rejected_lines_of_a_gzip_upload_reads_its_raw_copy(tmp_path):
    header, *lines = SAMPLE.read_text().splitlines()
    upload = tmp_path / "bad lines.csv.gz"
    upload.write_bytes(gzip.compress(("\n".join([header, *lines[:3], *BAD_LINES]) + "\n").encode()))
    lake = tmp_path / "lake"
    code, first = run_json(["run", "--input", str(upload), "--lake-root", str(lake)])
    assert code == 0 and first["ingestions"][0]["rows_rejected"] == 2

    code, rejected = run_json(["replay", first["ingestions"][0]["ingestion_id"], "--rejected-only", "--lake-root", str(lake)])
    assert code == 0
    only = rejected["ingestions"][0]
    assert (only["rows_read"], only["rows_rejected"], only["rows_written"]) == (2, 2, 0)
    assert only["source_uri"].endswith("-rejected-bad lines.csv")
