"""Build the weekly table: trips per region, route and ISO week, then commit the ingestion: its last step.

    trip_routes rows the ingestion's routes step wrote -> count per (region, route_id, week_start, model_version)
    -> weekly_trips files of this ingestion -> commit (the ingestions record) -> clean up

Each ingestion adds its own counts and never rewrites another's: the view weekly_trips sums the counts of the
committed ingestions under each region's current model version. A refit assigned all of a region's trips under
its new version, so the refit's counts are the region's whole counts for that version. Weeks without trips have
no row: the queries count them as zero. The step reads only what this ingestion wrote, so its cost follows the
partitions the file touched, not the size of the lake.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict, dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.common import committed, delta, publish, session, table_files, tables
from spark_jobs.common.job import JobOutcome, run_job
from spark_jobs.common.lake import Lake
from spark_jobs.common.lakefs import LakeFs

logger = logging.getLogger(__name__)


def weekly_counts(trip_routes: DataFrame) -> DataFrame:
    """Trips per region, route, week and model version: one row per group that has trips."""
    return (
        trip_routes.groupBy("region", "route_id", "week_start", "model_version")
        .agg(F.count(F.lit(1)).alias("trips"))
    )


def trips_by_route(weekly_trips: DataFrame) -> DataFrame:
    """Trips per route over all weeks: one row per (region, route_id)."""
    return weekly_trips.groupBy("region", "route_id").agg(F.sum("trips").alias("trips"))


@dataclass
class WeeklyResult:
    ingestion_id: str
    partitions_rebuilt: list[tuple[str, str]]  # the (region, week_start) partitions this ingestion added counts to
    seconds: float
    committed: bool

    def to_dict(self) -> dict:
        return asdict(self)


def ingestion_route_files(spark: SparkSession, lake: Lake, ingestion_id: str) -> list[delta.SnapshotFile]:
    """The trip_routes files that may hold this ingestion's rows (the table's snapshot, pruned by the files'
    ingestion_id statistics; filter the rows)."""
    return delta.snapshot_files(tables.TRIP_ROUTES_TABLE.uri(lake.root), delta.Storage.from_spark(spark),
                                equal=("ingestion_id", ingestion_id))


def build_weekly(spark: SparkSession, lake_root: str, ingestion_id: str, commit: bool = True) -> WeeklyResult:
    """Counts the trips the ingestion's routes step assigned per route and week, then commits the ingestion."""
    session.configure(spark)
    started = time.perf_counter()
    fs, lake = LakeFs(spark), Lake(lake_root)
    if publish.is_committed(spark, fs, lake, ingestion_id) is not None:
        logger.info("ingestion %s is recorded already: nothing to count or commit", ingestion_id)
        return WeeklyResult(ingestion_id, [], 0.0, committed=False)
    publication = publish.Publication(spark, fs, lake, ingestion_id, "build_weekly").begin()
    files = ingestion_route_files(spark, lake, ingestion_id)
    written: list[delta.DataFile] = []
    if files:
        table = tables.WEEKLY_TRIPS_TABLE
        trip_routes = (table_files.read_files(spark, tables.TRIP_ROUTES_TABLE.uri(lake_root), files,
                                        tables.TRIP_ROUTES_SCHEMA, delta.Storage.from_spark(spark))
                       .where(F.col("ingestion_id") == ingestion_id))
        weekly = (
            weekly_counts(trip_routes)
            .withColumn("ingestion_id", F.lit(ingestion_id))
            .select(*tables.WEEKLY_TRIPS_SCHEMA.fieldNames())
            .repartition(*table.partition_columns)  # one file per partition: the table is small
        )
        written = table_files.write_files(weekly, table.uri(lake_root), table.partition_columns, ingestion_id,
                                    delta.Storage.from_spark(spark))
        publication.add_files(table, written)
    publication.publish()
    rebuilt = sorted({(file.partition_values["region"], file.partition_values["week_start"]) for file in written})
    logger.info("weekly_trips: counts added to %d partitions in %.1f s", len(rebuilt), time.perf_counter() - started)
    if commit:
        publish.commit(spark, fs, lake, ingestion_id)
    return WeeklyResult(ingestion_id, rebuilt, round(time.perf_counter() - started, 2), commit)


def route_summaries(spark: SparkSession, lake_root: str, regions: list[str]) -> dict[str, list[dict]]:
    """Each region's routes under its current model with their trips in the lake (what the routes view shows): the
    model's metadata and the sum of the region's weekly counts. It reads the regions' whole weekly history, so a
    batch asks once, after its last ingestion, not each ingestion."""
    fs, lake = LakeFs(spark), Lake(lake_root)
    models = {region: model for region in regions if (model := committed.load_model(spark, fs, lake, region)) is not None}
    weekly = committed.current_weekly_trips(spark, lake, {region: model.version for region, model in models.items()})
    trips = {} if weekly is None else {
        (row["region"], row["route_id"]): int(row["trips"]) for row in trips_by_route(weekly).collect()}
    return {
        region: [
            {"region": region, "route_id": route_id, "trips": trips.get((region, route_id), 0),
             "model_version": model.version, "typical_hour": centroid["typical_hour"]}
            for route_id, centroid in sorted(model.centroids.items())
        ]
        for region, model in models.items()
    }


def _run(spark: SparkSession, args) -> JobOutcome:
    result = build_weekly(spark, args.lake_root, args.ingestion_id)
    return JobOutcome(args.ingestion_id, result.to_dict())


def _arguments(parser) -> None:
    parser.add_argument("--ingestion-id", required=True, help="the ingestion whose weeks are counted and committed")


def main(argv: list[str] | None = None) -> int:
    return run_job("build_weekly", __doc__, _arguments, _run, argv)


if __name__ == "__main__":
    sys.exit(main())
