"""The runtime SQL settings every triplake job relies on, applied to whatever session runs it."""

from __future__ import annotations

from pyspark.sql import SparkSession

JOB_SQL_CONF = {
    # Input datetimes are naive and mean UTC; week boundaries depend on it.
    "spark.sql.session.timeZone": "UTC",
    # INT64 microseconds rather than legacy INT96: what Athena, DuckDB and pyarrow read natively.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    # Partition values stay the strings we wrote ("2018-05-28"), never re-typed on read.
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    # Files of a few hundred MB still spread over every core (the 128 MB default leaves one core idle).
    "spark.sql.files.maxPartitionBytes": str(32 * 1024 * 1024),
    # A trips write shuffles by (region, week_start): a file of 6 weeks in 3 regions is 18 keys. Hashed into a
    # few shuffle partitions they pile up unevenly (18 keys in 7 tasks left a core idle for a third of the
    # stage); hashed into many, each key is about one task, and adaptive execution merges the small ones.
    # Measured on a 10M-row file, 2 cores: ingest 102 s -> 88 s.
    "spark.sql.adaptive.coalescePartitions.initialPartitionNum": "256",
    # A partitioned write keeps one file open per partition instead of first sorting the rows by partition:
    # the rows of a trips write arrive sorted by origin latitude, and a sort by (region, week_start) would
    # cost a second sort of the batch and scramble that order. Past this many partitions in one task, Spark
    # falls back to sorting the remaining rows (correct, only less well ordered for pruning).
    "spark.sql.optimizer.plannedWrite.enabled": "false",
    "spark.sql.maxConcurrentOutputFileWriters": "64",
    # The ingest counts lines with observations (Dataset.observe). When a shuffle comes out empty (a file of
    # only rejected lines), this rule replaces the stages around it with an empty relation and the observed
    # counts are never reported, so Observation.get would wait forever. Without it, empty stages just run.
    "spark.sql.adaptive.optimizer.excludedRules": "org.apache.spark.sql.execution.adaptive.AQEPropagateEmptyRelation",
    # base64() in one line (a rejected line's bytes in rejected_rows), not wrapped every 76 characters as Spark 3.5
    # does by default; Spark 4 no longer wraps.
    "spark.sql.chunkBase64String.enabled": "false",
    # As fast as snappy here and a third smaller (measured on 10M trips); Athena, DuckDB and pyarrow read it.
    "spark.sql.parquet.compression.codec": "zstd",
}


def configure(spark: SparkSession) -> SparkSession:
    for key, value in JOB_SQL_CONF.items():
        spark.conf.set(key, value)
    return spark


def get_or_create(app_name: str) -> SparkSession:
    """The session of a job started by spark-submit or EMR Serverless (they supply master and jars)."""
    return configure(SparkSession.builder.appName(app_name).getOrCreate())
