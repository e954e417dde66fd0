"""What the jobs and the orchestrator agree on about an ingestion, with no pyspark import (the DAG file and its
tasks import this): the id format, the reconciled counts, the JVM options, and where each job leaves its report."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone

INGESTION_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

# rows_read = rows_valid + rows_rejected; rows_valid = duplicates_in_batch + already_present + rows_written
COUNT_FIELDS = (
    "rows_read",
    "rows_valid",
    "rows_rejected",
    "duplicates_in_batch",
    "already_present",
    "rows_written",
)

# Whoever starts a job (spark-submit, local Spark, EMR Serverless, Glue) runs its JVMs with this: the JIT refuses to
# compile methods over 8 kB, and Spark's generated code for the parse is bigger (26 s -> 11 s for the parse of 10M).
JIT_OPTIONS = "-XX:-DontCompileHugeMethods"

REPORTS = "_reports"  # one JSON per job and ingestion: what the orchestrator reads back (any runner)
BATCHES = "_batches"  # one JSON per batch: the files one Spark application ingests, in order


def new_ingestion_id(now: datetime | None = None) -> str:
    """Unique, sortable by time, safe in file names and S3 keys."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def report_path(ingestion_id: str, job: str) -> str:
    """Path of a job's report, relative to the lake root."""
    return f"{REPORTS}/{ingestion_id}/{job}.json"


def batch_path(batch_id: str) -> str:
    """Path of a batch's list of files, relative to the lake root."""
    return f"{BATCHES}/{batch_id}.json"
