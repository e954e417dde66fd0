"""The weekly table: counts per region, route and ISO week, added by each ingestion for the weeks it touched."""

from __future__ import annotations

import json
from collections import Counter

from spark_jobs import build_weekly, group_routes, ingest
from spark_jobs.common.route_model import RouteOptions
from tests.conftest import SAMPLE, lake_rows, read_table

QUICK = RouteOptions(max_k=4, silhouette_sample_rows=2_000)


def run(spark, path, lake_root):
    ingestion = ingest.ingest_file(spark, path.as_uri(), lake_root)
    group_routes.group_routes(spark, lake_root, ingestion.ingestion_id, options=QUICK)
    return build_weekly.build_weekly(spark, lake_root, ingestion.ingestion_id)


def weekly(lake_root) -> dict[tuple[str, str, str], int]:
    rows = lake_rows(lake_root, "select * from weekly_trips")
    return {(row["region"], row["route_id"], row["week_start"].isoformat()): row["trips"] for row in rows}


def expected_from_lake(lake_root) -> Counter:
    """The weekly counts computed independently from the trip_routes files of the current models, with pyarrow."""
    rows = read_table(lake_root, "curated/trip_routes", partitioned=True).to_pylist()
    current = {}
    for row in rows:
        current[row["region"]] = max(current.get(row["region"], 0), row["model_version"])
    return Counter((row["region"], row["route_id"], str(row["week_start"])) for row in rows
                   if row["model_version"] == current[row["region"]])


def test_weekly_counts_on_inline_rows_with_a_null_route_and_a_duplicate(spark):
    frame = spark.createDataFrame(
        [("a", "Prague", "Prague-01", "2018-05-28", 1), ("a", "Prague", "Prague-01", "2018-05-28", 1),
         ("b", "Prague", "Prague-02", "2018-05-28", 1), ("c", "Prague", "Prague-01", "2018-06-04", 1),
         ("d", "Turin", None, "2018-05-28", 1), ("e", "Turin", None, "2018-05-28", 2)],
        "trip_id string, region string, route_id string, week_start string, model_version int",
    )
    result = {tuple(row[:4]): row["trips"] for row in build_weekly.weekly_counts(frame).collect()}
    assert result == {("Prague", "Prague-01", "2018-05-28", 1): 2, ("Prague", "Prague-02", "2018-05-28", 1): 1,
                      ("Prague", "Prague-01", "2018-06-04", 1): 1, ("Turin", None, "2018-05-28", 1): 1,
                      ("Turin", None, "2018-05-28", 2): 1}


def test_trips_by_route_sums_the_weeks_of_each_route(spark):
    frame = spark.createDataFrame(
        [("Prague", "Prague-01", "2018-05-21", 3), ("Prague", "Prague-01", "2018-05-28", 2),
         ("Prague", "Prague-02", "2018-05-28", 1), ("Turin", "Prague-01", "2018-05-28", 4),
         ("Turin", None, "2018-05-28", 1)],
        "region string, route_id string, week_start string, trips long",
    )
    result = {(row["region"], row["route_id"]): row["trips"] for row in build_weekly.trips_by_route(frame).collect()}
    assert result == {("Prague", "Prague-01"): 5, ("Prague", "Prague-02"): 1, ("Turin", "Prague-01"): 4, ("Turin", None): 1}


def test_the_sample_gives_weekly_counts_that_add_up_to_its_trips(spark, lake_root):
    result = run(spark, SAMPLE, lake_root)
    table = weekly(lake_root)
    assert sum(table.values()) == 100
    assert table == dict(expected_from_lake(lake_root))
    assert len(result.partitions_rebuilt) == 15  # 3 regions x 5 ISO weeks
    assert {week for _, _, week in table} == {"2018-04-30", "2018-05-07", "2018-05-14", "2018-05-21", "2018-05-28"}


def test_a_second_file_adds_counts_only_to_its_weeks_and_a_rerun_changes_nothing(spark, lake_root, tmp_path):
    lines = SAMPLE.read_text().splitlines()
    header, rows = lines[0], lines[1:]
    may_28 = [row for row in rows if "2018-05-28" <= row.split(",")[3][:10] <= "2018-06-03"]
    others = [row for row in rows if row not in may_28]
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("\n".join([header, *others]) + "\n")
    second.write_text("\n".join([header, *may_28]) + "\n")

    run(spark, first, lake_root)
    before = weekly(lake_root)
    result = run(spark, second, lake_root)

    assert {week for _, week in result.partitions_rebuilt} == {"2018-05-28"}
    after = weekly(lake_root)
    assert {key: value for key, value in after.items() if key[2] != "2018-05-28"} == before
    assert after == dict(expected_from_lake(lake_root)) and sum(after.values()) == 100
    build_weekly.build_weekly(spark, lake_root, result.ingestion_id)  # a rerun of the committed step
    assert weekly(lake_root) == after
    # the routes view: each route's trips in the whole lake, as counted from trip_routes
    routes = lake_rows(lake_root, "select * from routes")
    assert {row["route_id"]: row["trips"] for row in routes} == dict(
        Counter(read_table(lake_root, "curated/trip_routes", partitioned=True)["route_id"].to_pylist())
    )
    # what `triplake run` prints of the routes after a batch: the same, from the models and the weekly counts
    summaries = build_weekly.route_summaries(spark, lake_root, ["Hamburg", "Prague", "Turin"])
    assert {region: {row["route_id"]: row["trips"] for row in rows} for region, rows in summaries.items()} == {
        region: {row["route_id"]: row["trips"] for row in routes if row["region"] == region} for region in summaries
    }
    assert sum(row["trips"] for rows in summaries.values() for row in rows) == 100


def test_the_job_prints_its_report_as_json_and_commits_the_ingestion(spark, lake_root, capsys):
    ingestion = ingest.ingest_file(spark, SAMPLE.as_uri(), lake_root)
    group_routes.group_routes(spark, lake_root, ingestion.ingestion_id, options=QUICK)
    assert lake_rows(lake_root, "select count(*) as trips from trips") == [{"trips": 0}], "not committed yet"
    capsys.readouterr()
    assert build_weekly.main(["--lake-root", lake_root, "--ingestion-id", ingestion.ingestion_id]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["partitions_rebuilt"]) == 15 and report["committed"]
    assert lake_rows(lake_root, "select count(*) as trips from trips") == [{"trips": 100}]
