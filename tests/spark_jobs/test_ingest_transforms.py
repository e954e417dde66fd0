"""The pure transforms of the ingest job, on small inline DataFrames, asserted on their actual output."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from pyspark.sql import functions as F

from spark_jobs import ingest
from spark_jobs.common import dedupe
from spark_jobs.common import parse as parsing
from spark_jobs.common.input_format import InvalidFileError, column_positions
from spark_jobs.common.times import week_start_of
from triplake.identity import expected_trip_id

HEADER = "region,origin_coord,destination_coord,datetime,datasource"
POSITIONS = column_positions(HEADER)
VALID = "Prague,POINT (14.4973794438195 50.00136875782316),POINT (14.43109483523328 50.04052930943246),2018-05-28 09:03:40,funny_car"


def parse(spark, *lines: str | bytes):
    """parse_lines over the given lines (a header first, as in a file), rows in line order. A line given as bytes
    reaches Spark as those bytes, as the text source reads a file (it does not decode them)."""
    encoded = [line if isinstance(line, bytes) else line.encode() for line in (HEADER, *lines)]
    frame = (spark.createDataFrame([(bytearray(line),) for line in encoded], "raw binary").coalesce(1)
             .select(F.col("raw").cast("string").alias("value")))
    return [row.asDict() for row in parsing.parse_lines(frame, POSITIONS, HEADER).orderBy("row_id").collect()]


# --- header ------------------------------------------------------------------------------------------

def test_header_positions_follow_the_names_in_any_order():
    assert column_positions(HEADER) == {
        "region": 0, "origin_coord": 1, "destination_coord": 2, "datetime": 3, "datasource": 4
    }
    reordered = column_positions('\ufeffdatasource, "Region",datetime,destination_coord,origin_coord')
    assert reordered == {"datasource": 0, "region": 1, "datetime": 2, "destination_coord": 3, "origin_coord": 4}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "the file is empty"),
        ("", "the file is empty"),
        ("region,origin_coord,destination_coord,datetime", "missing: 'datasource'"),
        (HEADER + ",speed", "unknown: 'speed'"),
        (HEADER + ",region", "repeated: 'region'"),
        ("Prague,POINT (1 2),POINT (3 4),2018-05-28 09:03:40,funny_car", "missing: 'region'"),
    ],
)
def test_bad_header_is_an_invalid_file_naming_the_problem(header, expected):
    with pytest.raises(InvalidFileError) as raised:
        column_positions(header)
    assert expected in str(raised.value)
    assert raised.value.kind == "invalid_file"


# --- parsing and validation ------------------------------------------------------------------------

def test_valid_line_is_parsed_into_typed_columns(spark):
    (row,) = parse(spark, VALID)
    assert row["reject_reason"] is None
    assert (row["origin_lon"], row["origin_lat"]) == (14.4973794438195, 50.00136875782316)
    assert (row["destination_lon"], row["destination_lat"]) == (14.43109483523328, 50.04052930943246)
    assert row["started_at"].replace(tzinfo=None) == datetime(2018, 5, 28, 9, 3, 40)
    assert row["week_start"] == date(2018, 5, 28)  # a Monday names its own week
    assert (row["region"], row["datasource"]) == ("Prague", "funny_car")


@pytest.mark.parametrize(
    ("wkt", "expected"),
    [
        ("POINT (1.5 2.5)", (1.5, 2.5)),
        ("point(1.5 2.5)", (1.5, 2.5)),
        ("POINT   (  -1.5    2.5 )", (-1.5, 2.5)),
        ('"POINT (1.5 2.5)"', (1.5, 2.5)),
        ("POINT (1e1 -2)", (10.0, -2.0)),
        ("POINT (1.5)", None),
        ("POINT (1.5 2.5 3.5)", None),
        ("POINT 1.5 2.5", None),
        ("POINT (1.5 2.5", None),
        ("LINESTRING (1.5 2.5)", None),
        ("POINT (abc 2.5)", None),
        ("POINT EMPTY", None),
        ("", None),
    ],
)
def test_wkt_points_are_parsed_or_rejected(spark, wkt, expected):
    (row,) = parse(spark, f"Prague,{wkt},POINT (14.43 50.04),2018-05-28 09:03:40,funny_car")
    if expected is None:
        assert row["reject_reason"] == parsing.BAD_ORIGIN_COORD
    else:
        assert row["reject_reason"] is None
        assert (row["origin_lon"], row["origin_lat"]) == expected


def test_every_reject_reason(spark):
    cases = {
        "S\u00e3o Paulo,POINT (1 2),POINT (3 4),2018-05-28 09:03:40,funny_car".encode("latin-1"): parsing.BAD_ENCODING,
        '"Prague,POINT (1 2),POINT (3 4),2018-05-28 09:03:40,funny_car': parsing.UNCLOSED_QUOTE,
        "Prague,POINT (1 2),POINT (3 4),2018-05-28 09:03:40": parsing.WRONG_FIELD_COUNT,
        '"Prague, CZ",POINT (1 2),POINT (3 4),2018-05-28 09:03:40': parsing.WRONG_FIELD_COUNT,
        '"Prague",POINT (1 2),POINT (3 4),2018-05-28 09:03:40,a,"b"': parsing.WRONG_FIELD_COUNT,
        "Prague,POINT (1 2),POINT (3 4),2018-05-28 09:03:40,a,b": parsing.WRONG_FIELD_COUNT,
        " ,POINT (1 2),POINT (3 4),2018-05-28 09:03:40,funny_car": parsing.EMPTY_REGION,
        "../etc,POINT (1 2),POINT (3 4),2018-05-28 09:03:40,funny_car": parsing.UNSAFE_REGION,
        "a=b,POINT (1 2),POINT (3 4),2018-05-28 09:03:40,funny_car": parsing.UNSAFE_REGION,
        "a/b,POINT (1 2),POINT (3 4),2018-05-28 09:03:40,funny_car": parsing.UNSAFE_REGION,
        "a\\b,POINT (1 2),POINT (3 4),2018-05-28 09:03:40,funny_car": parsing.UNSAFE_REGION,
        "a\tb,POINT (1 2),POINT (3 4),2018-05-28 09:03:40,funny_car": parsing.UNSAFE_REGION,
        "Prague,POINT (x 2),POINT (3 4),2018-05-28 09:03:40,funny_car": parsing.BAD_ORIGIN_COORD,
        "Prague,POINT (181 2),POINT (3 4),2018-05-28 09:03:40,funny_car": parsing.ORIGIN_OUT_OF_RANGE,
        "Prague,POINT (1 -90.5),POINT (3 4),2018-05-28 09:03:40,funny_car": parsing.ORIGIN_OUT_OF_RANGE,
        "Prague,POINT (NaN 2),POINT (3 4),2018-05-28 09:03:40,funny_car": parsing.ORIGIN_OUT_OF_RANGE,
        "Prague,POINT (Infinity 2),POINT (3 4),2018-05-28 09:03:40,funny_car": parsing.ORIGIN_OUT_OF_RANGE,
        "Prague,POINT (1 2),POINT (3),2018-05-28 09:03:40,funny_car": parsing.BAD_DESTINATION_COORD,
        "Prague,POINT (1 2),POINT (3 91),2018-05-28 09:03:40,funny_car": parsing.DESTINATION_OUT_OF_RANGE,
        "Prague,POINT (1 2),POINT (3 4),yesterday,funny_car": parsing.BAD_DATETIME,
        "Prague,POINT (1 2),POINT (3 4),2018-02-30 10:00:00,funny_car": parsing.BAD_DATETIME,
        "Prague,POINT (1 2),POINT (3 4),,funny_car": parsing.BAD_DATETIME,
        "Prague,POINT (1 2),POINT (3 4),2018-05-28 09:03:40,": parsing.EMPTY_DATASOURCE,
        "Prague,POINT (1 2),POINT (3 4),2018-05-28 09:03:40, ": parsing.EMPTY_DATASOURCE,
    }
    rows = parse(spark, *cases)
    assert [row["reject_reason"] for row in rows] == list(cases.values())
    assert [row["raw_line"] for row in rows[1:]] == list(cases)[1:]
    assert set(cases.values()) == set(parsing.REJECT_REASONS)


@pytest.mark.parametrize(("line", "region", "datasource"), [
    ('"Washington, D.C.",POINT (1 2),POINT (3 4),2018-05-28 09:03:40,"cheap, mobile"', "Washington, D.C.", "cheap, mobile"),
    ('"Turin ""Centro""",POINT (1 2),POINT (3 4),2018-05-28 09:03:40,x', 'Turin "Centro"', "x"),
    ('  "Turin" , "POINT (1 2)","POINT (3 4)" ,"2018-05-28 09:03:40",  "x"  ', "Turin", "x"),
    ("M\u00fcnchen,POINT (1 2),POINT (3 4),2018-05-28 09:03:40,\u6771\u4eac", "M\u00fcnchen", "\u6771\u4eac"),
])
def test_quoted_fields_are_their_values_and_utf8_is_kept(spark, line, region, datasource):
    (row,) = parse(spark, line)
    assert row["reject_reason"] is None
    assert (row["region"], row["datasource"], row["origin_lon"], row["destination_lat"]) == (region, datasource, 1, 4)


