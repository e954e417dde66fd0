"""The sql/ files: each is one valid Athena statement, the DDL matches the Spark jobs' tables, and every
query and view runs on DuckDB (the local engine) against a lake the pipeline built."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from spark_jobs.common import records, tables
from triplake import forget
from triplake.settings import Settings
from triplake.query.catalog import table_definitions
from triplake.query.local import DuckDbStatement, LocalEngine, SqlCache
from triplake.query.statement import SQL_DIR, SqlError, Statement, ordered_views, statement, statements

ALL_FILES = sorted(SQL_DIR.glob("*/*.sql"))
ARROW_TO_ATHENA = {"string": "string", "double": "double", "int64": "bigint", "int32": "int", "date32[day]": "date",
                   "timestamp[us, tz=UTC]": "timestamp"}
# What readers query: the contract's tables (views over the files of committed ingestions) with their columns.
READER_TABLES = {
    "trips": ["trip_id", "region", "origin_lon", "origin_lat", "destination_lon", "destination_lat", "started_at",
              "datasource", "week_start", "ingestion_id"],
    "trip_routes": ["trip_id", "region", "route_id", "week_start", "model_version"],
    "routes": ["region", "route_id", "trips", "origin_lon", "origin_lat", "destination_lon", "destination_lat",
               "typical_hour", "k", "silhouette", "trained_at", "model_version"],
    "weekly_trips": ["region", "route_id", "week_start", "trips"],
    "ingestions": ["ingestion_id", "source_uri", "status", "rows_read", "rows_valid", "rows_rejected",
                   "duplicates_in_batch", "already_present", "rows_written", "started_at", "finished_at", "error"],
    "rejected_rows": ["ingestion_id", "line_number", "raw_line", "reason"],
    "erasures": ["erasure_id", "selection", "trips", "trip_routes", "weekly_partitions", "rejected_rows", "raw_lines",
                 "raw_files", "files_deleted", "erased_at", "erased_by"],
}
# A value for every parameter any query takes, valid for the sample.
SAMPLE_PARAMETERS = {
    "region": "Prague", "route_id": "Prague-01", "datasource": "cheap_mobile",
    "from_date": "2018-05-01", "to_date": "2018-05-31",
    "min_lon": "14.4", "min_lat": "50.0", "max_lon": "14.5", "max_lat": "50.1",
}


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_file_is_one_athena_statement_with_a_grain_header(path):
    text = path.read_text()
    assert text.startswith("-- grain: "), "each file starts by stating its grain"
    parsed = Statement.from_file(path).expression  # raises on invalid SQL or several statements
    assert parsed.sql("athena")


def test_the_ddl_declares_every_delta_table_with_the_columns_its_writers_commit(sample_lake):
    written = {table.location: (table.schema, list(table.partition_columns)) for table in tables.DELTA_TABLES}
    written[tables.INGESTIONS] = (records.ingestions_arrow_schema(), [])
    written[forget.ERASURES] = (forget.ERASURES_SCHEMA, [])
    delta_tables = {table.location: table for table in table_definitions() if table.is_delta}
    assert set(delta_tables) == set(written)
    for location, (schema, partition_columns) in written.items():
        table = delta_tables[location]
        declared = {column: kind.sql("hive").lower() for column, kind in table.all_columns}
        assert declared == {field.name: ARROW_TO_ATHENA[str(field.type)] for field in schema}, table.name
        assert [name for name, _ in table.partition_columns] == partition_columns, table.name
    assert written[tables.TRIPS][1] == ["region", "week_start"]
    # and what a run commits is that: the sample lake's logs
    for location in (tables.TRIPS, tables.TRIP_ROUTES, tables.WEEKLY_TRIPS, tables.ROUTE_MODELS, tables.INGESTIONS):
        log = DeltaTable(f"{sample_lake}/{location}")
        assert pa.schema(log.schema().to_arrow()).equals(written[location][0], check_metadata=False), location
        assert log.metadata().partition_columns == written[location][1]


def test_readers_find_the_contract_tables_with_their_columns(sample_lake):
    connection = LocalEngine(sample_lake, Settings()).connection
    for name, columns in READER_TABLES.items():
        assert connection.sql(f"select * from {name}").columns == columns, name


def test_views_are_created_after_the_views_they_read():
    order = [view.expression.this.name for view in ordered_views()]
    assert order.index("committed_ingestions") < order.index("trips") < order.index("trips_with_routes")
    assert order.index("route_model_versions") < order.index("weekly_trips") < order.index("routes")
    assert set(order) == {view.expression.this.name for view in statements("views")}


def test_a_lake_root_fills_in_the_ddl_location():
    ddl = statement("ddl/trips_files").with_lake_root("s3://lake-bucket/prefix/")
    assert "LOCATION 's3://lake-bucket/prefix/curated/trips/'" in ddl.expression.sql("athena")
    with pytest.raises(SqlError, match="quote"):
        statement("ddl/trips_files").with_lake_root("s3://x' --")


def test_named_parameters_become_duckdb_parameters_and_athena_positional_ones_in_text_order():
    query = Statement("select :b as b, :a as a from trips where region = :b -- not :c\nand x = ':d'")
    assert query.parameters == ("b", "a")
    assert "$b" in query.duckdb_sql() and "$a" in query.duckdb_sql()
    text, values = query.athena_query({"a": "1", "b": "it's"})
    assert ":" not in text.replace("':d'", "") and text.count("?") == 3
    assert values == ["'it''s'", "'1'", "'it''s'"]


def test_missing_or_unknown_parameters_are_named_in_the_error():
    with pytest.raises(SqlError, match=r"missing --param datasource=\.\.\..*takes: datasource"):
        statement("queries/regions_of_datasource").check_parameters({})
    with pytest.raises(SqlError, match="unknown parameter"):
        statement("queries/regions_of_datasource").check_parameters({"datasource": "x", "regoin": "y"})


@pytest.mark.parametrize("query", statements("queries"), ids=lambda query: query.name)
def test_every_query_runs_on_duckdb_against_the_sample_lake(sample_lake, query):
    engine = LocalEngine(sample_lake, Settings())
    result = engine.run(query, {name: SAMPLE_PARAMETERS[name] for name in query.parameters})
    assert result.columns and result.rows


def test_the_views_join_routes_to_trips_reconcile_the_ingestion_and_rank_the_regions(sample_lake):
    connection = LocalEngine(sample_lake, Settings()).connection
    [(trips, with_route)] = connection.execute("select count(*), count(route_id) from trips_with_routes").fetchall()
    assert trips == with_route == 100
    assert connection.execute("select rows_read, rows_written, reconciles from ingestion_reconciliation").fetchall() == [
        (100, 100, True)
    ]
    assert connection.execute("select region, trips, region_rank from region_ranking order by region_rank").fetchall() == [
        ("Turin", 38, 1), ("Prague", 34, 2), ("Hamburg", 28, 3)
    ]


def test_tables_nothing_was_written_to_are_empty_with_their_declared_columns(sample_lake):
    connection = LocalEngine(sample_lake, Settings()).connection
    assert connection.execute("select count(*) from rejected_rows").fetchall() == [(0,)]
    assert connection.sql("select * from rejected_rows").columns == [
        "ingestion_id", "line_number", "raw_line", "reason"
    ]


def test_ddl_does_not_run_locally_and_bad_sql_is_a_clear_error(sample_lake):
    engine = LocalEngine(sample_lake, Settings())
    with pytest.raises(SqlError, match="runs in Athena"):
        engine.run(statement("ddl/trips_files"), {})
    with pytest.raises(SqlError, match="nonsense"):
        engine.run(Statement("select nonsense from trips"), {})
    with pytest.raises(SqlError, match="exactly one"):
        Statement("select 1; select 2").expression


LAKE_WEEKS_IN_A_FRESH_PROCESS = """
import json, sys
from triplake.settings import Settings
from triplake.query.local import LocalEngine
from triplake.query.statement import statement
row = LocalEngine(sys.argv[1], Settings()).run(statement("queries/lake_weeks"), {}).single()
print(json.dumps([row["first_week"].isoformat(), "sqlglot" in sys.modules]))
"""


def test_a_query_whose_files_are_unchanged_runs_without_sqlglot(sample_lake, tmp_path):
    settings = Settings(sql_cache_dir=tmp_path / "cache")
    expected = LocalEngine(sample_lake, settings).run(statement("queries/lake_weeks"), {}).single()
    env = {**os.environ, "TRIPLAKE_SQL_CACHE_DIR": str(tmp_path / "cache")}
    output = subprocess.run([sys.executable, "-c", LAKE_WEEKS_IN_A_FRESH_PROCESS, sample_lake], env=env,
                            check=True, capture_output=True, text=True).stdout
    assert json.loads(output) == [expected["first_week"].isoformat(), False]


def test_the_cache_keys_on_the_text_and_makes_a_damaged_entry_again(tmp_path):
    cache = SqlCache(tmp_path)
    query = Statement("select :a as a from trips where region = :b")
    first = cache.statement(query)
    assert first == DuckDbStatement(query.duckdb_sql(), ("a", "b"), is_ddl=False)
    for entry in tmp_path.glob("*.json"):
        entry.write_text("{not json")
    assert cache.statement(query) == first
    assert cache.statement(Statement("select :c as c")).parameters == ("c",)
    assert len(list(tmp_path.glob("*.json"))) == 2
    assert [table.name for table in cache.tables()] == [table.name for table in table_definitions()]


def test_a_cache_that_cannot_be_written_only_costs_time(tmp_path):
    blocked = tmp_path / "a file"
    blocked.write_text("")  # where the cache directory's parent should be
    query = Statement("select 1 as one")
    assert SqlCache(blocked / "sql").statement(query).sql == query.duckdb_sql()


def test_a_delta_tables_create_goes_to_athena_with_its_location_and_table_type_only():
    statement = Statement.from_file(SQL_DIR / "ddl" / "ingestions.sql").with_lake_root("s3://bucket/lake")
    assert statement.athena_query({}) == (
        "CREATE EXTERNAL TABLE IF NOT EXISTS ingestions LOCATION 's3://bucket/lake/curated/ingestions/' "
        "TBLPROPERTIES ('table_type' = 'DELTA')", [])
