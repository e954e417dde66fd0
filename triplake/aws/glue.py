"""The Glue catalog of the lake: tables as sql/ddl declares them, and the partitions each ingestion adds.

Partitions are registered one by one as the pipeline writes them (`batch_create_partition`), never discovered by
scanning the lake (MSCK REPAIR reads every prefix: minutes at 100M trips, and it races with writers)."""

from __future__ import annotations

import logging
from typing import Any, Iterable
from urllib.parse import unquote

from triplake.query.catalog import TableDefinition, table_definitions

logger = logging.getLogger(__name__)

PARQUET_STORAGE = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}
BATCH_LIMIT = 100  # partitions per batch_create_partition call


def _glue_columns(columns) -> list[dict[str, str]]:
    return [{"Name": name, "Type": kind.sql(dialect="hive").lower()} for name, kind in columns]


def table_location(table: TableDefinition, lake_root: str) -> str:
    return f"{lake_root.rstrip('/')}/{table.location}/"


def table_parameters(table: TableDefinition) -> dict[str, str]:
    """A Delta table's table_type tells Athena to read its log (columns, files; no partitions to register)."""
    if table.is_delta:
        return {"EXTERNAL": "TRUE", "table_type": "DELTA"}
    return {"EXTERNAL": "TRUE", "classification": "parquet", "parquet.compression": "ZSTD"}


def table_input(table: TableDefinition, lake_root: str) -> dict[str, Any]:
    return {
        "Name": table.name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": table_parameters(table),
        "PartitionKeys": _glue_columns(table.partition_columns),
        "StorageDescriptor": {
            "Columns": _glue_columns(table.columns),
            "Location": table_location(table, lake_root),
            **PARQUET_STORAGE,
        },
    }


def ensure_catalog(glue: Any, database: str, lake_root: str) -> list[str]:
    """Creates the database and every table of sql/ddl that is missing (what Terraform does in AWS)."""
    try:
        glue.create_database(DatabaseInput={"Name": database, "Description": "triplake: trips, routes, weekly"})
    except glue.exceptions.AlreadyExistsException:
        pass
    created = []
    for table in table_definitions():
        try:
            glue.create_table(DatabaseName=database, TableInput=table_input(table, lake_root))
            created.append(table.name)
        except glue.exceptions.AlreadyExistsException:
            pass
    return created


def terraform_tables() -> dict[str, Any]:
    """infra/tables.tf.json: `local.tables` for Terraform's Glue tables, made from sql/ddl (one declaration of
    each table; tests/test_infra.py fails when the committed file differs from what this makes)."""
    def columns(definition) -> list[dict[str, str]]:
        return [{"name": column["Name"], "type": column["Type"]} for column in definition]

    tables = {}
    for table in table_definitions():
        glue_input = table_input(table, "")
        tables[table.name] = {
            "location": table.location,
            "parameters": glue_input["Parameters"],
            "columns": columns(glue_input["StorageDescriptor"]["Columns"]),
            "partition_keys": columns(glue_input["PartitionKeys"]),
        }
    return {
        "//": "Generated from sql/ddl by `make infra-tables` (python -m triplake.aws.glue): do not edit by hand.",
        "locals": {"tables": tables},
    }


def partitioned_tables() -> list[TableDefinition]:
    """The tables whose partitions are registered one by one (a Delta table's come from its log)."""
    return [table for table in table_definitions() if table.partition_columns and not table.is_delta]


def register_partitions(glue: Any, database: str, table: TableDefinition, lake_root: str,
                        partition_paths: Iterable[str]) -> int:
    """Adds the partitions at these relative paths ('region=Prague/week_start=2018-05-28'); existing ones are
    left as they are, so a rerun is harmless. Returns how many were new."""
    inputs = [_partition_input(table, lake_root, path) for path in sorted(set(partition_paths))]
    created = 0
    for start in range(0, len(inputs), BATCH_LIMIT):
        batch = inputs[start : start + BATCH_LIMIT]
        response = glue.batch_create_partition(DatabaseName=database, TableName=table.name, PartitionInputList=batch)
        errors = response.get("Errors", [])
        unexpected = [error for error in errors if error["ErrorDetail"]["ErrorCode"] != "AlreadyExistsException"]
        if unexpected:
            detail = unexpected[0]["ErrorDetail"]
            raise RuntimeError(f"Glue refused {len(unexpected)} partitions of {database}.{table.name}: "
                               f"{detail['ErrorCode']}: {detail.get('ErrorMessage', '')}")
        created += len(batch) - len(errors)
    logger.info("%s.%s: %d new partitions of %d", database, table.name, created, len(inputs))
    return created


def _partition_input(table: TableDefinition, lake_root: str, path: str) -> dict[str, Any]:
    directories = path.strip("/").split("/")
    names = [name for name, _ in table.partition_columns]
    if [directory.split("=", 1)[0] for directory in directories] != names:
        raise ValueError(f"partition path {path!r} does not match the partition columns {names} of {table.name}")
    return {
        # Glue wants the values themselves; the location keeps Spark's %XX-escaped directory names.
        "Values": [unquote(directory.split("=", 1)[1]) for directory in directories],
        "StorageDescriptor": {
            "Columns": _glue_columns(table.columns),
            "Location": table_location(table, lake_root) + "/".join(directories) + "/",
            **PARQUET_STORAGE,
        },
    }


if __name__ == "__main__":
    import json

    print(json.dumps(terraform_tables(), indent=2))
