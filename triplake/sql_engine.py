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

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from triplake.settings import REPO_ROOT, Settings
from triplake.uris import local_path

if TYPE_CHECKING:
    from sqlglot import exp

logger = logging.getLogger(__name__)

SQL_DIR = REPO_ROOT / "sql"
DIALECT = "athena"
LAKE_ROOT_TOKEN = "${lake_root}"  # noqa: S105 - a placeholder of sql/ddl, not a password
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
        import sqlglot

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
        from sqlglot import exp

        return isinstance(self.expression, exp.Create) and self.expression.kind == "TABLE"

    @property
    def returns_rows(self) -> bool:
        """A query (SELECT, WITH, a set operation) answers with rows; CREATE, DROP and the like do not."""
        from sqlglot import exp

        return isinstance(self.expression, exp.Query)

    def check_parameters(self, values: Mapping[str, Any]) -> None:
        check_parameters(self.name, self.parameters, values)

    def duckdb_sql(self) -> str:
        """The statement in DuckDB's dialect; `:name` becomes `$name`."""
        return self.expression.sql("duckdb")

    def athena_query(self, values: Mapping[str, str]) -> tuple[str, list[str]]:
        """The statement with `?` placeholders, and the ExecutionParameters in the order they appear."""
        self.check_parameters(values)
        from sqlglot import exp

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


def check_parameters(name: str, parameters: tuple[str, ...], values: Mapping[str, Any]) -> None:
    """Every parameter of the statement has a value and no value names another: else a SqlError saying which."""
    missing = [parameter for parameter in parameters if parameter not in values]
    unknown = sorted(set(values) - set(parameters))
    if missing or unknown:
        problems = []
        if missing:
            problems.append("missing " + ", ".join(f"--param {parameter}=..." for parameter in missing))
        if unknown:
            problems.append("unknown parameter(s) " + ", ".join(unknown))
        expected = ", ".join(parameters) or "none"
        raise SqlError(f"{name}: {'; '.join(problems)} (this statement takes: {expected})")


def _placeholder_names(sql: str) -> list[str]:
    """Names of the `:name` placeholders of Athena SQL, in textual order (comments and strings skipped)."""
    import sqlglot
    from sqlglot.tokens import TokenType

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


def ordered_views(views: list[Statement] | None = None) -> list[Statement]:
    """The views of sql/views, each after the views it reads: DuckDB and Athena check a view's query when it is
    created, so this is the order to create them in."""
    from sqlglot import exp

    views = statements("views") if views is None else views
    by_name = {view.expression.this.name: view for view in views}
    needs = {
        name: {table.name for table in view.expression.expression.find_all(exp.Table)} & set(by_name) - {name}
        for name, view in by_name.items()
    }
    ordered: list[str] = []
    while len(ordered) < len(by_name):
        ready = sorted(name for name in by_name if name not in ordered and needs[name] <= set(ordered))
        if not ready:
            raise SqlError(f"the views {sorted(set(by_name) - set(ordered))} read each other in a cycle")
        ordered.extend(ready)
    return [by_name[name] for name in ordered]


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
        )

    @property
    def all_columns(self) -> tuple[tuple[str, exp.DataType], ...]:
        return self.columns + self.partition_columns


def _column_defs(schema: exp.Schema) -> tuple[tuple[str, exp.DataType], ...]:
    return tuple((column.name, column.args["kind"]) for column in schema.expressions)


def table_definitions() -> list[TableDefinition]:
    return [TableDefinition.from_statement(ddl) for ddl in statements("ddl")]


@dataclass(frozen=True)
class DuckDbStatement:
    """A statement as the local engine runs it: DuckDB SQL with `$name` parameters."""

    sql: str
    parameters: tuple[str, ...]
    is_ddl: bool


