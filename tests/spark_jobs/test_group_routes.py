"""Routes: features, k, quality against planted routes (ARI), determinism, model reuse, tiny regions."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F
from sklearn.metrics import adjusted_rand_score

from spark_jobs import build_weekly, group_routes, ingest
from spark_jobs.common import kmeans, route_model
from spark_jobs.common.route_model import RouteOptions
from tests.conftest import SAMPLE, lake_rows, read_table
from triplake.generate import NOISE_ROUTE, GenerateOptions, generate
from triplake.identity import planted_routes

# Smaller than the defaults where the test is about behaviour, not quality: fewer Spark jobs per fit.
QUICK = RouteOptions(max_k=6, silhouette_sample_rows=2_000)


def ingest_and_route(spark, path: Path, lake_root: str, **kwargs):
    """One whole ingestion (ingest, routes, the weekly step that commits it); the routes step's result."""
    ingestion = ingest.ingest_file(spark, path.as_uri(), lake_root)
    assert ingestion.status == "SUCCEEDED"
    routes = group_routes.group_routes(spark, lake_root, ingestion.ingestion_id, **kwargs)
    build_weekly.build_weekly(spark, lake_root, ingestion.ingestion_id)
    return ingestion, routes


def trip_routes(lake_root: str) -> dict[str, str]:
    """trip_id -> route_id as readers see it (the trip_routes view); each trip at most once."""
    rows = lake_rows(lake_root, "select trip_id, route_id from trip_routes")
    assert len({row["trip_id"] for row in rows}) == len(rows), "a trip has more than one current route"
    return {row["trip_id"]: row["route_id"] for row in rows}


def trip_ids(lake_root: str) -> list[str]:
    return [row["trip_id"] for row in lake_rows(lake_root, "select trip_id from trips")]


def routes_table(lake_root: str) -> list[dict]:
    return lake_rows(lake_root, "select * from routes order by region, route_id")


# --- pure transforms ---------------------------------------------------------------------------------

def test_time_of_day_is_a_point_on_a_circle(spark):
    at = [datetime(2018, 5, 28, 23, 50), datetime(2018, 5, 29, 0, 10), datetime(2018, 5, 29, 12, 0)]
    frame = spark.createDataFrame([(t.replace(tzinfo=timezone.utc),) for t in at], "started_at timestamp")
    points = [(row["hour_sin"], row["hour_cos"]) for row in route_model.with_route_features(frame).collect()]

    def distance(a, b):
        return math.dist(a, b)

    assert all(math.isclose(math.hypot(*point), 1.0) for point in points)
    assert distance(points[0], points[1]) < 0.1  # 20 minutes apart across midnight
    assert distance(points[0], points[2]) > 1.9  # almost opposite on the circle
    assert distance(points[1], points[2]) > 1.9


def test_typical_hour_reads_the_circle_back():
    for hour in (0.0, 0.25, 8.5, 12.0, 23.75):
        angle = hour / 24 * 2 * math.pi
        assert math.isclose(route_model.typical_hour(math.sin(angle), math.cos(angle)), hour, abs_tol=1e-9)


def test_route_ids_are_numbered_by_size_then_centroid():
    ids = route_model.route_ids_by_size("Prague", {0: 5, 1: 9, 2: 5}, {0: [2.0], 1: [0.0], 2: [1.0]})
    assert ids == {1: "Prague-01", 2: "Prague-02", 0: "Prague-03"}


def test_k_candidates_grow_with_the_data_up_to_the_cap():
    options = RouteOptions(min_k=2, max_k=12)
    assert route_model.k_candidates(3, options) == []
    assert route_model.k_candidates(40, options) == [2, 3, 4]
    assert route_model.k_candidates(1_000_000, options) == list(range(2, 13))


# --- quality -----------------------------------------------------------------------------------------

def test_a_region_first_seen_through_the_sample_is_refitted_when_50k_trips_arrive(spark, lake_root, tmp_path):
    data, truth = tmp_path / "trips.csv", tmp_path / "truth.csv"
    generate(GenerateOptions(rows=50_000, seed=12, noise_rate=0.1, routes_per_region=5), data, truth)
    _, first = ingest_and_route(spark, SAMPLE, lake_root)
    assert {region.fit_reason for region in first.regions} == {"new region"}
    _, grown = ingest_and_route(spark, data, lake_root)

    assert all(region.refitted and region.model_version == 2 for region in grown.regions)
    assert all(region.fit_reason.startswith("grew ") for region in grown.regions), grown.regions
    trips = len(trip_ids(lake_root))
    assert grown.trips_assigned == trips  # every trip of a refitted region, the sample's too, under the new model
    table = routes_table(lake_root)
    assert {row["model_version"] for row in table} == {2} and sum(row["trips"] for row in table) == trips
    # The routes are the 50k trips' routes, not the sample's: the planted routes are found again (noise excluded),
    # every trip has exactly one.
    planted, found = planted_routes(data, truth), trip_routes(lake_root)
    assert set(planted) <= set(found)
    routed = [trip for trip, route in planted.items() if route != NOISE_ROUTE]
    ari = adjusted_rand_score([planted[trip] for trip in routed], [found[trip] for trip in routed])
    assert ari >= 0.9, f"ARI {ari:.3f} after the refit, k per region {[(r.region, r.k) for r in grown.regions]}"
    assert all(region.k >= 5 and region.silhouette > 0.5 for region in grown.regions)


