"""What Spark's tasks do with a Delta table's Parquet files, with pyarrow: write a DataFrame's partitions as files in
the table's folders (`write_files`, returning what the commit needs), and read files of a snapshot back as a
DataFrame (`read_files`). The driver's side, the commits and the snapshots, is `spark_jobs.common.delta`.

Spark's own writer and reader are not used for the tables. The writer's commit protocol renames every file it writes
(on S3 a copy and a delete), and Delta's Spark writer needs jars that PyPI does not carry. The reader, through
Hadoop's S3A, asks for a file's status when a DataFrame is made of it and again each time a task opens it; here
each file is opened with the size the Delta log holds, so reading it costs its GETs alone.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from spark_jobs.common.delta import DataFile, SnapshotFile, Storage, partition_dir

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

WRITTEN_SCHEMA = "path string, size long, partition_values string, records long, stats string"
ZSTD = "zstd"
READ_TASK_BYTES = 32 * 1024 * 1024  # as spark.sql.files.maxPartitionBytes (spark_jobs.common.session)


def statistics(table: pa.Table) -> str:
    """Delta's per-file statistics of the rows written, computed from the rows themselves (no footer read)."""
    minimum, maximum, nulls = {}, {}, {}
    for name in table.column_names:
        column = table[name]
        nulls[name] = column.null_count
        if column.null_count < len(column) and not pa.types.is_nested(column.type):
            extremes = pc.min_max(column)
            minimum[name], maximum[name] = _json_value(extremes["min"]), _json_value(extremes["max"])
    return json.dumps({"numRecords": table.num_rows, "minValues": minimum, "maxValues": maximum, "nullCount": nulls})


def _json_value(scalar: pa.Scalar):
    value = scalar.as_py()
    if pa.types.is_timestamp(scalar.type):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"  # Delta's statistics format for timestamps
    return value.isoformat() if hasattr(value, "isoformat") else value


def write_files(df: DataFrame, table_uri: str, partition_columns: Sequence[str], prefix: str, storage: Storage,
                sort_by: Sequence[str] = (), row_group_rows: int | None = None) -> list[DataFile]:
    """Writes df into the table as one file per partition value and Spark partition (repartition df by the partition
    columns first for one file per partition value), each sorted by sort_by, and returns the files written."""
    columns = list(partition_columns)

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        filesystem, root = storage.filesystem(table_uri)
        groups: dict[tuple, list[pa.Table]] = {}
        for batch in batches:
            rows = pa.Table.from_batches([batch])
            keys = rows.select(columns).group_by(columns).aggregate([]) if columns else pa.table({})
            for key in keys.to_pylist() if columns else [{}]:
                mask = _matching(rows, key)
                groups.setdefault(tuple(key.values()), []).append(rows.filter(mask) if columns else rows)
        for values, parts in groups.items():
            rows = pa.concat_tables(parts)
            rows = rows.sort_by([(name, "ascending") for name in sort_by]) if sort_by else rows
            partition_values = {name: None if value is None else str(value) for name, value in zip(columns, values)}
            file = write_file(filesystem, root, partition_values, rows.drop_columns(columns), prefix, row_group_rows)
            yield pa.RecordBatch.from_pylist([{"path": file.path, "size": file.size,
                                               "partition_values": json.dumps(partition_values),
                                               "records": file.records, "stats": file.stats}])

    written = df.mapInArrow(write, WRITTEN_SCHEMA).collect()
    return [DataFile(row["path"], row["size"], json.loads(row["partition_values"]), row["records"], row["stats"])
            for row in written]


