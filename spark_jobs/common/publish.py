"""The lake's one publish protocol: how every step of an ingestion adds files to the tables, how the ingestion
commits, and how an interrupted one is undone. Every writer and every table go through here.

An ingestion (one uploaded file) is one transaction over all the tables, whatever runs its steps:

    begin     (ingest)        recover every interrupted ingestion; write _staging/<id>/ingestion.json (the intent)
    each step (ingest, group_routes, build_weekly):
      write   the step's files straight into its Delta tables' folders (spark_jobs.common.delta): no commit names
              them yet, so no reader sees them
      record  _staging/<id>/<step>.manifest.json: every file the step will add (and what it will supersede)
      commit  the files, one delta-rs commit per table (and the models' JSON moved into models/routes/)
    commit    (build_weekly)  append the ingestion's SUCCEEDED row to the ingestions table: the commit point
    clean up  take what the ingestion superseded (a refitted region's older versions) out of the tables; delete
              _staging/<id>/

Nothing is ever overwritten in a table: every file an ingestion adds is new, and readers see only the rows of
committed ingestions (the views of sql/views filter on `ingestion_id` and on each region's current model), so a
query during any of these steps gives the answer of the lake before the ingestion, although the steps' own Delta
commits came before. A refit adds a new model version and the region's routes under it; the older version stops
counting at the commit, in one step.

Recovery needs nothing but the lake: an ingestion with a staging directory and no ingestions record died (or
lost its lease) before it committed, so every file its manifests list is taken out of its table and deleted, the
files it wrote that no commit names are swept, and a FAILED record says so; one whose record is there had
committed, so only its clean-up is finished. Steps are idempotent: a step run again first removes what an earlier
attempt of the same step published. Writers are one at a time (the lease of spark_jobs.common.lease); the steps
check it before they publish.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import SparkSession

from spark_jobs.common import delta, records, tables
from spark_jobs.common.delta import Storage
from spark_jobs.common.lake import Lake
from spark_jobs.common.lakefs import LakeFs
from spark_jobs.common.lease import LEASE_FILE, check_held

logger = logging.getLogger(__name__)

INTENT = "ingestion.json"
MANIFEST_SUFFIX = ".manifest.json"
SUCCEEDED = records.SUCCEEDED
FAILED = records.FAILED
INTERRUPTED = "interrupted"
# Tests stop a job at a publish point by naming it here (kill -9 of the driver, not an exception).
FAULT_CONF = "spark.triplake.faultAt"


def checkpoint(spark: SparkSession, point: str) -> None:
    """A named publish point; the process kills itself here when FAULT_CONF names it (fault-injection tests)."""
    kill_at(point, spark.conf.get(FAULT_CONF, ""))


def kill_at(point: str, fault_at: str | None) -> None:
    """Kills this process (SIGKILL, as a crash would) when the point is the one a fault-injection test named."""
    if fault_at == point:
        logger.warning("fault injection: killing this process at %s", point)
        os.kill(os.getpid(), signal.SIGKILL)


def check_lease(fs: LakeFs, lake: Lake, ingestion_id: str) -> None:
    """Raises LeaseLostError when another ingestion holds the lake or this ingestion's lease expired."""
    lease = lake.uri(LEASE_FILE)
    check_held(fs.read_text(lease) if fs.exists(lease) else None, ingestion_id)


@dataclass(frozen=True)
class Supersede:
    """A refit: the region's routes, weekly counts and models of every version below `below_version` go once the
    ingestion commits."""

    region: str
    below_version: int


