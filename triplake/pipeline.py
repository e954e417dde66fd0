"""The batch pipeline, in-process on local Spark: what `triplake run` does for each input file.

The files are one batch under the lake's writer lease, each its own ingestion: spark_jobs.ingestion (ingest ->
group_routes -> build_weekly, which commits), the same code the DAG's Spark job runs. A stage that fails rolls the
ingestion back (it is recorded FAILED with the stage and the error) and the next file goes on; a process that is
killed leaves the rollback to the next writer.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from pyspark.sql import SparkSession

from spark_jobs.build_weekly import WeeklyResult, route_summaries
from spark_jobs.common.ingestions import new_ingestion_id
from spark_jobs.common.lease import LeaseRecord
from spark_jobs.group_routes import RoutesResult
from spark_jobs.ingest import FAILED, SUCCEEDED, Counts, IngestionResult
from spark_jobs.ingestion import FileOutcome, PlannedFile, run_batch
from triplake.forget import finish_killed_erasures
from triplake.lease import LakeLease
from triplake.settings import Settings, get_settings

logger = logging.getLogger(__name__)


@dataclass
class PipelineResult:
    lake_root: str
    ingestions: list[IngestionResult]
    routes: dict[str, RoutesResult] = field(default_factory=dict)  # by ingestion id
    weekly: dict[str, WeeklyResult] = field(default_factory=dict)  # by ingestion id
    # The routes of every region the run touched with their trips in the whole lake, as the run left them.
    routes_in_lake: dict[str, list[dict]] = field(default_factory=dict)

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
            "routes_in_lake": self.routes_in_lake,
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
    """Ingest each file in order, one ingestion each, all under one hold of the lake's lease (later files dedupe
    against earlier ones): spark_jobs.ingestion, in this process. With refit, each region's model is fitted again
    once, by the first file that has it. Raises LakeBusyError when another writer holds the lake for too long."""
    settings = settings or get_settings()
    files = [PlannedFile(new_ingestion_id(), uri) for uri in input_uris]
    writer = files[0].ingestion_id if len(files) == 1 else f"run-{files[0].ingestion_id}"
    lease = LakeLease.for_lake(lake_root, settings, writer, [file.ingestion_id for file in files], run_owner(),
                               pid=os.getpid())
    logger.info("ingesting %s into %s", ", ".join(f"{file.source_uri} as {file.ingestion_id}" for file in files),
                lake_root)
    result = PipelineResult(lake_root=lake_root, ingestions=[])
    with lease.held(settings.lake_lease_wait_seconds, on_wait):
        finish_killed_erasures(lake_root, settings)
        for outcome in run_batch(spark, files, lake_root, refit=refit):
            run = outcome.run
            result.ingestions.append(run.ingestion if run is not None else _failed(outcome))
            if run is not None and run.routes is not None and run.weekly is not None:
                result.routes[run.ingestion.ingestion_id] = run.routes
                result.weekly[run.ingestion.ingestion_id] = run.weekly
        regions = sorted({region.region for routes in result.routes.values() for region in routes.regions})
        if regions:  # read under the lease: the lake as this run left it
            result.routes_in_lake = route_summaries(spark, lake_root, regions)
    return result


def _failed(outcome: FileOutcome) -> IngestionResult:
    now = datetime.now(timezone.utc)
    return IngestionResult(
        ingestion_id=outcome.planned.ingestion_id, source_uri=outcome.planned.source_uri, raw_uri=None, status=FAILED,
        counts=Counts(), started_at=now, finished_at=now, error=outcome.error,
    )
