"""Weekly averages through the sql/queries files on the local engine, and the CLI around them.

Golden answers are counted by hand from tests/fixtures/trips_sample.csv (100 trips, 2018-05-01 to 2018-05-31):
the trips fall in the five ISO weeks of Mondays 2018-04-30 .. 2018-05-28 and every region has trips in each.
  Prague 10+8+8+5+3 = 34, Turin 8+6+6+14+4 = 38, Hamburg 5+6+5+7+5 = 28 trips.
Box 14.40,50.00,14.50,50.10 (Prague): 8 trips start in it, 11 end in it, 4 do both, so 8+11-4 = 15 touch it.
"""

from __future__ import annotations

import json
from datetime import date

import pytest

from triplake import cli
from triplake.settings import Settings
from triplake.query.local import LocalEngine
from triplake.weekly_average import Area, AreaError, BoundingBox, weekly_average

PRAGUE_BOX = BoundingBox(14.40, 50.00, 14.50, 50.10)
SAMPLE_WEEKS = {"weeks": 5, "first_week": "2018-04-30", "last_week": "2018-05-28"}


@pytest.fixture(scope="module")
def sample_engine(sample_lake):
    return LocalEngine(sample_lake, Settings())


def answer(engine, area, from_date=None, to_date=None):
    result = weekly_average(engine, area, from_date, to_date)
    return {key: result[key] for key in ("weekly_average", "trips", "weeks", "first_week", "last_week")}


@pytest.mark.parametrize(("region", "trips"), [("Prague", 34), ("Turin", 38), ("Hamburg", 28)])
def test_weekly_average_per_region_of_the_sample(sample_engine, region, trips):
    assert answer(sample_engine, Area(region=region)) == {"weekly_average": trips / 5, "trips": trips, **SAMPLE_WEEKS}


def test_weeks_of_the_window_without_trips_count_as_zero(sample_engine):
    # June 2018 holds no trips: the window 2018-05-28 .. 2018-06-11 covers the weeks of Mondays May 28,
    # June 4 and June 11 and only the first has trips.
    result = answer(sample_engine, Area(region="Prague"), date(2018, 5, 28), date(2018, 6, 11))
    assert result == {"weekly_average": 1.0, "trips": 3, "weeks": 3, "first_week": "2018-05-28", "last_week": "2018-06-11"}


@pytest.mark.parametrize(("match", "trips"), [("origin", 8), ("destination", 11), ("both", 4), ("any", 15)])
def test_bounding_box_in_prague_for_every_match_mode(sample_engine, match, trips):
    result = weekly_average(sample_engine, Area(bbox=PRAGUE_BOX, match=match))
    assert result == {"weekly_average": trips / 5, "trips": trips, **SAMPLE_WEEKS,
                      "area": {"bbox": [14.40, 50.00, 14.50, 50.10]}, "match": match}


def test_a_route_average_counts_only_that_route_and_routes_add_up_to_the_region(sample_engine):
    routes = sample_engine.connection.execute(
        "select route_id, trips from routes where region = 'Prague' order by route_id").fetchall()
    averages = [weekly_average(sample_engine, Area(region="Prague", route_id=route_id)) for route_id, _ in routes]
    assert [result["trips"] for result in averages] == [trips for _, trips in routes]
    assert sum(result["trips"] for result in averages) == 34


def test_an_unknown_region_is_zero_over_the_lake_window_and_input_is_never_sql(sample_engine):
    for region in ("Atlantis", "x' OR '1'='1", "Prague'; drop table trips; --"):
        assert answer(sample_engine, Area(region=region)) == {"weekly_average": 0.0, "trips": 0, **SAMPLE_WEEKS}
    assert answer(sample_engine, Area(region="Prague"))["trips"] == 34  # still there


def year_boundary_rows() -> list[str]:
    """Trips from late December 2018 to mid January 2019; the ISO week of Monday 2019-01-07 has none.

    Week of Mon 2018-12-24: Prague 3 (the last one on Sunday 23:59:59), Turin 1.
    Week of Mon 2018-12-31 (ISO 2019-W01, which starts in 2018): Prague 2 (Dec 31 00:00:00 and Jan 1).
    Week of Mon 2019-01-07: nothing at all.
    Week of Mon 2019-01-14: Prague 4, Turin 2.
    One Prague trip lies exactly on the corners of the box 14.4,50.0,14.5,50.1 and one just outside.
    """
    prague = [
        ("2018-12-27 08:00:00", "14.45 50.05", "14.46 50.06"),
        ("2018-12-28 09:00:00", "14.4 50.0", "14.5 50.1"),  # on the box's corners: inside (bounds inclusive)
        ("2018-12-30 23:59:59", "14.3999999 50.05", "14.45 50.05"),  # origin just west of the box
        ("2018-12-31 00:00:00", "14.41 50.01", "14.42 50.02"),
        ("2019-01-01 12:00:00", "14.43 50.03", "14.44 50.04"),
        ("2019-01-14 07:00:00", "14.45 50.05", "14.46 50.06"),
        ("2019-01-15 07:00:00", "14.45 50.05", "14.46 50.06"),
        ("2019-01-17 07:00:00", "14.45 50.05", "14.46 50.06"),
        ("2019-01-20 23:59:59", "14.45 50.05", "14.46 50.06"),
    ]
    turin = [
        ("2018-12-29 10:00:00", "7.68 45.07", "7.69 45.08"),
        ("2019-01-16 10:00:00", "7.68 45.07", "7.69 45.08"),
        ("2019-01-18 10:00:00", "7.68 45.07", "7.69 45.08"),
    ]
    return [
        f"{region},POINT ({origin}),POINT ({destination}),{started},cheap_mobile"
        for region, trips in (("Prague", prague), ("Turin", turin))
        for started, origin, destination in trips
    ]


