"""A region's route model, pure: the features of a trip, k chosen by silhouette, the fit on the driver (numpy,
spark_jobs.common.kmeans), readable route ids, and each trip's nearest route as one Spark SQL expression."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.common import kmeans, tables
from spark_jobs.common.times import MICROS_PER_DAY, day_fraction

logger = logging.getLogger(__name__)

HOURS_PER_DAY = 24.0
SPATIAL_FEATURES = ("origin_lon", "origin_lat", "destination_lon", "destination_lat")
FEATURES = (*SPATIAL_FEATURES, "hour_sin", "hour_cos")


@dataclass(frozen=True)
class RouteOptions:
    min_k: int = 2
    max_k: int = 12  # the cap: more routes per region than an analyst can tell apart on a map
    silhouette_sample_rows: int = 5_000  # choosing k: silhouette of each candidate on this many trips
    # The final fit sees at most this many trips of a region: with k <= 12 that is >= 4k trips per route, plenty
    # for a centroid, and the fit costs the same at 10M trips as at 100M (~1 s of numpy; 200k took ~4 s for the
    # same routes: docs/benchmarks.md, "Routes").
    fit_sample_rows: int = 50_000
    # A region's model is fitted again once the region holds this many times the trips it held when the model was
    # trained: a region first seen through a handful of trips gets routes that fit its later data. Each refit
    # reassigns the whole region, and refits come at 4x, 16x, ... its first size: over a region's growth they
    # reassign at most 4/3 of the trips it ends with.
    refit_growth: float = 4.0
    seed: int = 42

    def __post_init__(self) -> None:
        if not 2 <= self.min_k <= self.max_k:
            raise ValueError("need 2 <= min_k <= max_k")
        if self.silhouette_sample_rows < 10 or self.fit_sample_rows < self.silhouette_sample_rows:
            raise ValueError("need 10 <= silhouette_sample_rows <= fit_sample_rows")
        if not self.refit_growth > 1:
            raise ValueError("need refit_growth > 1 (the factor a region grows by before its model is fitted again)")


# --------------------------------------------------------------------------------------------------
# Pure transforms
# --------------------------------------------------------------------------------------------------


def with_route_features(trips: DataFrame) -> DataFrame:
    """Adds hour_sin and hour_cos: the time of day as a point on the unit circle (midnight wraps around)."""
    angle = day_fraction(F.col("started_at")) * F.lit(2 * math.pi)
    return trips.withColumn("hour_sin", F.sin(angle)).withColumn("hour_cos", F.cos(angle))


def hour_features(started_at_micros: np.ndarray) -> np.ndarray:
    """hour_sin and hour_cos (with_route_features) of UTC timestamps given as microseconds since the epoch."""
    angle = np.mod(started_at_micros, MICROS_PER_DAY) / MICROS_PER_DAY * 2 * math.pi
    return np.column_stack([np.sin(angle), np.cos(angle)])


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
    """A region's fitted model: how features are standardized, the cluster centers, and what an analyst and the
    routes table need to know about it. All of it is plain numbers, kept as one JSON file."""

    region: str
    k: int
    silhouette: float | None
    route_ids: dict[int, str]  # cluster index -> route id
    centroids: dict[str, dict[str, float]]  # route id -> origin/destination lon/lat and typical_hour
    sample_rows: int
    region_trips: int  # the region's trips when the model was trained (what its growth is measured against)
    seed: int
    trained_at: datetime
    fit_seconds: float
    feature_means: list[float]  # standardization: (feature - mean) / deviation, in the order of FEATURES
    feature_deviations: list[float]
    centers: list[list[float]]  # standardized cluster centers, by cluster index
    k_scores: dict[int, float] = field(default_factory=dict)  # silhouette of every candidate k
    version: int = 1  # 1 for a region's first model, one more for every refit

    def metadata(self) -> dict:
        data = asdict(self)
        data["trained_at"] = self.trained_at.isoformat()
        data["route_ids"] = {str(cluster): route for cluster, route in self.route_ids.items()}
        data["k_scores"] = {str(k): score for k, score in self.k_scores.items()}
        return data

    @classmethod
    def from_metadata(cls, data: dict) -> RouteModel:
        return cls(
            **{name: data[name] for name in ("region", "k", "silhouette", "centroids", "sample_rows", "seed",
                                             "fit_seconds", "feature_means", "feature_deviations", "centers")},
            route_ids={int(cluster): route for cluster, route in data["route_ids"].items()},
            trained_at=datetime.fromisoformat(data["trained_at"]),
            k_scores={int(k): score for k, score in data.get("k_scores", {}).items()},
            version=int(data["version"]),
            # Models saved before region_trips was kept: the trips they were fitted on is the best lower bound.
            region_trips=int(data.get("region_trips", data["sample_rows"])),
        )


def k_candidates(rows: int, options: RouteOptions) -> list[int]:
    """The k worth trying for this many trips: min_k up to the cap and up to sqrt(rows / 2).

    Without the data-driven bound, silhouette keeps rising towards one cluster per trip on small samples.
    """
    return list(range(options.min_k, min(options.max_k, math.isqrt(rows // 2)) + 1))


def choose_k(points: np.ndarray, options: RouteOptions) -> tuple[int, float | None, dict[int, float], np.ndarray | None]:
    """The k with the best silhouette among k_candidates() on standardized points (ties: the smaller k), its
    silhouette, every candidate's, and the centers found for it (where the full fit starts).

    A handful of trips cannot support a silhouette: the smallest k is taken as it is.
    """
    candidates = k_candidates(len(points), options)
    if not candidates:
        return options.min_k, None, {}, None
    scores, centers = {}, {}
    distances = kmeans.pairwise_distances(points)
    for k in candidates:
        centers[k], labels = kmeans.kmeans(points, k, options.seed)
        # KMeans finds fewer clusters than k when the sample has fewer distinct points.
        scores[k] = kmeans.silhouette(points, labels, distances) if labels.max() > 0 else -1.0
    best = max(candidates, key=lambda k: (round(scores[k], 6), -k))
    return best, scores[best], scores, centers[best]


def fit_points(region: str, points: np.ndarray, options: RouteOptions, region_trips: int | None = None) -> RouteModel:
    """A region's model from its sample (rows of FEATURES) of its region_trips trips (default: the sample is all of
    them): standardize, choose k, fit, name the routes."""
    started = time.perf_counter()
    if len(points) == 0:
        raise ValueError(f"region {region!r} has no trips to learn routes from")
    means, deviations = kmeans.standardization(points)
    scaled = (points - means) / deviations
    rng = np.random.default_rng(options.seed + 1)
    k_sample = (scaled if len(scaled) <= options.silhouette_sample_rows
                else scaled[rng.choice(len(scaled), options.silhouette_sample_rows, replace=False)])
    k, silhouette, k_scores, start = choose_k(k_sample, options)
    # The full fit starts from the centers found on the sample: a few Lloyd iterations instead of restarts.
    centers, labels = kmeans.kmeans(scaled, k, options.seed, start)  # fewer centers than k: fewer distinct points
    sizes = {cluster: int(size) for cluster, size in enumerate(np.bincount(labels))}
    means_of = {cluster: points[labels == cluster].mean(axis=0) for cluster in sizes}
    route_ids = route_ids_by_size(region, sizes, {cluster: list(mean) for cluster, mean in means_of.items()})
    feature = {name: index for index, name in enumerate(FEATURES)}
    centroids = {
        route_ids[cluster]: {
            **{name: float(mean[feature[name]]) for name in SPATIAL_FEATURES},
            "typical_hour": typical_hour(mean[feature["hour_sin"]], mean[feature["hour_cos"]]),
        }
        for cluster, mean in means_of.items()
    }
    return RouteModel(
        region=region,
        k=len(sizes),
        silhouette=silhouette,
        route_ids=route_ids,
        centroids=centroids,
        sample_rows=len(points),
        region_trips=len(points) if region_trips is None else region_trips,
        seed=options.seed,
        trained_at=datetime.now(timezone.utc),
        fit_seconds=round(time.perf_counter() - started, 3),
        feature_means=means.tolist(),
        feature_deviations=deviations.tolist(),
        centers=centers.tolist(),
        k_scores=k_scores,
    )


@dataclass
class MemberSums:
    """What a model's kept trips add up to, per route: how many, and the sums of their FEATURES (and squares)."""

    counts: dict[str, int] = field(default_factory=dict)
    sums: dict[str, np.ndarray] = field(default_factory=dict)
    squares: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, route_id: str, features: np.ndarray) -> None:
        self.counts[route_id] = self.counts.get(route_id, 0) + len(features)
        self.sums[route_id] = self.sums.get(route_id, 0) + features.sum(axis=0)
        self.squares[route_id] = self.squares.get(route_id, 0) + (features**2).sum(axis=0)