def test_a_line_that_is_not_utf8_is_kept_as_its_bytes(spark):
    latin1 = "S\u00e3o Paulo,POINT (1 2)".encode("latin-1")
    frame = spark.createDataFrame([(bytearray(latin1), parsing.BAD_ENCODING), (bytearray(b"ok,line"), "x")],
                                  "raw binary, reason string")
    kept = frame.select(parsing.kept_line(F.col("raw").cast("string"), F.col("reason")).alias("kept")).collect()
    assert kept[0]["kept"] == "base64:" + __import__("base64").b64encode(latin1).decode()
    assert kept[1]["kept"] == "ok,line"


@pytest.mark.parametrize(("message", "says"), [
    ("java.io.EOFException: Unexpected end of input stream", "truncated"),
    ("Caused by: java.io.IOException: not a gzip file", "not gzip data"),
    ("software.amazon...: Access Denied (Service: S3, Status Code: 403)", "access denied"),
])
def test_reader_failures_of_the_file_become_invalid_file_errors(message, says):
    error = parsing.unreadable_file_error("s3://bucket/f.csv.gz", RuntimeError(message))
    assert isinstance(error, InvalidFileError) and says in str(error) and "s3://bucket/f.csv.gz" in str(error)
    assert parsing.unreadable_file_error("s3://bucket/f.csv", RuntimeError("OutOfMemoryError: Java heap space")) is None


