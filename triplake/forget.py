"""`triplake forget`: erases a selection of trips (triplake.erasure) from the lake for good.

Under the lake's writer lease (no ingestion or maintenance runs meanwhile), every replacement file is written and
every raw copy read (which lines go) first; then, in this order:

    plan           _erasures/<erasure id>.json: what goes and each table's version before (a killed run is finished
                   from it by the next writer; readers read those versions until the record is committed)
    trips          the selected rows go: each file holding one is replaced by a file without it
    trip_routes    the erased trips' rows go
    weekly_trips   the touched (region, week) partitions are counted again from what trip_routes keeps, as the
                   weekly step counts them (per route, model version and ingestion)
    route_models   the touched regions' models estimated again from the trips they keep (triplake.erasure_routes)
    rejected_rows  the rejected lines the selection takes, or that are an erased trip's, go
    record         one row in `erasures`: the selection, when, who and how many rows of each table went (never the
                   erased values); the erasure's commit point for readers (triplake.lake_snapshot)
    raw copies     those holding a taken line are rewritten without the lines of erased trips and those the selection
                   takes; the touched models' files under models/routes/ are rewritten
    for good       every table keeps its current version alone: the files it does not reference are deleted at
                   once (a vacuum with no retention), its log is checkpointed and its older entries deleted (their
                   statistics could hold an erased value); then the plan, and on s3:// the old object versions

Each table's change is one Delta transaction. --dry-run reads and counts, and changes nothing.
"""

from __future__ import annotations

import getpass
import json
import logging
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import fs as pafs

from spark_jobs.common import delta, records, table_files, tables
from spark_jobs.common.locations import RAW
from triplake.erasure import Selection
from triplake.erasure_routes import reestimated_models, route_models_change, write_models
from triplake.lake_files import delete_old_versions, delta_storage
from triplake.lake_snapshot import ERASURES, PLANS, plan_bodies
from spark_jobs.common.publish import kill_at
from triplake.maintain import quiet_lake
from triplake.raw_copies import RawCopies
from triplake.table_changes import TableChange, replace, rows_of
from triplake.settings import Settings

logger = logging.getLogger(__name__)

DELTA_LOG = "_delta_log"
# Where an erasure deletes files, so where a versioned bucket keeps their old versions until it deletes those too.
ERASED_PLACES = [*(spec.location for spec in tables.DELTA_TABLES), tables.MODELS, RAW, PLANS]


@dataclass
class Erasure:
    erasure_id: str
    selection: dict
    dry_run: bool
    trips: int = 0
    trip_routes: int = 0
    weekly_partitions: int = 0
    rejected_rows: int = 0
    raw_lines: int = 0
    raw_files: int = 0
    files_deleted: int = 0
    object_versions_deleted: int = 0
    erased_by: str = field(default_factory=getpass.getuser)  # who asked: the user, or the Airflow run and its user

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Plan:
    """What an erasure takes, written before its first commit and deleted after its record: a forget killed on the
    way is finished by the next one, from these ids and paths (its first commit already took the trips the
    selection matched, so the selection alone would no longer find their routes or files)."""

    erasure_id: str
    selection: Selection
    erased_ids: set[str]
    touched: set[tuple[str, str]]  # (region, week_start)
    removed: dict[str, list[str]]  # table location -> paths of the files that go
    rows: dict[str, int]  # rows erased per table, as planned: what the record says however many runs it took
    versions_before: dict[str, int]  # table location -> its version before the first commit: what readers read
    # until the record is committed (triplake.lake_snapshot)

    def to_json(self) -> bytes:
        return json.dumps({"erasure_id": self.erasure_id, "selection": self.selection.to_json(),
                           "erased_ids": sorted(self.erased_ids), "touched": sorted(self.touched),
                           "removed": self.removed, "rows": self.rows, "versions_before": self.versions_before}).encode()

    @classmethod
    def from_json(cls, body: bytes) -> Plan:
        data = json.loads(body)
        return cls(data["erasure_id"], Selection.from_json(data["selection"]), set(data["erased_ids"]),
                   {tuple(item) for item in data["touched"]}, data["removed"], data["rows"], data["versions_before"])