def write_file(filesystem: pafs.FileSystem, root: str, partition_values: dict[str, str | None], rows: pa.Table,
               prefix: str, row_group_rows: int | None = None) -> DataFile:
    """Writes rows (without their partition columns) as one new file of the table at root, in the folder of its
    partition values; returns what the commit needs."""
    directory = "/".join(partition_dir(name, value) for name, value in partition_values.items())
    relative = "/".join(part for part in (directory, f"{prefix}-{uuid.uuid4().hex}.parquet") if part)
    if isinstance(filesystem, pafs.LocalFileSystem):  # S3 has no directories: no marker objects there
        filesystem.create_dir(f"{root}/{directory}" if directory else root, recursive=True)
    with filesystem.open_output_stream(f"{root}/{relative}") as sink:
        pq.write_table(rows, sink, compression=ZSTD, row_group_size=row_group_rows)
        size = sink.tell()  # what was written: no request to ask the store
    return DataFile(relative, size, partition_values, rows.num_rows, statistics(rows))


def read_files(spark: SparkSession, table_uri: str, files: Sequence[SnapshotFile | DataFile], schema,
               storage: Storage, between: tuple[str, int, int] | None = None) -> DataFrame:
    """The rows of these files of a table (its snapshot's, or files a step just wrote) as a DataFrame of the Spark
    schema `schema`: file columns, and partition columns from the log's values. Each Spark task reads its files with
    pyarrow, told the size the log holds, so a file costs its GETs alone: Spark's own reader asks S3A for a file's
    status when a DataFrame is made of it and again each time a task opens it. between=(column, low, high): only the
    rows whose column lies in [low, high] (a timestamp's as microseconds since the epoch), reading only the row groups
    whose statistics overlap."""
    from pyspark.sql.pandas.types import to_arrow_schema

    arrow = to_arrow_schema(schema)
    listed = [(file.path, file.size, json.dumps(file.partition_values)) for file in files]

    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        filesystem, root = storage.filesystem(table_uri)
        for batch in batches:
            for path, size, values in zip(*batch.to_pydict().values()):
                partition = json.loads(values)
                rows = read_file(filesystem, root, path, size, [name for name in arrow.names if name not in partition],
                                 between)
                for name, value in partition.items():
                    if name in arrow.names:
                        rows = rows.append_column(name, pa.array([value] * rows.num_rows, pa.string()))
                yield from rows.select(arrow.names).cast(arrow).to_batches()

    # A task per READ_TASK_BYTES of files, at least one per core and at most four: the few small files of a small
    # upload are not spread over more tasks (each with its scheduling and Python worker) than their bytes need.
    cores = spark.sparkContext.defaultParallelism
    by_size = -(-sum(size for _, size, _ in listed) // READ_TASK_BYTES)
    slices = max(1, min(len(listed), cores * 4, max(cores, by_size)))
    return (spark.sparkContext.parallelize(listed, slices).toDF("path string, size long, partition_values string")
            .mapInArrow(read, schema))


def read_file(filesystem: pafs.FileSystem, root: str, path: str, size: int, columns: Sequence[str] | None = None,
              between: tuple[str, int, int] | None = None) -> pa.Table:
    """The rows of one file of the table at root (its own columns: partition values are the log's), opened with the
    size the log holds so that reading it costs its GETs alone; between as read_files'."""
    fragment = ds.ParquetFileFormat().make_fragment(f"{root.rstrip('/')}/{path}", filesystem, file_size=size)
    return fragment.to_table(columns=None if columns is None else list(columns), filter=_within(fragment, between))


def _within(fragment, between: tuple[str, int, int] | None):
    """The filter expression of `between` in the fragment's own types (None: no filter)."""
    if between is None:
        return None
    name, low, high = between
    kind = fragment.physical_schema.field(name).type
    return (ds.field(name) >= pa.scalar(low).cast(kind)) & (ds.field(name) <= pa.scalar(high).cast(kind))


def _matching(rows: pa.Table, key: dict) -> pa.ChunkedArray:
    mask = None
    for name, value in key.items():
        equal = pc.is_null(rows[name]) if value is None else pc.equal(rows[name], value)
        mask = equal if mask is None else pc.and_(mask, equal)
    return mask
