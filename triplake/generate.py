"""Synthetic trips in the exact input format, with planted routes to measure grouping quality against.

Each region has a few route patterns (an origin hotspot, a destination hotspot and a typical hour); most
trips follow one of them with some spread, the rest are uniform noise over the region's bounding box.
Generation is vectorised (numpy, pyarrow) and deterministic for a seed: the same arguments give the same
bytes. A side file can hold the planted route of every line ("noise" for noise rows).
"""

from __future__ import annotations

import io
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

HEADER = ("region", "origin_coord", "destination_coord", "datetime", "datasource")
DATASOURCES = ("funny_car", "baba_car", "cheap_mobile", "bad_diesel_vehicles", "pt_search_app")
NOISE_ROUTE = "noise"
CHUNK_ROWS = 100_000  # small chunks stay in CPU caches: ~1.5x faster per core than 1M
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class BBox:
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float


# Bounding boxes around the three regions of the real sample (May 2018).
REGIONS: dict[str, BBox] = {
    "Prague": BBox(14.30, 49.98, 14.68, 50.14),
    "Turin": BBox(7.50, 44.97, 7.79, 45.15),
    "Hamburg": BBox(9.78, 53.40, 10.23, 53.66),
}


@dataclass(frozen=True)
class GenerateOptions:
    rows: int
    seed: int = 42
    duplicate_rate: float = 0.0
    noise_rate: float = 0.1
    routes_per_region: int = 5
    start: date = date(2018, 5, 1)
    days: int = 31
    regions: tuple[str, ...] = tuple(REGIONS)
    spread_km: float = 0.6
    spread_hours: float = 0.5

    def __post_init__(self) -> None:
        if self.rows < 0:
            raise ValueError("rows must be zero or more")
        if not 0.0 <= self.duplicate_rate < 1.0:
            raise ValueError("duplicate rate must be in [0, 1)")
        if not 0.0 <= self.noise_rate <= 1.0:
            raise ValueError("noise rate must be in [0, 1]")
        if self.routes_per_region < 1 or self.days < 1:
            raise ValueError("routes per region and days must be at least 1")
        unknown = [region for region in self.regions if region not in REGIONS]
        if unknown:
            raise ValueError(f"unknown regions {unknown}; known: {', '.join(REGIONS)}")


@dataclass(frozen=True)
class PlantedRoutes:
    """Route patterns, arrays of shape (regions, routes_per_region)."""

    origin_lon: np.ndarray
    origin_lat: np.ndarray
    destination_lon: np.ndarray
    destination_lat: np.ndarray
    hour: np.ndarray


def plant_routes(options: GenerateOptions) -> PlantedRoutes:
    """Route hotspots inside the middle 80% of each region's box, at random hours of the day."""
    rng = np.random.default_rng([options.seed, 0])
    shape = (len(options.regions), options.routes_per_region)
    boxes = [REGIONS[name] for name in options.regions]
    min_lon = np.array([[b.min_lon] for b in boxes])
    min_lat = np.array([[b.min_lat] for b in boxes])
    width = np.array([[b.max_lon - b.min_lon] for b in boxes])
    height = np.array([[b.max_lat - b.min_lat] for b in boxes])

    def inner(low: np.ndarray, size: np.ndarray) -> np.ndarray:
        return low + size * rng.uniform(0.1, 0.9, shape)

    return PlantedRoutes(
        origin_lon=inner(min_lon, width),
        origin_lat=inner(min_lat, height),
        destination_lon=inner(min_lon, width),
        destination_lat=inner(min_lat, height),
        hour=rng.uniform(0.0, 24.0, shape),
    )


COORDINATE_DECIMALS = 10  # ~0.01 mm; shorter text than full doubles, and faster to format


def _points(lon: np.ndarray, lat: np.ndarray) -> pa.Array:
    def text(values: np.ndarray) -> pa.Array:
        return pc.cast(pa.array(np.round(values, COORDINATE_DECIMALS)), pa.string())

    return pc.binary_join_element_wise("POINT (", text(lon), " ", text(lat), ")", "")