def test_a_region_is_refitted_once_it_has_grown_by_the_stated_factor():
    options = RouteOptions(refit_growth=4.0)
    model = route_model.fit_points("Turin", np.array([[7.6, 45.0, 7.7, 45.1, 0.0, 1.0]] * 3 + [[7.7, 45.1, 7.6, 45.0, 1.0, 0.0]] * 3),
                                   options, region_trips=1_000)
    assert route_model.refit_reason(None, 10, False, options) == "new region"
    assert route_model.refit_reason(model, 3_999, False, options) is None
    assert route_model.refit_reason(model, 3_999, True, options) == "refit asked"
    assert route_model.refit_reason(model, 4_000, False, options) == "grew 4.0x since v1 was trained (1,000 -> 4,000 trips)"
    # A model saved before region_trips was kept is measured against the trips it was fitted on.
    metadata = model.metadata()
    del metadata["region_trips"]
    assert route_model.RouteModel.from_metadata(metadata).region_trips == 6


# --- behaviour -----------------------------------------------------------------------------------------

def test_the_sample_file_gives_every_trip_a_route(spark, lake_root):
    _, result = ingest_and_route(spark, SAMPLE, lake_root, options=QUICK)

    routes = trip_routes(lake_root)
    assert sorted(routes) == sorted(trip_ids(lake_root)) and len(routes) == 100
    assert result.trips_assigned == 100
    assert {region.region for region in result.regions} == {"Prague", "Turin", "Hamburg"}
    assert {region.model_version for region in result.regions} == {1}
    table = routes_table(lake_root)
    assert sum(row["trips"] for row in table) == 100
    assert {row["route_id"] for row in table} == set(routes.values())
    assert all(row["route_id"].startswith(row["region"] + "-") and 0 <= row["typical_hour"] < 24 for row in table)


def test_the_same_data_gives_the_same_route_ids_and_a_new_file_reuses_the_model(spark, tmp_path):
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    generate(GenerateOptions(rows=3_000, seed=5), first)
    generate(GenerateOptions(rows=1_000, seed=6), second)
    lake_a, lake_b = (tmp_path / "a").as_uri(), (tmp_path / "b").as_uri()

    ingest_and_route(spark, first, lake_a, options=QUICK)
    ingest_and_route(spark, first, lake_b, options=QUICK)
    assert trip_routes(lake_a) == trip_routes(lake_b)

    models_before = routes_table(lake_a)
    _, result = ingest_and_route(spark, second, lake_a, options=QUICK)
    assert not any(region.refitted for region in result.regions)
    routes = trip_routes(lake_a)
    assert sorted(routes) == sorted(trip_ids(lake_a))  # the new trips too, each once
    models_after = routes_table(lake_a)
    assert [(r["route_id"], r["trained_at"]) for r in models_after] == [(r["route_id"], r["trained_at"]) for r in models_before]
    assert sum(row["trips"] for row in models_after) == len(routes) == 4_000


def test_refit_is_a_new_model_version_that_replaces_the_old_routes_as_one_unit(spark, lake_root, tmp_path):
    data, more = tmp_path / "trips.csv", tmp_path / "more.csv"
    generate(GenerateOptions(rows=2_000, seed=8), data)
    generate(GenerateOptions(rows=500, seed=9), more)
    _, first = ingest_and_route(spark, data, lake_root, options=QUICK)
    ingestion = ingest.ingest_file(spark, more.as_uri(), lake_root)
    again = group_routes.group_routes(spark, lake_root, ingestion.ingestion_id, refit=True, options=QUICK)

    assert all(region.refitted and region.model_version == 2 for region in again.regions)
    assert {region.trained_at for region in again.regions}.isdisjoint({region.trained_at for region in first.regions})
    # Before the commit, readers still see the first model's routes for the first file's trips only.
    assert {row["model_version"] for row in routes_table(lake_root)} == {1}
    assert len(trip_routes(lake_root)) == 2_000
    build_weekly.build_weekly(spark, lake_root, ingestion.ingestion_id)
    table = routes_table(lake_root)
    assert {row["trained_at"].replace(tzinfo=timezone.utc).isoformat() for row in table} == {
        region.trained_at for region in again.regions}
    assert {row["model_version"] for row in table} == {2} and sum(row["trips"] for row in table) == 2_500
    assert sorted(trip_routes(lake_root)) == sorted(trip_ids(lake_root))
    # The superseded version is gone from the files once the refit committed.
    files = read_table(lake_root, "curated/trip_routes", partitioned=True)
    assert set(files["model_version"].to_pylist()) == {2} and files.num_rows == 2_500


