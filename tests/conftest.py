"""Shared fixtures: one moto server and one SparkSession for the whole test run (a JVM start costs ~7 s).

`--aws localstack` (make test-localstack) puts S3, SQS, SNS and STS of the tests' settings on a LocalStack beside
the moto server, and selects the tests marked localstack, which need what only LocalStack does (signed SNS
deliveries, subscription confirmations); a moto run deselects them.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from triplake.local import localstack
from triplake.local.moto_server import running_moto_server
from triplake.settings import Settings, endpoint_field

# py4j logs at INFO when the JVM connection is closed at interpreter exit, after pytest closed its streams.
logging.getLogger("py4j").setLevel(logging.WARNING)

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE = FIXTURES / "trips_sample.csv"
BAD_ROWS = FIXTURES / "trips_bad_rows.csv"
MOTO_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def pytest_addoption(parser):
    parser.addoption("--aws", choices=("moto", "localstack"), default="moto",
                     help="the tests' local AWS: moto alone, or LocalStack for S3, SQS, SNS and STS beside moto")


def pytest_collection_modifyitems(config, items):
    if config.getoption("aws") == "localstack":
        return
    needs_localstack = [item for item in items if item.get_closest_marker("localstack")]
    if needs_localstack:
        config.hook.pytest_deselected(items=needs_localstack)
        items[:] = [item for item in items if not item.get_closest_marker("localstack")]


@pytest.fixture(scope="session")
def local_aws(request) -> str:
    return request.config.getoption("aws")


@pytest.fixture(scope="session")
def localstack_endpoint(local_aws, tmp_path_factory) -> str | None:
    if local_aws != "localstack":
        yield None
        return
    with localstack.running_localstack(tmp_path_factory.mktemp("localstack")) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def moto_endpoint() -> str:
    with running_moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def test_settings(moto_endpoint: str, localstack_endpoint: str | None) -> Settings:
    own_endpoints = {endpoint_field(service): localstack_endpoint for service in localstack.SERVICES
                     if localstack_endpoint}
    return Settings(
        aws_endpoint_url=moto_endpoint,
        **own_endpoints,
        aws_region="us-east-1",
        spark_master="local[2]",
        spark_driver_memory="2g",
        spark_shuffle_partitions=4,
        **MOTO_CREDENTIALS,
    )


@pytest.fixture
def moto_cli_settings(moto_endpoint, test_settings, monkeypatch):
    """Points the CLI's get_settings() at the moto server; call it with any extra TRIPLAKE_* variables."""
    from triplake.settings import get_settings

    def point_at_moto(**extra: str):
        for name, value in {"TRIPLAKE_AWS_ENDPOINT_URL": moto_endpoint, "TRIPLAKE_AWS_REGION": test_settings.aws_region,
                            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", **extra}.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        return get_settings()

    yield point_at_moto
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def spark(test_settings: Settings):
    from triplake.spark import build_local_session

    session = build_local_session(test_settings, app_name="triplake-tests")
    yield session
    session.stop()


@pytest.fixture
def lake_root(tmp_path: Path) -> str:
    return (tmp_path / "lake").as_uri()


def read_table(lake_uri: str, relative: str, partitioned: bool = False) -> pa.Table:
    """A lake table read back with pyarrow, independent of the Spark code that wrote it: a Delta table's current
    snapshot (delta-rs), or every Parquet file under the folder of a table that is not one."""
    from deltalake import DeltaTable

    path = Path(lake_uri.removeprefix("file://")) / relative
    if not path.exists():
        return pa.table({})
    if DeltaTable.is_deltatable(str(path)):
        return DeltaTable(str(path)).to_pyarrow_table()
    partitioning = (
        ds.partitioning(pa.schema([("region", pa.string()), ("week_start", pa.string())]), flavor="hive")
        if partitioned
        else None
    )
    dataset = ds.dataset(path, format="parquet", partitioning=partitioning)
    return dataset.to_table()


def lake_rows(lake_root: str, query: str, settings: Settings | None = None) -> list[dict]:
    """A query's rows as a reader sees them: through the views of sql/views on DuckDB (committed ingestions only)."""
    from triplake.query.local import LocalEngine
    from triplake.query.statement import Statement

    return LocalEngine(lake_root, settings or Settings()).run(Statement(query), {}).records()


@pytest.fixture(scope="session")
def sample_lake(spark, tmp_path_factory) -> str:
    """A lake holding the 100-row sample after the whole batch pipeline (trips, routes, weekly tables)."""
    from triplake.pipeline import run_pipeline

    root = (tmp_path_factory.mktemp("sample") / "lake").as_uri()
    assert run_pipeline(spark, [SAMPLE.as_uri()], root).succeeded
    return root


def s3_notification(key: str, bucket: str = "triplake-landing", event_time: str = "2026-12-04T15:07:32.607Z") -> str:
    """An S3 notification as moto sends it, for an upload that was not made (a file answered at once, or never read)."""
    return json.dumps({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                    "eventTime": event_time, "s3": {
                                        "bucket": {"name": bucket},
                                        "object": {"key": key, "size": 9, "eTag": uuid.uuid4().hex}}}]})
