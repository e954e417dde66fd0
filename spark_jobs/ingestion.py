"""One ingestion in one Spark application: ingest -> group_routes -> build_weekly, which commits.

What the DAG runs for each file (one spark-submit or one EMR Serverless job run instead of three: each costs a JVM
start, and on EMR a job run's start-up and minimum billing), and what `triplake run` runs in-process for each
file. The stages stay what they are: their own functions, logs and reports (`_reports/<id>/<stage>.json`), and
their own entry points (spark_jobs/ingest.py, group_routes.py, build_weekly.py) for running one by hand.

A stage that fails rolls the ingestion back and records it FAILED (spark_jobs.common.publish), then the job fails
with `StageFailed: <stage> failed: <error>`, so the last line of its log names the stage.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Collection
from dataclasses import dataclass

from pyspark.sql import SparkSession

from spark_jobs.build_weekly import WeeklyResult, build_weekly
from spark_jobs.common.job import JobOutcome, abort_after_failure, run_job
from spark_jobs.common.lake import partition_path, write_progress, write_report
from spark_jobs.common.lease import LeaseLostError
from spark_jobs.group_routes import RoutesResult, group_routes
from spark_jobs.ingest import SUCCEEDED, IngestionResult, ingest_file

logger = logging.getLogger(__name__)

STAGES = ("ingest", "group_routes", "build_weekly")


class StageFailed(RuntimeError):
    """A stage of the ingestion failed; the ingestion was rolled back."""


@dataclass
class IngestionRun:
    ingestion: IngestionResult
    routes: RoutesResult | None = None
    weekly: WeeklyResult | None = None

    @property
    def succeeded(self) -> bool:
        return self.ingestion.status == SUCCEEDED

    def reports(self, spark: SparkSession) -> dict[str, dict]:
        """Each stage's report, as its own job would leave it (the DAG reads the counts and partitions there)."""
        ingest = self.ingestion.to_dict() | {
            "partition_paths": [partition_path(spark, *partition) for partition in self.ingestion.partitions_written]}
        reports = {"ingest": ingest}
        if self.routes is not None:
            reports["group_routes"] = self.routes.to_dict()
        if self.weekly is not None:
            reports["build_weekly"] = self.weekly.to_dict() | {
                "partition_paths": [partition_path(spark, *partition) for partition in self.weekly.partitions_rebuilt]}
        return reports


def run_ingestion(spark: SparkSession, source_uri: str, lake_root: str, ingestion_id: str, refit: bool = False,
                  already_refitted: Collection[str] = ()) -> IngestionRun:
    """Ingests one file, gives its trips their routes, counts its weeks and commits. refit: fit the file's regions
    again, but those already_refitted (by an earlier file of the same run). Raises StageFailed (after the
    rollback) when a stage fails."""
    stage = "ingest"
    try:
        run = IngestionRun(ingest_file(spark, source_uri, lake_root, ingestion_id))
        if run.succeeded:
            stage = "group_routes"
            ingested = _ingest_summary(run.ingestion)
            write_progress(spark, lake_root, ingestion_id, stage, {"ingest": ingested})
            regions = {region for region, _ in run.ingestion.partitions_written}
            run.routes = group_routes(spark, lake_root, ingestion_id,
                                      refit=regions - set(already_refitted) if refit else False)
            stage = "build_weekly"
            write_progress(spark, lake_root, ingestion_id, stage, {"ingest": ingested,
                                                                    "group_routes": _routes_summary(run.routes)})
            run.weekly = build_weekly(spark, lake_root, ingestion_id)
        return run
    except LeaseLostError:
        raise  # another writer has the lake now: touch nothing
    except Exception as failure:
        logger.info("%s failed for %s", stage, source_uri, exc_info=True)
        abort_after_failure(spark, lake_root, ingestion_id, stage, failure)
        detail = (str(failure).strip().splitlines() or [type(failure).__name__])[-1]
        raise StageFailed(f"{stage} failed: {detail}") from failure


def _ingest_summary(ingestion: IngestionResult) -> dict:
    counts = ingestion.to_dict()
    return {name: counts[name] for name in ("rows_read", "rows_valid", "rows_rejected", "rows_written")} | {
        "seconds": round((ingestion.finished_at - ingestion.started_at).total_seconds(), 1)}


def _routes_summary(routes: RoutesResult) -> dict:
    return {"trips_assigned": routes.trips_assigned, "seconds": round(routes.seconds, 1),
            "fitted": sorted(region.region for region in routes.regions if region.refitted)}


def _run(spark: SparkSession, args) -> JobOutcome:
    run = run_ingestion(spark, args.input, args.lake_root, args.ingestion_id, refit=args.refit)
    reports = run.reports(spark)
    for stage, report in reports.items():
        write_report(spark, args.lake_root, args.ingestion_id, stage, report)
    return JobOutcome(args.ingestion_id, {"stages": list(reports), "status": run.ingestion.status},
                      succeeded=run.succeeded)


def _arguments(parser) -> None:
    parser.add_argument("--input", required=True, help="URI of the CSV or CSV.gz file (file://, s3://)")
    parser.add_argument("--ingestion-id", required=True, help="the ingestion's id (the DAG plans it)")
    parser.add_argument("--refit", action="store_true", help="fit the regions' models again instead of reusing them")


def main(argv: list[str] | None = None) -> int:
    return run_job("ingestion", __doc__, _arguments, _run, argv)


if __name__ == "__main__":
    sys.exit(main())