def reestimated(model: RouteModel, members: MemberSums) -> RouteModel | None:
    """The model with its standardization, centers and centroids estimated again from the trips its routes keep
    (an erasure took some): each route's centroid is the mean of its trips, a route with none goes (the others
    are numbered again), and None when no route keeps a trip. The routes are not fitted again: every trip keeps its
    route."""
    kept = [route for _, route in sorted(model.route_ids.items()) if members.counts.get(route)]
    if not kept:
        return None
    count = sum(members.counts[route] for route in kept)
    means = sum(members.sums[route] for route in kept) / count
    variance = (sum(members.squares[route] for route in kept) - count * means**2) / max(count - 1, 1)
    deviations = np.sqrt(np.maximum(variance, 0.0)) if count > 1 else np.zeros(len(FEATURES))
    deviations = np.where(deviations > 1e-12, deviations, 1.0)  # as kmeans.standardization: constant -> 1
    route_means = {route: members.sums[route] / members.counts[route] for route in kept}
    feature = {name: index for index, name in enumerate(FEATURES)}
    return replace(
        model, k=len(kept), route_ids=dict(enumerate(kept)), sample_rows=count,
        feature_means=means.tolist(), feature_deviations=deviations.tolist(),
        centers=[((route_means[route] - means) / deviations).tolist() for route in kept],
        centroids={route: {**{name: float(mean[feature[name]]) for name in SPATIAL_FEATURES},
                           "typical_hour": typical_hour(mean[feature["hour_sin"]], mean[feature["hour_cos"]])}
                   for route, mean in route_means.items()})


