"""What a reader of the lake reads: the files of each table at one moment, with an erasure seen whole or not at all.

An ingestion is one transaction for readers through the views (they keep the rows of committed ingestions only). An
erasure cannot be: it takes rows out of five tables, in five Delta commits, and a view cannot bring back rows that
are gone. Its commit point is its row in `erasures`, committed after the tables' commits and before any
replaced file is deleted. Until that row is committed the erasure's plan (`_erasures/<erasure id>.json`, written
before its first commit) names every table's version from before it, and a reader reads those versions: the lake
before. Once it is committed a reader reads the tables' current versions: the lake after. So a reader between two
of the commits, or after a forget killed between them and before the next writer finishes it, sees the lake before.

Athena reads each table's current version (it cannot read a Delta table at an older one): only this module's
readers (`triplake sql`, `weekly-average`, the demo) see the erasure whole.
"""

from __future__ import annotations

import json
import logging
from typing import Sequence

from spark_jobs.common import delta
from triplake.uris import local_path

logger = logging.getLogger(__name__)

PLANS = "_erasures"  # the plan of each erasure under way: written before its first commit, deleted after its record
ERASURES = "curated/erasures"  # its row there is an erasure's commit point
ATTEMPTS = 3


class LakeChangedError(RuntimeError):
    """The lake changed under every attempt to read one moment of it."""


def plan_bodies(lake_root: str, storage: delta.Storage) -> list[bytes]:
    """The plans of the erasures under way (or killed on the way), oldest first: most often none, one listing."""
    lake_root = lake_root.rstrip("/")
    local = local_path(lake_root)
    if local is not None:  # without pyarrow: a query of a file:// lake never imports it
        folder = local / PLANS
        return [path.read_bytes() for path in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    from pyarrow import fs as pafs

    filesystem, root = storage.filesystem(f"{lake_root}/{PLANS}")
    bodies = []
    for info in sorted(filesystem.get_file_info(pafs.FileSelector(root, allow_not_found=True)), key=lambda i: i.path):
        if info.type == pafs.FileType.File and info.path.endswith(".json"):
            with filesystem.open_input_stream(info.path) as stream:
                bodies.append(stream.read())
    return bodies


def table_files(lake_root: str, storage: delta.Storage, locations: Sequence[str]) -> dict[str, list[str]]:
    """The URIs of each table's files (by location under the lake root) at one moment of the lake: an erasure whose
    record is not committed is not seen at all. Read again when the lake changed while it was read (a forget's record
    committed meanwhile); LakeChangedError after three attempts."""
    lake_root = lake_root.rstrip("/")
    for _ in range(ATTEMPTS):
        # The record first: if it is there, every table's commit of its erasure is too. If it is not, any table read
        # after an erasure's commit was read while its plan was there, and the plan is listed after the tables, and
        # deleted only once the record is committed (which the record's second reading would show).
        erasures_version = _version(lake_root, storage, ERASURES)
        files = {location: delta.versioned_file_uris(f"{lake_root}/{location}", storage) for location in locations}
        bodies = plan_bodies(lake_root, storage)
        if _version(lake_root, storage, ERASURES) != erasures_version:
            continue
        before = _versions_before_uncommitted_erasure(bodies, erasures_version)
        if not before:
            return {location: uris for location, (_, uris) in files.items()}
        try:
            return {location: (delta.versioned_file_uris(f"{lake_root}/{location}", storage, before[location])[1]
                               if location in before and files[location][0] != before[location] else uris)
                    for location, (_, uris) in files.items()}
        except Exception as problem:  # noqa: BLE001 (delta-rs's errors): the erasure went on to delete its old versions
            logger.info("the lake changed while it was read (%s); reading it again", problem)
    raise LakeChangedError(f"the lake at {lake_root} changed while it was read, {ATTEMPTS} times (an erasure is under "
                           "way): run the query again")


def _version(lake_root: str, storage: delta.Storage, location: str) -> int:
    table = delta.open_table(f"{lake_root}/{location}", storage)
    return -1 if table is None else table.version()


def _versions_before_uncommitted_erasure(plan_bodies_: list[bytes], erasures_version: int) -> dict[str, int]:
    """The tables' versions from before the oldest erasure whose record is not in erasures_version; {} if none."""
    for body in plan_bodies_:
        versions_before = json.loads(body).get("versions_before", {})
        if versions_before and versions_before.get(ERASURES, -1) >= erasures_version:
            return versions_before
    return {}