def forget(lake_root: str, settings: Settings, selection: Selection, dry_run: bool = False,
           on_wait: Callable | None = None, erased_by: str | None = None) -> Erasure:
    """Erases the selection from every table and raw copy of the lake, then deletes what held it; returns the counts.
    A forget that was killed on the way is finished first. dry_run: only count."""
    lake_root = lake_root.rstrip("/")
    storage = delta_storage(settings)
    records.check_layout(lake_root, storage)
    erasure = Erasure(f"erasure-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
                      selection.describe(), dry_run, **({"erased_by": erased_by} if erased_by else {}))
    with quiet_lake(lake_root, settings, erasure.erasure_id, "forget", on_wait, finish_erasures=not dry_run):
        _erase(lake_root, settings, storage, erasure, selection)
    return erasure


def finish_killed_erasures(lake_root: str, settings: Settings) -> list[str]:
    """Finishes, from its plan, every erasure that was stopped before it finished; returns their ids. Every writer
    calls it once it holds the lake's lease and before it writes (forget, maintain, `triplake run`, a DAG batch), so
    a lake a kill left half erased is erased before anything else happens to it. Without a plan: one listing."""
    lake_root = lake_root.rstrip("/")
    storage = delta_storage(settings)
    finished = []
    for plan in map(Plan.from_json, plan_bodies(lake_root, storage)):
        logger.warning("finishing %s, which was stopped before it finished", plan.erasure_id)
        _erase(lake_root, settings, storage, Erasure(plan.erasure_id, plan.selection.describe(), False),
               plan.selection, plan)
        finished.append(plan.erasure_id)
    return finished


def _erase(lake_root: str, settings: Settings, storage: delta.Storage, erasure: Erasure, selection: Selection,
           resumed: Plan | None = None) -> None:
    trips, erased_ids, touched = _trips_change(lake_root, storage, selection, erasure)
    if resumed is not None:
        erased_ids, touched = erased_ids | resumed.erased_ids, touched | resumed.touched
    routes, kept_routes = _trip_routes_change(lake_root, storage, erased_ids, touched, erasure)
    weekly = _weekly_change(lake_root, storage, kept_routes, touched, erasure)
    models = reestimated_models(lake_root, storage, {region for region, _ in touched}, erased_ids)
    route_models = _change_of(tables.ROUTE_MODELS, erasure)
    if models:
        route_models_change(lake_root, storage, models, route_models)
    raw = RawCopies(lake_root, storage, selection, erased_ids)
    rejected = _rejected_change(lake_root, storage, raw, erasure)
    changes = [trips, routes, weekly, route_models, rejected]
    rows = {"trips": trips.rows_erased, "trip_routes": routes.rows_erased, "rejected_rows": rejected.rows_erased,
            "weekly_partitions": len(touched) if weekly.removed or weekly.added else 0}
    for name, count in (resumed.rows if resumed else rows).items():
        setattr(erasure, name, count)
    erasure.raw_files, erasure.raw_lines = raw.count()  # every copy read once; those holding a taken line noted
    if erasure.dry_run:
        return
    removed = {change.table: sorted({*change.removed, *(resumed.removed.get(change.table, []) if resumed else [])})
               for change in changes}
    erasure.files_deleted = sum(len(paths) for paths in removed.values())
    plan = Plan(erasure.erasure_id, selection, erased_ids, touched, removed, resumed.rows if resumed else rows,
                resumed.versions_before if resumed else _versions(lake_root, storage, [*removed, ERASURES]))
    _write(lake_root, storage, f"{PLANS}/{_plan_file(plan.erasure_id)}", plan.to_json())
    kill_at("forget:planned", settings.fault_at)
    for change in changes:
        if change.removed or change.added:
            spec = _spec(change.table)
            delta.commit(spec.uri(lake_root), spec.schema, spec.partition_columns, change.added, storage,
                         removed=change.removed)
            kill_at(f"forget:committed:{change.table.rsplit('/', 1)[-1]}", settings.fault_at)
    # The commit point for readers (triplake.lake_snapshot): before the record they read the tables as they were.
    if resumed is None or not delta.rows_where(f"{lake_root}/{ERASURES}", storage, "erasure_id", erasure.erasure_id):
        _record(lake_root, storage, erasure)
    kill_at("forget:recorded", settings.fault_at)
    raw.rewrite()
    write_models(lake_root, storage, models)
    for spec in tables.DELTA_TABLES:  # every table: a file an earlier version had may hold an erased trip too
        _keep_the_current_version_alone(spec.uri(lake_root), storage)
    kill_at("forget:deleted", settings.fault_at)
    _delete(lake_root, storage, PLANS, [_plan_file(plan.erasure_id)])
    erasure.object_versions_deleted = delete_old_versions(lake_root, settings, ERASED_PLACES)


