"""Build the weekly table: trips per region, route and ISO week (marts/weekly_trips), and the routes table.

    trip_routes partitions an ingestion wrote -> count per (region, route_id, week_start) -> replace exactly
    those partitions of weekly_trips -> routes: every region's model with the trips of each route, summed
    from weekly_trips

Only the (region, week) partitions whose trip_routes changed are rebuilt: the files a routes step writes carry
its ingestion id, including the whole region when its model was refitted. Each rebuilt partition is counted
from all of its trip_routes files, so a rerun, or a later file adding trips to the same week, gives the
same table as a rebuild from scratch. Weeks without trips have no row: the queries count them as zero.
The routes table is summed from weekly_trips (a few rows per route and week), so neither step reads the
whole of trip_routes: the cost of an ingestion follows the partitions it touches, not the size of the lake.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.common import session, tables
from spark_jobs.common.lake import Lake, partition_path, partition_value, write_report, write_single_parquet
from spark_jobs.common.lakefs import LakeFs, join_uri
from spark_jobs.group_routes import route_rows, saved_models

logger = logging.getLogger(__name__)


def weekly_counts(trip_routes: DataFrame) -> DataFrame:
    """Trips per region, route and week: one row per (region, route_id, week_start) that has trips."""
    return (
        trip_routes.groupBy("region", "route_id", "week_start")
        .agg(F.count(F.lit(1)).alias("trips"))
        .select(*tables.WEEKLY_TRIPS_SCHEMA.fieldNames())
    )


def trips_by_route(weekly_trips: DataFrame) -> DataFrame:
    """Trips per route over all weeks: one row per (region, route_id)."""
    return weekly_trips.groupBy("region", "route_id").agg(F.sum("trips").alias("trips"))


@dataclass
class WeeklyResult:
    ingestion_id: str
    partitions_rebuilt: list[tuple[str, str]]
    seconds: float
    routes: dict[str, list[dict]]  # region -> its rows of the routes table, as published

    def to_dict(self) -> dict:
        return asdict(self)


def changed_partitions(spark: SparkSession, fs: LakeFs, lake: Lake, ingestion_id: str) -> list[str]:
    """Directories (region=../week_start=..) of trip_routes that hold files written for this ingestion."""
    files = fs.glob(lake.ingestion_files(tables.TRIP_ROUTES, ingestion_id))
    return sorted({"/".join(entry.uri.rsplit("/", 3)[1:3]) for entry in files})


def build_weekly(spark: SparkSession, lake_root: str, ingestion_id: str) -> WeeklyResult:
    """Rebuilds the weekly_trips partitions that the ingestion's routes step changed."""
    session.configure(spark)
    started = time.perf_counter()
    fs, lake = LakeFs(spark), Lake(lake_root)
    partitions = changed_partitions(spark, fs, lake, ingestion_id)
    if partitions:
        trip_routes_root = lake.uri(tables.TRIP_ROUTES)
        trip_routes = spark.read.option("basePath", trip_routes_root).parquet(
            *[join_uri(trip_routes_root, partition) for partition in partitions]
        )
        (
            weekly_counts(trip_routes)
            .repartition(*tables.TRIPS_PARTITION_COLUMNS)  # one file per partition: the table is small
            .write.mode("overwrite")
            # Replaces the partitions in the output and leaves every other week as it is.
            .option("partitionOverwriteMode", "dynamic")
            .partitionBy(*tables.TRIPS_PARTITION_COLUMNS)
            .parquet(lake.uri(tables.WEEKLY_TRIPS))
        )
    rebuilt = [tuple(partition_value(spark, part) for part in partition.split("/")) for partition in partitions]
    logger.info("weekly_trips: %d partitions rebuilt in %.1f s", len(rebuilt), time.perf_counter() - started)
    routes = publish_routes(spark, fs, lake, ingestion_id)
    return WeeklyResult(ingestion_id, rebuilt, round(time.perf_counter() - started, 2), routes)


def publish_routes(spark: SparkSession, fs: LakeFs, lake: Lake, ingestion_id: str) -> dict[str, list[dict]]:
    """Rewrites the small routes table: every region's model with the trips of each route, from weekly_trips."""
    weekly_root = lake.uri(tables.WEEKLY_TRIPS)
    counts: dict[tuple[str, str], int] = {}
    if fs.glob(f"{weekly_root}/region=*/week_start=*/*.parquet"):
        weekly_trips = spark.read.option("basePath", weekly_root).parquet(weekly_root)
        counts = {(row["region"], row["route_id"]): row["trips"] for row in trips_by_route(weekly_trips).collect()}
    rows_by_region = {
        region: route_rows(model, {route: trips for (of, route), trips in counts.items() if of == region})
        for region, model in saved_models(spark, fs, lake).items()
    }
    write_single_parquet(
        spark.createDataFrame([row for rows in rows_by_region.values() for row in rows], tables.ROUTES_SCHEMA),
        lake.staging(f"{ingestion_id}.routes-table"),
        lake.uri(tables.ROUTES, "routes.parquet"),
        fs,
    )
    return rows_by_region


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build_weekly", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lake-root", required=True, help="URI of the lake root")
    parser.add_argument("--ingestion-id", required=True, help="the ingestion whose weeks are rebuilt")
    args = parser.parse_args(argv)
    spark = session.get_or_create("triplake-build-weekly")
    result = build_weekly(spark, args.lake_root, args.ingestion_id)
    report = result.to_dict() | {
        "partition_paths": [partition_path(spark, *partition) for partition in result.partitions_rebuilt]
    }
    write_report(spark, args.lake_root, args.ingestion_id, "build_weekly", report)
    print(json.dumps(report, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