@dataclass
class Publication:
    """One step's files on their way into the lake (stage -> record -> move); see the module docstring."""

    spark: SparkSession
    fs: LakeFs
    lake: Lake
    ingestion_id: str
    step: str
    moves: list[tuple[str, str]] = field(default_factory=list)  # (staged URI, target path relative to the lake)
    superseded: list[Supersede] = field(default_factory=list)
    # Delta tables: files the step wrote in place, committed to their table by delta-rs (no staging, no move)
    written: dict[str, tuple[delta.TableSpec, list[delta.DataFile]]] = field(default_factory=dict)

    @property
    def staging_dir(self) -> str:
        return self.lake.staging(self.ingestion_id, self.step)

    @property
    def manifest_uri(self) -> str:
        return self.lake.staging(self.ingestion_id, self.step + MANIFEST_SUFFIX)

    def begin(self) -> Publication:
        """Removes what an earlier attempt of this step published, so a rerun leaves what one run leaves."""
        if self.fs.exists(self.manifest_uri):
            removed = _delete_targets(self.fs, self.lake, _read_json(self.fs, self.manifest_uri),
                                      Storage.from_spark(self.spark))
            logger.info("%s %s: removed %d files of an earlier attempt", self.step, self.ingestion_id, removed)
            self.fs.delete(self.manifest_uri)
        self.fs.delete(self.staging_dir)
        return self

    def stage(self, *parts: str) -> str:
        """Where the step writes a staged file or directory."""
        return self.lake.uri(tables.STAGING, self.ingestion_id, self.step, *parts)

    def add(self, staged_uri: str, target: str) -> None:
        self.moves.append((staged_uri, target))

    def add_files(self, table: delta.TableSpec, files: list[delta.DataFile]) -> None:
        """Files the step wrote in place into a Delta table, for its commit."""
        self.written.setdefault(table.location, (table, []))[1].extend(files)

    def publish(self) -> list[str]:
        """Records every target, then moves the staged files into place and commits the files written into Delta
        tables, one Delta transaction per table; returns the targets."""
        checkpoint(self.spark, f"{self.step}:staged")
        check_lease(self.fs, self.lake, self.ingestion_id)
        targets = [target for _, target in self.moves]
        manifest = {
            "ingestion_id": self.ingestion_id,
            "step": self.step,
            "targets": targets,
            "delta": {location: [file.path for file in files] for location, (_, files) in self.written.items()},
            "superseded": [{"region": s.region, "below_version": s.below_version} for s in self.superseded],
        }
        self.fs.write_text(self.manifest_uri, json.dumps(manifest, indent=1))
        checkpoint(self.spark, f"{self.step}:recorded")
        in_place = 0  # files moved and tables committed so far: the fault tests kill the job after the first
        for staged, target in self.moves:
            self.fs.rename(staged, self.lake.uri(target))
            in_place += 1
            if in_place == 1:
                checkpoint(self.spark, f"{self.step}:moving")
        storage = Storage.from_spark(self.spark)
        for table, files in self.written.values():
            if not files:
                continue
            delta.commit(table.uri(self.lake.root), table.schema, table.partition_columns, files, storage)
            in_place += 1
            if in_place == 1:
                checkpoint(self.spark, f"{self.step}:moving")
        checkpoint(self.spark, f"{self.step}:moved")
        self.fs.delete(self.staging_dir)
        return targets


# --------------------------------------------------------------------------------------------------
# The ingestion: intent, commit, abort, recovery
# --------------------------------------------------------------------------------------------------


def write_intent(fs: LakeFs, lake: Lake, intent: dict) -> None:
    """What the ingestion is (id, source, start) and, once ingest has published, its counts: read by the commit."""
    fs.write_text(lake.staging(intent["ingestion_id"], INTENT), json.dumps(intent, indent=1, default=str))


def read_intent(fs: LakeFs, lake: Lake, ingestion_id: str) -> dict | None:
    uri = lake.staging(ingestion_id, INTENT)
    return _read_json(fs, uri) if fs.exists(uri) else None


def is_committed(spark: SparkSession, fs: LakeFs, lake: Lake, ingestion_id: str) -> bool | None:
    """True when the ingestion committed, False when it is recorded as FAILED, None when it has no record."""
    record = records.read_record(lake.root, Storage.from_spark(spark), ingestion_id)
    return None if record is None else record["status"] == SUCCEEDED


def commit(spark: SparkSession, fs: LakeFs, lake: Lake, ingestion_id: str) -> dict:
    """Makes everything the ingestion's steps published visible at once: its SUCCEEDED record. Returns the record."""
    check_lease(fs, lake, ingestion_id)
    intent = read_intent(fs, lake, ingestion_id)
    if intent is None or intent.get("counts") is None:
        if is_committed(spark, fs, lake, ingestion_id):
            return {"ingestion_id": ingestion_id, "status": SUCCEEDED}  # a rerun of a step that had committed
        raise RuntimeError(f"ingestion {ingestion_id} has nothing to commit: its ingest step has not published "
                           "(it failed or was rolled back); run the file again")
    record = _write_record(spark, lake, intent, SUCCEEDED, None)
    checkpoint(spark, "commit:recorded")
    clean_up(fs, lake, ingestion_id, Storage.from_spark(spark))
    return record


def abort(spark: SparkSession, fs: LakeFs, lake: Lake, ingestion_id: str, error: dict) -> bool:
    """Undoes an ingestion that did not commit: deletes everything its steps published and records it FAILED.

    Returns False (and only cleans up) when the ingestion had committed after all."""
    if is_committed(spark, fs, lake, ingestion_id):
        clean_up(fs, lake, ingestion_id, Storage.from_spark(spark))
        return False
    storage = Storage.from_spark(spark)
    removed = sum(_delete_targets(fs, lake, manifest, storage) for manifest in _manifests(fs, lake, ingestion_id))
    removed += _sweep_uncommitted(fs, lake, ingestion_id, storage)
    intent = read_intent(fs, lake, ingestion_id)
    if intent is not None and records.read_record(lake.root, Storage.from_spark(spark), ingestion_id) is None:
        _write_record(spark, lake, intent, FAILED, error)
    fs.delete(lake.staging(ingestion_id))
    logger.info("ingestion %s rolled back (%d files removed): %s", ingestion_id, removed, error["message"])
    return True


