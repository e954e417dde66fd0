"""Run the sql/ files: on DuckDB over the lake's Parquet files (local engine) or on Athena (athena engine).

Every query is written once, in Athena's (Trino) dialect, with named parameters (`:region`). The local
engine transpiles it to DuckDB with sqlglot and binds the values as DuckDB parameters (`$region`); the
Athena engine rewrites the placeholders to `?` and sends the values as ExecutionParameters. Values are
never formatted into the SQL text.

Locally the tables of sql/ddl are DuckDB views over the lake's files (file:// or s3://, the latter through
a pyarrow S3 filesystem, since DuckDB cannot install httpfs offline); the views of sql/views are created on
top of them, so queries see the same catalog names as in Athena.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Protocol

import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType

from triplake.settings import REPO_ROOT, Settings
from triplake.uris import local_path

logger = logging.getLogger(__name__)

SQL_DIR = REPO_ROOT / "sql"
DIALECT = "athena"
LAKE_ROOT_TOKEN = "${lake_root}"
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


class SqlError(Exception):
    """A statement that cannot run: bad SQL, wrong parameters, or the engine refused it."""


@dataclass(frozen=True)
class Statement:
    """One SQL statement in Athena's dialect, with its named parameters (`:name`)."""

    text: str
    name: str = "query"

    @classmethod
    def from_file(cls, path: Path) -> Statement:
        return cls(path.read_text(), name=path.stem)

    @cached_property
    def expression(self) -> exp.Expression:
        try:
            expressions = [parsed for parsed in sqlglot.parse(self.text, read=DIALECT) if parsed is not None]
        except sqlglot.errors.ParseError as problem:
            raise SqlError(f"{self.name}: not valid Athena SQL: {problem}") from problem
        if len(expressions) != 1:
            raise SqlError(f"{self.name}: expected exactly one SQL statement, found {len(expressions)}")
        return expressions[0]

    @property
    def parameters(self) -> tuple[str, ...]:
        """The distinct parameter names, in order of first appearance."""
        return tuple(dict.fromkeys(_placeholder_names(self.expression.sql(DIALECT))))

    @property
    def is_ddl(self) -> bool:
        return isinstance(self.expression, exp.Create) and self.expression.kind == "TABLE"

    def check_parameters(self, values: Mapping[str, Any]) -> None:
        missing = [name for name in self.parameters if name not in values]
        unknown = sorted(set(values) - set(self.parameters))
        if missing or unknown:
            problems = []
            if missing:
                problems.append("missing " + ", ".join(f"--param {name}=..." for name in missing))
            if unknown:
                problems.append("unknown parameter(s) " + ", ".join(unknown))
            expected = ", ".join(self.parameters) or "none"
            raise SqlError(f"{self.name}: {'; '.join(problems)} (this statement takes: {expected})")

    def duckdb_sql(self) -> str:
        """The statement in DuckDB's dialect; `:name` becomes `$name`."""
        return self.expression.sql("duckdb")

    def athena_query(self, values: Mapping[str, str]) -> tuple[str, list[str]]:
        """The statement with `?` placeholders, and the ExecutionParameters in the order they appear."""
        self.check_parameters(values)
        names = _placeholder_names(self.expression.sql(DIALECT))
        positional = self.expression.transform(
            lambda node: exp.Placeholder() if isinstance(node, exp.Placeholder) else node
        )
        return positional.sql(DIALECT), [athena_literal(values[name]) for name in names]

    def with_lake_root(self, lake_root: str) -> Statement:
        """A DDL statement with its LOCATION under the given lake root."""
        if "'" in lake_root:
            raise SqlError(f"lake root {lake_root!r} cannot contain a quote")
        return Statement(self.text.replace(LAKE_ROOT_TOKEN, lake_root.rstrip("/")), name=self.name)


def _placeholder_names(sql: str) -> list[str]:
    """Names of the `:name` placeholders of Athena SQL, in textual order (comments and strings skipped)."""
    tokens = sqlglot.tokenize(sql, read=DIALECT)
    return [
        following.text
        for token, following in zip(tokens, tokens[1:])
        if token.token_type == TokenType.COLON and following.start == token.end + 1
    ]


