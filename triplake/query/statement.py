"""One SQL statement of sql/ in Athena's dialect: its named parameters, its DuckDB and Athena forms, and the
files of sql/ in the order they can be created."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from triplake.settings import REPO_ROOT

if TYPE_CHECKING:
    from sqlglot import exp

logger = logging.getLogger(__name__)

SQL_DIR = REPO_ROOT / "sql"
DIALECT = "athena"
LAKE_ROOT_TOKEN = "${lake_root}"  # noqa: S105 - a placeholder of sql/ddl, not a password
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


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
        """The statement with `?` placeholders, and the ExecutionParameters in the order they appear. A Delta
        table's CREATE goes as Athena allows it: name, LOCATION and table_type only (columns come from the log)."""
        self.check_parameters(values)
        from sqlglot import exp

        if self.is_ddl and _is_delta(self.expression):
            create = self.expression
            location = create.find(exp.LocationProperty).this.sql(DIALECT)
            return (f"CREATE EXTERNAL TABLE IF NOT EXISTS {create.this.this.sql(DIALECT)} LOCATION {location} "
                    "TBLPROPERTIES ('table_type' = 'DELTA')"), []

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


def _is_delta(create) -> bool:
    from triplake.query.catalog import table_type

    return table_type(create) == "DELTA"


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