def generate_chunk(options: GenerateOptions, routes: PlantedRoutes, chunk_index: int, rows: int) -> tuple[pa.Table, pa.Array]:
    """`rows` trips (duplicates included) and the planted route label of each."""
    rng = np.random.default_rng([options.seed, 1, chunk_index])
    unique = rows - int(round(rows * options.duplicate_rate))
    n_regions = len(options.regions)
    boxes = [REGIONS[name] for name in options.regions]

    region = rng.integers(0, n_regions, unique)
    route = rng.integers(0, options.routes_per_region, unique)
    noise = rng.random(unique) < options.noise_rate

    lat_spread = options.spread_km / 111.0
    lon_spread = lat_spread / np.cos(np.radians(routes.origin_lat[region, route]))

    def coordinate(centre: np.ndarray, spread: np.ndarray | float, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        planted = centre[region, route] + rng.normal(0.0, 1.0, unique) * spread
        uniform = rng.uniform(low[region], high[region])
        return np.clip(np.where(noise, uniform, planted), low[region], high[region])

    min_lon = np.array([b.min_lon for b in boxes])
    max_lon = np.array([b.max_lon for b in boxes])
    min_lat = np.array([b.min_lat for b in boxes])
    max_lat = np.array([b.max_lat for b in boxes])
    origin_lon = coordinate(routes.origin_lon, lon_spread, min_lon, max_lon)
    origin_lat = coordinate(routes.origin_lat, lat_spread, min_lat, max_lat)
    destination_lon = coordinate(routes.destination_lon, lon_spread, min_lon, max_lon)
    destination_lat = coordinate(routes.destination_lat, lat_spread, min_lat, max_lat)

    planted_seconds = routes.hour[region, route] * 3600 + rng.normal(0.0, options.spread_hours * 3600, unique)
    seconds = np.where(noise, rng.uniform(0, SECONDS_PER_DAY, unique), planted_seconds)
    seconds = np.mod(np.floor(seconds), SECONDS_PER_DAY).astype(np.int64)
    day = rng.integers(0, options.days, unique)
    start = int(datetime(options.start.year, options.start.month, options.start.day, tzinfo=timezone.utc).timestamp())
    started = start + day * SECONDS_PER_DAY + seconds
    datasource = rng.integers(0, len(DATASOURCES), unique)

    # Duplicates are exact copies of other lines of the chunk, placed anywhere in it.
    order = np.concatenate([np.arange(unique), rng.integers(0, max(unique, 1), rows - unique)])
    rng.shuffle(order)

    labels = pa.array(
        [f"{name}-r{index:02d}" for name in options.regions for index in range(options.routes_per_region)]
        + [NOISE_ROUTE]
    )
    label_index = np.where(noise, len(labels) - 1, region * options.routes_per_region + route)
    table = pa.table(
        {
            "region": pc.take(pa.array(options.regions), pa.array(region[order])),
            "origin_coord": _points(origin_lon[order], origin_lat[order]),
            "destination_coord": _points(destination_lon[order], destination_lat[order]),
            "datetime": pc.cast(pa.array(started[order], pa.timestamp("s")), pa.string()),
            "datasource": pc.take(pa.array(DATASOURCES), pa.array(datasource[order])),
        }
    )
    truth = pc.take(labels, pa.array(label_index[order]))
    return table, truth


def _open(path: Path) -> pa.NativeFile:
    if path.name.endswith(".gz"):
        return pa.CompressedOutputStream(str(path), "gzip")
    return pa.OSFile(str(path), "wb")


def _csv_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    csv.write_csv(table, sink, csv.WriteOptions(include_header=False, quoting_style="none"))
    return sink.getvalue()


def _chunk_as_csv(
    options: GenerateOptions, routes: PlantedRoutes, index: int, first_row: int, rows: int, with_truth: bool
) -> tuple[int, bytes, bytes]:
    """The CSV bytes of one chunk and of its ground truth (line numbers count the header as line 1)."""
    table, truth = generate_chunk(options, routes, index, rows)
    if not with_truth:
        return rows, _csv_bytes(table), b""
    line_numbers = pa.array(np.arange(first_row + 2, first_row + 2 + rows))
    return rows, _csv_bytes(table), _csv_bytes(pa.table({"line_number": line_numbers, "route": truth}))


def generate(options: GenerateOptions, out: Path, truth_out: Path | None = None, progress: bool = False) -> int:
    """Write options.rows trips to `out` (.csv or .csv.gz); returns the number of rows written.

    Chunks are generated on every core, in order, with a bounded number in flight; the bytes written do not
    depend on the number of cores.
    """
    routes = plant_routes(options)
    out.parent.mkdir(parents=True, exist_ok=True)
    chunk_starts = list(range(0, options.rows, CHUNK_ROWS))
    workers = min(os.cpu_count() or 1, len(chunk_starts))
    with ExitStack() as stack:
        sink = stack.enter_context(_open(out))
        sink.write((",".join(HEADER) + "\n").encode())
        truth_sink = None
        if truth_out is not None:
            truth_out.parent.mkdir(parents=True, exist_ok=True)
            truth_sink = stack.enter_context(_open(truth_out))
            truth_sink.write(b"line_number,route\n")
        bar = stack.enter_context(
            Progress(TextColumn("generating trips"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                     disable=not progress, transient=True)
        )
        task = bar.add_task("rows", total=options.rows)
        pool = stack.enter_context(ProcessPoolExecutor(workers)) if workers > 1 else None
        pending: deque = deque()
        written = 0
        for index, first_row in enumerate(chunk_starts):
            rows = min(CHUNK_ROWS, options.rows - first_row)
            if pool is None:
                pending.append(_Done(_chunk_as_csv(options, routes, index, first_row, rows, truth_out is not None)))
            else:
                pending.append(pool.submit(_chunk_as_csv, options, routes, index, first_row, rows, truth_out is not None))
            while pending and (len(pending) > 2 * workers or index == len(chunk_starts) - 1):
                rows_done, data, truth = pending.popleft().result()
                sink.write(data)
                if truth_sink is not None:
                    truth_sink.write(truth)
                written += rows_done
                bar.update(task, completed=written)
    return written


class _Done:
    """A finished result with the interface of a Future, for the single-process path."""

    def __init__(self, value: tuple[int, bytes, bytes]) -> None:
        self._value = value

    def result(self) -> tuple[int, bytes, bytes]:
        return self._value
