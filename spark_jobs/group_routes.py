"""Group trips into routes: similar origin, destination and time of day (KMeans), one model per region.

    trips of an ingestion -> per region: the saved model, or a new one fitted on a bounded sample of the
    region's trips (k chosen by silhouette) -> every trip gets a route -> trip_routes

Features: origin and destination lon/lat, and the time of day as a point on a circle (sin and cos of the
fraction of the day, so 23:50 is close to 00:10), standardized so that no feature dominates by its units.
The cost grows linearly with the data: k is chosen on a small sample and the model is fitted on at most
`fit_sample_rows` trips of a region, both on the driver (spark_jobs.common.kmeans; one Spark job samples every
region being fitted), and assigning a trip is a linear score per route, in Spark SQL.

A region's model is saved as models/routes/region=<r>/v=<version>/route_model.json and reused: a new file's trips are assigned
without refitting. A region is (re)fitted when it has no model yet, when it has grown `refit_growth` times (4x) since
its model was trained (its trips counted from the trips table's log, not by reading the region), or when
asked (--refit): the fit is a new model version, all of the region's trips are assigned again under it, and the
older version's routes stop counting when the ingestion commits (one unit: readers see either the old routes or
the new ones, never a mix). Every trip_routes and route_models row carries its model_version, and the report says
why each region was fitted (RegionRoutes.fit_reason, which the SUCCEEDED event carries). Route ids are readable and
stable for the same data and seed: '<region>-NN', numbered by the size of the route in the fitting sample (01 =
busiest).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from spark_jobs.common import committed, delta, publish, session, table_files, tables
from spark_jobs.common.job import JobOutcome, run_job
from spark_jobs.common.lake import Lake
from spark_jobs.common.lakefs import LakeFs
from spark_jobs.common.route_model import (
    SPATIAL_FEATURES, RouteModel, RouteOptions, assign, fit_regions, refit_reason,
)

logger = logging.getLogger(__name__)
# What a trip's route is computed from and written with: the tasks read no other column of the trips files.
ASSIGNED_COLUMNS = ("trip_id", "region", "week_start", *SPATIAL_FEATURES, "started_at", "ingestion_id")


@dataclass
class RegionRoutes:
    region: str
    k: int
    silhouette: float | None
    refitted: bool
    fit_reason: str | None  # why it was fitted for this ingestion (refit_reason), None when the model was reused
    fit_seconds: float | None
    trained_at: str
    model_version: int


@dataclass
class RoutesResult:
    ingestion_id: str
    trips_assigned: int
    seconds: float  # the whole step: sampling and fits, assignment, publishing trip_routes
    assign_seconds: float
    regions: list[RegionRoutes]

    def to_dict(self) -> dict:
        return asdict(self)


def stage_model(fs: LakeFs, publication: publish.Publication, region_dir: str, model: RouteModel) -> None:
    """Writes a fitted model in the staging area and plans its move to models/routes/<region>/v=<version>."""
    relative = f"{region_dir}/{committed.VERSION_DIR_PREFIX}{model.version}"
    staged = publication.stage("models", relative)
    fs.write_text(f"{staged}/{committed.MODEL_METADATA}", json.dumps(model.metadata(), indent=2))
    publication.add(staged, f"{tables.MODELS}/{relative}")


def region_trip_counts(spark: SparkSession, lake: Lake, region_files: list[delta.SnapshotFile]) -> dict[str, int]:
    """The trips of each region, the ingestion's own included, from the records the trips table's log counts for
    each file of the regions (region_files: the snapshot's files of the regions): no data file is read, unless the
    log has no count for one."""
    counts: dict[str, int] = {}
    uncounted = []
    for file in region_files:
        region = file.partition_values["region"]
        counts[region] = counts.get(region, 0) + (file.records or 0)
        if file.records is None:
            uncounted.append(file)
    if uncounted:
        for row in committed.read_trips(spark, lake, uncounted, ["region"]).groupBy("region").count().collect():
            counts[row["region"]] += int(row["count"])
    return counts


def ingestion_trip_files(spark: SparkSession, lake: Lake, ingestion_id: str) -> dict[str, list[delta.SnapshotFile]]:
    """The trips files that may hold an ingestion's trips, by region: the trips table's snapshot, pruned by the
    files' ingestion_id statistics (a compacted file may hold other ingestions' trips too: filter the rows)."""
    by_region: dict[str, list[delta.SnapshotFile]] = {}
    files = delta.snapshot_files(tables.TRIPS_TABLE.uri(lake.root), delta.Storage.from_spark(spark),
                                 equal=("ingestion_id", ingestion_id))
    for file in files:
        by_region.setdefault(file.partition_values["region"], []).append(file)
    return by_region


def _of_regions(files: list[delta.SnapshotFile], regions: Collection[str]) -> list[delta.SnapshotFile]:
    return [file for file in files if file.partition_values["region"] in regions]


def route_model_rows(model: RouteModel, ingestion_id: str) -> list[dict]:
    """Rows of route_models for one fitted model: each route's centroid and typical hour, and the model's k,
    silhouette, version and training time (the routes view adds each route's trips)."""
    return [
        {
            "region": model.region,
            "route_id": route_id,
            **{name: centroid[name] for name in (*SPATIAL_FEATURES, "typical_hour")},
            "k": model.k,
            "silhouette": model.silhouette,
            "trained_at": model.trained_at,
            "model_version": model.version,
            "sample_rows": model.sample_rows,
            "ingestion_id": ingestion_id,
        }
        for route_id, centroid in sorted(model.centroids.items())
    ]


def _write_assignments(spark: SparkSession, publication: publish.Publication, assignments: DataFrame) -> None:
    """Writes trip_routes rows straight into the table's partitions, for the step's publish to commit."""
    table = tables.TRIP_ROUTES_TABLE
    publication.add_files(table, table_files.write_files(assignments, table.uri(publication.lake.root),
                                                   table.partition_columns, publication.ingestion_id,
                                                   delta.Storage.from_spark(spark)))


def group_routes(
    spark: SparkSession,
    lake_root: str,
    ingestion_id: str,
    refit: bool | Collection[str] = False,
    options: RouteOptions | None = None,
) -> RoutesResult:
    """Assigns a route to every trip an ingestion wrote, fitting a new model version for regions that need one.

    refit: True fits every region of the ingestion again; a collection of names fits those regions again.
    """
    session.configure(spark)
    step_started = time.perf_counter()
    options = options or RouteOptions()
    fs, lake = LakeFs(spark), Lake(lake_root)
    if publish.is_committed(spark, fs, lake, ingestion_id) is not None:
        logger.info("ingestion %s is recorded already: its routes cannot change", ingestion_id)
        return RoutesResult(ingestion_id, 0, 0.0, 0.0, [])
    publication = publish.Publication(spark, fs, lake, ingestion_id, "group_routes").begin()
    batch_files = ingestion_trip_files(spark, lake, ingestion_id)

    current: dict[str, RouteModel | None] = {region: committed.load_model(spark, fs, lake, region) for region in sorted(batch_files)}
    existing = {region: model for region, model in current.items() if model is not None}
    region_files = committed.region_trip_files(spark, lake, batch_files)  # the log read once for the whole step
    counts = region_trip_counts(spark, lake, region_files)
    reasons = {
        region: refit_reason(model, counts[region],
                             refit is True or (not isinstance(refit, bool) and region in refit), options)
        for region, model in current.items()
    }
    refitted = sorted(region for region, reason in reasons.items() if reason is not None)
    models = {region: model for region, model in existing.items() if region not in refitted}

    if refitted:
        # One Spark job samples every refitted region's trips, then each region is fitted on the driver.
        region_trips = committed.read_trips(spark, lake, _of_regions(region_files, refitted),
                                            ["region", *SPATIAL_FEATURES, "started_at"])
        for region, model in fit_regions(region_trips, {region: counts[region] for region in refitted}, options).items():
            model.version = (current[region].version if current[region] else 0) + 1
            stage_model(fs, publication, delta.partition_dir("region", region), model)
            logger.info("%s (%s): model v%d, k=%d (silhouette %s) fitted on %d of %d trips in %.1f s", region,
                        reasons[region], model.version, model.k, model.silhouette, model.sample_rows,
                        model.region_trips, model.fit_seconds)
            models[region] = model
    models = dict(sorted(models.items()))
    for region in refitted:
        if current[region] is not None:
            publication.superseded.append(publish.Supersede(region, models[region].version))

    started = time.perf_counter()
    assigned = 0
    if models:
        parts = []
        for region, model in models.items():
            # A refitted region gets all of its trips assigned under the new version; the others only this ingestion's.
            trips = (
                committed.read_trips(spark, lake, _of_regions(region_files, [region]), ASSIGNED_COLUMNS)
                if region in refitted
                else committed.read_trips(spark, lake, batch_files[region], ASSIGNED_COLUMNS)
                .where(F.col("ingestion_id") == ingestion_id)
            )
            parts.append(assign(trips, model, ingestion_id))
        assignments = parts[0]
        for part in parts[1:]:
            assignments = assignments.unionByName(part)
        counted = Observation("assigned")
        _write_assignments(spark, publication, assignments.observe(counted, F.count(F.lit(1)).alias("trips")))
        assigned = int(counted.get["trips"])
    if refitted:
        rows = [row for region in refitted for row in route_model_rows(models[region], ingestion_id)]
        table = tables.ROUTE_MODELS_TABLE
        publication.add_files(table, table_files.write_files(
            spark.createDataFrame(rows, tables.ROUTE_MODELS_SCHEMA).coalesce(1), table.uri(lake_root),
            table.partition_columns, ingestion_id, delta.Storage.from_spark(spark)))
    publication.publish()
    assign_seconds = round(time.perf_counter() - started, 2)
    return RoutesResult(
        ingestion_id=ingestion_id,
        trips_assigned=assigned,
        seconds=round(time.perf_counter() - step_started, 2),
        assign_seconds=assign_seconds,
        regions=[
            RegionRoutes(
                region=region,
                k=model.k,
                silhouette=model.silhouette,
                refitted=region in refitted,
                fit_reason=reasons[region],
                fit_seconds=model.fit_seconds if region in refitted else None,
                trained_at=model.trained_at.isoformat(),
                model_version=model.version,
            )
            for region, model in models.items()
        ],
    )


def _run(spark: SparkSession, args) -> JobOutcome:
    result = group_routes(spark, args.lake_root, args.ingestion_id, refit=args.refit)
    return JobOutcome(args.ingestion_id, result.to_dict())


def _arguments(parser) -> None:
    parser.add_argument("--ingestion-id", required=True, help="the ingestion whose trips get routes")
    parser.add_argument("--refit", action="store_true",
                        help="fit the regions' models again now, not only when a region has grown 4x since its model")


def main(argv: list[str] | None = None) -> int:
    return run_job("group_routes", __doc__, _arguments, _run, argv)


if __name__ == "__main__":
    sys.exit(main())