def refit_reason(model: RouteModel | None, region_trips: int, asked: bool, options: RouteOptions) -> str | None:
    """Why a region's model is fitted (again) for an ingestion, in words for its report, or None to reuse it.

    region_trips: the region's trips with the ingestion's own."""
    if model is None:
        return "new region"
    if asked:
        return "refit asked"
    growth = region_trips / max(model.region_trips, 1)
    if growth >= options.refit_growth:
        return (f"grew {growth:.1f}x since v{model.version} was trained "
                f"({model.region_trips:,} -> {region_trips:,} trips)")
    return None


def sample_regions(trips: DataFrame, counts: dict[str, int], options: RouteOptions) -> dict[str, np.ndarray]:
    """A bounded random sample of each region's trips (trip columns incl. region and started_at), as rows of
    FEATURES, in one pass over the trips for every region: at most fit_sample_rows x 6 numbers per region."""
    fractions = {region: min(1.0, 1.1 * options.fit_sample_rows / max(total, 1)) for region, total in counts.items()}
    rows = (
        with_route_features(trips.where(F.col("region").isin(list(counts))))
        .sampleBy("region", fractions, seed=options.seed)
        .select("region", *FEATURES)
        .collect()
    )
    by_region: dict[str, list] = {region: [] for region in counts}
    for row in rows:
        by_region[row[0]].append(row[1:])
    return {
        region: np.array(values[: options.fit_sample_rows], dtype=float).reshape(-1, len(FEATURES))
        for region, values in by_region.items()
    }


def fit_regions(trips: DataFrame, counts: dict[str, int], options: RouteOptions) -> dict[str, RouteModel]:
    """Fits each region's route model (counts: region -> its trips) on its bounded sample, collected to the driver
    by one Spark job for all regions; each model's fit_seconds is that job plus its own fit."""
    started = time.perf_counter()
    samples = sample_regions(trips, counts, options)
    sampling = time.perf_counter() - started
    models = {}
    # One after the other: numpy's BLAS already uses every core, and fits in threads were slower (GIL, small arrays).
    for region in sorted(samples):
        fit_started = time.perf_counter()
        models[region] = fit_points(region, samples[region], options, region_trips=counts[region])
        models[region].fit_seconds = round(sampling + time.perf_counter() - fit_started, 3)
    return models


def nearest_cluster(model: RouteModel) -> Column:
    """The index of the model's center nearest to each trip (columns FEATURES), in Spark SQL.

    With x the standardized features, argmin over centers c of |x - c|^2 is argmin of |c|^2 - 2 x.c (|x|^2 is the
    same for every center), which is linear in the raw features once the standardization is folded into the
    weights: one multiply-add per feature and center, and the least (score, index) pair wins (ties: the smaller
    index). The nested distances it replaced were 4x as much generated code and took seconds to compile."""
    if len(model.centers) == 1:
        return F.lit(0)
    means, deviations = np.array(model.feature_means), np.array(model.feature_deviations)
    scored = []
    for cluster, center in enumerate(np.array(model.centers, dtype=float)):
        weights = -2.0 * center / deviations
        constant = float(center @ center + 2.0 * (center * means / deviations).sum())
        score = sum((F.col(name) * F.lit(float(weight)) for name, weight in zip(FEATURES, weights)), F.lit(constant))
        scored.append(F.struct(score.alias("score"), F.lit(cluster).alias("cluster")))
    return F.least(*scored)["cluster"]


def assign(trips: DataFrame, model: RouteModel, ingestion_id: str) -> DataFrame:
    """trip_routes rows (trip_id, region, route_id, model_version, ingestion_id, week_start) for trips of the
    model's region."""
    clustered = with_route_features(trips).withColumn("cluster", nearest_cluster(model))
    return (
        assign_route_ids(clustered, model.route_ids)
        .withColumn("model_version", F.lit(model.version))
        .withColumn("ingestion_id", F.lit(ingestion_id))
        .select(*tables.TRIP_ROUTES_SCHEMA.fieldNames())
    )
