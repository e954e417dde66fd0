"""The Glue catalog of the lake: the tables as sql/ddl declares them, each a Delta table.

Athena reads a Delta table's columns, partitions and files from its log (`table_type = DELTA`), so no partition is
ever registered: a table is declared once and stays right as ingestions commit.
"""

from __future__ import annotations

import logging
from typing import Any

from triplake.query.catalog import TableDefinition, table_definitions

logger = logging.getLogger(__name__)


def _glue_columns(columns) -> list[dict[str, str]]:
    return [{"Name": name, "Type": kind.sql(dialect="hive").lower()} for name, kind in columns]


def table_location(table: TableDefinition, lake_root: str) -> str:
    return f"{lake_root.rstrip('/')}/{table.location}/"


def table_input(table: TableDefinition, lake_root: str) -> dict[str, Any]:
    """A Delta table as Glue holds it: its location and table_type; the columns are the declaration's (Athena reads
    them, and the partitions, from the log), with no partition keys to register."""
    if not table.is_delta:
        raise ValueError(f"{table.name}: every table of the lake is a Delta table (TBLPROPERTIES table_type = DELTA)")
    return {
        "Name": table.name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", "table_type": "DELTA"},
        "StorageDescriptor": {
            "Columns": _glue_columns(table.all_columns),
            "Location": table_location(table, lake_root),
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
        }
    return {
        "//": "Generated from sql/ddl by `make infra-tables` (python -m triplake.aws.glue): do not edit by hand.",
        "locals": {"tables": tables},
    }


if __name__ == "__main__":
    import json

    print(json.dumps(terraform_tables(), indent=2))
