"""Where things live inside one lake root, and partition directory names."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from pyspark.sql import SparkSession

from spark_jobs.common import tables
from spark_jobs.common.ingestions import report_path
from spark_jobs.common.lakefs import LakeFs, join_uri
from spark_jobs.common.locations import progress_path


class Lake:
    """Locations inside one lake root (file:// or s3://)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")

    def uri(self, *parts: str) -> str:
        return join_uri(self.root, *parts)

    def staging(self, ingestion_id: str, *parts: str) -> str:
        return self.uri(tables.STAGING, ingestion_id, *parts)

    def report(self, ingestion_id: str, step: str) -> str:
        return self.uri(report_path(ingestion_id, step))


def write_report(spark: SparkSession, lake_root: str, ingestion_id: str, step: str, report: dict) -> str:
    """Leaves the job's result in the lake, where the DAG reads it whether the job ran locally or on EMR."""
    uri = Lake(lake_root).report(ingestion_id, step)
    LakeFs(spark).write_text(uri, json.dumps(report, default=str))
    return uri


def write_progress(spark: SparkSession, lake_root: str, ingestion_id: str, stage: str, done: dict) -> None:
    """Says which stage the ingestion has reached and what the stages before it did (`triplake watch --progress`
    reads it). It lives in the ingestion's staging directory, so the commit or a rollback removes it."""
    progress = {"ingestion_id": ingestion_id, "stage": stage, "since": datetime.now(timezone.utc).isoformat(),
                "done": done}
    LakeFs(spark).write_text(Lake(lake_root).uri(progress_path(ingestion_id)), json.dumps(progress, default=str))
