"""`triplake maintain` (and the DAG trips_maintain): keeps the lake's Delta tables fast whatever the number of uploads.

For each table, under the lake's writer lease (nothing else writes meanwhile):

    compact     small files of a partition become files of up to TRIPLAKE_COMPACT_TARGET_BYTES (one Delta commit per
                table: readers see the table before or after it, never between)
    vacuum      files replaced longer ago than TRIPLAKE_VACUUM_RETENTION_HOURS are deleted, and files no commit
                ever referenced (an interrupted writer's) once they are that old; a query that started before the
                replacement keeps its files for that long
    checkpoint  the log is summed up in a checkpoint, and log entries older than the log's retention are removed,
                so opening a table reads one checkpoint and a few entries, not one entry per upload ever made

Every step is a delta-rs operation: a maintenance killed at any point leaves each table at a version readers can
read, and the next run finishes the work. Maintenance never runs while an interrupted ingestion awaits its
rollback (it would compact that ingestion's uncommitted files into committed ones): the next ingestion's recovery
comes first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

from spark_jobs.common import delta, records, tables
from spark_jobs.common.locations import STAGING
from spark_jobs.common.publish import kill_at
from triplake.lake_files import delta_storage, filesystem
from triplake.lease import LakeLease
from triplake.settings import Settings

logger = logging.getLogger(__name__)


class MaintenanceRefused(RuntimeError):
    """The lake cannot be maintained now; the message says why and what to do."""


@dataclass
class TableMaintenance:
    table: str
    files_before: int
    files_after: int
    files_compacted: int  # files replaced by the compaction
    files_added: int  # the files they became
    files_vacuumed: int  # files deleted from storage
    version: int


def table_locations() -> list[str]:
    return [table.location for table in tables.DELTA_TABLES] + [records.INGESTIONS]


def maintain_table(table_uri: str, storage: delta.Storage, target_bytes: int, retention_hours: float,
                   fault_at: str | None = None) -> TableMaintenance | None:
    """Compacts, vacuums and checkpoints one Delta table; None for a table nothing was committed to yet. fault_at:
    a fault-injection test's point (maintain:compacted:<table>, maintain:vacuumed:<table>) to be killed at."""
    table = delta.open_table(table_uri, storage)
    if table is None:
        return None
    name = table_uri.rsplit("/", 2)[-1]
    before = len(table.file_uris())
    compacted = table.optimize.compact(target_size=target_bytes)
    kill_at(f"maintain:compacted:{name}", fault_at)
    vacuumed = table.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False, full=True)
    kill_at(f"maintain:vacuumed:{name}", fault_at)
    table.create_checkpoint()
    table.cleanup_metadata()
    table = delta.open_table(table_uri, storage)
    return TableMaintenance(name, before, len(table.file_uris()),
                            int(compacted.get("numFilesRemoved", 0)), int(compacted.get("numFilesAdded", 0)),
                            len(vacuumed), table.version())


def maintain(lake_root: str, settings: Settings, on_wait: Callable | None = None) -> list[TableMaintenance]:
    """Maintains every table of the lake under its writer lease; returns what was done to each."""
    storage = delta_storage(settings)
    records.check_layout(lake_root, storage)
    with quiet_lake(lake_root, settings, f"maintain-{uuid.uuid4().hex[:8]}", "maintain", on_wait):
        done = []
        for location in table_locations():
            result = maintain_table(f"{lake_root.rstrip('/')}/{location}", storage, settings.compact_target_bytes,
                                    settings.vacuum_retention_hours, settings.fault_at)
            if result is not None:
                logger.info("maintained %s", asdict(result))
                done.append(result)
        return done


@contextlib.contextmanager
def quiet_lake(lake_root: str, settings: Settings, writer: str, command: str,
               on_wait: Callable | None = None, finish_erasures: bool = True) -> Iterator[None]:
    """The lake's writer lease held for a `triplake <command>` that rewrites committed files (maintain, forget), which
    is refused while an interrupted ingestion awaits its rollback: its uncommitted files would be taken for the
    lake's. An erasure that was killed is finished first (unless finish_erasures is False: a dry run)."""
    lease = LakeLease.for_lake(lake_root, settings, writer, [], f"triplake {command} on {socket.gethostname()} "
                               f"(pid {os.getpid()})", pid=os.getpid())
    with lease.held(settings.lake_lease_wait_seconds, on_wait):
        pending = interrupted_ingestions(lake_root, settings)
        if pending:
            raise MaintenanceRefused(
                f"{len(pending)} interrupted ingestion(s) await their rollback ({', '.join(pending[:3])}): ingest a "
                f"file (`triplake run`, or an upload) so its recovery rolls them back, then {command} again")
        if finish_erasures:
            from triplake.forget import finish_killed_erasures  # forget uses this lease: imported when it runs

            finish_killed_erasures(lake_root, settings)
        yield


def interrupted_ingestions(lake_root: str, settings: Settings) -> list[str]:
    """The ingestions whose staging directory holds a file: each died (or is the running writer's, which the lease
    excludes). Files, not directories, are listed: on a versioned bucket a listing by directory can show the folder
    of objects deleted long ago (moto does)."""
    from pyarrow import fs as pafs

    fs, root = filesystem(lake_root, settings)
    staging = f"{root}/{STAGING}"
    return sorted({entry.path.removeprefix(f"{staging}/").split("/", 1)[0]
                   for entry in fs.get_file_info(pafs.FileSelector(staging, allow_not_found=True, recursive=True))
                   if entry.type == pafs.FileType.File and entry.path.startswith(f"{staging}/")
                   and "/" in entry.path.removeprefix(f"{staging}/")})
