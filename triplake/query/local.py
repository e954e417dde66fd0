"""The local engine: DuckDB over the lake's Parquet files (file://, or s3:// through pyarrow's S3 filesystem,
since DuckDB cannot install httpfs offline), the tables of sql/ddl as views under their catalog names and
sql/views on top; statements transpiled by sqlglot and kept on disk in their DuckDB form (SqlCache)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from spark_jobs.common import records
from triplake import lake_snapshot
from triplake.lake_files import delta_storage
from triplake.settings import Settings
from triplake.uris import local_path
from triplake.query.catalog import TableDefinition
from triplake.query.result import QueryResult
from triplake.query.statement import IDENTIFIER, SqlError, Statement, check_parameters, ordered_views, statements

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

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
    is_delta: bool = False

    @classmethod
    def from_definition(cls, table: TableDefinition) -> DuckDbTable:
        def spelled(columns):
            return tuple((name, kind.sql("duckdb")) for name, kind in columns)

        return cls(table.name, spelled(table.columns), spelled(table.partition_columns), table.location, table.is_delta)

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
                        tuple(map(tuple, table["partition_columns"])), table["location"], table["is_delta"])
            for table in self._entry(("tables", "with is_delta", *(table.text for table in ddl)), compile_)
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
        self.storage = delta_storage(settings)
        try:
            records.check_layout(self.lake_root, self.storage)
        except records.OldLayoutError as problem:
            raise SqlError(str(problem)) from problem
        self.connection = duckdb.connect()
        if local is None:
            self.connection.register_filesystem(_lake_filesystem(self.lake_root, settings))
        tables = self.cache.tables()
        for table in tables:
            if not table.is_delta:
                raise SqlError(f"{table.name}: every table of the lake is a Delta table (TBLPROPERTIES table_type = DELTA)")
        try:  # every table as of one moment: an erasure whose record is not committed is not seen at all
            files = lake_snapshot.table_files(self.lake_root, self.storage, [table.location for table in tables])
        except lake_snapshot.LakeChangedError as problem:
            raise SqlError(str(problem)) from problem
        for table in tables:
            self._register_table(table, files[table.location])
        for view in self.cache.views():
            self.connection.execute(view.sql)

    def _register_table(self, table: DuckDbTable, files: list[str]) -> None:
        """The table as a view over its files (those of a Delta snapshot: a file no commit references is never read)."""
        import duckdb

        for name, _ in table.all_columns:
            if not IDENTIFIER.fullmatch(name):
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
        relation = None
        if files:
            try:
                # Columns and reader come from sql/ddl, never from a user; the files are a bound parameter.
                relation = self.connection.sql(f"select {columns} from {source}",  # noqa: S608
                                               params={"files": files})
            except duckdb.IOException as problem:
                if "No files found" not in str(problem):
                    raise
        if relation is None:  # a table nothing has been written to yet: empty, with its declared columns
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