def _versions(lake_root: str, storage: delta.Storage, locations: list[str]) -> dict[str, int]:
    """Each table's current version (-1: nothing committed yet)."""
    return {location: table.version() if (table := delta.open_table(f"{lake_root}/{location}", storage)) else -1
            for location in locations}


def _plan_file(erasure_id: str) -> str:
    return f"{erasure_id}.json"


def _write(lake_root: str, storage: delta.Storage, relative: str, body: bytes) -> None:
    filesystem, root = storage.filesystem(lake_root)
    if isinstance(filesystem, pafs.LocalFileSystem):
        filesystem.create_dir(f"{root}/{relative.rsplit('/', 1)[0]}", recursive=True)
    with filesystem.open_output_stream(f"{root}/{relative}") as sink:
        sink.write(body)


def _spec(location: str) -> delta.TableSpec:
    return next(table for table in tables.DELTA_TABLES if table.location == location)


def _change_of(table: str, erasure: Erasure) -> TableChange:
    return TableChange(table, prefix=erasure.erasure_id, counting=erasure.dry_run)


def _trips_change(lake_root: str, storage: delta.Storage, selection: Selection,
                  erasure: Erasure) -> tuple[TableChange, set[str], set[tuple[str, str]]]:
    """The trips the selection takes: the table's change, their ids and the (region, week_start) they were in."""
    table_uri = tables.TRIPS_TABLE.uri(lake_root)
    change, erased, touched = _change_of(tables.TRIPS, erasure), set(), set()
    partitions = [{"region": selection.region}] if selection.region is not None else None
    for file in delta.snapshot_files(table_uri, storage, partitions):
        if not selection.file_may_hold(file.partition_values, file.min_values, file.max_values):
            continue
        rows = rows_of(table_uri, storage, file)
        mask = selection.rows_mask(rows.append_column("region", pa.array([file.partition_values["region"]] * rows.num_rows,
                                                                          pa.string())))
        taken = pc.sum(mask).as_py() or 0
        if not taken:
            continue
        erased.update(rows.filter(mask)["trip_id"].to_pylist())
        touched.add((file.partition_values["region"], file.partition_values["week_start"]))
        change.rows_erased += taken
        replace(table_uri, storage, file, rows.filter(pc.invert(mask)), change)
    return change, erased, touched


def _trip_routes_change(lake_root: str, storage: delta.Storage, erased: set[str], touched: set[tuple[str, str]],
                        erasure: Erasure) -> tuple[TableChange, dict[tuple[str, str], list[pa.Table]]]:
    """The erased trips' route rows go; returns the change and the rows the touched partitions keep."""
    table_uri = tables.TRIP_ROUTES_TABLE.uri(lake_root)
    change, kept_by_partition = _change_of(tables.TRIP_ROUTES, erasure), {}
    partitions = [{"region": region, "week_start": week} for region, week in sorted(touched)]
    erased_ids = pa.array(sorted(erased), pa.string())
    for file in delta.snapshot_files(table_uri, storage, partitions):
        rows = rows_of(table_uri, storage, file)
        mask = pc.is_in(rows["trip_id"], value_set=erased_ids)
        kept = rows.filter(pc.invert(mask))
        kept_by_partition.setdefault((file.partition_values["region"], file.partition_values["week_start"]),
                                     []).append(kept)
        if kept.num_rows < rows.num_rows:
            change.rows_erased += rows.num_rows - kept.num_rows
            replace(table_uri, storage, file, kept, change)
    return change, kept_by_partition


