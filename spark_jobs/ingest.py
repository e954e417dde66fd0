"""Ingest one CSV file of trips into the lake: the first step of an ingestion.

    recover interrupted ingestions -> raw copy -> header check -> parse and validate every line -> trip_id
             -> deduplicate inside the file (one shuffle, one sort) -> trips files written into curated/trips
             -> look them up in the lake's committed files of the partitions they touch (written again without
                the trips the lake holds, if any)
             -> publish (record, then commit the trips and rejected_rows files with delta-rs)

The file is parsed once: the counts come from observations on that pass. The lake is read only where the
file has trips (the trips table's snapshot files of its (region, week_start) partitions), one column of it, and
never shuffled: its cost grows with the partitions a file touches, not with the lake.

Nothing a user sent is lost: the file is copied unchanged to raw/ first, every rejected line is kept in
rejected_rows with its line number and reason, and the counts reconcile:
    rows_read = rows_valid + rows_rejected
    rows_valid = duplicates_in_batch + already_present + rows_written

What this step publishes is seen by readers only when the ingestion commits, after its routes and weeks
(spark_jobs.common.publish). Writers are one at a time (the lake's lease); an ingestion that died before it
committed is rolled back by the next one before it starts, so a rerun leaves exactly the rows a clean run leaves.
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from spark_jobs.common import delta, publish, records, session, table_files, tables
from spark_jobs.common.dedupe import (
    LAKE, MAX_BROADCAST_PARQUET_BYTES, NEW, number_rejected_lines, rank_copies, read_trip_ids,
    trips_in_lake, without_trips,
)
from spark_jobs.common.ingestions import INGESTION_ID_PATTERN, new_ingestion_id
from spark_jobs.common.job import JobOutcome, run_job
from spark_jobs.common.lake import Lake
from spark_jobs.common.lakefs import LakeFs
from spark_jobs.common.input_format import InvalidFileError, column_positions
from spark_jobs.common.parse import (
    REJECT_REASONS, TRIPS_ROW_GROUP_ROWS, binary_header_error, kept_line, locate_lines, parse_lines,
    unreadable_file_error,
)

logger = logging.getLogger(__name__)

SUCCEEDED = publish.SUCCEEDED
FAILED = publish.FAILED
EPOCH = datetime(1970, 1, 1)  # the Delta log's timestamp statistics are UTC, read without a zone


@dataclass
class Counts:
    rows_read: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    duplicates_in_batch: int = 0
    already_present: int = 0
    rows_written: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict, compare=False)

    def reconciles(self) -> bool:
        return (
            self.rows_read == self.rows_valid + self.rows_rejected
            and self.rows_valid == self.duplicates_in_batch + self.already_present + self.rows_written
        )


@dataclass
class IngestionResult:
    ingestion_id: str
    source_uri: str
    raw_uri: str | None
    status: str
    counts: Counts
    started_at: datetime
    finished_at: datetime
    error: dict | None = None
    partitions_written: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "ingestion_id": self.ingestion_id,
            "source_uri": self.source_uri,
            "raw_uri": self.raw_uri,
            "status": self.status,
            **asdict(self.counts),
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "error": self.error,
            "partitions_written": [list(partition) for partition in self.partitions_written],
        }


@contextmanager
def _timed(step: str):
    started = time.perf_counter()
    yield
    logger.info("%s: %.1f s", step, time.perf_counter() - started)


def raw_name(name: str) -> str:
    """The name of the raw copy: the file's own, with a gzip suffix in lower case (Hadoop picks the codec by the
    exact suffix '.gz', so 'TRIPS.CSV.GZ' would otherwise be read as text)."""
    return name[: -len(".gz")] + ".gz" if name.lower().endswith(".gz") else name


def read_lines(spark: SparkSession, uri: str) -> DataFrame:
    """Every physical line of the file, as the column `value`."""
    return spark.read.text(uri)


def _first_line(spark: SparkSession, uri: str) -> str | None:
    first = spark.read.text(uri).head(1)
    return first[0]["value"] if first else None


def _write_trips(trips: DataFrame, lake: Lake, ingestion_id: str, storage: delta.Storage) -> list[delta.DataFile]:
    """Writes the trips straight into the trips table, one file per partition, named after the ingestion: invisible to
    every reader until the ingestion's publish commits them (and to the views until the ingestion commits)."""
    return table_files.write_files(trips, tables.TRIPS_TABLE.uri(lake.root), tables.TRIPS_PARTITION_COLUMNS, ingestion_id,
                             storage, row_group_rows=TRIPS_ROW_GROUP_ROWS)


def _read_written(spark: SparkSession, table_uri: str, files: list[delta.DataFile], storage: delta.Storage
                  ) -> DataFrame:
    return table_files.read_files(spark, table_uri, files, tables.TRIPS_SCHEMA, storage)


