"""The lake's tables as sql/ddl declares them: columns, partition columns and location (one declaration; the
local engine, the Glue catalog and Terraform's tables are made from it)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from triplake.query.statement import LAKE_ROOT_TOKEN, SqlError, Statement, statements

if TYPE_CHECKING:
    from sqlglot import exp

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class TableDefinition:
    """A lake table as sql/ddl declares it: columns, partition columns and location under the lake root."""

    name: str
    columns: tuple[tuple[str, exp.DataType], ...]
    partition_columns: tuple[tuple[str, exp.DataType], ...]
    location: str
    is_delta: bool = False  # TBLPROPERTIES ('table_type' = 'DELTA'): engines read the table's Delta log

    @classmethod
    def from_statement(cls, ddl: Statement) -> TableDefinition:
        create = ddl.expression
        if not ddl.is_ddl:
            raise SqlError(f"{ddl.name}: not a CREATE TABLE statement")
        from sqlglot import exp

        schema = create.this
        partitioned = create.find(exp.PartitionedByProperty)
        location = create.find(exp.LocationProperty).this.name
        if not location.startswith(LAKE_ROOT_TOKEN + "/"):
            raise SqlError(f"{ddl.name}: LOCATION must start with {LAKE_ROOT_TOKEN}/")
        return cls(
            name=schema.this.name,
            columns=_column_defs(schema),
            partition_columns=_column_defs(partitioned.this) if partitioned else (),
            location=location.removeprefix(LAKE_ROOT_TOKEN + "/").strip("/"),
            is_delta=table_type(create) == "DELTA",
        )

    @property
    def all_columns(self) -> tuple[tuple[str, exp.DataType], ...]:
        return self.columns + self.partition_columns


def table_type(create: exp.Create) -> str | None:
    """The table_type of a CREATE TABLE's TBLPROPERTIES, upper case, or None."""
    from sqlglot import exp

    for prop in create.find_all(exp.Property):
        if isinstance(prop.this, exp.Literal) and prop.this.name.lower() == "table_type":
            return prop.args["value"].name.upper()
    return None


def _column_defs(schema: exp.Schema) -> tuple[tuple[str, exp.DataType], ...]:
    return tuple((column.name, column.args["kind"]) for column in schema.expressions)


def table_definitions() -> list[TableDefinition]:
    return [TableDefinition.from_statement(ddl) for ddl in statements("ddl")]
