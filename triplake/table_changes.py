"""What an erasure does to one Delta table: the files it replaces and the files they become, written before any
commit (triplake.forget commits them all, then deletes what they replaced)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from spark_jobs.common import delta, table_files


@dataclass
class TableChange:
    """What the erasure does to one table: rows out, files replaced and the files they become."""

    table: str
    prefix: str  # of the names of the files it writes: the erasure's id
    counting: bool = False  # a dry run's: the files that would be replaced are counted, nothing is written
    rows_erased: int = 0
    removed: list[str] = field(default_factory=list)  # paths of the files replaced, relative to the table
    added: list[delta.DataFile] = field(default_factory=list)


def rows_of(table_uri: str, storage: delta.Storage, file: delta.SnapshotFile) -> pa.Table:
    filesystem, root = storage.filesystem(table_uri)
    return table_files.read_file(filesystem, root, file.path, file.size)


def replace(table_uri: str, storage: delta.Storage, file: delta.SnapshotFile, kept: pa.Table,
            change: TableChange) -> None:
    """The file goes from the table; the rows kept, if any, become a new file in its partition."""
    change.removed.append(file.path)
    if kept.num_rows and not change.counting:
        filesystem, root = storage.filesystem(table_uri)
        change.added.append(table_files.write_file(filesystem, root, file.partition_values, kept, change.prefix))
