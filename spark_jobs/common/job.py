"""The one harness of every Spark job's entry point: arguments, session, failure handling, report, exit code.

EMR Serverless, Glue and spark-submit all run `spark_jobs/<job>.py --lake-root URI --ingestion-id ID ...`;
each job's main() is `run_job(name, __doc__, add_arguments, run)`, so they cannot drift apart.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from typing import Callable

from pyspark.sql import SparkSession

from spark_jobs.common import publish, session
from spark_jobs.common.lake import Lake, write_report
from spark_jobs.common.lakefs import LakeFs
from spark_jobs.common.lease import LeaseLostError

logger = logging.getLogger(__name__)
GLUE_RUN_ARGUMENT = "--JOB_RUN_ID"  # every AWS Glue job run carries it; nothing else does


@dataclass(frozen=True)
class JobOutcome:
    ingestion_id: str
    report: dict
    succeeded: bool = True


def run_job(
    name: str,
    doc: str | None,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[SparkSession, argparse.Namespace], JobOutcome],
    argv: list[str] | None = None,
) -> int:
    """Parses the arguments, runs the job, leaves its report in the lake (where the DAG reads it whatever ran the
    job) and prints it as one JSON line; 0 when the job succeeded, 1 when the file failed as a whole.

    A job that fails with an exception rolls its ingestion back and records it FAILED (when it still holds the
    lake), then fails, so a failed step never leaves half an ingestion behind."""
    parser = argparse.ArgumentParser(prog=name, description=(doc or "").split("\n", 1)[0])
    parser.add_argument("--lake-root", required=True, help="URI of the lake root")
    add_arguments(parser)
    args = parse_arguments(parser, sys.argv[1:] if argv is None else argv)
    spark = session.get_or_create(f"triplake-{name}")
    try:
        outcome = run(spark, args)
    except LeaseLostError:
        raise  # the lake belongs to another writer: touch nothing
    except Exception as failure:
        if args.ingestion_id:
            abort_after_failure(spark, args.lake_root, args.ingestion_id, name, failure)
        raise
    write_report(spark, args.lake_root, outcome.ingestion_id, name, outcome.report)
    print(json.dumps(outcome.report, default=str))
    return 0 if outcome.succeeded else 1


def parse_arguments(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """The job's own arguments. AWS Glue adds arguments of its own to every job run (--JOB_NAME, --JOB_RUN_ID,
    --TempDir, its special parameters): under Glue they are left to Glue; anywhere else an unknown argument is a
    mistake and fails."""
    if any(argument == GLUE_RUN_ARGUMENT or argument.startswith(f"{GLUE_RUN_ARGUMENT}=") for argument in argv):
        return parser.parse_known_args(argv)[0]
    return parser.parse_args(argv)


def abort_after_failure(spark: SparkSession, lake_root: str, ingestion_id: str, step: str, failure: BaseException) -> None:
    """Rolls back the ingestion a step failed in and records it FAILED, naming the step and the error."""
    fs, lake = LakeFs(spark), Lake(lake_root)
    detail = (str(failure).strip().splitlines() or [type(failure).__name__])[-1]
    error = {"kind": "task_failed", "message": f"{step} failed: {detail}", "task": step}
    try:
        publish.check_lease(fs, lake, ingestion_id)
        publish.abort(spark, fs, lake, ingestion_id, error)
    except Exception:  # the failure being reported matters more; the next writer's recovery rolls it back
        logger.exception("could not roll back ingestion %s after %s failed", ingestion_id, step)