def athena_literal(value: str) -> str:
    """An Athena ExecutionParameter for a string value: a quoted SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def statement(relative: str) -> Statement:
    """A statement of sql/ by its path without suffix, e.g. 'queries/weekly_average_region'."""
    return Statement.from_file(SQL_DIR / f"{relative}.sql")


def statements(folder: str) -> list[Statement]:
    return [Statement.from_file(path) for path in sorted((SQL_DIR / folder).glob("*.sql"))]


@dataclass(frozen=True)
class TableDefinition:
    """A lake table as sql/ddl declares it: columns, partition columns and location under the lake root."""

    name: str
    columns: tuple[tuple[str, exp.DataType], ...]
    partition_columns: tuple[tuple[str, exp.DataType], ...]
    location: str

    @classmethod
    def from_statement(cls, ddl: Statement) -> TableDefinition:
        create = ddl.expression
        if not ddl.is_ddl:
            raise SqlError(f"{ddl.name}: not a CREATE TABLE statement")
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
        )

    @property
    def all_columns(self) -> tuple[tuple[str, exp.DataType], ...]:
        return self.columns + self.partition_columns


def _column_defs(schema: exp.Schema) -> tuple[tuple[str, exp.DataType], ...]:
    return tuple((column.name, column.args["kind"]) for column in schema.expressions)


def table_definitions() -> list[TableDefinition]:
    return [TableDefinition.from_statement(ddl) for ddl in statements("ddl")]


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]

    def single(self) -> dict[str, Any]:
        if len(self.rows) != 1:
            raise SqlError(f"expected one row, got {len(self.rows)}")
        return self.records()[0]


class Engine(Protocol):
    def run(self, statement: Statement, values: Mapping[str, str]) -> QueryResult: ...


class LocalEngine:
    """DuckDB over the lake's Parquet files, with the catalog names of sql/ddl and sql/views."""

    def __init__(self, lake_root: str, settings: Settings) -> None:
        import duckdb

        self.lake_root = lake_root.rstrip("/")
        local = local_path(self.lake_root)
        if local is not None and not local.is_dir():
            raise SqlError(f"no lake at {local}: build one with `triplake run --input FILE --lake-root {local}`, "
                           "or point --lake-root (TRIPLAKE_LAKE_ROOT) at an existing lake")
        self.connection = duckdb.connect()
        if local is None:
            self.connection.register_filesystem(_lake_filesystem(self.lake_root, settings))
        for table in table_definitions():
            self._register_table(table)
        for view in statements("views"):
            self.connection.execute(view.duckdb_sql())

    def _files_glob(self, table: TableDefinition) -> str:
        local = local_path(self.lake_root)
        root = str(local) if local is not None else self.lake_root
        return "/".join([root, table.location, *("*" for _ in table.partition_columns), "*.parquet"])

    def _register_table(self, table: TableDefinition) -> None:
        import duckdb

        for name, _ in table.all_columns:
            if not _IDENTIFIER.fullmatch(name):
                raise SqlError(f"column name {name!r} of {table.name} is not a plain identifier")
        # Cast to the declared types, so both engines return the same: e.g. Spark writes timestamps as
        # UTC instants, which DuckDB reads as TIMESTAMPTZ and Athena as a plain timestamp.
        columns = ", ".join(f"cast({name} as {kind.sql('duckdb')}) as {name}" for name, kind in table.all_columns)
        hive_types = ", ".join(f"'{name}': '{kind.sql('duckdb')}'" for name, kind in table.partition_columns)
        source = (
            f"read_parquet($files, hive_partitioning = true, hive_types = {{{hive_types}}})"
            if table.partition_columns
            else "read_parquet($files)"
        )
        try:
            relation = self.connection.sql(f"select {columns} from {source}", params={"files": self._files_glob(table)})
        except duckdb.IOException as problem:
            if "No files found" not in str(problem):
                raise
            # A table nothing has been written to yet: empty, with its declared columns.
            nulls = ", ".join(f"cast(null as {kind.sql('duckdb')}) as {name}" for name, kind in table.all_columns)
            relation = self.connection.sql(f"select {nulls} where false")
        relation.create_view(table.name)

    def run(self, statement: Statement, values: Mapping[str, str]) -> QueryResult:
        import duckdb

        if statement.is_ddl:
            raise SqlError(
                f"{statement.name}: CREATE TABLE runs in Athena (--engine athena); "
                "locally the tables are read straight from the lake's files"
            )
        statement.check_parameters(values)
        try:
            cursor = self.connection.execute(statement.duckdb_sql(), {name: values[name] for name in statement.parameters})
            rows = cursor.fetchall()
        except duckdb.Error as problem:
            raise SqlError(f"{statement.name}: {problem}") from problem
        columns = tuple(column[0] for column in cursor.description or ())
        return QueryResult(columns, rows)


