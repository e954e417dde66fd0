"""The runtime SQL settings every triplake job relies on, applied to whatever session runs it."""

from __future__ import annotations

from pyspark.sql import SparkSession

JOB_SQL_CONF = {
    # Input datetimes are naive and mean UTC (DESIGN.md §1); week boundaries depend on it.
    "spark.sql.session.timeZone": "UTC",
    # INT64 microseconds rather than legacy INT96: what Athena, DuckDB and pyarrow read natively.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    # Partition values stay the strings we wrote ("2018-05-28"), never re-typed on read.
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    # Files of a few hundred MB still spread over every core (the 128 MB default leaves one core idle).
    "spark.sql.files.maxPartitionBytes": str(32 * 1024 * 1024),
}


def configure(spark: SparkSession) -> SparkSession:
    for key, value in JOB_SQL_CONF.items():
        spark.conf.set(key, value)
    return spark


def get_or_create(app_name: str) -> SparkSession:
    """The session of a job started by spark-submit or EMR Serverless (they supply master and jars)."""
    return configure(SparkSession.builder.appName(app_name).getOrCreate())
