"""Table locations and Spark schemas of the lake's files (docs/architecture.md, "Tables").

These are the files the jobs write. What readers query are the views of sql/views over them (`trips`,
`trip_routes`, `routes`, `weekly_trips`, `rejected_rows`), which keep only the rows of committed ingestions
and of each region's current model version.
"""

from __future__ import annotations

from pyspark.sql import types as T

from spark_jobs.common import delta

# The locations are re-exported: a job names a table's place and its schema from one module.
from spark_jobs.common.locations import (
    INGESTIONS, MODELS, RAW, REJECTED_ROWS, ROUTE_MODELS, STAGING, TRIP_ROUTES, TRIPS, WEEKLY_TRIPS,
)

__all__ = [
    "INGESTIONS",
    "MODELS",
    "RAW",
    "REJECTED_ROWS",
    "ROUTE_MODELS",
    "STAGING",
    "TRIP_ROUTES",
    "TRIPS",
    "WEEKLY_TRIPS",
    "TRIPS_PARTITION_COLUMNS",
    "TRIPS_SCHEMA",
    "TRIP_ROUTES_SCHEMA",
    "ROUTE_MODELS_SCHEMA",
    "WEEKLY_TRIPS_SCHEMA",
    "REJECTED_ROWS_SCHEMA",
    "TRIPS_TABLE",
    "REJECTED_ROWS_TABLE",
    "TRIP_ROUTES_TABLE",
    "WEEKLY_TRIPS_TABLE",
    "ROUTE_MODELS_TABLE",
    "DELTA_TABLES",
]

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

# Partitioned like trips (region, week_start), so an ingestion writes and a weekly step reads only the
# partitions it touches. Every row names the model version that assigned it and the ingestion that wrote it.
TRIP_ROUTES_SCHEMA = T.StructType(
    [
        T.StructField("trip_id", T.StringType(), False),
        T.StructField("region", T.StringType(), False),
        T.StructField("route_id", T.StringType(), False),
        T.StructField("model_version", T.IntegerType(), False),
        T.StructField("ingestion_id", T.StringType(), False),
        T.StructField("week_start", T.StringType(), False),
    ]
)

ROUTE_MODELS_SCHEMA = T.StructType(
    [
        T.StructField("region", T.StringType(), False),
        T.StructField("route_id", T.StringType(), False),
        T.StructField("origin_lon", T.DoubleType(), False),
        T.StructField("origin_lat", T.DoubleType(), False),
        T.StructField("destination_lon", T.DoubleType(), False),
        T.StructField("destination_lat", T.DoubleType(), False),
        T.StructField("typical_hour", T.DoubleType(), False),  # hour of day in [0, 24), UTC, e.g. 8.5 = 08:30
        T.StructField("k", T.IntegerType(), False),
        T.StructField("silhouette", T.DoubleType(), True),
        T.StructField("trained_at", T.TimestampType(), False),
        T.StructField("model_version", T.IntegerType(), False),
        T.StructField("sample_rows", T.LongType(), False),  # trips the model was fitted on
        T.StructField("ingestion_id", T.StringType(), False),
    ]
)

# Trips per route and ISO week that one ingestion added under one model version: the view weekly_trips sums
# them over the committed ingestions of the region's current version (a refit writes the region's full counts).
WEEKLY_TRIPS_SCHEMA = T.StructType(
    [
        T.StructField("region", T.StringType(), False),
        T.StructField("route_id", T.StringType(), False),
        T.StructField("week_start", T.StringType(), False),
        T.StructField("model_version", T.IntegerType(), False),
        T.StructField("trips", T.LongType(), False),
        T.StructField("ingestion_id", T.StringType(), False),
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


# The Delta tables (spark_jobs.common.delta): their columns as Delta keeps them. week_start is a date there, as the
# catalog declares it; Spark's rows carry it as the yyyy-MM-dd text of its partition directory.
TRIPS_TABLE = delta.TableSpec(TRIPS, delta.arrow_schema(TRIPS_SCHEMA, date_columns=["week_start"]),
                              TRIPS_PARTITION_COLUMNS)
TRIP_ROUTES_TABLE = delta.TableSpec(TRIP_ROUTES, delta.arrow_schema(TRIP_ROUTES_SCHEMA, date_columns=["week_start"]),
                                    TRIPS_PARTITION_COLUMNS)
WEEKLY_TRIPS_TABLE = delta.TableSpec(WEEKLY_TRIPS, delta.arrow_schema(WEEKLY_TRIPS_SCHEMA, date_columns=["week_start"]),
                                     TRIPS_PARTITION_COLUMNS)
# By region, so a refit's clean-up takes out the region's older versions file by file.
ROUTE_MODELS_TABLE = delta.TableSpec(ROUTE_MODELS, delta.arrow_schema(ROUTE_MODELS_SCHEMA), ("region",))
REJECTED_ROWS_TABLE = delta.TableSpec(REJECTED_ROWS, delta.arrow_schema(REJECTED_ROWS_SCHEMA))
DELTA_TABLES = (TRIPS_TABLE, TRIP_ROUTES_TABLE, WEEKLY_TRIPS_TABLE, ROUTE_MODELS_TABLE, REJECTED_ROWS_TABLE)
