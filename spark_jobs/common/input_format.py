"""The input format of triplake, in plain Python (no Spark): the columns of a trips file, its header, its WKT
points and the prefix of a rejected line kept as bytes. The ingest's DataFrame transforms (spark_jobs.common.parse)
and the commands that read raw lines outside Spark (`triplake forget`, `triplake replay`) share it."""

from __future__ import annotations

import re

INPUT_COLUMNS = ("region", "origin_coord", "destination_coord", "datetime", "datasource")
POINT_COLUMNS = ("origin_coord", "destination_coord")
# A rejected line that is not valid UTF-8 is kept as its exact bytes, base64-encoded after this prefix.
RAW_BYTES_PREFIX = "base64:"
WKT_POINT = re.compile(r"^\s*POINT\s*\(\s*(\S+)\s+(\S+)\s*\)\s*$", re.IGNORECASE)


class InvalidFileError(ValueError):
    """The file as a whole cannot be ingested (no header, wrong columns, unreadable); nothing reaches trips."""

    kind = "invalid_file"


def column_positions(header_line: str | None) -> dict[str, int]:
    """Position of each input column in the header; raises InvalidFileError naming what is wrong."""
    expected = ",".join(INPUT_COLUMNS)
    if header_line is None or not header_line.strip():
        raise InvalidFileError(f"the file is empty: expected a CSV header line '{expected}' and rows of trips")
    names = [name.strip().strip('"').strip().lower() for name in header_line.lstrip("\ufeff").split(",")]
    missing = [name for name in INPUT_COLUMNS if name not in names]
    unknown = [name for name in names if name not in INPUT_COLUMNS]
    repeated = sorted({name for name in names if names.count(name) > 1})
    problems = [
        f"{label}: {', '.join(repr(n) for n in values)}"
        for label, values in (("missing", missing), ("unknown", unknown), ("repeated", repeated))
        if values
    ]
    if problems:
        raise InvalidFileError(
            f"the header does not match the trips format ({'; '.join(problems)}). "
            f"Expected the columns '{expected}' (in any order); fix the header and upload the file again."
        )
    return {name: names.index(name) for name in INPUT_COLUMNS}


def wkt_point(text: str | None) -> tuple[float, float] | None:
    """(lon, lat) of a WKT point such as 'POINT (14.4 50.0)', or None when it is not one."""
    found = WKT_POINT.match(text or "")
    if found is None:
        return None
    try:
        return float(found.group(1)), float(found.group(2))
    except ValueError:
        return None
