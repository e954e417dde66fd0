"""Table names, locations and schemas of the lake: the contract of DESIGN.md §4, defined once."""

from __future__ import annotations

from pyspark.sql import types as T

TRIPS = "curated/trips"
TRIP_ROUTES = "curated/trip_routes"
ROUTES = "curated/routes"
ROUTE_MODELS = "models/routes"
WEEKLY_TRIPS = "marts/weekly_trips"
REJECTED_ROWS = "curated/rejected_rows"
INGESTIONS = "curated/ingestions"
RAW = "raw"
STAGING = "_staging"

TRIPS_PARTITION_COLUMNS = ("region", "week_start")

TRIPS_SCHEMA = T.StructType(
    [
        T.StructField("trip_id", T.StringType(), False),
        T.StructField("region", T.StringType(), False),
        T.StructField("origin_lon", T.DoubleType(), False),
        T.StructField("origin_lat", T.DoubleType(), False),
        T.StructField("destination_lon", T.DoubleType(), False),
        T.StructField("destination_lat", T.DoubleType(), False),
        T.StructField("started_at", T.TimestampType(), False),
        T.StructField("datasource", T.StringType(), False),
        T.StructField("week_start", T.StringType(), False),
        T.StructField("ingestion_id", T.StringType(), False),
    ]
)

# Partitioned like trips (region, week_start), so an ingestion writes and a weekly rebuild reads only the
# partitions it touches; week_start is a partition column on top of the contract's trip_id, region, route_id.
TRIP_ROUTES_SCHEMA = T.StructType(
    [
        T.StructField("trip_id", T.StringType(), False),
        T.StructField("region", T.StringType(), False),
        T.StructField("route_id", T.StringType(), False),
        T.StructField("week_start", T.StringType(), False),
    ]
)

ROUTES_SCHEMA = T.StructType(
    [
        T.StructField("region", T.StringType(), False),
        T.StructField("route_id", T.StringType(), False),
        T.StructField("trips", T.LongType(), False),
        T.StructField("origin_lon", T.DoubleType(), False),
        T.StructField("origin_lat", T.DoubleType(), False),
        T.StructField("destination_lon", T.DoubleType(), False),
        T.StructField("destination_lat", T.DoubleType(), False),
        T.StructField("typical_hour", T.DoubleType(), False),  # hour of day in [0, 24), UTC, e.g. 8.5 = 08:30
        T.StructField("k", T.IntegerType(), False),
        T.StructField("silhouette", T.DoubleType(), True),
        T.StructField("trained_at", T.TimestampType(), False),
    ]
)

# Hive-partitioned by region and week_start (region, week_start are partition columns in the files' paths).
WEEKLY_TRIPS_SCHEMA = T.StructType(
    [
        T.StructField("region", T.StringType(), False),
        T.StructField("route_id", T.StringType(), False),
        T.StructField("week_start", T.StringType(), False),
        T.StructField("trips", T.LongType(), False),
    ]
)

REJECTED_ROWS_SCHEMA = T.StructType(
    [
        T.StructField("ingestion_id", T.StringType(), False),
        T.StructField("line_number", T.LongType(), False),
        T.StructField("raw_line", T.StringType(), False),
        T.StructField("reason", T.StringType(), False),
    ]
)

INGESTIONS_SCHEMA = T.StructType(
    [
        T.StructField("ingestion_id", T.StringType(), False),
        T.StructField("source_uri", T.StringType(), False),
        T.StructField("status", T.StringType(), False),
        T.StructField("rows_read", T.LongType(), False),
        T.StructField("rows_valid", T.LongType(), False),
        T.StructField("rows_rejected", T.LongType(), False),
        T.StructField("duplicates_in_batch", T.LongType(), False),
        T.StructField("already_present", T.LongType(), False),
        T.StructField("rows_written", T.LongType(), False),
        T.StructField("started_at", T.TimestampType(), False),
        T.StructField("finished_at", T.TimestampType(), False),
        T.StructField("error", T.StringType(), True),
    ]
)