def _weekly_change(lake_root: str, storage: delta.Storage, kept_routes: dict[tuple[str, str], list[pa.Table]],
                   touched: set[tuple[str, str]], erasure: Erasure) -> TableChange:
    """The touched partitions' weekly counts, counted again from the route rows they keep."""
    table_uri = tables.WEEKLY_TRIPS_TABLE.uri(lake_root)
    spec = tables.WEEKLY_TRIPS_TABLE
    columns = pa.schema([column for column in spec.schema if column.name not in spec.partition_columns])
    change = _change_of(tables.WEEKLY_TRIPS, erasure)
    partitions = [{"region": region, "week_start": week} for region, week in sorted(touched)]
    change.removed = [file.path for file in delta.snapshot_files(table_uri, storage, partitions)]
    filesystem, root = storage.filesystem(table_uri)
    for (region, week), parts in sorted(kept_routes.items()):
        kept = pa.concat_tables(parts)
        if not kept.num_rows or change.counting:
            continue
        grouped = kept.group_by(["route_id", "model_version", "ingestion_id"]).aggregate([("trip_id", "count")])
        counts = pa.table({name: grouped["trip_id_count" if name == "trips" else name] for name in columns.names})
        counts = counts.cast(columns)
        change.added.append(table_files.write_file(filesystem, root, {"region": region, "week_start": week}, counts,
                                                   change.prefix))
    return change


def _rejected_change(lake_root: str, storage: delta.Storage, raw: RawCopies, erasure: Erasure) -> TableChange:
    """The rejected lines the selection takes, or that are an erased trip's."""
    table_uri = tables.REJECTED_ROWS_TABLE.uri(lake_root)
    change = _change_of(tables.REJECTED_ROWS, erasure)
    for file in delta.snapshot_files(table_uri, storage):
        rows = rows_of(table_uri, storage, file)
        mask = pa.array([raw.takes(ingestion_id, line) for ingestion_id, line
                         in zip(rows["ingestion_id"].to_pylist(), rows["raw_line"].to_pylist())], pa.bool_())
        taken = pc.sum(mask).as_py() or 0
        if taken:
            change.rows_erased += taken
            replace(table_uri, storage, file, rows.filter(pc.invert(mask)), change)
    return change


def _delete(lake_root: str, storage: delta.Storage, location: str, paths: list[str]) -> int:
    """Deletes the files (relative to the location) that are there; returns how many were."""
    filesystem, root = storage.filesystem(f"{lake_root}/{location}")
    deleted = 0
    for path in paths:
        try:
            filesystem.delete_file(f"{root}/{path}")
            deleted += 1
        except FileNotFoundError:  # deleted by the run this one finishes
            pass
    return deleted


def _keep_the_current_version_alone(table_uri: str, storage: delta.Storage) -> None:
    """Deletes every file of the table its current version does not reference (a vacuum with no retention: the
    files this erasure replaced, and those a compaction, a refit or a rollback left for a later vacuum), checkpoints
    it and deletes its log's older entries and checkpoints: their add actions hold old files' statistics (an erased
    trip's id or coordinates as a file's minimum or maximum). Readers of an older version lose it: the point."""
    table = delta.open_table(table_uri, storage)
    if table is None:
        return
    table.vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False, full=True)
    table.create_checkpoint()
    version = table.version()
    filesystem, root = storage.filesystem(f"{table_uri}/{DELTA_LOG}")
    for info in filesystem.get_file_info(pafs.FileSelector(root)):
        name = info.base_name
        if info.type == pafs.FileType.File and name[:20].isdigit() and int(name[:20]) < version:
            filesystem.delete_file(info.path)


def _record(lake_root: str, storage: delta.Storage, erasure: Erasure) -> None:
    row = erasure.to_dict() | {"selection": json.dumps(erasure.selection, sort_keys=True),
                               "erased_at": datetime.now(timezone.utc)}
    del row["dry_run"], row["object_versions_deleted"]  # deleted after the record, so counted in the output alone
    delta.append(f"{lake_root}/{ERASURES}", pa.Table.from_pylist([row], ERASURES_SCHEMA), storage)


ERASURES_SCHEMA = pa.schema(
    [("erasure_id", pa.string()), ("selection", pa.string())]
    + [(count, pa.int64()) for count in ("trips", "trip_routes", "weekly_partitions", "rejected_rows", "raw_lines",
                                         "raw_files", "files_deleted")]
    + [("erased_at", pa.timestamp("us", "UTC")), ("erased_by", pa.string())]
)
