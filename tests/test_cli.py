"""The `triplake` command line: what a user types and what they get back."""

from __future__ import annotations

import json

import pytest

from triplake.cli import main
from tests.conftest import BAD_ROWS, SAMPLE


def test_run_json_prints_one_object_with_reconciled_counts(spark, tmp_path, capsys):
    lake = tmp_path / "lake"
    code = main(["run", "--input", str(BAD_ROWS), str(SAMPLE), "--lake-root", str(lake), "--json"])

    assert code == 0
    output = json.loads(capsys.readouterr().out)  # exactly one JSON object on stdout
    assert output["status"] == "SUCCEEDED"
    assert output["lake_root"] == lake.as_uri()
    bad, sample = output["ingestions"]
    assert bad["rows_read"] == bad["rows_valid"] + bad["rows_rejected"] == 18
    assert bad["rows_valid"] == bad["duplicates_in_batch"] + bad["already_present"] + bad["rows_written"] == 3
    assert bad["rejected_by_reason"]["unsafe_region"] == 2
    # lines 2 and 18 of the bad file are trips of the sample (line 18 spelled loosely): already in the lake
    assert sample["rows_written"] == 98 and sample["already_present"] == 2
    assert bad["ingestion_id"] != sample["ingestion_id"]
    # each ingestion went on through routes and the weekly table
    # The bad file's 2 trips gave their regions first models; the sample's 98 grow them far past 4x, so every trip
    # of the lake gets its route from a model fitted for the sample (a refit, or a region's first model).
    assert sample["routes"]["trips_assigned"] == bad["rows_written"] + sample["rows_written"] == 100
    reasons = {region["region"]: region["fit_reason"] for region in sample["routes"]["regions"]}
    assert set(reasons) == {"Hamburg", "Prague", "Turin"} and all(reasons.values()), reasons
    assert any(reason.startswith("grew ") for reason in reasons.values()), reasons
    assert {week for _, week in sample["weekly"]["partitions_rebuilt"]} >= {"2018-05-28"}


def test_run_prints_a_summary_table_and_takes_folders_and_files_with_spaces(spark, tmp_path, capsys):
    (folder := tmp_path / "my trips").mkdir()
    (upload := folder / "trips sample.csv").write_bytes(SAMPLE.read_bytes())
    lake = tmp_path / "my lake"
    assert main(["run", "--input", str(upload), "--lake-root", str(lake)]) == 0
    out = capsys.readouterr().out
    assert "trips sample.csv" in out and "SUCCEEDED" in out and "100" in out

    # The lake is the folder the user named (not "my%20lake"), and it answers by its path and by its file:// URI.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["my lake", "my trips"]
    for lake_root in (str(lake), lake.as_uri()):
        assert main(["sql", "--lake-root", lake_root, "--format", "json", "select count(*) as n from trips"]) == 0
        assert json.loads(capsys.readouterr().out)["rows"] == [{"n": 100}]


def test_run_with_an_invalid_file_exits_non_zero_and_says_why(spark, tmp_path, capsys):
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("a,b,c\n1,2,3\n")
    assert main(["run", "--input", str(bad_header), "--lake-root", str(tmp_path / "lake")]) == 1
    err = capsys.readouterr().err
    assert "the header does not match the trips format" in err


def test_missing_input_is_a_usage_error_before_spark_starts(tmp_path, capsys):
    assert main(["run", "--input", str(tmp_path / "nope.csv")]) == 2
    assert "input file not found" in capsys.readouterr().err


def test_generate_writes_the_file(tmp_path, capsys):
    out = tmp_path / "g.csv"
    assert main(["generate", "--rows", "1000", "--out", str(out), "--seed", "1"]) == 0
    assert len(out.read_text().splitlines()) == 1001
    assert main(["generate", "--rows", "10", "--out", str(out), "--duplicate-rate", "2"]) == 2
    assert "duplicate rate" in capsys.readouterr().err


def test_generate_spreads_the_trips_over_the_days_from_start(tmp_path, capsys):
    out = tmp_path / "g.csv"
    assert main(["generate", "--rows", "2000", "--out", str(out), "--start", "2019-12-30", "--days", "3"]) == 0
    days = {line.split(",")[3][:10] for line in out.read_text().splitlines()[1:]}
    assert days == {"2019-12-30", "2019-12-31", "2020-01-01"}
    with pytest.raises(SystemExit) as usage_error:
        main(["generate", "--rows", "10", "--out", str(out), "--start", "2019-13-01"])
    assert usage_error.value.code == 2 and "not a date" in capsys.readouterr().err


def test_routes_map_draws_a_png_of_the_regions_routes(spark, tmp_path, capsys):
    lake = tmp_path / "lake"
    assert main(["run", "--input", str(SAMPLE), "--lake-root", str(lake)]) == 0
    out = tmp_path / "prague.png"
    assert main(["routes-map", "--region", "Prague", "--out", str(out), "--lake-root", str(lake)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert main(["routes-map", "--region", "Atlantis", "--out", str(out), "--lake-root", str(lake)]) == 2
    assert "no routes for region 'Atlantis'" in capsys.readouterr().err