@pytest.fixture(scope="module")
def year_engine(spark, tmp_path_factory):
    from triplake.pipeline import run_pipeline

    folder = tmp_path_factory.mktemp("year")
    source = folder / "new_year.csv"
    source.write_text("\n".join(["region,origin_coord,destination_coord,datetime,datasource", *year_boundary_rows()]) + "\n")
    lake = (folder / "lake").as_uri()
    assert run_pipeline(spark, [source.as_uri()], lake).succeeded
    return LocalEngine(lake, Settings())


def test_weeks_across_the_new_year_are_named_with_their_year_and_the_empty_week_counts(year_engine):
    assert answer(year_engine, Area(region="Prague")) == {
        "weekly_average": 9 / 4, "trips": 9, "weeks": 4, "first_week": "2018-12-24", "last_week": "2019-01-14"}
    assert answer(year_engine, Area(region="Turin"))["weekly_average"] == 3 / 4


@pytest.mark.parametrize(
    ("from_date", "to_date", "expected"),
    [
        # Tuesday Jan 1 to Sunday Jan 20: the weeks of Mondays Dec 31, Jan 7 (empty) and Jan 14.
        (date(2019, 1, 1), date(2019, 1, 20), {"trips": 6, "weeks": 3, "first_week": "2018-12-31", "last_week": "2019-01-14"}),
        # Only the empty week.
        (date(2019, 1, 7), date(2019, 1, 13), {"trips": 0, "weeks": 1, "first_week": "2019-01-07", "last_week": "2019-01-07"}),
        # Sunday Dec 30 is still the week of Dec 24; Monday Dec 31 starts the next.
        (date(2018, 12, 30), date(2018, 12, 31), {"trips": 5, "weeks": 2, "first_week": "2018-12-24", "last_week": "2018-12-31"}),
    ],
)
def test_from_and_to_windows_across_the_new_year(year_engine, from_date, to_date, expected):
    result = answer(year_engine, Area(region="Prague"), from_date, to_date)
    assert result == {"weekly_average": expected["trips"] / expected["weeks"], **expected}


def test_bounding_box_bounds_are_inclusive(year_engine):
    box = Area(bbox=BoundingBox(14.4, 50.0, 14.5, 50.1), match="both")
    # All 9 Prague trips lie in the box except the one whose origin is 1e-7 degrees west of it.
    assert answer(year_engine, box)["trips"] == 8
    assert answer(year_engine, Area(bbox=box.bbox, match="destination"))["trips"] == 9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("14.4,50.0,14.5", "has 3 number"),
        ("14.4,50.0,14.5,50.1,3", "has 5 number"),
        ("a,b,c,d", "not four numbers"),
        ("14.4,nan,14.5,50.1", "non-finite"),
        ("14.5,50.0,14.4,50.1", "min_lon 14.5 is greater than max_lon 14.4"),
        ("14.4,50.1,14.5,50.0", "min_lat 50.1 is greater than max_lat 50.0"),
        ("14.4,95,14.5,96", "latitudes must lie in"),
    ],
)
def test_malformed_bounding_boxes_are_clear_errors(text, message):
    with pytest.raises(AreaError, match=message):
        BoundingBox.parse(text)


def test_an_area_is_a_region_or_a_box_and_a_route_needs_its_region():
    with pytest.raises(AreaError, match="exactly one area"):
        Area()
    with pytest.raises(AreaError, match="exactly one area"):
        Area(region="Prague", bbox=PRAGUE_BOX)
    with pytest.raises(AreaError, match="--route needs --region"):
        Area(bbox=PRAGUE_BOX, route_id="Prague-01")
    with pytest.raises(AreaError, match="unknown match mode 'inside'"):
        Area(bbox=PRAGUE_BOX, match="inside")


