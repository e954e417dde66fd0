"""Ingestion ids: unique, sortable by time, safe in file names and S3 keys (no pyspark needed to make one)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone

INGESTION_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def new_ingestion_id(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
