"""The batch pipeline, in-process on local Spark: what `triplake run` does for each input file.

Each file is one ingestion under the lake's writer lease: spark_jobs.ingestion (ingest -> group_routes ->
build_weekly, which commits). A stage that fails rolls the ingestion back (it is recorded FAILED with the stage and
the error) and the next file goes on; a process that is killed leaves the rollback to the next writer.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from pyspark.sql import SparkSession

from spark_jobs.build_weekly import WeeklyResult
from spark_jobs.common.ingestions import new_ingestion_id
from spark_jobs.common.lease import LeaseRecord
from spark_jobs.group_routes import RoutesResult
from spark_jobs.ingest import FAILED, SUCCEEDED, Counts, IngestionResult
from spark_jobs.ingestion import StageFailed, run_ingestion
from triplake.lease import LakeLease
from triplake.settings import Settings, get_settings

logger = logging.getLogger(__name__)


@dataclass
class PipelineResult:
    lake_root: str
    ingestions: list[IngestionResult]
    routes: dict[str, RoutesResult] = field(default_factory=dict)  # by ingestion id
    weekly: dict[str, WeeklyResult] = field(default_factory=dict)  # by ingestion id

    @property
    def succeeded(self) -> bool:
        return all(ingestion.status == SUCCEEDED for ingestion in self.ingestions)

    def to_dict(self) -> dict:
        return {
            "status": SUCCEEDED if self.succeeded else FAILED,
            "lake_root": self.lake_root,
            "ingestions": [
                {
                    **ingestion.to_dict(),
                    "routes": self.routes[ingestion.ingestion_id].to_dict() if ingestion.ingestion_id in self.routes else None,
                    "weekly": self.weekly[ingestion.ingestion_id].to_dict() if ingestion.ingestion_id in self.weekly else None,
                }
                for ingestion in self.ingestions
            ],
        }


def run_owner() -> str:
    return f"triplake run on {socket.gethostname()} (pid {os.getpid()})"


def run_pipeline(
    spark: SparkSession,
    input_uris: list[str],
    lake_root: str,
    refit: bool = False,
    settings: Settings | None = None,
    on_wait: Callable[[LeaseRecord], None] | None = None,
) -> PipelineResult:
    """Ingest each file in order, one ingestion each under the lake's lease (later files dedupe against earlier
    ones): spark_jobs.ingestion, in this process. With refit, each region's model is fitted again once, by the
    first file that has it. Raises LakeBusyError when another writer holds the lake for too long."""
    settings = settings or get_settings()
    result = PipelineResult(lake_root=lake_root, ingestions=[])
    refitted: set[str] = set()
    for uri in input_uris:
        ingestion_id = new_ingestion_id()
        lease = LakeLease.for_lake(lake_root, settings, ingestion_id, run_owner(), pid=os.getpid())
        logger.info("ingesting %s into %s as %s", uri, lake_root, ingestion_id)
        with lease.held(settings.lake_lease_wait_seconds, on_wait):
            try:
                run = run_ingestion(spark, uri, lake_root, ingestion_id, refit=refit, already_refitted=refitted)
            except StageFailed as failure:
                result.ingestions.append(_failed(ingestion_id, uri, str(failure)))
                continue
        result.ingestions.append(run.ingestion)
        if run.routes is not None and run.weekly is not None:
            refitted |= {region.region for region in run.routes.regions if region.refitted}
            result.routes[ingestion_id], result.weekly[ingestion_id] = run.routes, run.weekly
    return result


def _failed(ingestion_id: str, uri: str, message: str) -> IngestionResult:
    now = datetime.now(timezone.utc)
    return IngestionResult(
        ingestion_id=ingestion_id, source_uri=uri, raw_uri=None, status=FAILED, counts=Counts(), started_at=now,
        finished_at=now, error={"kind": "task_failed", "message": message, "task": message.split(" failed", 1)[0]},
    )
