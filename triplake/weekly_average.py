"""The weekly average number of trips of an area (defined in docs/architecture.md, "The weekly average"), answered by the sql/queries files.

A week is an ISO week named by its Monday. The window covers the weeks whose Monday lies in
[monday(from), monday(to)]; without --from/--to it runs from the week of the earliest trip to the week of
the latest trip in the whole lake, so every area is measured over the same weeks. Weeks without trips
count as zero: weekly_average = trips in the area within the window / weeks in the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from triplake.query import run_file
from triplake.query.result import Engine

MatchMode = Literal["origin", "destination", "both", "any"]
MATCH_MODES: tuple[MatchMode, ...] = ("origin", "destination", "both", "any")
DEFAULT_MATCH: MatchMode = "both"


class AreaError(ValueError):
    """An area or window a user asked for that cannot be measured, with what to do instead."""


@dataclass(frozen=True)
class BoundingBox:
    """Longitude/latitude bounds in decimal degrees, inclusive."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    @classmethod
    def parse(cls, text: str) -> BoundingBox:
        """'min_lon,min_lat,max_lon,max_lat', e.g. '14.40,50.03,14.48,50.10'."""
        expected = "expected --bbox min_lon,min_lat,max_lon,max_lat in decimal degrees, e.g. 14.40,50.03,14.48,50.10"
        parts = [part.strip() for part in text.split(",")]
        if len(parts) != 4:
            raise AreaError(f"bounding box {text!r} has {len(parts)} number(s), not 4: {expected}")
        try:
            numbers = [float(part) for part in parts]
        except ValueError:
            raise AreaError(f"bounding box {text!r} is not four numbers: {expected}") from None
        if not all(math.isfinite(number) for number in numbers):
            raise AreaError(f"bounding box {text!r} has a non-finite number: {expected}")
        box = cls(*numbers)
        box.check()
        return box

    def check(self) -> None:
        if not (-180 <= self.min_lon <= 180 and -180 <= self.max_lon <= 180):
            raise AreaError(f"longitudes must lie in [-180, 180], got {self.min_lon} and {self.max_lon}")
        if not (-90 <= self.min_lat <= 90 and -90 <= self.max_lat <= 90):
            raise AreaError(f"latitudes must lie in [-90, 90], got {self.min_lat} and {self.max_lat}")
        if self.min_lon > self.max_lon:
            raise AreaError(f"min_lon {self.min_lon} is greater than max_lon {self.max_lon}: "
                            "give the west (smaller) longitude first")
        if self.min_lat > self.max_lat:
            raise AreaError(f"min_lat {self.min_lat} is greater than max_lat {self.max_lat}: "
                            "give the south (smaller) latitude first")

    def as_list(self) -> list[float]:
        return [self.min_lon, self.min_lat, self.max_lon, self.max_lat]


@dataclass(frozen=True)
class Area:
    """A region (optionally one of its routes) or a bounding box with a match mode."""

    region: str | None = None
    route_id: str | None = None
    bbox: BoundingBox | None = None
    match: MatchMode = DEFAULT_MATCH

    def __post_init__(self) -> None:
        if (self.region is None) == (self.bbox is None):
            raise AreaError("give exactly one area: --region NAME or --bbox min_lon,min_lat,max_lon,max_lat")
        if self.route_id is not None and self.region is None:
            raise AreaError("--route needs --region: route ids belong to a region's model (see the routes table)")
        if self.match not in MATCH_MODES:
            raise AreaError(f"unknown match mode {self.match!r}: use one of {', '.join(MATCH_MODES)}")

    @property
    def query(self) -> str:
        """The sql/queries file that answers for this area."""
        if self.bbox is not None:
            return f"queries/weekly_average_bbox_{self.match}"
        return "queries/weekly_average_route" if self.route_id is not None else "queries/weekly_average_region"

    def parameters(self) -> dict[str, str]:
        if self.bbox is not None:
            return {name: repr(value) for name, value in zip(("min_lon", "min_lat", "max_lon", "max_lat"), self.bbox.as_list())}
        parameters = {"region": self.region}
        if self.route_id is not None:
            parameters["route_id"] = self.route_id
        return parameters

    def describe(self) -> dict[str, Any]:
        if self.bbox is not None:
            return {"bbox": self.bbox.as_list()}
        return {"region": self.region} | ({"route_id": self.route_id} if self.route_id is not None else {})

    def label(self) -> str:
        if self.bbox is not None:
            return f"bbox {','.join(f'{value:g}' for value in self.bbox.as_list())} (match {self.match})"
        return self.region if self.route_id is None else f"{self.region} route {self.route_id}"


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def lake_window(engine: Engine) -> tuple[date, date] | None:
    """The weeks of the earliest and the latest trip in the lake, or None when it has no trips."""
    weeks = run_file(engine, "queries/lake_weeks").single()
    if weeks["first_week"] is None:
        return None
    return weeks["first_week"], weeks["last_week"]


def window(engine: Engine, from_date: date | None, to_date: date | None) -> tuple[date, date]:
    """The Mondays of the first and last week of the window; missing ends come from the lake's weeks."""
    if from_date is None or to_date is None:
        lake_weeks = lake_window(engine)
        if lake_weeks is None:
            raise AreaError("the lake has no trips yet, so it has no default window: ingest a file (`triplake run --input FILE`, "
                            "or `triplake upload FILE` on the local stack or AWS), or give both --from and --to")
        from_date = from_date or lake_weeks[0]
        to_date = to_date or lake_weeks[1]
    first_week, last_week = monday(from_date), monday(to_date)
    if first_week > last_week:
        raise AreaError(f"the window is empty: --from {from_date} lies after --to {to_date}")
    return first_week, last_week


def weekly_average(engine: Engine, area: Area, from_date: date | None = None, to_date: date | None = None) -> dict[str, Any]:
    """The result of a weekly average, as docs/architecture.md defines it."""
    first_week, last_week = window(engine, from_date, to_date)
    parameters = area.parameters() | {"from_date": first_week.isoformat(), "to_date": last_week.isoformat()}
    answer = run_file(engine, area.query, parameters).single()
    return {
        "weekly_average": answer["weekly_average"],
        "trips": answer["trips"],
        "weeks": answer["weeks"],
        "first_week": answer["first_week"].isoformat(),
        "last_week": answer["last_week"].isoformat(),
        "area": area.describe(),
        "match": area.match if area.bbox is not None else None,
    }
