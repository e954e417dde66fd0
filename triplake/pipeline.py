"""The batch pipeline, in-process on local Spark: what `triplake run` does for each input file."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import SparkSession

from spark_jobs.ingest import SUCCEEDED, IngestionResult, ingest_file

logger = logging.getLogger(__name__)


@dataclass
class PipelineResult:
    lake_root: str
    ingestions: list[IngestionResult]

    @property
    def succeeded(self) -> bool:
        return all(ingestion.status == SUCCEEDED for ingestion in self.ingestions)

    def to_dict(self) -> dict:
        return {
            "status": SUCCEEDED if self.succeeded else "FAILED",
            "lake_root": self.lake_root,
            "ingestions": [ingestion.to_dict() for ingestion in self.ingestions],
        }


def run_pipeline(spark: SparkSession, input_uris: list[str], lake_root: str) -> PipelineResult:
    """Ingest each file in order, one ingestion each (later files dedupe against earlier ones)."""
    ingestions = []
    for uri in input_uris:
        logger.info("ingesting %s into %s", uri, lake_root)
        ingestions.append(ingest_file(spark, uri, lake_root))
    return PipelineResult(lake_root=lake_root, ingestions=ingestions)
