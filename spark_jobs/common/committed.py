"""What the jobs read of the lake: committed data only, found through the tables' Delta snapshots (partition values
and file statistics), never by globbing folders. Under the lake's lease, what is there is committed or the running
ingestion's own: recovery took out the rest before the ingestion began."""

from __future__ import annotations

import json
import operator
from collections.abc import Collection, Sequence
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.common import delta, table_files, tables
from spark_jobs.common.lake import Lake
from spark_jobs.common.lakefs import LakeFs
from spark_jobs.common.route_model import RouteModel

MODEL_METADATA = "route_model.json"
VERSION_DIR_PREFIX = "v="


def region_models_dir(lake: Lake, region: str) -> str:
    return lake.uri(tables.MODELS, delta.partition_dir("region", region))


def model_versions(fs: LakeFs, models_dir: str) -> list[int]:
    """The versions saved for a region (those with their metadata, which is written last), oldest first."""
    return sorted(
        int(entry.name.removeprefix(VERSION_DIR_PREFIX))
        for entry in fs.list(models_dir)
        if entry.is_dir and entry.name.startswith(VERSION_DIR_PREFIX) and fs.exists(f"{entry.uri}/{MODEL_METADATA}")
    )


def load_model(spark: SparkSession, fs: LakeFs, lake: Lake, region: str) -> RouteModel | None:
    """The region's current model (its latest version), or None when it has none.

    Under the lake's lease every version in the lake is committed or this ingestion's own: recovery removed the
    rest before the ingestion began."""
    models_dir = region_models_dir(lake, region)
    versions = model_versions(fs, models_dir)
    if not versions:
        return None
    metadata = fs.read_text(f"{models_dir}/{VERSION_DIR_PREFIX}{versions[-1]}/{MODEL_METADATA}")
    return RouteModel.from_metadata(json.loads(metadata))


def read_trips(spark: SparkSession, lake: Lake, files: list[delta.SnapshotFile],
               columns: Sequence[str] | None = None) -> DataFrame:
    """These trips files' rows, of the given columns only (None: all): the tasks read no other column."""
    schema = T.StructType([tables.TRIPS_SCHEMA[name] for name in columns]) if columns else tables.TRIPS_SCHEMA
    return table_files.read_files(spark, tables.TRIPS_TABLE.uri(lake.root), files, schema, delta.Storage.from_spark(spark))


def region_trip_files(spark: SparkSession, lake: Lake, regions: Collection[str]) -> list[delta.SnapshotFile]:
    """The committed trips files of these regions (the trips table's snapshot)."""
    return delta.snapshot_files(tables.TRIPS_TABLE.uri(lake.root), delta.Storage.from_spark(spark),
                                [{"region": region} for region in sorted(regions)])


def current_weekly_trips(spark: SparkSession, lake: Lake, versions: dict[str, int]) -> DataFrame | None:
    """The weekly_trips rows of each region's given model version (region -> version), or None when none of the
    regions has any. Under the lake's lease every such row is a committed ingestion's or the running ingestion's
    own, so their sum is the region's trips in the lake: a refit writes the region's whole counts and every later
    ingestion adds its own. One read for all the regions, of the files the table's snapshot has for them whose
    model_version statistics can match."""
    storage = delta.Storage.from_spark(spark)
    table_uri = tables.WEEKLY_TRIPS_TABLE.uri(lake.root)
    files = [file for file in delta.snapshot_files(table_uri, storage, [{"region": region} for region in sorted(versions)])
             if file.may_hold("model_version", versions[file.partition_values["region"]])]
    if not files:
        return None
    current = [(F.col("region") == region) & (F.col("model_version") == version) for region, version in versions.items()]
    return (table_files.read_files(spark, table_uri, files, tables.WEEKLY_TRIPS_SCHEMA, storage)
            .where(reduce(operator.or_, current)))


