"""Run the sql/ files: on DuckDB over the lake's Parquet files (local engine) or on Athena (athena engine).

Every query is written once, in Athena's (Trino) dialect, with named parameters (`:region`). The local
engine transpiles it to DuckDB with sqlglot and binds the values as DuckDB parameters (`$region`); the
Athena engine rewrites the placeholders to `?` and sends the values as ExecutionParameters, through awswrangler.
Values are never formatted into the SQL text.

Locally the tables of sql/ddl are DuckDB views over the lake's files (file:// or s3://, the latter through
a pyarrow S3 filesystem, since DuckDB cannot install httpfs offline); the views of sql/views are created on
top of them, so queries see the same catalog names as in Athena.

Transpiling is most of the time of a one-off local query (importing sqlglot, loading two dialects, parsing
every DDL file and view), so the local engine keeps each statement's DuckDB form on disk, by the hash of its
text and sqlglot's version (SqlCache): a query whose files have not changed starts without sqlglot at all.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Mapping

from triplake.query.result import Engine, QueryResult
from triplake.query.statement import SqlError, statement
from triplake.settings import Settings


def engine_for(name: str, lake_root: str, settings: Settings) -> Engine:
    """The engine by its CLI name; each is imported only when asked for (DuckDB or awswrangler, not both)."""
    if name == "local":
        from triplake.query.local import LocalEngine

        return LocalEngine(lake_root, settings)
    if name == "athena":
        from triplake.query.athena import AthenaEngine

        return AthenaEngine(settings)
    raise SqlError(f"unknown engine {name!r}: use local or athena")


def run_file(engine: Engine, relative: str, values: Mapping[str, str] | None = None) -> QueryResult:
    return engine.run(statement(relative), values or {})


def result_value(value: Any) -> Any:
    """A result cell as JSON-friendly data (dates and timestamps as ISO 8601 text)."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value
