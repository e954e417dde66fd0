"""Where things live inside one lake root (DESIGN.md §2, §4), and partition directory names."""

from __future__ import annotations

from pyspark.sql import SparkSession

from spark_jobs.common import tables
from spark_jobs.common.lakefs import join_uri


class Lake:
    """Locations inside one lake root (file:// or s3://)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")

    def uri(self, *parts: str) -> str:
        return join_uri(self.root, *parts)

    def staging(self, ingestion_id: str, *parts: str) -> str:
        return self.uri(tables.STAGING, ingestion_id, *parts)

    def ingestion_record(self, ingestion_id: str) -> str:
        return self.uri(tables.INGESTIONS, f"{ingestion_id}.parquet")

    def rejected_file(self, ingestion_id: str) -> str:
        return self.uri(tables.REJECTED_ROWS, f"{ingestion_id}.parquet")


def _catalog_utils(spark: SparkSession):
    return spark.sparkContext._jvm.org.apache.spark.sql.catalyst.catalog.ExternalCatalogUtils  # noqa: SLF001


def partition_dir(spark: SparkSession, name: str, value: str) -> str:
    """The exact directory name Spark writes for a partition value (it escapes unusual characters)."""
    return f"{name}={_catalog_utils(spark).escapePathName(value)}"


def partition_value(spark: SparkSession, directory: str) -> str:
    """The value of a partition directory name 'name=escaped value'."""
    return str(_catalog_utils(spark).unescapePathName(directory.split("=", 1)[1]))
