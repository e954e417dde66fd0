"""A trip's identity: what makes two lines the same trip, as Spark column expressions (the same recipe in plain
Python: triplake/identity.py; in SQL: docs/architecture.md)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.common.times import week_start_of

TRIP_ID_DECIMALS = 7
# Coordinates enter trip_id as integers: degrees x 10^7 rounded half to even (Math.rint), exact and cheap.
COORDINATE_SCALE = 10.0**TRIP_ID_DECIMALS
# The rounded origin latitude leads the sort of every trips file (bbox pruning) and keys the dedupe, so
# one sort serves both; it is a pure function of origin_lat, recomputed the same way for lake rows.
ORIGIN_LAT_KEY = "origin_lat_e7"


def scaled_coordinate(column: str) -> Column:
    """Degrees x 10^7 rounded half to even, as a long: the 7-decimal rounding of the trip identity.

    Integer arithmetic instead of round(x, 7), which goes through BigDecimal and cost a third of the parse.
    -0.0 and 0.0 become the same 0.
    """
    return F.rint(F.col(column) * F.lit(COORDINATE_SCALE)).cast("long")


def with_trip_identity(trips: DataFrame) -> DataFrame:
    """Adds trip_id, week_start (Monday, a date) and the origin latitude key of the sort.

    trip_id = md5 of 'region|origin lon|origin lat|destination lon|destination lat|start', coordinates as
    degrees x 10^7 rounded to integers and the start in microseconds since the epoch (UTC): reproducible
    in any SQL engine, and the datasource is not part of it.
    """
    identity = F.concat_ws(
        "|",
        F.col("region"),
        scaled_coordinate("origin_lon").cast("string"),
        scaled_coordinate("origin_lat").cast("string"),
        scaled_coordinate("destination_lon").cast("string"),
        scaled_coordinate("destination_lat").cast("string"),
        F.expr("unix_micros(started_at)").cast("string"),
    )
    return trips.select(
        "*",
        F.md5(identity).alias("trip_id"),
        week_start_of(F.col("started_at")).alias("week_start"),
        scaled_coordinate("origin_lat").alias(ORIGIN_LAT_KEY),
    )