def test_cli_weekly_average_json_is_the_design_object(sample_lake, capsys):
    assert cli.main(["weekly-average", "--region", "Prague", "--json", "--lake-root", sample_lake]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "weekly_average": 6.8, "trips": 34, "weeks": 5, "first_week": "2018-04-30", "last_week": "2018-05-28",
        "area": {"region": "Prague"}, "match": None,
    }


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--bbox", "14.4,50.0,14.5"], "has 3 number"),
        (["--region", "Prague", "--from", "2018-05-20", "--to", "2018-05-01"], "the window is empty"),
        (["--bbox", "14.4,50.0,14.5,50.1", "--route", "Prague-01"], "--route needs --region"),
    ],
)
def test_cli_bad_input_is_a_one_line_error_with_exit_2(sample_lake, capsys, arguments, message):
    assert cli.main(["weekly-average", *arguments, "--lake-root", sample_lake]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err and captured.out == ""


def test_cli_rejects_an_unknown_match_mode_and_a_missing_area(sample_lake, capsys):
    for arguments in (["--bbox", "1,2,3,4", "--match", "inside"], []):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["weekly-average", *arguments, "--lake-root", sample_lake])
        assert exit_.value.code == 2
    assert "invalid choice: 'inside'" in capsys.readouterr().err


def test_cli_answers_both_bonus_questions_on_the_sample(sample_lake, capsys):
    def rows(query: str, *parameters: str) -> list[dict]:
        assert cli.main(["sql", "--file", f"sql/queries/{query}.sql", *parameters, "--format", "json",
                         "--lake-root", sample_lake]) == 0
        return json.loads(capsys.readouterr().out)["rows"]

    # The two regions with most trips are Turin (38) and Prague (34). Turin's latest trip is 2018-05-31 06:20:59
    # by pt_search_app, Prague's 2018-05-29 12:44:02 by cheap_mobile; the later of the two is Turin's.
    assert rows("latest_datasource_per_top_region") == [
        {"region_rank": 1, "region": "Turin", "region_trips": 38, "latest_datasource": "pt_search_app",
         "latest_trip_started_at": "2018-05-31T06:20:59"},
        {"region_rank": 2, "region": "Prague", "region_trips": 34, "latest_datasource": "cheap_mobile",
         "latest_trip_started_at": "2018-05-29T12:44:02"},
    ]
    assert rows("latest_datasource_of_top_regions") == [
        {"latest_datasource": "pt_search_app", "region": "Turin", "latest_trip_started_at": "2018-05-31T06:20:59"}
    ]
    # cheap_mobile: 13 trips in Prague, 10 in Hamburg, 10 in Turin (ties by name).
    assert rows("regions_of_datasource", "--param", "datasource=cheap_mobile") == [
        {"region": "Prague", "trips": 13}, {"region": "Hamburg", "trips": 10}, {"region": "Turin", "trips": 10}
    ]


def test_cli_sql_csv_and_parameter_errors(sample_lake, capsys):
    assert cli.main(["sql", "select region, count(*) as trips from trips group by region order by region",
                     "--format", "csv", "--lake-root", sample_lake]) == 0
    assert capsys.readouterr().out == "region,trips\nHamburg,28\nPrague,34\nTurin,38\n"
    assert cli.main(["sql", "--file", "sql/queries/regions_of_datasource.sql", "--lake-root", sample_lake]) == 2
    assert "missing --param datasource=..." in capsys.readouterr().err
    assert cli.main(["sql", "select 1", "--param", "novalue", "--lake-root", sample_lake]) == 2
    assert "expected name=value" in capsys.readouterr().err


def test_a_narrow_terminal_wraps_ids_and_uris_instead_of_cutting_them():
    from io import StringIO

    from rich.console import Console

    uri = "s3://triplake-landing/incoming/2018/05/trips_of_the_whole_month_from_every_datasource.csv.gz"
    ingestion_id = "20180531T062059Z-0123456789abcdef0123456789abcdef"
    from triplake.terminal import result_table

    table = result_table(["ingestion_id", "source_uri", "rows_written"], [[ingestion_id, uri, 100]])
    screen = StringIO()
    Console(file=screen, width=60, color_system=None).print(table)
    lines = screen.getvalue().splitlines()
    cells = [line.split("│")[1:-1] for line in lines if line.startswith("│")]
    columns = ["".join(cell[index].strip() for cell in cells) for index in range(3)]
    assert columns == [ingestion_id, uri, "100"]
    assert len(cells) > 1 and all(len(line) <= 60 for line in lines)


def test_an_empty_lake_says_how_to_ingest_with_the_batch_and_with_the_stack(tmp_path, capsys):
    assert cli.main(["weekly-average", "--region", "Prague", "--lake-root", tmp_path.as_uri()]) == 2
    error = capsys.readouterr().err
    assert "has no trips yet" in error and "triplake run --input FILE" in error and "triplake upload FILE" in error
