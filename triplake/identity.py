"""The documented trip_id recipe (README, docs/architecture.md) in plain Python, independent of the Spark job.

Used to check the job (tests) and to join generated ground truth to the lake (benchmarks).
"""

from __future__ import annotations

import csv
import hashlib
from datetime import datetime, timezone
from pathlib import Path

from spark_jobs.common.input_format import wkt_point


def expected_trip_id(region: str, olon: float, olat: float, dlon: float, dlat: float, started: datetime) -> str:
    """md5 of 'region|olon|olat|dlon|dlat|start': degrees x 10^7 rounded half to even, start in UTC microseconds."""
    micros = int(started.replace(tzinfo=timezone.utc).timestamp() * 1_000_000)
    text = "|".join([region, *(str(round(v * 10**7)) for v in (olon, olat, dlon, dlat)), str(micros)])
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()  # an identity, not a secret


def trip_id_of_line(fields: list[str]) -> str:
    """trip_id of a line in the exact input format (region, 'POINT (lon lat)' twice, datetime, ...)."""
    region, origin, destination, started = fields[:4]
    (olon, olat), (dlon, dlat) = wkt_point(origin), wkt_point(destination)
    return expected_trip_id(region, olon, olat, dlon, dlat, datetime.fromisoformat(started))


def planted_routes(data: Path, truth: Path) -> dict[str, str]:
    """trip_id -> planted route of every line of a generated file (`triplake generate --truth-out`)."""
    with truth.open() as labels:
        planted_by_line = {int(row["line_number"]): row["route"] for row in csv.DictReader(labels)}
    with data.open() as lines:
        return {
            trip_id_of_line(fields): planted_by_line[number]
            for number, fields in enumerate(csv.reader(lines), start=1)
            if number > 1
        }
