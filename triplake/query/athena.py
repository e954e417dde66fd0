"""The Athena engine: the same statements through awswrangler, parameters bound as ExecutionParameters."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Mapping

from triplake.settings import Settings
from triplake.query.result import QueryResult
from triplake.query.statement import SqlError, Statement

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

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
        if settings.emulated:  # moto or LocalStack: awswrangler takes its endpoints from its config
            wr.config.athena_endpoint_url = settings.endpoint_url("athena")
            wr.config.s3_endpoint_url = settings.endpoint_url("s3")
        self.client = self.session.client("athena", endpoint_url=settings.endpoint_url("athena"))

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