def _lake_filesystem(lake_root: str, settings: Settings):
    """The lake's S3 bucket as an fsspec filesystem DuckDB can read through (pyarrow's S3 client inside)."""
    from fsspec.implementations.arrow import ArrowFSWrapper

    from triplake.lake_files import filesystem

    class S3Lake(ArrowFSWrapper):
        protocol = ("s3", "s3a")

    arrow_fs, _ = filesystem(lake_root, settings)
    return S3Lake(arrow_fs)


# Athena: result cells arrive as strings; these turn them back into Python values by column type.
_ATHENA_TYPES = {
    "boolean": lambda text: text == "true",
    "tinyint": int,
    "smallint": int,
    "integer": int,
    "bigint": int,
    "double": float,
    "float": float,
    "real": float,
    "decimal": Decimal,
    "date": date.fromisoformat,
    "timestamp": datetime.fromisoformat,
}
_TERMINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")


class AthenaEngine:
    """The same statements through Athena, parameters bound as ExecutionParameters."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        if client is None:
            from triplake.aws import clients

            (client,) = clients(settings, "athena")
        self.client = client
        self.settings = settings

    def run(self, statement: Statement, values: Mapping[str, str]) -> QueryResult:
        query, parameters = statement.athena_query(values)
        request = {
            "QueryString": query,
            "WorkGroup": self.settings.athena_workgroup,
            "QueryExecutionContext": {"Database": self.settings.glue_database},
        }
        if parameters:
            request["ExecutionParameters"] = parameters
        query_id = self.client.start_query_execution(**request)["QueryExecutionId"]
        logger.info("athena query %s started (%s)", query_id, statement.name)
        self._wait(query_id, statement.name)
        return self._results(query_id)

    def _wait(self, query_id: str, name: str) -> None:
        # Athena has no waiter and no completion event for interactive queries: poll, backing off to 2 s.
        deadline = time.monotonic() + self.settings.athena_query_timeout_seconds
        delay = 0.2
        while True:
            status = self.client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
            state = status["State"]
            if state == "SUCCEEDED":
                return
            if state in _TERMINAL_STATES:
                raise SqlError(f"{name}: Athena query {query_id} {state}: {status.get('StateChangeReason', 'no reason given')}")
            if time.monotonic() > deadline:
                self.client.stop_query_execution(QueryExecutionId=query_id)
                raise SqlError(f"{name}: Athena query {query_id} still {state} after "
                               f"{self.settings.athena_query_timeout_seconds:.0f} s; it was cancelled")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _results(self, query_id: str) -> QueryResult:
        columns: tuple[str, ...] = ()
        converters: list = []
        rows: list[tuple[Any, ...]] = []
        for page in self.client.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
            result_set = page["ResultSet"]
            if not columns:
                info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = tuple(column["Name"] for column in info)
                converters = [_ATHENA_TYPES.get(column.get("Type", "varchar").lower(), str) for column in info]
            for row in result_set.get("Rows", []):
                cells = [cell.get("VarCharValue") for cell in row["Data"]]
                if not rows and tuple(cells) == columns:
                    continue  # the first row of a SELECT's results repeats the column names
                rows.append(tuple(None if cell is None else convert(cell) for convert, cell in zip(converters, cells)))
        return QueryResult(columns, rows)


def engine_for(name: str, lake_root: str, settings: Settings) -> Engine:
    if name == "local":
        return LocalEngine(lake_root, settings)
    if name == "athena":
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

