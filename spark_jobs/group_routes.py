"""Group trips into routes: similar origin, destination and time of day (Spark MLlib KMeans), one model per region.

    trips of an ingestion -> per region: the saved model, or a new one fitted on a bounded sample of the
    region's trips (k chosen by silhouette) -> every trip gets a route -> trip_routes

Features: origin and destination lon/lat, and the time of day as a point on a circle (sin and cos of the
fraction of the day, so 23:50 is close to 00:10), standardized so that no feature dominates by its units.
The cost grows linearly with the data: k is chosen on a small sample, the model is fitted on at most
`fit_sample_rows` trips of a region, and assigning a trip is one distance computation per route.

A region's model is saved under models/routes/ and reused: a new file's trips are assigned without refitting.
A region is (re)fitted when it has no model yet or when asked (--refit); all of its trips are then reassigned,
so trip_routes always agrees with the region's current model. The routes table (each model's routes with their
trips) is published by build_weekly, which counts them from the weekly table it has just rebuilt. Route ids are readable and stable for the same
data and seed: '<region>-NN', numbered by the size of the route in the fitting sample (01 = busiest).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.clustering import KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.feature import StandardScaler, VectorAssembler
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from spark_jobs.common import session, tables
from spark_jobs.common.lake import Lake, partition_dir, partition_value, write_report
from spark_jobs.common.lakefs import LakeFs
from spark_jobs.common.times import day_fraction

logger = logging.getLogger(__name__)

HOURS_PER_DAY = 24.0
SPATIAL_FEATURES = ("origin_lon", "origin_lat", "destination_lon", "destination_lat")
FEATURES = (*SPATIAL_FEATURES, "hour_sin", "hour_cos")
MODEL_METADATA = "route_model.json"
# Each KMeans iteration is a Spark job (~60 ms locally, whatever the sample size): ranking the candidate k
# needs fewer iterations than the final fit, which keeps Spark's default of 20.
SCAN_MAX_ITER = 10
PIPELINE_DIR = "pipeline"


@dataclass(frozen=True)
class RouteOptions:
    min_k: int = 2
    max_k: int = 12  # the cap: more routes per region than an analyst can tell apart on a map
    silhouette_sample_rows: int = 5_000  # choosing k: silhouette of each candidate on this many trips
    # The final fit sees at most this many trips of a region: with k <= 12 that is >= 16k trips per route,
    # plenty for centroids, and the fit then costs the same at 10M trips as at 100M.
    fit_sample_rows: int = 200_000
    seed: int = 42

    def __post_init__(self) -> None:
        if not 2 <= self.min_k <= self.max_k:
            raise ValueError("need 2 <= min_k <= max_k")
        if self.silhouette_sample_rows < 10 or self.fit_sample_rows < self.silhouette_sample_rows:
            raise ValueError("need 10 <= silhouette_sample_rows <= fit_sample_rows")


# --------------------------------------------------------------------------------------------------
# Pure transforms
# --------------------------------------------------------------------------------------------------


def with_route_features(trips: DataFrame) -> DataFrame:
    """Adds hour_sin and hour_cos: the time of day as a point on the unit circle (midnight wraps around)."""
    angle = day_fraction(F.col("started_at")) * F.lit(2 * math.pi)
    return trips.withColumn("hour_sin", F.sin(angle)).withColumn("hour_cos", F.cos(angle))


def feature_stages() -> list:
    """Features -> one vector, standardized (zero mean, unit variance per feature)."""
    return [
        VectorAssembler(inputCols=list(FEATURES), outputCol="raw_features"),
        StandardScaler(inputCol="raw_features", outputCol="features", withMean=True, withStd=True),
    ]


def route_pipeline(k: int, seed: int) -> Pipeline:
    """Standardized features -> KMeans with k clusters."""
    return Pipeline(stages=[*feature_stages(), KMeans(k=k, seed=seed, featuresCol="features", predictionCol="cluster")])


def typical_hour(hour_sin: float, hour_cos: float) -> float:
    """The hour of day in [0, 24) that a (mean) point on the time-of-day circle points to."""
    return (math.atan2(hour_sin, hour_cos) / (2 * math.pi) * HOURS_PER_DAY) % HOURS_PER_DAY


def route_ids_by_size(region: str, cluster_sizes: dict[int, int], centers: dict[int, list[float]]) -> dict[int, str]:
    """Readable route ids: '<region>-01' for the largest cluster, then by size; equal sizes by centroid."""
    order = sorted(cluster_sizes, key=lambda cluster: (-cluster_sizes[cluster], centers[cluster]))
    return {cluster: f"{region}-{rank:02d}" for rank, cluster in enumerate(order, start=1)}


def assign_route_ids(clustered: DataFrame, route_ids: dict[int, str]) -> DataFrame:
    """Maps the cluster index to its route id (a literal map: no join, no UDF)."""
    mapping = F.create_map(*[item for cluster, route in sorted(route_ids.items()) for item in (F.lit(cluster), F.lit(route))])
    return clustered.withColumn("route_id", mapping[F.col("cluster")])


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------


@dataclass
class RouteModel:
    """A region's fitted pipeline with what an analyst and the routes table need to know about it."""

    region: str
    k: int
    silhouette: float | None
    route_ids: dict[int, str]  # cluster index -> route id
    centroids: dict[str, dict[str, float]]  # route id -> origin/destination lon/lat and typical_hour
    sample_rows: int
    seed: int
    trained_at: datetime
    fit_seconds: float
    k_scores: dict[int, float] = field(default_factory=dict)  # silhouette of every candidate k
    pipeline: PipelineModel | None = field(default=None, repr=False, compare=False)

    def metadata(self) -> dict:
        # Not asdict(): it deep-copies every field, and the pipeline is a handle on JVM objects.
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "pipeline"}
        data["trained_at"] = self.trained_at.isoformat()
        data["route_ids"] = {str(cluster): route for cluster, route in self.route_ids.items()}
        data["k_scores"] = {str(k): score for k, score in self.k_scores.items()}
        return data

    @classmethod
    def from_metadata(cls, data: dict, pipeline: PipelineModel) -> RouteModel:
        return cls(
            region=data["region"],
            k=data["k"],
            silhouette=data["silhouette"],
            route_ids={int(cluster): route for cluster, route in data["route_ids"].items()},
            centroids=data["centroids"],
            sample_rows=data["sample_rows"],
            seed=data["seed"],
            trained_at=datetime.fromisoformat(data["trained_at"]),
            fit_seconds=data["fit_seconds"],
            k_scores={int(k): score for k, score in data.get("k_scores", {}).items()},
            pipeline=pipeline,
        )