def test_blank_lines_and_repeated_headers_are_not_rows(spark):
    rows = parse(spark, "", VALID, "   ", HEADER, VALID)
    assert [row["reject_reason"] for row in rows] == [None, None]


# --- trip identity -------------------------------------------------------------------------------

def test_trip_id_is_the_documented_hash_and_ignores_noise_beyond_7_decimals(spark):
    base = parse(spark, VALID)[0]["trip_id"]
    assert base == expected_trip_id(
        "Prague", 14.4973794438195, 50.00136875782316, 14.43109483523328, 50.04052930943246,
        datetime(2018, 5, 28, 9, 3, 40),
    )
    same_trip = [
        VALID.replace("14.4973794438195", "14.49737944"),  # differs in the 9th decimal only
        VALID.replace("funny_car", "cheap_mobile"),         # datasource is not part of the identity
        VALID.replace("2018-05-28 09:03:40", "2018-05-28T09:03:40"),
    ]
    other_trip = [
        VALID.replace("14.4973794438195", "14.4973796"),
        VALID.replace("09:03:40", "09:03:41"),
        VALID.replace("Prague", "Turin"),
    ]
    rows = parse(spark, *same_trip, *other_trip)
    assert [row["trip_id"] for row in rows[:3]] == [base] * 3
    assert len({base, *(row["trip_id"] for row in rows[3:])}) == 4


def test_negative_zero_and_zero_are_one_trip(spark):
    rows = parse(
        spark,
        "Null Island,POINT (0.0 1),POINT (2 3),2018-05-28 09:03:40,a",
        "Null Island,POINT (-0.0 1),POINT (2 3),2018-05-28 09:03:40,a",
    )
    assert rows[0]["trip_id"] == rows[1]["trip_id"]