@pytest.mark.parametrize("trips", [1, 3])
def test_a_region_with_fewer_trips_than_the_minimum_k_still_gets_routes(spark, lake_root, tmp_path, trips):
    tiny = tmp_path / "tiny.csv"
    lines = SAMPLE.read_text().splitlines()
    tiny.write_text("\n".join([lines[0], *[line for line in lines if line.startswith("Turin")][:trips]]) + "\n")
    _, result = ingest_and_route(spark, tiny, lake_root)

    (region,) = result.regions
    assert region.region == "Turin" and region.k == min(trips, 2) and region.silhouette is None
    assert len(trip_routes(lake_root)) == trips
    # the next file's trips get routes too: from the saved model, or from a new one once the region has grown 4x
    more = tmp_path / "more.csv"
    more.write_text("\n".join([lines[0], *[line for line in lines if line.startswith("Turin")][3:6]]) + "\n")
    _, again = ingest_and_route(spark, more, lake_root)
    assert again.regions[0].refitted == (trips + 3 >= 4 * trips) and len(trip_routes(lake_root)) == trips + 3


def test_rerunning_the_routes_step_of_an_ingestion_leaves_what_one_run_leaves(spark, lake_root):
    ingestion = ingest.ingest_file(spark, SAMPLE.as_uri(), lake_root)
    group_routes.group_routes(spark, lake_root, ingestion.ingestion_id, options=QUICK)
    group_routes.group_routes(spark, lake_root, ingestion.ingestion_id, options=QUICK)
    build_weekly.build_weekly(spark, lake_root, ingestion.ingestion_id)
    once = trip_routes(lake_root)
    table = read_table(lake_root, "curated/trip_routes", partitioned=True)
    assert table.num_rows == 100 and len(once) == 100
    assert len(read_table(lake_root, "curated/route_models").to_pylist()) == len(routes_table(lake_root))
    # and a rerun after the commit changes nothing
    group_routes.group_routes(spark, lake_root, ingestion.ingestion_id, options=QUICK)
    assert read_table(lake_root, "curated/trip_routes", partitioned=True).num_rows == 100 and trip_routes(lake_root) == once


@pytest.mark.parametrize("bad", [dict(min_k=1), dict(min_k=5, max_k=4), dict(silhouette_sample_rows=5), dict(refit_growth=1.0)])
def test_route_options_are_checked(bad):
    with pytest.raises(ValueError):
        RouteOptions(**bad)


def test_assigning_uses_the_route_ids_of_the_model(spark):
    frame = spark.createDataFrame([(0,), (2,), (1,)], "cluster int")
    mapped = route_model.assign_route_ids(frame, {0: "X-02", 1: "X-03", 2: "X-01"})
    assert [row["route_id"] for row in mapped.orderBy(F.monotonically_increasing_id()).collect()] == ["X-02", "X-01", "X-03"]


def test_spark_assigns_each_trip_to_the_center_numpy_finds_nearest(spark):
    rng = np.random.default_rng(3)
    points = np.concatenate([rng.normal(center, 0.3, size=(200, 6)) for center in (0.0, 2.0, 4.0, 6.0)])
    points[:, :4] = points[:, :4] * 0.01 + [14.4, 50.0, 14.5, 50.1]  # degrees: standardization matters
    model = route_model.fit_points("Prague", points, RouteOptions(max_k=6))
    frame = spark.createDataFrame([tuple(map(float, row)) for row in points], list(route_model.FEATURES))
    in_spark = [row["cluster"] for row in frame.select(route_model.nearest_cluster(model).alias("cluster")).collect()]

    scaled = (points - np.array(model.feature_means)) / np.array(model.feature_deviations)
    in_numpy = kmeans.squared_distances(scaled, np.array(model.centers)).argmin(axis=1)
    assert model.k >= 4 and in_spark == in_numpy.tolist()
