"""The batch pipeline, in-process on local Spark: what `triplake run` does for each input file."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from spark_jobs.build_weekly import WeeklyResult, build_weekly
from spark_jobs.group_routes import RoutesResult, group_routes
from spark_jobs.ingest import SUCCEEDED, IngestionResult, ingest_file

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
            "status": SUCCEEDED if self.succeeded else "FAILED",
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


def run_pipeline(spark: SparkSession, input_uris: list[str], lake_root: str, refit: bool = False) -> PipelineResult:
    """Ingest each file in order, one ingestion each (later files dedupe against earlier ones), give its trips
    their routes and rebuild the weeks it changed. With refit, each region's model is fitted again once, by the
    first file that has it."""
    result = PipelineResult(lake_root=lake_root, ingestions=[])
    refitted: set[str] = set()
    for uri in input_uris:
        logger.info("ingesting %s into %s", uri, lake_root)
        ingestion = ingest_file(spark, uri, lake_root)
        result.ingestions.append(ingestion)
        if ingestion.status != SUCCEEDED:
            continue
        regions = {region for region, _ in ingestion.partitions_written}
        routes = group_routes(spark, lake_root, ingestion.ingestion_id, refit=(regions - refitted) if refit else False)
        refitted |= {region.region for region in routes.regions if region.refitted}
        result.routes[ingestion.ingestion_id] = routes
        result.weekly[ingestion.ingestion_id] = build_weekly(spark, lake_root, ingestion.ingestion_id)
    return result
