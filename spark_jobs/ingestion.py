"""A batch of ingestions in one Spark application: for each file in order, ingest -> group_routes -> build_weekly,
which commits.

What the DAG runs for each batch of uploads (one spark-submit, one EMR Serverless or one Glue job run for many
files: each costs a JVM start, and in the cloud a job run's start-up and minimum billing), and what `triplake run`
runs in-process. Each file stays its own ingestion: its own transaction, record, rollback and outcome
(`_reports/<id>/ingestion.json`), in the batch's order, so later files dedupe against earlier ones; a file that
fails fails alone and the next one goes on. The stages stay what they are: their own functions, logs and reports
(`_reports/<id>/<stage>.json`), and their own entry points (spark_jobs/ingest.py, group_routes.py,
build_weekly.py) for running one by hand.

A stage that fails rolls its ingestion back and records it FAILED (spark_jobs.common.publish); its outcome says
`<stage> failed: <error>`. Only a writer that lost the lake's lease stops the whole batch (LeaseLostError).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Collection
from dataclasses import dataclass
from typing import Callable, Sequence

from pyspark.sql import SparkSession

from spark_jobs.build_weekly import WeeklyResult, build_weekly
from spark_jobs.common import publish, records
from spark_jobs.common.delta import Storage
from spark_jobs.common.ingestions import batch_path
from spark_jobs.common.job import JobOutcome, abort_after_failure, run_job
from spark_jobs.common.lake import Lake, write_progress, write_report
from spark_jobs.common.lakefs import LakeFs
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

    def reports(self) -> dict[str, dict]:
        """Each stage's report, as its own job would leave it."""
        reports = {"ingest": self.ingestion.to_dict()}
        if self.routes is not None:
            reports["group_routes"] = self.routes.to_dict()
        if self.weekly is not None:
            reports["build_weekly"] = self.weekly.to_dict()
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


@dataclass(frozen=True)
class PlannedFile:
    """One file of a batch, under the ingestion id it was received as."""

    ingestion_id: str
    source_uri: str


@dataclass
class FileOutcome:
    """What became of one file of a batch: its run (when it got one) or the error it failed with."""

    planned: PlannedFile
    run: IngestionRun | None = None
    error: dict | None = None  # {"kind", "message", "task"} when it failed

    @property
    def succeeded(self) -> bool:
        return self.error is None

    def report(self) -> dict:
        return {"ingestion_id": self.planned.ingestion_id, "source_uri": self.planned.source_uri,
                "status": SUCCEEDED if self.succeeded else publish.FAILED, "error": self.error}


def run_batch(spark: SparkSession, files: Sequence[PlannedFile], lake_root: str, refit: bool = False,
              on_outcome: Callable[[FileOutcome], None] | None = None) -> list[FileOutcome]:
    """Ingests each file in order, each its own ingestion under the writer lease that covers the batch. refit: fit
    each region's model again once, by the first file that has it. A file already recorded (a batch run again after
    it was interrupted) is not ingested twice: its outcome is its record. on_outcome hears each file as it ends."""
    fs, lake = LakeFs(spark), Lake(lake_root)
    records.check_layout(lake_root, Storage.from_spark(spark))  # an older triplake's lake: refused, untouched
    refitted: set[str] = set()
    outcomes = []
    for planned in files:
        publish.check_lease(fs, lake, planned.ingestion_id)
        publish.recover(spark, fs, lake)  # an earlier, interrupted attempt is rolled back and recorded first
        outcome = _recorded_outcome(spark, lake, planned)
        if outcome is None:
            outcome = _ingest_one(spark, planned, lake_root, refit, refitted)
        if outcome.run is not None and outcome.run.routes is not None:
            refitted |= {region.region for region in outcome.run.routes.regions if region.refitted}
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return outcomes


def _ingest_one(spark: SparkSession, planned: PlannedFile, lake_root: str, refit: bool,
                refitted: Collection[str]) -> FileOutcome:
    try:
        run = run_ingestion(spark, planned.source_uri, lake_root, planned.ingestion_id, refit=refit,
                            already_refitted=refitted)
    except StageFailed as failure:
        return FileOutcome(planned, error={"kind": "task_failed", "message": str(failure),
                                           "task": str(failure).split(" failed", 1)[0]})
    return FileOutcome(planned, run, None if run.succeeded else run.ingestion.error)


def _recorded_outcome(spark: SparkSession, lake: Lake, planned: PlannedFile) -> FileOutcome | None:
    record = records.read_record(lake.root, Storage.from_spark(spark), planned.ingestion_id)
    if record is None:
        return None
    if record["status"] == SUCCEEDED:
        return FileOutcome(planned)
    return FileOutcome(planned, error=json.loads(record["error"] or "null") or {"kind": "task_failed",
                                                                                "message": "recorded FAILED"})


def write_outcome(spark: SparkSession, lake_root: str, outcome: FileOutcome) -> None:
    """Leaves a file's stage reports and its outcome (`ingestion`) in the lake, where the orchestrator reads them."""
    reports = outcome.run.reports() if outcome.run is not None else {}
    for stage, report in reports.items():
        write_report(spark, lake_root, outcome.planned.ingestion_id, stage, report)
    write_report(spark, lake_root, outcome.planned.ingestion_id, "ingestion",
                 outcome.report() | {"stages": list(reports)})


def read_batch(spark: SparkSession, lake_root: str, batch_id: str) -> list[PlannedFile]:
    """The files of a batch, as the orchestrator planned them (`_batches/<id>.json`)."""
    batch = json.loads(LakeFs(spark).read_text(Lake(lake_root).uri(batch_path(batch_id))))
    return [PlannedFile(item["ingestion_id"], item["source_uri"]) for item in batch["ingestions"]]


def _run(spark: SparkSession, args) -> JobOutcome:
    if args.batch_id:
        files = read_batch(spark, args.lake_root, args.batch_id)
    elif args.input and args.ingestion_id:
        files = [PlannedFile(args.ingestion_id, args.input)]
    else:
        raise SystemExit("give --batch-id, or --input with --ingestion-id")
    outcomes = run_batch(spark, files, args.lake_root, refit=args.refit,
                         on_outcome=lambda outcome: write_outcome(spark, args.lake_root, outcome))
    if args.batch_id:  # the batch went through every file: each file's outcome is in its own report
        return JobOutcome(args.batch_id, {"ingestions": [outcome.report() for outcome in outcomes]})
    (outcome,) = outcomes
    return JobOutcome(args.ingestion_id, outcome.report() | {"stages": list(outcome.run.reports()) if outcome.run else []},
                      succeeded=outcome.succeeded)


def _arguments(parser) -> None:
    parser.add_argument("--batch-id", help="the batch of files to ingest, as the DAG planned it (_batches/<id>.json)")
    parser.add_argument("--input", help="URI of one CSV or CSV.gz file (file://, s3://), instead of a batch")
    parser.add_argument("--ingestion-id", help="that file's ingestion id")
    parser.add_argument("--refit", action="store_true", help="fit the regions' models again instead of reusing them")


def main(argv: list[str] | None = None) -> int:
    return run_job("ingestion", __doc__, _arguments, _run, argv)


if __name__ == "__main__":
    sys.exit(main())
