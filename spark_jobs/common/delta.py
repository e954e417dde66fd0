"""The lake's tables as Delta tables (delta-rs): Spark's tasks write the Parquet files straight to their final places,
and the driver commits them with delta-rs, one Delta transaction per table, each file with its statistics.

The tasks' side, writing and reading the files with pyarrow, is `spark_jobs.common.table_files`: each task of
`write_files` writes the rows of each partition value it holds as one file, named by the caller's prefix (the
ingestion id) and a random part, and returns what the commit needs (`DataFile`: the path, the size, the partition
values and the statistics), so nothing is read back. Until `commit`, no reader of the table sees the files; a file no
commit references is never read (readers go through the table's snapshot) and is swept.

How the tasks and delta-rs reach the object store comes from Spark's own Hadoop settings (`Storage.from_spark`):
the S3 endpoint, region and keys S3A is configured with, or the default AWS credential chain (EMR, Glue).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Sequence
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:  # the orchestrator reads and appends to tables with no Spark at all
    import pyarrow as pa
    from pyarrow import fs as pafs
    from pyspark.sql import SparkSession

# pyarrow is imported where it is used: a query of a file:// lake (DuckDB, the file list from delta-rs) never needs
# it, and importing it (and numpy with it) is ~0.1 s of every `triplake sql`.


@dataclass(frozen=True)
class Storage:
    """How to reach the lake's object store: for s3:// lakes the endpoint, region and keys S3A uses (None: AWS and
    its default credential chain)."""

    endpoint: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None

    @classmethod
    def from_spark(cls, spark: SparkSession) -> Storage:
        conf = spark.sparkContext._jsc.hadoopConfiguration()  # noqa: SLF001 (the documented way into Hadoop)
        return cls(*(conf.get(f"fs.s3a.{name}") for name in ("endpoint", "endpoint.region", "access.key", "secret.key")))

    def delta_options(self) -> dict[str, str]:
        """delta-rs's storage_options."""
        options = {"AWS_REGION": self.region} if self.region else {}
        if self.endpoint:
            options |= {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ALLOW_HTTP": str(self.endpoint.startswith("http:")).lower()}
        if self.access_key and self.secret_key:
            options |= {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        return options

    def filesystem(self, uri: str) -> tuple[pafs.FileSystem, str]:
        """pyarrow's filesystem of a URI and the URI's path on it."""
        from pyarrow import fs as pafs

        if urlparse(uri).scheme in ("s3", "s3a"):
            options: dict = {"region": self.region} if self.region else {}
            if self.endpoint:
                endpoint = urlparse(self.endpoint)
                options |= {"endpoint_override": endpoint.netloc, "scheme": endpoint.scheme or "https"}
            if self.access_key and self.secret_key:
                options |= {"access_key": self.access_key, "secret_key": self.secret_key}
            # A delayed open makes a small file one PUT, not a multipart upload and a HEAD of its "parents" (measured
            # on moto: 1 request instead of 4); a failure shows when the file is closed.
            return pafs.S3FileSystem(allow_delayed_open=True, **options), self.path(uri)
        return pafs.LocalFileSystem(), self.path(uri)

    @staticmethod
    def path(uri: str) -> str:
        """A URI's path on its pyarrow filesystem: bucket/key for s3://, the local path for file://."""
        parsed = urlparse(uri)
        if parsed.scheme in ("s3", "s3a"):
            return f"{parsed.netloc}{parsed.path}"
        return parsed.path if parsed.scheme == "file" else uri


@dataclass(frozen=True)
class DataFile:
    """A Parquet file a task wrote into a table, and what its commit needs to say about it."""

    path: str  # relative to the table's root
    size: int
    partition_values: dict[str, str]
    records: int
    stats: str  # Delta's statistics JSON: numRecords, minValues, maxValues, nullCount

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> DataFile:
        return cls(**data)


def partition_dir(name: str, value: str | None) -> str:
    """A partition's directory name, as Hive and Spark spell it."""
    return f"{name}={_escaped(value)}"


def _escaped(value: str | None) -> str:
    """A partition value as Hive and Spark spell it in a directory name (%XX for what a path cannot hold)."""
    if value is None:
        return "__HIVE_DEFAULT_PARTITION__"
    return "".join(f"%{ord(char):02X}" if char in _UNSAFE or ord(char) < 32 else char for char in str(value))


_UNSAFE = set('"#%\'*/:=?\\\x7f{[]^')


def commit(table_uri: str, schema: pa.Schema, partition_columns: Sequence[str], files: Sequence[DataFile],
           storage: Storage, removed: Sequence[str] = ()) -> int:
    """Adds the files to the table (and removes the paths in removed) in one Delta transaction, creating the table on
    its first commit; returns the table's new version."""
    from deltalake import DeltaTable, Schema
    from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

    now = int(time.time() * 1000)
    adds = [AddAction(file.path, file.size, file.partition_values, now, True, file.stats) for file in files]
    options = storage.delta_options()
    table = open_table(table_uri, storage)
    if table is None:
        create_table_with_add_actions(table_uri, Schema.from_arrow(schema), adds, mode="append",
                                      partition_by=list(partition_columns) or None, storage_options=options)
    else:
        removes = [RemoveAction(path, data_change=True, deletion_timestamp=now) for path in removed]
        table.create_write_transaction([*adds, *removes], mode="append", schema=Schema.from_arrow(schema),
                                       partition_by=list(partition_columns) or None)
    return DeltaTable(table_uri, storage_options=options).version()


def remove(table_uri: str, paths: Sequence[str], storage: Storage) -> None:
    """Takes files out of the table's snapshot in one Delta transaction (they stay readable in older versions until
    a vacuum deletes them)."""
    from deltalake import DeltaTable
    from deltalake.transaction import RemoveAction

    table = DeltaTable(table_uri, storage_options=storage.delta_options())
    now = int(time.time() * 1000)
    table.create_write_transaction([RemoveAction(path, data_change=True, deletion_timestamp=now) for path in paths],
                                   mode="append", schema=table.schema(), partition_by=table.metadata().partition_columns)


@dataclass(frozen=True)
class TableSpec:
    """A Delta table of the lake: where it lives under the lake root, its columns and its partition columns."""

    location: str
    schema: pa.Schema
    partition_columns: tuple[str, ...] = ()

    def uri(self, lake_root: str) -> str:
        return f"{lake_root.rstrip('/')}/{self.location}"


@dataclass(frozen=True)
class SnapshotFile:
    """A file of a table's current snapshot."""

    uri: str
    path: str  # relative to the table's root, as written (not URL-encoded as the log keeps it)
    size: int
    partition_values: dict[str, str]
    min_values: dict[str, Any]  # the file's statistics, per column (absent: unknown)
    max_values: dict[str, Any]
    records: int | None = None  # its rows, when the log says

    def may_hold(self, column: str, value: Any) -> bool:
        """False when the file's statistics show it holds no row whose column equals value."""
        low, high = self.min_values.get(column), self.max_values.get(column)
        return low is None or high is None or low <= value <= high

    def may_overlap(self, column: str, low: Any, high: Any) -> bool:
        """False when the file's statistics show it holds no row whose column lies within [low, high]."""
        least, most = self.min_values.get(column), self.max_values.get(column)
        return least is None or most is None or (least <= high and low <= most)


def open_table(table_uri: str, storage: Storage, version: int | None = None):
    """The table at its current version (or at that version), or None when nothing was committed to it yet (one
    listing of its log)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(table_uri, version=version, storage_options=storage.delta_options())
    except TableNotFoundError:
        return None


def snapshot_files(table_uri: str, storage: Storage, partitions: Sequence[dict[str, str]] | None = None,
                   equal: tuple[str, Any] | None = None) -> list[SnapshotFile]:
    """The files of the table's current snapshot: of the given partitions only (None: all; a partition may name some
    of the partition columns, {"region": "Turin"}), and, with equal=(column,
    value), only those whose statistics say they may hold a row with that value. [] for a table nothing was
    committed to yet. Nothing but the log is read."""
    import pyarrow as pa

    table = open_table(table_uri, storage) if partitions != [] else None
    if table is None:
        return []
    files = []
    for action in _without_time_zones(pa.RecordBatchReader.from_stream(table.get_add_actions(flatten=True)).read_all()
                                      ).to_pylist():
        values = {name.removeprefix("partition."): None if value is None else str(value)
                  for name, value in action.items() if name.startswith("partition.")}
        if partitions is not None and not any(partition.items() <= values.items() for partition in partitions):
            continue
        path = unquote(action["path"])
        file = SnapshotFile(f"{table_uri.rstrip('/')}/{path}", path, action["size_bytes"], values,
                            *({name.removeprefix(kind): value for name, value in action.items()
                               if name.startswith(kind) and value is not None} for kind in ("min.", "max.")),
                            action.get("num_records"))
        if equal is None or file.may_hold(*equal):
            files.append(file)
    return files


def _without_time_zones(actions: pa.Table) -> pa.Table:
    """Timestamp statistics as UTC without a zone: a zoned timestamp's as_py() imports pandas, 0.2 s of every
    `triplake sql` (as pa.table() would, to ask whether it was given a DataFrame: the stream is read instead). A
    view of the same values, not a cast, which would import pyarrow.compute."""
    import pyarrow as pa

    for index, field in enumerate(actions.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            plain = pa.timestamp(field.type.unit)
            column = pa.chunked_array([chunk.view(plain) for chunk in actions.column(index).chunks], plain)
            actions = actions.set_column(index, field.name, column)
    return actions


def file_uris(table_uri: str, storage: Storage) -> list[str]:
    """The URIs of the files of the table's current snapshot, spelled as table_uri is (as snapshot_files gives them);
    [] for a table nothing was committed to yet. The log's paths alone: no statistics parsed, no pyarrow imported."""
    return versioned_file_uris(table_uri, storage)[1]


def versioned_file_uris(table_uri: str, storage: Storage, version: int | None = None) -> tuple[int, list[str]]:
    """The table's version and the URIs of its files at that version (file_uris), its current one by default;
    (-1, []) for a table nothing was committed to yet."""
    table = open_table(table_uri, storage, version)
    if table is None:
        return -1, []
    # delta-rs puts the table's root as its URL spells it (a local one as a bare path, percent-encoded) before each
    # file's path in the table (decoded): "/tmp/a%20b/trips/region=Turin/...". Only the file's part is kept.
    root = table.table_uri.rstrip("/")
    if urlparse(root).scheme == "file":
        root = urlparse(root).path
    return table.version(), [f"{table_uri.rstrip('/')}/{uri.removeprefix(root).lstrip('/')}" for uri in table.file_uris()]


def arrow_schema(spark_schema, date_columns: Sequence[str] = ()) -> pa.Schema:
    """A Spark schema as Delta's columns; date_columns (Spark writes week_start as a yyyy-MM-dd partition directory)
    become dates."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = to_arrow_schema(spark_schema)
    for name in date_columns:
        index = schema.get_field_index(name)
        schema = schema.set(index, pa.field(name, pa.date32(), schema.field(index).nullable))
    return schema


def append(table_uri: str, rows: pa.Table, storage: Storage, partition_by: Sequence[str] = ()) -> int:
    """Appends rows as one new file in one Delta transaction (creating the table with their schema on its first
    commit); returns the table's new version. For small tables written from one process (ingestion records): a
    blind append, so concurrent appenders never conflict (delta-rs retries the log entry's conditional write)."""
    from deltalake import DeltaTable, write_deltalake

    write_deltalake(table_uri, rows, mode="append", partition_by=list(partition_by) or None,
                    storage_options=storage.delta_options())
    return DeltaTable(table_uri, storage_options=storage.delta_options()).version()


def rows(table_uri: str, storage: Storage, columns: Sequence[str] | None = None) -> list[dict]:
    """Every row of the table's current snapshot (a small table's: the erasure records); [] for a table nothing was
    committed to yet."""
    table = open_table(table_uri, storage)
    return [] if table is None else table.to_pyarrow_dataset().to_table(columns=columns).to_pylist()


def rows_where(table_uri: str, storage: Storage, column: str, value: Any) -> list[dict]:
    """The rows of the table's current snapshot whose column equals value, reading only the files whose statistics
    say they may hold it; [] for a table nothing was committed to yet."""

    table = open_table(table_uri, storage)
    if table is None:
        return []
    import pyarrow.dataset as ds  # here: the query commands import this module, and it costs them 0.2 s

    dataset = table.to_pyarrow_dataset(file_pruning_predicate=[(column, "=", value)])
    return dataset.to_table(filter=ds.field(column) == value).to_pylist()
