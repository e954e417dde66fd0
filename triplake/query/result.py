"""What an engine answers, and what every engine is."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol

from triplake.query.statement import SqlError, Statement

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

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
