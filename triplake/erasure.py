"""What `triplake forget` erases: a selection of trips, matched against the lake's rows and against raw lines.

A selection is a data source, a region, a bounding box (with which end of a trip must lie in it) and/or a file of
trip ids, optionally within a window of days; every criterion given must hold. The same selection is applied to the
`trips` table's rows (pyarrow) and to lines of the raw copies and rejected rows (plain Python), so a trip's line goes
from every file that holds it, whether the lake kept the line, deduplicated it or rejected it. A criterion a
rejected line cannot answer (a bounding box, for a line whose point does not parse) does not select it.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from spark_jobs.common.input_format import InvalidFileError, column_positions, wkt_point
from triplake.identity import expected_trip_id
from triplake.weekly_average import MATCH_MODES, BoundingBox, MatchMode

if TYPE_CHECKING:
    import pyarrow as pa

TRIP_ID = re.compile(r"^[0-9a-f]{32}$")
# The keys of a trips_forget run's conf: the options of `triplake forget`.
CONF_KEYS = ("datasource", "region", "bbox", "match", "from", "to", "trip_ids", "dry_run")


class SelectionError(ValueError):
    """A selection that cannot be applied, with what to give instead."""


@dataclass(frozen=True)
class Selection:
    datasource: str | None = None
    region: str | None = None
    bbox: BoundingBox | None = None
    match: MatchMode = "both"
    from_date: date | None = None  # first day, inclusive (UTC)
    to_date: date | None = None  # last day, inclusive (UTC)
    trip_ids: frozenset[str] | None = None
    trip_ids_digest: str | None = None  # sha256 of the file the ids came from: the record names it, not the ids

    def __post_init__(self) -> None:
        if self.datasource is None and self.region is None and self.bbox is None and self.trip_ids is None:
            raise SelectionError("say what to forget: --datasource NAME, --region R, --bbox ... or --trip-ids FILE "
                                 "(with --from/--to for a window of days)")
        if self.match not in MATCH_MODES:
            raise SelectionError(f"unknown match mode {self.match!r}: use one of {', '.join(MATCH_MODES)}")
        if self.from_date and self.to_date and self.from_date > self.to_date:
            raise SelectionError(f"--from {self.from_date} is after --to {self.to_date}")

    @classmethod
    def with_trip_ids_from(cls, path: Path, **criteria) -> Selection:
        """A selection of the trip ids listed in a file, one per line (blank lines and '#' comments ignored)."""
        text = path.read_bytes()
        ids = [line.strip() for line in text.decode().splitlines() if line.strip() and not line.startswith("#")]
        return cls._with_trip_ids(ids, text, str(path), **criteria)

    @classmethod
    def _with_trip_ids(cls, ids: list[str], listed_in: bytes, where: str, **criteria) -> Selection:
        bad = [value for value in ids if not TRIP_ID.match(value)]
        if bad:
            raise SelectionError(f"{where}: {len(bad)} line(s) are not trip ids (32 hex digits), e.g. {bad[0]!r}")
        return cls(trip_ids=frozenset(ids), trip_ids_digest=hashlib.sha256(listed_in).hexdigest(), **criteria)

    @classmethod
    def from_conf(cls, conf: Mapping[str, Any]) -> tuple[Selection, bool]:
        """The selection of a trips_forget run's conf, which has the options of `triplake forget` as keys (`from`,
        `to`, `bbox` as "min_lon,min_lat,max_lon,max_lat", `trip_ids` as a list; absent or null: not given), and
        whether it asks for a dry run."""
        unknown = sorted(set(conf) - set(CONF_KEYS))
        if unknown:
            raise SelectionError(f"unknown key(s) {', '.join(unknown)} in the conf: a selection has {', '.join(CONF_KEYS)}")
        bbox = conf.get("bbox")
        criteria = {"datasource": conf.get("datasource") or None, "region": conf.get("region") or None,
                    "match": conf.get("match") or "both",
                    "bbox": BoundingBox.parse(bbox if isinstance(bbox, str) else ",".join(map(str, bbox))) if bbox else None,
                    "from_date": _day(conf.get("from"), "from"), "to_date": _day(conf.get("to"), "to")}
        dry_run = bool(conf.get("dry_run"))
        ids = conf.get("trip_ids")
        if ids is None:
            return cls(**criteria), dry_run
        if not isinstance(ids, list) or not all(isinstance(value, str) for value in ids):
            raise SelectionError(f"trip_ids must be a list of trip ids (32 hex digits), not {type(ids).__name__}")
        return cls._with_trip_ids(ids, "\n".join(ids).encode(), "trip_ids of the conf", **criteria), dry_run

    def to_json(self) -> dict:
        """The whole selection, trip ids included (a killed erasure's plan, until the erasure finishes)."""
        return {"datasource": self.datasource, "region": self.region, "bbox": self.bbox.as_list() if self.bbox else None,
                "match": self.match, "from_date": self.from_date.isoformat() if self.from_date else None,
                "to_date": self.to_date.isoformat() if self.to_date else None,
                "trip_ids": sorted(self.trip_ids) if self.trip_ids is not None else None,
                "trip_ids_digest": self.trip_ids_digest}

    @classmethod
    def from_json(cls, data: dict) -> Selection:
        return cls(datasource=data["datasource"], region=data["region"],
                   bbox=BoundingBox(*data["bbox"]) if data["bbox"] else None, match=data["match"],
                   from_date=date.fromisoformat(data["from_date"]) if data["from_date"] else None,
                   to_date=date.fromisoformat(data["to_date"]) if data["to_date"] else None,
                   trip_ids=frozenset(data["trip_ids"]) if data["trip_ids"] is not None else None,
                   trip_ids_digest=data["trip_ids_digest"])

    @classmethod
    def from_record(cls, described: dict) -> Selection | None:
        """The selection an erasure record describes (describe(): the conf's keys, the trip ids as a count); None when
        it named trip ids: the record keeps their count and digest, never the ids, so which lines it took cannot be
        told again."""
        if described.get("trip_ids") is not None:
            return None
        return cls.from_conf({key: value for key, value in described.items() if key in CONF_KEYS and key != "trip_ids"})[0]

    @property
    def window(self) -> tuple[datetime | None, datetime | None]:
        """[start, end) of the days selected, UTC."""
        start = datetime.combine(self.from_date, time(), timezone.utc) if self.from_date else None
        end = datetime.combine(self.to_date + timedelta(days=1), time(), timezone.utc) if self.to_date else None
        return start, end

    def describe(self) -> dict:
        """The selection as the erasure record keeps it: never the trip ids themselves."""
        return {"datasource": self.datasource, "region": self.region,
                "bbox": self.bbox.as_list() if self.bbox else None, "match": self.match if self.bbox else None,
                "from": self.from_date.isoformat() if self.from_date else None,
                "to": self.to_date.isoformat() if self.to_date else None,
                "trip_ids": len(self.trip_ids) if self.trip_ids is not None else None,
                "trip_ids_sha256": self.trip_ids_digest}

    def rows_mask(self, rows: pa.Table) -> pa.ChunkedArray:
        """Which rows of trips (with their region column) the selection takes."""
        import pyarrow as pa
        import pyarrow.compute as pc

        conditions = []
        if self.datasource is not None:
            conditions.append(pc.equal(rows["datasource"], self.datasource))
        if self.region is not None:
            conditions.append(pc.equal(rows["region"], self.region))
        if self.trip_ids is not None:
            conditions.append(pc.is_in(rows["trip_id"], value_set=pa.array(sorted(self.trip_ids), pa.string())))
        start, end = self.window
        started = pc.cast(rows["started_at"], pa.timestamp("us"))
        if start is not None:
            conditions.append(pc.greater_equal(started, pa.scalar(start.replace(tzinfo=None), pa.timestamp("us"))))
        if end is not None:
            conditions.append(pc.less(started, pa.scalar(end.replace(tzinfo=None), pa.timestamp("us"))))
        if self.bbox is not None:
            ends = [self._in_box(pc, rows[f"{end}_lon"], rows[f"{end}_lat"]) for end in ("origin", "destination")]
            conditions.append({"origin": ends[0], "destination": ends[1], "both": pc.and_(*ends),
                               "any": pc.or_(*ends)}[self.match])
        mask = conditions[0]
        for condition in conditions[1:]:
            mask = pc.and_(mask, condition)
        return mask

    def file_may_hold(self, partition: Mapping[str, str], low: Mapping[str, Any], high: Mapping[str, Any]) -> bool:
        """Whether a trips file of this partition, whose columns lie between these statistics (a column without
        them: unknown), may hold a selected row: False only when the partition or a statistic rules every row out,
        so an erasure reads only the files that can hold what it erases."""
        if self.region is not None and partition.get("region") not in (None, self.region):
            return False
        start, end = self.window
        week = partition.get("week_start")
        if week is not None and start is not None and date.fromisoformat(week) + timedelta(days=7) <= start.date():
            return False
        if week is not None and end is not None and date.fromisoformat(week) >= end.date():
            return False
        if self.datasource is not None and not _between(self.datasource, low.get("datasource"), high.get("datasource")):
            return False
        if self.trip_ids is not None:
            lowest, highest = low.get("trip_id"), high.get("trip_id")
            if not any(_between(trip_id, lowest, highest) for trip_id in self.trip_ids):
                return False
        if self.bbox is not None:
            box = self.bbox
            ends = [_between_ranges(box.min_lon, box.max_lon, low.get(f"{end}_lon"), high.get(f"{end}_lon"))
                    and _between_ranges(box.min_lat, box.max_lat, low.get(f"{end}_lat"), high.get(f"{end}_lat"))
                    for end in ("origin", "destination")]
            return {"origin": ends[0], "destination": ends[1], "both": all(ends), "any": any(ends)}[self.match]
        return True

    def _in_box(self, pc, lon, lat):
        box = self.bbox
        return pc.and_(pc.and_(pc.greater_equal(lon, box.min_lon), pc.less_equal(lon, box.max_lon)),
                       pc.and_(pc.greater_equal(lat, box.min_lat), pc.less_equal(lat, box.max_lat)))

    def takes_line(self, fields: dict[str, str]) -> bool:
        """Whether a raw line (its fields by column name) is selected; False when a criterion cannot be read."""
        if self.datasource is not None and fields.get("datasource") != self.datasource:
            return False
        if self.region is not None and fields.get("region") != self.region:
            return False
        if self.trip_ids is not None and trip_id_of(fields) not in self.trip_ids:
            return False
        start, end = self.window
        if start is not None or end is not None:
            started = _moment(fields.get("datetime"))
            if started is None or (start and started < start) or (end and started >= end):
                return False
        if self.bbox is not None:
            ends = [wkt_point(fields.get(name)) for name in ("origin_coord", "destination_coord")]
            inside = [point is not None and self._box_holds(*point) for point in ends]
            if not {"origin": inside[0], "destination": inside[1], "both": all(inside), "any": any(inside)}[self.match]:
                return False
        return True

    def _box_holds(self, lon: float, lat: float) -> bool:
        box = self.bbox
        return box.min_lon <= lon <= box.max_lon and box.min_lat <= lat <= box.max_lat


def header_positions(header_line: str) -> dict[str, int] | None:
    """Where each input column is in a file's header (None: not a trips header)."""
    try:
        return column_positions(header_line)
    except InvalidFileError:
        return None


def line_fields(line: str, positions: dict[str, int]) -> dict[str, str] | None:
    """A raw line's fields by column name, blanks around them trimmed (as the ingest reads them); None when the
    line does not have one field per column."""
    try:
        values = next(csv.reader([line], skipinitialspace=True))
    except (csv.Error, StopIteration):
        return None
    if len(values) != len(positions):
        return None
    return {name: values[index].strip() for name, index in positions.items()}


def trip_id_of(fields: dict[str, str]) -> str | None:
    """The line's trip id (the lake's recipe), or None when its points or time do not parse."""
    origin, destination = wkt_point(fields.get("origin_coord")), wkt_point(fields.get("destination_coord"))
    started = _moment(fields.get("datetime"))
    if origin is None or destination is None or started is None or not fields.get("region"):
        return None
    return expected_trip_id(fields["region"], *origin, *destination, started.replace(tzinfo=None))


def _moment(text: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat((text or "").strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _day(value: Any, key: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise SelectionError(f"{key}: {value!r} is not a date: expected YYYY-MM-DD") from None


def _between(value: Any, lowest: Any, highest: Any) -> bool:
    """Whether value may lie in [lowest, highest] (an unknown bound holds anything). A string's maximum is compared
    on its length only: a writer may keep a prefix of a long string as its maximum (a prefix is still a minimum)."""
    below = value[:len(highest)] if isinstance(value, str) and isinstance(highest, str) else value
    return (lowest is None or value >= lowest) and (highest is None or below <= highest)


def _between_ranges(low: float, high: float, lowest: Any, highest: Any) -> bool:
    """Whether [low, high] meets [lowest, highest] (an unknown bound holds anything)."""
    return (highest is None or low <= highest) and (lowest is None or high >= lowest)
