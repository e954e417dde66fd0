"""KMeans and the silhouette on the driver, in numpy: the route models' fit on their bounded sample.

A region's model is fitted on at most `fit_sample_rows` trips (50k x 6 features, ~2.4 MB) and k is chosen on at
most 5,000: both fit in the driver's memory, and there a fit is milliseconds of vectorised arithmetic, where Spark
MLlib made every KMeans iteration a distributed job (~60 ms each, 11 candidate k per region: a fixed ~12 s per
region however few its trips). numpy comes with pyspark.ml wherever the jobs run. Assigning every trip to its
nearest centroid stays in Spark SQL (group_routes.nearest_cluster), so the full data never leaves the cluster.
"""

from __future__ import annotations

import numpy as np

LLOYD_ITERATIONS = 100
RESTARTS = 4  # k-means++ starts per fit; the one with the least inertia wins
DISTANCE_BLOCK_ROWS = 1024  # pairwise distances are computed this many rows at a time


def standardization(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (n - 1) standard deviation of each feature, as Spark's StandardScaler; a constant feature gets a
    deviation of 1, so it scales to 0 instead of dividing by zero."""
    means = points.mean(axis=0)
    deviations = points.std(axis=0, ddof=1) if len(points) > 1 else np.zeros(points.shape[1])
    return means, np.where(deviations > 0, deviations, 1.0)


def squared_distances(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """n x k squared Euclidean distances."""
    return np.maximum(
        (points**2).sum(axis=1)[:, None] + (centers**2).sum(axis=1)[None, :] - 2.0 * points @ centers.T, 0.0
    )


def _plus_plus_start(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: each next center is a point drawn with probability proportional to its squared distance
    to the nearest center so far (fewer than k centers when the points have fewer distinct values)."""
    centers = [points[rng.integers(len(points))]]
    nearest = squared_distances(points, centers[0][None, :])[:, 0]
    while len(centers) < k and nearest.sum() > 0:
        chosen = points[rng.choice(len(points), p=nearest / nearest.sum())]
        centers.append(chosen)
        nearest = np.minimum(nearest, squared_distances(points, chosen[None, :])[:, 0])
    return np.array(centers)


def _lloyd(points: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    for _ in range(LLOYD_ITERATIONS):
        labels = squared_distances(points, centers).argmin(axis=1)
        counts = np.bincount(labels, minlength=len(centers))
        sums = np.stack([np.bincount(labels, weights=points[:, feature], minlength=len(centers))
                         for feature in range(points.shape[1])], axis=1)
        moved = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centers)
        if np.allclose(moved, centers, rtol=0.0, atol=1e-9):
            break
        centers = moved
    distances = squared_distances(points, centers)
    labels = distances.argmin(axis=1)
    return centers, labels, float(distances[np.arange(len(points)), labels].sum())


def kmeans(points: np.ndarray, k: int, seed: int, start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(centers, labels) of the best of RESTARTS k-means++ starts, deterministic for a seed, or of one run from the
    given start centers (e.g. those found on a sample). Clusters that end up empty are dropped, so there may be
    fewer than k centers (fewer distinct points than k)."""
    if start is not None:
        best = _lloyd(points, start)
    else:
        rng = np.random.default_rng(seed)
        best = None
        for _ in range(RESTARTS):
            fitted = _lloyd(points, _plus_plus_start(points, k, rng))
            if best is None or fitted[2] < best[2] - 1e-12:
                best = fitted
    centers, labels, _ = best
    used = np.unique(labels)
    renumber = np.full(len(centers), -1)
    renumber[used] = np.arange(len(used))
    return centers[used], renumber[labels]


def pairwise_distances(points: np.ndarray) -> np.ndarray:
    """n x n Euclidean distances, in float32 (5,000 points: 100 MB), computed once for every candidate k."""
    distances = np.empty((len(points), len(points)), dtype=np.float32)
    for start in range(0, len(points), DISTANCE_BLOCK_ROWS):
        block = points[start : start + DISTANCE_BLOCK_ROWS]
        distances[start : start + len(block)] = np.sqrt(squared_distances(block, points))
    return distances


def silhouette(points: np.ndarray, labels: np.ndarray, distances: np.ndarray | None = None) -> float:
    """Mean silhouette (Euclidean) of a clustering: for each point, (b - a) / max(a, b) with a the mean distance to
    its own cluster and b the smallest mean distance to another; 0 for a point alone in its cluster.
    `distances` are the points' pairwise distances, when several clusterings of the same points are scored."""
    distances = pairwise_distances(points) if distances is None else distances
    clusters = int(labels.max()) + 1
    members = np.zeros((len(points), clusters), dtype=np.float32)
    members[np.arange(len(points)), labels] = 1.0
    sizes = members.sum(axis=0).astype(float)
    totals = (distances @ members).astype(float)  # each point's summed distance to each cluster
    rows = np.arange(len(points))
    own_size = sizes[labels]
    within = totals[rows, labels] / np.maximum(own_size - 1, 1)
    to_others = totals / np.maximum(sizes, 1)[None, :]
    to_others[rows, labels] = np.inf
    between = to_others.min(axis=1)
    scores = np.where(own_size > 1, (between - within) / np.maximum(np.maximum(within, between), 1e-300), 0.0)
    return float(scores.mean())