def _statistics_span(started: tuple[int, int]) -> tuple[datetime, datetime]:
    """A span of start times (microseconds since the epoch) as the Delta log's statistics compare: UTC without a
    zone, widened by the millisecond the log's timestamps are truncated to."""
    first, last = (EPOCH + timedelta(microseconds=micros) for micros in started)
    return first - timedelta(milliseconds=1), last + timedelta(milliseconds=1)


def _without_lake_trips(
    spark: SparkSession,
    fs: LakeFs,
    lake: Lake,
    ingestion_id: str,
    written: list[delta.DataFile],
    started: tuple[int, int],
) -> tuple[list[delta.DataFile], int]:
    """Looks the written trips up in the lake; returns the files of the trips to publish and how many of the written
    trips the lake already held (written again without them, when there were any; the first files are deleted).

    A trip's identity includes its start, so only what could hold a written trip is read: the committed trips files
    (the table's snapshot) of the partitions the written trips fall in whose start-time statistics in the log overlap
    the written trips' span, and of them the row groups that do (`read_trip_ids`). An upload of the next hours opens
    none of the week's earlier uploads' files, so the lookup does not grow with the partition's history.
    """
    storage = delta.Storage.from_spark(spark)
    table_uri = tables.TRIPS_TABLE.uri(lake.root)
    partitions = [dict(partition) for partition in {tuple(sorted(file.partition_values.items())) for file in written}]
    lake_files = [file for file in delta.snapshot_files(table_uri, storage, partitions)
                  if file.may_overlap("started_at", *_statistics_span(started))]
    if not lake_files:
        return written, 0
    lake_ids = read_trip_ids(spark, table_uri, lake_files, started, storage)
    if lake_ids.isEmpty():
        return written, 0
    with _timed(f"look up the written trips in the {len(lake_files)} lake files of the partitions they touch"):
        new_trips = _read_written(spark, table_uri, written, storage)
        written_bytes, lake_bytes = sum(file.size for file in written), sum(entry.size for entry in lake_files)
        smaller = LAKE if lake_bytes < written_bytes else NEW
        present = trips_in_lake(
            new_trips.select("trip_id"),
            lake_ids,
            broadcast=smaller if min(written_bytes, lake_bytes) <= MAX_BROADCAST_PARQUET_BYTES else None,
        ).persist()
        already_present = present.count()
    if already_present:
        with _timed(f"write again without the {already_present} trips the lake already holds"):
            rewritten = _write_trips(without_trips(new_trips, present), lake, ingestion_id, storage)
            for file in written:  # never committed, never read by anyone else
                fs.delete(f"{table_uri}/{file.path}")
            written = rewritten
    present.unpersist()
    return written, already_present


def ingest_file(
    spark: SparkSession, source_uri: str, lake_root: str, ingestion_id: str | None = None
) -> IngestionResult:
    """Begins an ingestion and publishes the file's trips and rejected rows (not visible until the ingestion
    commits, after its routes and weeks: spark_jobs.common.publish). An invalid file is recorded FAILED at once."""
    session.configure(spark)
    started_at = datetime.now(timezone.utc)
    ingestion_id = ingestion_id or new_ingestion_id(started_at)
    if not INGESTION_ID_PATTERN.match(ingestion_id):
        raise ValueError(f"ingestion id {ingestion_id!r} must be letters, digits, '.', '_' or '-'")
    fs, lake = LakeFs(spark), Lake(lake_root)
    publish.check_lease(fs, lake, ingestion_id)
    publish.recover(spark, fs, lake)
    if records.read_record(lake_root, delta.Storage.from_spark(spark), ingestion_id) is not None:
        raise ValueError(f"ingestion {ingestion_id} is recorded already: ingest the file again under a new id")
    intent = {"ingestion_id": ingestion_id, "source_uri": source_uri, "started_at": started_at.isoformat()}
    publish.write_intent(fs, lake, intent)

    raw_uri = None
    try:
        if not fs.exists(source_uri):
            raise InvalidFileError(f"the file {source_uri} does not exist or cannot be read")
        raw_uri = lake.uri(tables.RAW, ingestion_id, raw_name(source_uri.rstrip("/").rsplit("/", 1)[-1]))
        fs.copy(source_uri, raw_uri)  # nothing a user sent is ever lost
        try:
            counts, partitions = _ingest_raw_copy(spark, fs, lake, raw_uri, ingestion_id)
        except Exception as failure:  # Spark's reader failed: the file's fault (truncated gzip...) or not
            invalid = unreadable_file_error(source_uri, failure)
            if invalid is None:
                raise
            raise invalid from failure
        status, error = SUCCEEDED, None
        publish.write_intent(fs, lake, intent | {"raw_uri": raw_uri, "counts": asdict(counts)})
    except InvalidFileError as invalid:
        counts, partitions = Counts(), []
        status, error = FAILED, {"kind": InvalidFileError.kind, "message": str(invalid)}
        publish.abort(spark, fs, lake, ingestion_id, error)  # records the FAILED ingestion: nothing was published

    return IngestionResult(
        ingestion_id=ingestion_id,
        source_uri=source_uri,
        raw_uri=raw_uri,
        status=status,
        counts=counts,
        started_at=started_at,
        finished_at=datetime.now(timezone.utc),
        error=error,
        partitions_written=partitions,
    )


