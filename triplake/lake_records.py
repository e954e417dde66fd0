"""Ingestion records written from Python, for attempts that never reach a Spark job: an upload that is not a file
triplake ingests, or one whose batch failed before it was reached (a busy lake, a job that stopped). Every attempt
then has its `ingestions` row, so `ingestion_reconciliation` shows these failures too. A record is read back by
the announcement of a file whose batch stopped before its outcome was reported.

The row is appended to the ingestions Delta table as the jobs append theirs (spark_jobs.common.records): a blind
append touches nothing another writer owns, so no lease is needed.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from spark_jobs.common import records
from triplake.lake_files import delta_storage
from triplake.settings import Settings


def write_failed_record(lake_root: str, settings: Settings, ingestion_id: str, source_uri: str,
                        error: Mapping[str, Any], started_at: datetime | None = None) -> dict[str, Any]:
    """Appends the FAILED ingestions row of an attempt that wrote nothing; returns the row."""
    row = records.record(ingestion_id, source_uri, records.FAILED, started_at or datetime.now(timezone.utc),
                         error=error)
    records.append_record(lake_root, delta_storage(settings), row)
    return row


def read_record(lake_root: str, settings: Settings, ingestion_id: str) -> dict[str, Any] | None:
    """An ingestion's row of `ingestions`, or None when it has none."""
    return records.read_record(lake_root, delta_storage(settings), ingestion_id)
