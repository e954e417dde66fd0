"""The `ingestions` table: one row per ingestion attempt, its status and reconciled counts (sql/ddl/ingestions.sql).

It is a Delta table, and a row is appended in one Delta commit of one small file. A SUCCEEDED row is an
ingestion's commit point: the views of sql/views show an ingestion's rows in the other tables once it is there.
Two writers append to it: the ingestion job, under the lake's lease, and the orchestrator, for attempts that never
reached a job (an unsupported upload, a batch that stopped before the file) with no lease at all. Appends are
blind, so they never conflict; delta-rs retries a commit that lost the race for a log version.

No pyspark here: the orchestrator's tasks write and read records too.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Mapping

from spark_jobs.common import delta
from spark_jobs.common.ingestions import COUNT_FIELDS
from spark_jobs.common.locations import INGESTIONS

if TYPE_CHECKING:
    import pyarrow as pa

SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"


def ingestions_arrow_schema() -> pa.Schema:
    """The ingestions table's columns (a function: the query commands import this module without pyarrow)."""
    import pyarrow as pa

    return pa.schema(
        [pa.field("ingestion_id", pa.string(), False), pa.field("source_uri", pa.string(), False),
         pa.field("status", pa.string(), False),
         *[pa.field(name, pa.int64(), False) for name in COUNT_FIELDS],
         pa.field("started_at", pa.timestamp("us", tz="UTC"), False),
         pa.field("finished_at", pa.timestamp("us", tz="UTC"), False),
         pa.field("error", pa.string(), True)]
    )


class OldLayoutError(RuntimeError):
    """The lake was written by a triplake whose tables were plain Parquet folders, not Delta tables."""


def check_layout(lake_root: str, storage: delta.Storage) -> None:
    """Raises OldLayoutError for a lake of the older layout: its ingestions records are files of their own,
    '<ingestion id>.parquet', with no Delta log (delta-rs names its data files 'part-...')."""
    from deltalake import DeltaTable

    if DeltaTable.is_deltatable(table_uri(lake_root), storage.delta_options()):
        return
    from pyarrow import fs as pafs  # only for a lake whose ingestions are not a Delta table: rare

    filesystem, path = storage.filesystem(table_uri(lake_root))
    names = {entry.base_name for entry in filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))}
    if "_delta_log" not in names and any(name.endswith(".parquet") and not name.startswith("part-") for name in names):
        raise OldLayoutError(
            f"the lake at {lake_root} was written by an older triplake (its tables are plain Parquet folders, not "
            "Delta tables), which this version neither reads nor writes. Ingest its raw files (under raw/) again "
            "into a new lake root.")


def table_uri(lake_root: str) -> str:
    return f"{lake_root.rstrip('/')}/{INGESTIONS}"


def record(ingestion_id: str, source_uri: str, status: str, started_at: datetime,
           counts: Mapping[str, int] | None = None, error: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An ingestions row: counts only for a SUCCEEDED ingestion (a failed one published nothing)."""
    counts = counts if status == SUCCEEDED else None
    return {"ingestion_id": ingestion_id, "source_uri": source_uri, "status": status,
            **{name: int((counts or {}).get(name, 0)) for name in COUNT_FIELDS},
            "started_at": started_at, "finished_at": datetime.now(timezone.utc),
            "error": json.dumps(dict(error)) if error else None}


def append_record(lake_root: str, storage: delta.Storage, row: Mapping[str, Any]) -> None:
    import pyarrow as pa

    delta.append(table_uri(lake_root), pa.Table.from_pylist([dict(row)], ingestions_arrow_schema()), storage)


def read_record(lake_root: str, storage: delta.Storage, ingestion_id: str) -> dict[str, Any] | None:
    """An ingestion's row, or None when it has none. A FAILED row written by the orchestrator and a later one written
    by the job (a batch run again) can both exist: a SUCCEEDED row wins, as it does in the views."""
    rows = delta.rows_where(table_uri(lake_root), storage, "ingestion_id", ingestion_id)
    if not rows:
        return None
    return next((row for row in rows if row["status"] == SUCCEEDED), rows[-1])