def _sample(trips: DataFrame, total: int, rows: int, seed: int) -> DataFrame:
    return trips if total <= rows else trips.sample(fraction=min(1.0, 1.1 * rows / total), seed=seed).limit(rows)


def k_candidates(rows: int, options: RouteOptions) -> list[int]:
    """The k worth trying for this many trips: min_k up to the cap and up to sqrt(rows / 2).

    Without the data-driven bound, silhouette keeps rising towards one cluster per trip on small samples.
    """
    return list(range(options.min_k, min(options.max_k, math.isqrt(rows // 2)) + 1))


def choose_k(features: DataFrame, rows: int, options: RouteOptions) -> tuple[int, float | None, dict[int, float]]:
    """The k with the best silhouette among k_candidates() on a standardized sample (ties: the smaller k).

    A handful of trips cannot support a silhouette: the smallest k is taken as it is.
    """
    candidates = k_candidates(rows, options)
    if not candidates:
        return options.min_k, None, {}
    # One partition: every KMeans iteration is a Spark job, and on a sample this small the cost is the job.
    scaled = Pipeline(stages=feature_stages()).fit(features).transform(features).select("features").coalesce(1).cache()
    try:
        evaluator = ClusteringEvaluator(featuresCol="features", predictionCol="cluster", metricName="silhouette")
        scores = {}
        for k in candidates:
            clustered = KMeans(
                k=k, seed=options.seed, maxIter=SCAN_MAX_ITER, featuresCol="features", predictionCol="cluster"
            ).fit(scaled)
            predictions = clustered.transform(scaled)
            # KMeans finds fewer clusters than k when the sample has fewer distinct points.
            scores[k] = evaluator.evaluate(predictions) if len(clustered.clusterCenters()) > 1 else -1.0
        best = max(candidates, key=lambda k: (round(scores[k], 6), -k))
        return best, scores[best], scores
    finally:
        scaled.unpersist()


FIT_ROWS_PER_PARTITION = 50_000
SMALL_REGION_ROWS = 10_000
MAX_PARALLEL_FITS = 4


def spark_cores(frame: DataFrame) -> int:
    return frame.sparkSession.sparkContext.defaultParallelism


def fit_region(region: str, trips: DataFrame, options: RouteOptions) -> RouteModel:
    """Fits a region's route model on a bounded sample of its trips (trip columns incl. started_at)."""
    started = time.perf_counter()
    features = with_route_features(trips).select(*FEATURES)
    total = features.count()
    if total == 0:
        raise ValueError(f"region {region!r} has no trips to learn routes from")
    # Fewer, larger partitions: each KMeans iteration is a Spark job over all of them.
    partitions = max(1, min(spark_cores(trips), total // FIT_ROWS_PER_PARTITION))
    fit_sample = _sample(features, total, options.fit_sample_rows, options.seed).coalesce(partitions).cache()
    try:
        fit_rows = fit_sample.count()
        # Spark's KMeans fails when a sample has fewer distinct points than k: a small region is checked.
        distinct_points = fit_sample.distinct().count() if fit_rows < SMALL_REGION_ROWS else fit_rows
        k_sample = _sample(fit_sample, fit_rows, options.silhouette_sample_rows, options.seed + 1)
        k, silhouette, k_scores = choose_k(k_sample, min(fit_rows, options.silhouette_sample_rows), options)
        k = min(k, distinct_points)
        if k >= 2:
            pipeline = route_pipeline(k, options.seed).fit(fit_sample)
            clustered = pipeline.transform(fit_sample)
        else:  # one distinct point: one route, nothing to learn
            pipeline, clustered = None, fit_sample.withColumn("cluster", F.lit(0))
        clusters = clustered.groupBy("cluster").agg(
            F.count(F.lit(1)).alias("size"), *[F.avg(name).alias(name) for name in FEATURES]
        ).collect()
        sizes = {row["cluster"]: row["size"] for row in clusters}
        means = {row["cluster"]: row for row in clusters}
    finally:
        fit_sample.unpersist()
    centers = {cluster: [means[cluster][name] for name in FEATURES] for cluster in sizes}
    route_ids = route_ids_by_size(region, sizes, centers)
    centroids = {
        route_ids[cluster]: {
            **{name: means[cluster][name] for name in SPATIAL_FEATURES},
            "typical_hour": typical_hour(means[cluster]["hour_sin"], means[cluster]["hour_cos"]),
        }
        for cluster in sizes
    }
    return RouteModel(
        region=region,
        k=len(sizes),
        silhouette=silhouette,
        route_ids=route_ids,
        centroids=centroids,
        sample_rows=fit_rows,
        seed=options.seed,
        trained_at=datetime.now(timezone.utc),
        fit_seconds=round(time.perf_counter() - started, 2),
        k_scores=k_scores,
        pipeline=pipeline,
    )


def assign(trips: DataFrame, model: RouteModel) -> DataFrame:
    """trip_routes rows (trip_id, region, route_id, week_start) for trips of the model's region."""
    if model.pipeline is None:  # a single route
        clustered = trips.withColumn("cluster", F.lit(0))
    else:
        clustered = model.pipeline.transform(with_route_features(trips))
    return assign_route_ids(clustered, model.route_ids).select(*tables.TRIP_ROUTES_SCHEMA.fieldNames())


# --------------------------------------------------------------------------------------------------
# I/O
# --------------------------------------------------------------------------------------------------


@dataclass
class RegionRoutes:
    region: str
    k: int
    silhouette: float | None
    refitted: bool
    fit_seconds: float | None
    trained_at: str


@dataclass
class RoutesResult:
    ingestion_id: str
    trips_assigned: int
    seconds: float  # the whole step: fits (regions side by side), assignment, publishing trip_routes
    assign_seconds: float
    regions: list[RegionRoutes]

    def to_dict(self) -> dict:
        return asdict(self)


def _model_dir(spark: SparkSession, lake: Lake, region: str) -> str:
    return lake.uri(tables.ROUTE_MODELS, partition_dir(spark, "region", region))


def load_model(spark: SparkSession, fs: LakeFs, lake: Lake, region: str) -> RouteModel | None:
    """The region's saved model, or None. The metadata file is written last: without it there is no model."""
    directory = _model_dir(spark, lake, region)
    metadata_uri = f"{directory}/{MODEL_METADATA}"
    if not fs.exists(metadata_uri):
        return None
    pipeline_uri = f"{directory}/{PIPELINE_DIR}"
    pipeline = PipelineModel.load(pipeline_uri) if fs.exists(pipeline_uri) else None  # None: a single route
    return RouteModel.from_metadata(json.loads(fs.read_text(metadata_uri)), pipeline)


def save_model(spark: SparkSession, fs: LakeFs, lake: Lake, model: RouteModel) -> None:
    directory = _model_dir(spark, lake, model.region)
    fs.delete(f"{directory}/{MODEL_METADATA}")  # a half-saved model must not look complete
    fs.delete(f"{directory}/{PIPELINE_DIR}")
    if model.pipeline is not None:
        model.pipeline.write().overwrite().save(f"{directory}/{PIPELINE_DIR}")
    fs.write_text(f"{directory}/{MODEL_METADATA}", json.dumps(model.metadata(), indent=2))


def _read_trips(spark: SparkSession, lake: Lake, paths: list[str]) -> DataFrame:
    return spark.read.option("basePath", lake.uri(tables.TRIPS)).parquet(*paths)


def ingestion_trip_files(spark: SparkSession, fs: LakeFs, lake: Lake, ingestion_id: str) -> dict[str, list[str]]:
    """The trips files an ingestion published, by region (found by their name: '<ingestion_id>-part-...')."""
    by_region: dict[str, list[str]] = {}
    for entry in fs.glob(lake.ingestion_files(tables.TRIPS, ingestion_id)):
        region_dir = entry.uri.rsplit("/", 3)[1]
        by_region.setdefault(partition_value(spark, region_dir), []).append(entry.uri)
    return by_region


def _publish_trip_routes(
    spark: SparkSession, fs: LakeFs, lake: Lake, assignments: DataFrame, ingestion_id: str, refitted: list[str]
) -> None:
    """Stages the new trip_routes files, then moves them in place: a refitted region's old files go, and files
    an earlier attempt of this ingestion left are replaced (a rerun leaves what one run leaves)."""
    staging = lake.staging(f"{ingestion_id}.routes")
    fs.delete(staging)
    assignments.write.mode("overwrite").partitionBy(*tables.TRIPS_PARTITION_COLUMNS).parquet(staging)
    root = lake.uri(tables.TRIP_ROUTES)
    for region in refitted:
        fs.delete(f"{root}/{partition_dir(spark, 'region', region)}")
    for stale in fs.glob(lake.ingestion_files(tables.TRIP_ROUTES, ingestion_id)):
        fs.delete(stale.uri)
    for staged in fs.glob(f"{staging}/region=*/week_start=*/*.parquet"):
        region_dir, week_dir, name = staged.uri.rsplit("/", 3)[1:]
        fs.rename(staged.uri, f"{root}/{region_dir}/{week_dir}/{ingestion_id}-{name}")
    fs.delete(staging)


def route_rows(model: RouteModel, trips_by_route: dict[str, int]) -> list[dict]:
    """Rows of the routes table for one region's model: each route's centroid, typical hour and trips."""
    return [
        {
            "region": model.region,
            "route_id": route_id,
            "trips": trips_by_route.get(route_id, 0),
            **{name: centroid[name] for name in (*SPATIAL_FEATURES, "typical_hour")},
            "k": model.k,
            "silhouette": model.silhouette,
            "trained_at": model.trained_at,
        }
        for route_id, centroid in sorted(model.centroids.items())
    ]


def saved_models(spark: SparkSession, fs: LakeFs, lake: Lake) -> dict[str, RouteModel]:
    """Every region's saved model, described by its metadata alone (no pipeline is loaded)."""
    models = {}
    for entry in fs.glob(lake.uri(tables.ROUTE_MODELS, "region=*", MODEL_METADATA)):
        region = partition_value(spark, entry.uri.rsplit("/", 2)[1])
        models[region] = RouteModel.from_metadata(json.loads(fs.read_text(entry.uri)), pipeline=None)
    return dict(sorted(models.items()))


def group_routes(
    spark: SparkSession,
    lake_root: str,
    ingestion_id: str,
    refit: bool | Collection[str] = False,
    options: RouteOptions | None = None,
) -> RoutesResult:
    """Assigns a route to every trip an ingestion wrote, fitting the models of regions that need one.

    refit: True fits every region of the ingestion again; a collection of names fits those regions again.
    """
    session.configure(spark)
    step_started = time.perf_counter()
    options = options or RouteOptions()
    fs, lake = LakeFs(spark), Lake(lake_root)
    batch_files = ingestion_trip_files(spark, fs, lake, ingestion_id)

    models: dict[str, RouteModel] = {}
    for region in sorted(batch_files):
        refit_region = refit is True or (not isinstance(refit, bool) and region in refit)
        model = None if refit_region else load_model(spark, fs, lake, region)
        if model is not None:
            models[region] = model
    refitted = sorted(set(batch_files) - set(models))

    def fit(region: str) -> RouteModel:
        region_trips = _read_trips(spark, lake, [lake.uri(tables.TRIPS, partition_dir(spark, "region", region))])
        model = fit_region(region, region_trips, options)
        save_model(spark, fs, lake, model)
        logger.info("%s: k=%d (silhouette %s) fitted on %d trips in %.1f s", region, model.k, model.silhouette,
                    model.sample_rows, model.fit_seconds)
        return model

    # Regions are fitted side by side: a fit is many small Spark jobs that leave cores idle one at a time.
    with ThreadPoolExecutor(max_workers=max(1, min(len(refitted), MAX_PARALLEL_FITS))) as pool:
        models.update(zip(refitted, pool.map(fit, refitted)))
    models = dict(sorted(models.items()))

    started = time.perf_counter()
    assigned = 0
    if models:
        parts = []
        for region, model in models.items():
            # A refitted region gets all of its trips (re)assigned; the others only this ingestion's.
            paths = (
                [lake.uri(tables.TRIPS, partition_dir(spark, "region", region))]
                if region in refitted
                else batch_files[region]
            )
            parts.append(assign(_read_trips(spark, lake, paths), model))
        assignments = parts[0]
        for part in parts[1:]:
            assignments = assignments.unionByName(part)
        counted = Observation("assigned")
        _publish_trip_routes(
            spark, fs, lake, assignments.observe(counted, F.count(F.lit(1)).alias("trips")), ingestion_id, refitted
        )
        assigned = int(counted.get["trips"])
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
                fit_seconds=model.fit_seconds if region in refitted else None,
                trained_at=model.trained_at.isoformat(),
            )
            for region, model in models.items()
        ],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="group_routes", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lake-root", required=True, help="URI of the lake root")
    parser.add_argument("--ingestion-id", required=True, help="the ingestion whose trips get routes")
    parser.add_argument("--refit", action="store_true", help="fit the regions' models again instead of reusing them")
    args = parser.parse_args(argv)
    spark = session.get_or_create("triplake-group-routes")
    result = group_routes(spark, args.lake_root, args.ingestion_id, refit=args.refit)
    write_report(spark, args.lake_root, args.ingestion_id, "group_routes", result.to_dict())
    print(json.dumps(result.to_dict(), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