# --- deduplication -------------------------------------------------------------------------------

def _batch(spark, rows):
    schema = (
        "line_order long, region string, origin_lon double, origin_lat double, destination_lon double, "
        "destination_lat double, started_at timestamp, datasource string, trip_id string, week_start date, "
        "origin_lat_e7 long"
    )
    return spark.createDataFrame(rows, schema)


def test_dedupe_keeps_the_earliest_line_of_each_trip(spark):
    at, week = datetime(2018, 5, 28, 9, 3, 40), date(2018, 5, 28)
    rows = [
        # copies of trip "a" in reverse file order: the line at order 1 must win
        (5, "Prague", 1.0, 2.0, 3.0, 4.0, at, "third", "a", week, 20000000),
        (1, "Prague", 1.0, 2.0, 3.0, 4.0, at, "first", "a", week, 20000000),
        (3, "Prague", 1.0, 2.0, 3.0, 4.0, at, "second", "a", week, 20000000),
        (64, "Prague", 1.0, 2.5, 3.0, 4.0, at, "later", "b", week, 25000000),
        (9, "Prague", 1.0, 2.5, 3.0, 4.0, at, "earlier", "b", week, 25000000),
        (7, "Turin", 5.0, 6.0, 7.0, 8.0, at, "alone", "d", week, 60000000),
    ]
    ranked = dedupe.rank_copies(_batch(spark, rows)).collect()
    outcome = sorted((row["trip_id"], row["datasource"], row["first_copy"]) for row in ranked)
    assert outcome == [
        ("a", "first", True),
        ("a", "second", False),
        ("a", "third", False),
        ("b", "earlier", True),
        ("b", "later", False),
        ("d", "alone", True),
    ]


