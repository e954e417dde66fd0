"""`triplake routes-map`: a picture of a region's routes (matplotlib PNG).

Each route is an arrow from its centroid origin to its centroid destination, over a sample of its trips'
origins (dots) and destinations (crosses) in the route's colour; the legend gives the trips and the typical
hour of every route.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from triplake.settings import Settings
from triplake.query.local import LocalEngine
from triplake.query.statement import statement

SAMPLE_TRIPS = 20_000
SEED = 7


class NoRoutesError(LookupError):
    """The lake has no routes for the region asked for."""


@dataclass
class RegionPicture:
    region: str
    routes: list[dict]  # rows of the routes table
    trips: pa.Table  # a sample: route_id and origin/destination lon/lat


def hour_text(hour: float) -> str:
    minutes = round(hour * 60) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def load_region(lake_root: str, region: str, settings: Settings, sample: int = SAMPLE_TRIPS) -> RegionPicture:
    """The region's routes and a sample of its trips, as readers see them (the views: committed ingestions only)."""
    engine = LocalEngine(lake_root, settings)
    routes = engine.run(statement("queries/routes_of_region"), {"region": region}).records()
    if not routes:
        known = [row["region"] for row in engine.run(statement("queries/regions_with_routes"), {}).records()]
        raise NoRoutesError(
            f"no routes for region {region!r} in {lake_root}"
            + (f"; regions with routes: {', '.join(known)}" if known else "; run `triplake run` on some trips first")
        )
    trips = engine.arrow(statement("queries/trips_of_region"), {"region": region})
    if trips.num_rows > sample:
        picked = np.sort(np.random.default_rng(SEED).choice(trips.num_rows, sample, replace=False))
        trips = trips.take(pa.array(picked))
    return RegionPicture(region, routes, trips)


def draw(picture: RegionPicture, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, no screen needed
    import matplotlib.pyplot as plt

    colours = plt.get_cmap("tab20")
    figure, axes = plt.subplots(figsize=(11, 9), dpi=120)
    for index, route in enumerate(picture.routes):
        colour = colours(index % 20)
        mine = picture.trips.filter(pc.equal(picture.trips["route_id"], route["route_id"]))
        axes.scatter(mine["origin_lon"], mine["origin_lat"], s=3, color=colour, alpha=0.25, marker="o", linewidths=0)
        axes.scatter(mine["destination_lon"], mine["destination_lat"], s=5, color=colour, alpha=0.25, marker="x", linewidths=0.5)
        axes.annotate(
            "",
            xy=(route["destination_lon"], route["destination_lat"]),
            xytext=(route["origin_lon"], route["origin_lat"]),
            arrowprops=dict(arrowstyle="-|>", color=colour, lw=2.5, mutation_scale=18, shrinkA=0, shrinkB=0),
        )
        axes.plot([], [], color=colour, lw=2.5,
                  label=f"{route['route_id']}  {route['trips']:,} trips, ~{hour_text(route['typical_hour'])} UTC")
    middle_lat = float(np.mean([route["origin_lat"] for route in picture.routes]))
    axes.set_aspect(1 / math.cos(math.radians(middle_lat)))  # a degree of longitude is shorter than one of latitude
    axes.set_xlabel("longitude")
    axes.set_ylabel("latitude")
    total = sum(route["trips"] for route in picture.routes)
    axes.set_title(f"{picture.region}: {len(picture.routes)} routes over {total:,} trips "
                   f"(arrows: origin -> destination centroids; dots: origins, crosses: destinations)", fontsize=10)
    axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    return out