@dataclass(frozen=True)
class DuckDbTable:
    """A table of sql/ddl with its column types in DuckDB's spelling."""

    name: str
    columns: tuple[tuple[str, str], ...]
    partition_columns: tuple[tuple[str, str], ...]
    location: str

    @classmethod
    def from_definition(cls, table: TableDefinition) -> DuckDbTable:
        def spelled(columns):
            return tuple((name, kind.sql("duckdb")) for name, kind in columns)

        return cls(table.name, spelled(table.columns), spelled(table.partition_columns), table.location)

    @property
    def all_columns(self) -> tuple[tuple[str, str], ...]:
        return self.columns + self.partition_columns


class SqlCache:
    """DuckDB forms of statements, kept as JSON files named by the hash of what they were made from.

    A changed file or another sqlglot version is another key; an unreadable entry is made again; a cache
    directory that cannot be written only costs the time it would have saved.
    """

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def statement(self, statement: Statement) -> DuckDbStatement:
        def compile_() -> dict:
            return asdict(DuckDbStatement(statement.duckdb_sql(), statement.parameters, statement.is_ddl))

        data = self._entry(("statement", statement.text), compile_)
        return DuckDbStatement(data["sql"], tuple(data["parameters"]), data["is_ddl"])

    def views(self) -> list[DuckDbStatement]:
        """The views of sql/views in DuckDB's dialect, in the order they can be created."""
        views = statements("views")

        def compile_() -> list:
            return [asdict(DuckDbStatement(view.duckdb_sql(), view.parameters, False)) for view in ordered_views(views)]

        return [
            DuckDbStatement(view["sql"], tuple(view["parameters"]), view["is_ddl"])
            for view in self._entry(("views", *(view.text for view in views)), compile_)
        ]

    def tables(self) -> list[DuckDbTable]:
        ddl = statements("ddl")

        def compile_() -> list:
            return [asdict(DuckDbTable.from_definition(TableDefinition.from_statement(table))) for table in ddl]

        return [
            DuckDbTable(table["name"], tuple(map(tuple, table["columns"])),
                        tuple(map(tuple, table["partition_columns"])), table["location"])
            for table in self._entry(("tables", *(table.text for table in ddl)), compile_)
        ]

    def _entry(self, made_from: tuple[str, ...], compile_: Callable[[], Any]) -> Any:
        if self.directory is None:
            return compile_()
        key = hashlib.sha256(json.dumps([metadata.version("sqlglot"), *made_from]).encode()).hexdigest()
        path = self.directory / f"{key}.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass
        value = compile_()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            partial.write_text(json.dumps(value))
            partial.replace(path)  # atomic: a reader sees the whole entry or none
        except OSError as problem:
            logger.info("SQL cache not written (%s): the next query transpiles again", problem)
        return value


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
        self.cache = SqlCache(settings.sql_cache_dir)
        self.connection = duckdb.connect()
        if local is None:
            self.connection.register_filesystem(_lake_filesystem(self.lake_root, settings))
        for table in self.cache.tables():
            self._register_table(table)
        for view in self.cache.views():
            self.connection.execute(view.sql)

    def _files_glob(self, table: DuckDbTable) -> str:
        local = local_path(self.lake_root)
        root = str(local) if local is not None else self.lake_root
        return "/".join([root, table.location, *("*" for _ in table.partition_columns), "*.parquet"])

    def _register_table(self, table: DuckDbTable) -> None:
        import duckdb

        for name, _ in table.all_columns:
            if not _IDENTIFIER.fullmatch(name):
                raise SqlError(f"column name {name!r} of {table.name} is not a plain identifier")
        # Cast to the declared types, so both engines return the same: e.g. Spark writes timestamps as
        # UTC instants, which DuckDB reads as TIMESTAMPTZ and Athena as a plain timestamp.
        columns = ", ".join(f"cast({name} as {kind}) as {name}" for name, kind in table.all_columns)
        hive_types = ", ".join(f"'{name}': '{kind}'" for name, kind in table.partition_columns)
        source = (
            f"read_parquet($files, hive_partitioning = true, hive_types = {{{hive_types}}})"
            if table.partition_columns
            else "read_parquet($files)"
        )
        try:
            # Columns and reader come from sql/ddl, never from a user; the files are a bound parameter.
            relation = self.connection.sql(f"select {columns} from {source}",  # noqa: S608
                                           params={"files": self._files_glob(table)})
        except duckdb.IOException as problem:
            if "No files found" not in str(problem):
                raise
            # A table nothing has been written to yet: empty, with its declared columns.
            nulls = ", ".join(f"cast(null as {kind}) as {name}" for name, kind in table.all_columns)
            relation = self.connection.sql(f"select {nulls} where false")
        relation.create_view(table.name)

    def arrow(self, statement: Statement, values: Mapping[str, str]):
        """The statement's result as a pyarrow Table (for results too large for Python tuples)."""
        import duckdb

        compiled = self._compiled(statement, values)
        try:
            return self.connection.sql(compiled.sql, params={name: values[name] for name in compiled.parameters}).to_arrow_table()
        except duckdb.Error as problem:
            raise SqlError(f"{statement.name}: {problem}") from problem

    def _compiled(self, statement: Statement, values: Mapping[str, str]) -> DuckDbStatement:
        compiled = self.cache.statement(statement)
        if compiled.is_ddl:
            raise SqlError(
                f"{statement.name}: CREATE TABLE runs in Athena (--engine athena); "
                "locally the tables are read straight from the lake's files"
            )
        check_parameters(statement.name, compiled.parameters, values)
        return compiled

    def run(self, statement: Statement, values: Mapping[str, str]) -> QueryResult:
        import duckdb

        compiled = self._compiled(statement, values)
        try:
            cursor = self.connection.execute(compiled.sql, {name: values[name] for name in compiled.parameters})
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


_TERMINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")
# awswrangler can answer a query from an earlier execution of the same text; with bound parameters that is the
# previous parameters' rows (aws/aws-sdk-pandas#2956), so its cache stays off.
_NO_RESULT_CACHE = {"max_cache_seconds": 0}


class AthenaEngine:
    """The same statements through Athena with awswrangler: parameters bound as ExecutionParameters, results read
    and typed by `wr.athena`. The wait is ours: awswrangler waits without a deadline, and a query past
    TRIPLAKE_ATHENA_QUERY_TIMEOUT_SECONDS is cancelled."""

    def __init__(self, settings: Settings, session: Any | None = None) -> None:
        import awswrangler as wr

        from triplake.aws import session as aws_session

        self.settings = settings
        self.session = session or aws_session(settings)
        if settings.aws_endpoint_url:  # moto or LocalStack: awswrangler takes its endpoints from its config
            wr.config.athena_endpoint_url = wr.config.s3_endpoint_url = settings.aws_endpoint_url
        self.client = self.session.client("athena", endpoint_url=settings.aws_endpoint_url)

    def run(self, statement: Statement, values: Mapping[str, str]) -> QueryResult:
        import awswrangler as wr

        query, parameters = statement.athena_query(values)
        query_id = wr.athena.start_query_execution(
            sql=query, database=self.settings.glue_database, workgroup=self.settings.athena_workgroup,
            params=parameters or None, paramstyle="qmark", athena_cache_settings=_NO_RESULT_CACHE,
            boto3_session=self.session,
        )
        logger.info("athena query %s started (%s)", query_id, statement.name)
        self._wait(query_id, statement.name)
        if not statement.returns_rows:
            return QueryResult((), [])
        frame = wr.athena.get_query_results(query_execution_id=query_id, boto3_session=self.session,
                                            dtype_backend="pyarrow")
        table = pa_table(frame)
        return QueryResult(tuple(table.column_names), list(zip(*(column.to_pylist() for column in table.columns))))

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


def pa_table(frame: Any) -> Any:
    """A result DataFrame as an Arrow table (pyarrow-backed columns convert without copies)."""
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


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