def test_ranked_rows_arrive_sorted_by_origin_latitude_within_each_partition(spark):
    at, week = datetime(2018, 5, 28, 9, 3, 40), date(2018, 5, 28)
    latitudes = [7, 3, 9, 1, 5, 3]
    rows = [(i, "Prague", 1.0, lat / 10, 3.0, 4.0, at, "x", f"t{i}", week, lat * 1000000) for i, lat in enumerate(latitudes)]
    ranked = dedupe.rank_copies(_batch(spark, rows)).coalesce(1).collect()
    assert [row["origin_lat_e7"] // 1000000 for row in ranked] == sorted(latitudes)


@pytest.mark.parametrize("broadcast", [dedupe.NEW, dedupe.LAKE, None])
def test_trips_in_lake_finds_exactly_the_new_ids_the_lake_holds(spark, broadcast):
    new = spark.createDataFrame([("a",), ("b",), ("c",), ("c",), (None,)], "trip_id string")
    lake = spark.createDataFrame([("c",), ("z",), ("b",), ("b",), (None,)], "trip_id string")
    found = dedupe.trips_in_lake(new, lake, broadcast=broadcast).collect()
    # every new row whose id the lake holds, once per new row; null ids never match
    assert sorted(row["trip_id"] for row in found) == ["b", "c", "c"]


@pytest.mark.parametrize("broadcast", [dedupe.NEW, dedupe.LAKE])
def test_a_hash_collision_is_compared_exactly_and_loses_no_trip(spark, monkeypatch, broadcast):
    # With a hash that maps every id to one value, every id is a candidate: only equal ids may match.
    monkeypatch.setattr(dedupe.F, "xxhash64", lambda column: F.lit(7).cast("long"))
    new = spark.createDataFrame([("a",), ("b",)], "trip_id string")
    lake = spark.createDataFrame([("b",), ("y",), ("z",)], "trip_id string")
    assert [row["trip_id"] for row in dedupe.trips_in_lake(new, lake, broadcast).collect()] == ["b"]


def test_without_trips_drops_the_ids_and_sorts_each_partition_by_origin_latitude(spark):
    at = datetime(2018, 5, 28, 9, 3, 40)
    staged = spark.createDataFrame(
        [(f"t{i}", "Prague", 1.0, lat, 3.0, 4.0, at, "x", week, "ing") for i, (lat, week) in enumerate(
            [(50.3, "2018-05-28"), (50.1, "2018-05-28"), (50.2, "2018-05-28"), (50.0, "2018-05-21"), (50.1, "2018-05-21")]
        )],
        parsing.tables.TRIPS_SCHEMA,
    )
    kept = dedupe.without_trips(staged, spark.createDataFrame([("t2",), ("t3",), (None,)], "trip_id string"))
    by_week: dict[str, list[str]] = {}
    for partition in kept.rdd.glom().collect():
        for row in partition:
            by_week.setdefault(row["week_start"], []).append(row["trip_id"])
    assert kept.columns == parsing.tables.TRIPS_SCHEMA.fieldNames()
    assert by_week == {"2018-05-28": ["t1", "t0"], "2018-05-21": ["t4"]}


def test_the_canonical_wkt_fast_path_agrees_with_the_strict_parser(spark):
    wkts = ["POINT (14.4973794438195 50.00136875782316)", "POINT (-0.5 1e-3)", "POINT (1 2 3)", "POINT (1  2)",
            "POINT (x 2)", "POINT ()", "POINT ( 1 2)", "POINT (1 2))", "POINT ((1 2)", "XPOINT (1 2)",
            "POINT (12(34)", "POINT (1 )"]
    frame = spark.createDataFrame([(w,) for w in wkts], "wkt string")
    lon, lat = parsing.point_numbers("wkt")
    strict = parsing._strict_point_numbers("wkt")  # noqa: SLF001
    texts = frame.select(lon.alias("lon"), lat.alias("lat"), strict[0].alias("s_lon"), strict[1].alias("s_lat"))
    numbers = texts.selectExpr(*[f"try_cast({name} AS DOUBLE) AS {name}" for name in texts.columns]).collect()

    def point(x, y):
        return None if x is None or y is None else (x, y)

    fast = [point(row["lon"], row["lat"]) for row in numbers]
    assert fast == [point(row["s_lon"], row["s_lat"]) for row in numbers]
    assert fast == [(14.4973794438195, 50.00136875782316), (-0.5, 0.001), None, (1.0, 2.0), None, None,
                    (1.0, 2.0), None, None, None, None, None]


def test_rejected_lines_are_numbered_across_blocks(spark):
    lines = spark.createDataFrame(
        [(0, 0), (0, 1), (0, 2), (100, 8589934592), (100, 8589934593), (200, 17179869184)],
        "block_start long, row_id long",
    )
    rejected = spark.createDataFrame(
        [(0, 2, "x", "bad_datetime"), (100, 8589934593, "y", "empty_region"), (200, 17179869184, "z", "bad_datetime")],
        "block_start long, row_id long, raw_line string, reject_reason string",
    )
    numbered = dedupe.number_rejected_lines(rejected, lines).orderBy("line_number").collect()
    assert [(row["line_number"], row["raw_line"]) for row in numbered] == [(3, "x"), (5, "y"), (6, "z")]


def test_counts_reconcile_only_when_they_add_up():
    assert ingest.Counts(10, 8, 2, 1, 3, 4).reconciles()
    assert not ingest.Counts(10, 8, 2, 1, 3, 3).reconciles()
    assert not ingest.Counts(10, 7, 2, 1, 3, 3).reconciles()


def test_week_start_is_the_monday_of_the_iso_week_across_years_and_before_1970(spark):
    from datetime import timedelta

    instants = [datetime(2018, 5, 27, 23, 59, 59), datetime(2018, 5, 28, 0, 0, 0), datetime(2018, 12, 31, 12),
                datetime(2019, 1, 6, 23, 59, 59, 999999), datetime(2020, 12, 31), datetime(2021, 1, 3, 8),
                datetime(1970, 1, 1), datetime(1969, 12, 28, 23), datetime(1900, 3, 1)]
    # aware datetimes: pyspark converts naive ones with the machine's zone, these must be UTC instants
    frame = spark.createDataFrame([(at.replace(tzinfo=timezone.utc),) for at in instants], "started_at timestamp")
    result = [row[0] for row in frame.select(week_start_of(F.col("started_at"))).collect()]
    assert result == [at.date() - timedelta(days=at.weekday()) for at in instants]
