"""One trip once: the copies of a trip inside a file (the earliest line wins), the trips the lake holds already
(which lake files to look in, one column of them, a broadcast hash lookup, never a shuffle of the lake), and the
line numbers of rejected lines."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.common import delta, table_files, tables
from spark_jobs.common.identity import ORIGIN_LAT_KEY, scaled_coordinate


def rank_copies(batch: DataFrame) -> DataFrame:
    """Every valid row of the batch with first_copy: true for the earliest line of each trip in the file.

    batch: valid parsed rows (trip columns, trip_id, week_start, origin_lat_e7, line_order).
    One shuffle by (region, week_start), the way the output is written, and one sort whose first key is the
    origin latitude: the same order then serves the dedupe and the bbox-friendly layout of the files.
    """
    # The trip's identity leads: partitioning by it (region and week follow from trip_id) keeps the
    # window's sort on a cheap integer prefix instead of region and week, which tie on every row.
    trip = Window.partitionBy(ORIGIN_LAT_KEY, "trip_id", "region", "week_start").orderBy("line_order")
    return (
        batch.repartition(*tables.TRIPS_PARTITION_COLUMNS)
        .select("*", (F.row_number().over(trip) == 1).alias("first_copy"))
    )


TRIP_HASH = "trip_hash"
NEW, LAKE = "new", "lake"  # the two sides of the lake lookup


def trips_in_lake(new_trip_ids: DataFrame, lake_trip_ids: DataFrame, broadcast: str | None = NEW) -> DataFrame:
    """The rows of new_trip_ids whose trip_id lake_trip_ids holds too (both: one column, trip_id).

    Neither side is shuffled in full: the 64-bit hashes of the smaller side (`broadcast`: NEW or LAKE) are
    broadcast and the other side streams past them once; only the few ids whose hash matches are then compared
    exactly (a hash collision costs a comparison, never a lost trip). broadcast=None leaves both joins to Spark,
    for sides too large to broadcast.
    """
    small, large = (lake_trip_ids, new_trip_ids) if broadcast == LAKE else (new_trip_ids, lake_trip_ids)
    hashes = small.select(F.xxhash64("trip_id").alias(TRIP_HASH))
    candidates = (
        large.select("trip_id", F.xxhash64("trip_id").alias(TRIP_HASH))
        .join(F.broadcast(hashes) if broadcast else hashes, on=TRIP_HASH, how="left_semi")
        .select("trip_id")
    )
    # The exact comparison is broadcast too when one side is: the candidates are at most the small side's trips (and
    # a collision's), so no join shuffles a few thousand ids into hundreds of tasks.
    if broadcast == LAKE:  # candidates are new rows: keep those the lake really holds
        return candidates.join(F.broadcast(lake_trip_ids), on="trip_id", how="left_semi")
    return new_trip_ids.join(F.broadcast(candidates) if broadcast else candidates, on="trip_id", how="left_semi")


def without_trips(staged: DataFrame, trip_ids: DataFrame) -> DataFrame:
    """The staged trips minus trip_ids, laid out again as a trips write expects: by partition, and each
    partition sorted by origin latitude (then trip_id, so the order is total and a rerun gives the same files)."""
    return (
        staged.join(trip_ids, on="trip_id", how="left_anti")
        .repartition(*tables.TRIPS_PARTITION_COLUMNS)
        .sortWithinPartitions(scaled_coordinate("origin_lat"), "trip_id")
        .select(*tables.TRIPS_SCHEMA.fieldNames())
    )


def number_rejected_lines(rejected: DataFrame, lines: DataFrame) -> DataFrame:
    """Rejected rows with their 1-based line number in the file.

    Spark reads a file in blocks; a line's number is the number of lines in the blocks before it plus its
    position inside its own block. Both come from the same read of the file, so they agree.
    """
    block_order = Window.orderBy("block_start").rowsBetween(Window.unboundedPreceding, -1)
    blocks = (
        lines.groupBy("block_start")
        .agg(F.count(F.lit(1)).alias("lines"), F.min("row_id").alias("first_row_id"))
        .withColumn("lines_before", F.coalesce(F.sum("lines").over(block_order), F.lit(0)))
    )
    return rejected.join(F.broadcast(blocks), on="block_start", how="inner").select(
        (F.col("lines_before") + F.col("row_id") - F.col("first_row_id") + 1).alias("line_number"),
        "raw_line",
        F.col("reject_reason").alias("reason"),
    )


# Above this much Parquet on both sides, no side's hashes are broadcast and Spark shuffles both (about 20M trips).
MAX_BROADCAST_PARQUET_BYTES = 2**30


def read_trip_ids(spark: SparkSession, table_uri: str, files: list[delta.SnapshotFile], started: tuple[int, int],
                  storage: delta.Storage) -> DataFrame:
    """trip_id of the trips in these files of the trips table that started within [first, last] (microseconds since
    the epoch).

    A trip's identity includes its start, so a trip outside the new trips' time span cannot be one of them: only the
    row groups whose started_at range overlaps it are read (an upload of the next days reads nothing of the week it
    shares with the lake).
    """
    columns = T.StructType([tables.TRIPS_SCHEMA["trip_id"]])
    return table_files.read_files(spark, table_uri, files, columns, storage, between=("started_at", *started))