def recover(spark: SparkSession, fs: LakeFs, lake: Lake) -> list[str]:
    """Finishes or undoes every ingestion an earlier writer left behind; returns the ids that were rolled back.

    Run by the first step of every ingestion, under the lake's lease, so nobody else is writing."""
    rolled_back = []
    for entry in fs.list(lake.uri(tables.STAGING)):
        error = {
            "kind": INTERRUPTED,
            "message": "the ingestion stopped before it committed (its process was killed, or it lost the lake's "
                       "lease); everything it had written was rolled back. Upload or run the file again.",
        }
        if abort(spark, fs, lake, entry.name, error):
            rolled_back.append(entry.name)
    if rolled_back:
        logger.warning("rolled back interrupted ingestions: %s", ", ".join(rolled_back))
    return rolled_back


def clean_up(fs: LakeFs, lake: Lake, ingestion_id: str, storage: Storage) -> None:
    """After the commit: delete what the ingestion superseded (older model versions of refitted regions), then its
    staging directory. Idempotent: recovery runs it again for an ingestion that committed and died here."""
    for manifest in _manifests(fs, lake, ingestion_id):
        for item in manifest.get("superseded", []):
            delete_superseded(fs, lake, Supersede(item["region"], item["below_version"]), storage)
    fs.delete(lake.staging(ingestion_id))


def delete_superseded(fs: LakeFs, lake: Lake, superseded: Supersede, storage: Storage) -> int:
    """Takes a region's trip_routes, weekly_trips and route_models files of versions below `below_version` out of
    their tables (one Delta commit each; a vacuum deletes them once no reader can still need them) and deletes the
    region's saved models of those versions. Returns how many files went."""
    removed = 0
    for table in (tables.TRIP_ROUTES_TABLE, tables.WEEKLY_TRIPS_TABLE, tables.ROUTE_MODELS_TABLE):
        table_uri = table.uri(lake.root)
        older = [file.path for file in delta.snapshot_files(table_uri, storage, [{"region": superseded.region}])
                 if file.max_values.get("model_version", superseded.below_version) < superseded.below_version]
        if older:
            delta.remove(table_uri, older, storage)
            removed += len(older)
    for model in fs.list(lake.uri(tables.MODELS, delta.partition_dir("region", superseded.region))):
        if model.name.startswith("v=") and int(model.name[2:]) < superseded.below_version:
            fs.delete(model.uri)
            removed += 1
    return removed


def _manifests(fs: LakeFs, lake: Lake, ingestion_id: str) -> list[dict]:
    return [
        _read_json(fs, entry.uri)
        for entry in fs.list(lake.staging(ingestion_id))
        if entry.name.endswith(MANIFEST_SUFFIX)
    ]


def _delete_targets(fs: LakeFs, lake: Lake, manifest: dict, storage: Storage) -> int:
    """Deletes what a step's manifest lists: its moved files, and its files of Delta tables (taken out of the
    table's snapshot first, in one Delta commit per table, when they had been committed)."""
    removed = 0
    for target in manifest["targets"]:
        uri = lake.uri(target)
        if fs.exists(uri):
            fs.delete(uri)
            removed += 1
    for location, paths in manifest.get("delta", {}).items():
        table_uri = lake.uri(location)
        committed = {file.path for file in delta.snapshot_files(table_uri, storage)} & set(paths)
        if committed:
            delta.remove(table_uri, sorted(committed), storage)
        for path in paths:
            if fs.exists(f"{table_uri}/{path}"):
                fs.delete(f"{table_uri}/{path}")
                removed += 1
    return removed


def _sweep_uncommitted(fs: LakeFs, lake: Lake, ingestion_id: str, storage: Storage) -> int:
    """Deletes the files the ingestion wrote into Delta tables that no commit references: a step writes its files in
    place before its publish records them, so a step that failed or was killed in between leaves them unlisted.
    They are found by their names ('<ingestion id>-...'); no reader ever saw them (readers go through the log)."""
    deleted = 0
    for table in tables.DELTA_TABLES:
        table_uri = table.uri(lake.root)
        committed = {file.path.rsplit("/", 1)[-1] for file in delta.snapshot_files(table_uri, storage)}
        for entry in fs.list_files_recursive(table_uri):
            if entry.name.startswith(f"{ingestion_id}-") and entry.name not in committed and "_delta_log" not in entry.uri:
                fs.delete(entry.uri)
                deleted += 1
    return deleted


def _read_json(fs: LakeFs, uri: str) -> dict:
    return json.loads(fs.read_text(uri))


def _write_record(spark: SparkSession, lake: Lake, intent: dict, status: str, error: dict | None) -> dict:
    row = records.record(intent["ingestion_id"], intent["source_uri"], status,
                         datetime.fromisoformat(intent["started_at"]), intent.get("counts"), error)
    records.append_record(lake.root, Storage.from_spark(spark), row)
    return row
