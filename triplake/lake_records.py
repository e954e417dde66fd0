"""Ingestion records written from Python, for attempts that never reach a Spark job: an upload that is not a file
triplake ingests, or one whose batch failed before it was reached (a busy lake, a job that stopped). Every attempt
then has its `ingestions` row, so `ingestion_reconciliation` shows these failures too. A record is read back by
the announcement of a file whose batch stopped before its outcome was reported.

The row has the types the jobs give it (spark_jobs.common.tables.INGESTIONS_SCHEMA, sql/ddl/ingestions.sql) and
is written as one new file, curated/ingestions/<ingestion_id>.parquet: a single PUT on S3, so a reader sees all of
it or nothing, and it touches nothing another writer owns (no lease is needed, and recovery leaves it alone).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from spark_jobs.common import tables
from spark_jobs.common.ingestions import COUNT_FIELDS
from triplake.lake_files import filesystem
from triplake.settings import Settings

INGESTIONS_ARROW_SCHEMA = pa.schema(
    [pa.field("ingestion_id", pa.string(), False), pa.field("source_uri", pa.string(), False),
     pa.field("status", pa.string(), False),
     *[pa.field(name, pa.int64(), False) for name in COUNT_FIELDS],
     pa.field("started_at", pa.timestamp("us", tz="UTC"), False),
     pa.field("finished_at", pa.timestamp("us", tz="UTC"), False),
     pa.field("error", pa.string(), True)]
)


def write_failed_record(lake_root: str, settings: Settings, ingestion_id: str, source_uri: str,
                        error: Mapping[str, Any], started_at: datetime | None = None) -> str:
    """Writes the FAILED ingestions row of an attempt that wrote nothing; returns its path in the lake."""
    now = datetime.now(timezone.utc)
    row = {"ingestion_id": ingestion_id, "source_uri": source_uri, "status": "FAILED",
           **{name: 0 for name in COUNT_FIELDS}, "started_at": started_at or now, "finished_at": now,
           "error": json.dumps(dict(error))}
    fs, root = filesystem(lake_root, settings)
    path = f"{root}/{tables.INGESTIONS}/{ingestion_id}.parquet"
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as sink:
        pq.write_table(pa.Table.from_pylist([row], INGESTIONS_ARROW_SCHEMA), sink, compression="zstd")
    return path


def read_record(lake_root: str, settings: Settings, ingestion_id: str) -> dict[str, Any] | None:
    """An ingestion's row of `ingestions` (its record file), or None when it has none."""
    fs, root = filesystem(lake_root, settings)
    try:
        with fs.open_input_file(f"{root}/{tables.INGESTIONS}/{ingestion_id}.parquet") as source:
            (row,) = pq.read_table(source).to_pylist()
    except FileNotFoundError:
        return None
    return row