def _ingest_raw_copy(
    spark: SparkSession, fs: LakeFs, lake: Lake, raw_uri: str, ingestion_id: str
) -> tuple[Counts, list[tuple[str, str]]]:
    header_line = _first_line(spark, raw_uri)
    binary = binary_header_error(header_line or "")
    if binary is not None:
        raise binary
    positions = column_positions(header_line)  # raises for a missing header line
    publication = publish.Publication(spark, fs, lake, ingestion_id, "ingest").begin()

    lines = read_lines(spark, raw_uri)
    storage = delta.Storage.from_spark(spark)
    with _timed("parse, deduplicate inside the file and write its trips (one pass over the file)"):
        parsed = parse_lines(lines, positions, header_line)
        is_valid = F.col("reject_reason").isNull()
        line_counts = Observation("lines")
        copy_counts = Observation("copies")
        observed_lines = parsed.observe(
            line_counts,
            F.count(F.lit(1)).alias("rows_read"),
            *[F.count(F.when(F.col("reject_reason") == reason, 1)).alias(reason) for reason in REJECT_REASONS],
        )
        trips = (
            rank_copies(observed_lines.where(is_valid))
            .observe(
                copy_counts,
                F.count(F.when(~F.col("first_copy"), 1)).alias("duplicates"),
                F.count(F.when(F.col("first_copy"), 1)).alias("trips"),
                F.min(F.unix_micros("started_at")).alias("first_start"),  # as Parquet stores them
                F.max(F.unix_micros("started_at")).alias("last_start"),
            )
            .where(F.col("first_copy"))
            .withColumn("ingestion_id", F.lit(ingestion_id))
            .select(*tables.TRIPS_SCHEMA.fieldNames())
        )
        # No sort here: rows arrive ordered by origin latitude from the dedupe, one task per partition, and each
        # task writes its partition's rows in that order, so each file is sorted for bbox pruning.
        written = _write_trips(trips, lake, ingestion_id, storage)
        read, copies = line_counts.get, copy_counts.get

    written, already_present = _without_lake_trips(
        spark, fs, lake, ingestion_id, written, (copies["first_start"], copies["last_start"])
    )
    publication.add_files(tables.TRIPS_TABLE, written)

    rejected_by_reason = {reason: int(read[reason]) for reason in REJECT_REASONS if read[reason]}
    rows_rejected = sum(rejected_by_reason.values())
    rows_valid = int(read["rows_read"]) - rows_rejected
    if rows_rejected:
        with _timed("write rejected rows"):
            rejected = number_rejected_lines(parsed.where(~is_valid), locate_lines(read_lines(spark, raw_uri)))
            rows = (
                rejected.withColumn("raw_line", kept_line(F.col("raw_line"), F.col("reason")))
                .withColumn("ingestion_id", F.lit(ingestion_id))
                .select(*tables.REJECTED_ROWS_SCHEMA.fieldNames())
                .orderBy("line_number")
                .coalesce(1)  # one file, in line order
            )
            publication.add_files(tables.REJECTED_ROWS_TABLE, table_files.write_files(
                rows, tables.REJECTED_ROWS_TABLE.uri(lake.root), (), ingestion_id, storage))

    counts = Counts(
        rows_read=int(read["rows_read"]),
        rejected_by_reason=rejected_by_reason,
        rows_valid=rows_valid,
        rows_rejected=rows_rejected,
        duplicates_in_batch=int(copies["duplicates"]),
        already_present=already_present,
        rows_written=int(copies["trips"]) - already_present,
    )
    if not counts.reconciles():
        raise RuntimeError(f"counts do not reconcile, nothing was published: {counts}")

    publication.publish()
    partitions = sorted({(file.partition_values["region"], file.partition_values["week_start"]) for file in written})
    return counts, partitions


def _run(spark: SparkSession, args) -> JobOutcome:
    result = ingest_file(spark, args.input, args.lake_root, args.ingestion_id)
    return JobOutcome(result.ingestion_id, result.to_dict(), succeeded=result.status == SUCCEEDED)


def _arguments(parser) -> None:
    parser.add_argument("--input", required=True, help="URI of the CSV or CSV.gz file (file://, s3://)")
    parser.add_argument("--ingestion-id", help="id to use (default: time-based and unique)")


def main(argv: list[str] | None = None) -> int:
    return run_job("ingest", __doc__, _arguments, _run, argv)


if __name__ == "__main__":
    sys.exit(main())
