"""The route models of the regions an erasure touched, estimated again from the trips they keep.

A route's centroid is the mean of the trips it was fitted on, and the model's standardization their mean and spread:
erased trips included, and a route fitted on a single trip has that trip's coordinates as its centroid. So the
erasure estimates each touched model again from the trips its routes keep (spark_jobs.common.route_model.reestimated:
every trip keeps its route, a route left with none goes, a model left with none goes) and replaces its rows in
`route_models` (a Delta commit with the erasure's others) and its file under models/routes/ (after the record, as
the raw copies are).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import fs as pafs

from spark_jobs.common import delta, tables
from spark_jobs.common.committed import MODEL_METADATA, VERSION_DIR_PREFIX
from spark_jobs.common.route_model import SPATIAL_FEATURES, MemberSums, RouteModel, hour_features, reestimated
from triplake.table_changes import TableChange, replace, rows_of

Models = dict[tuple[str, int], "RouteModel | None"]  # (region, model version) -> the model estimated again, or None


def reestimated_models(lake_root: str, storage: delta.Storage, regions: set[str], erased: set[str]) -> Models:
    """Every saved model of these regions, estimated again from the trips its routes keep (those not erased). The
    regions' trips and route rows are read a (region, week) partition at a time: sums are kept, not trips."""
    members: dict[tuple[str, int], MemberSums] = defaultdict(MemberSums)
    erased_ids = pa.array(sorted(erased), pa.string())
    for region in sorted(regions):
        for routes, trips in _partitions(lake_root, storage, region):
            kept = routes.join(trips, "trip_id")
            kept = kept.filter(pc.invert(pc.is_in(kept["trip_id"], value_set=erased_ids)))
            started = pc.cast(kept["started_at"], pa.timestamp("us", "UTC")).cast(pa.int64()).to_numpy()
            features = np.column_stack([*(kept[name].to_numpy() for name in SPATIAL_FEATURES), hour_features(started)])
            versions, route_ids = kept["model_version"].to_numpy(), np.array(kept["route_id"].to_pylist(), dtype=object)
            for version, route_id in set(zip(versions.tolist(), route_ids.tolist())):
                members[(region, version)].add(route_id, features[(versions == version) & (route_ids == route_id)])
    return {(region, version): reestimated(model, members[(region, version)])
            for region in sorted(regions) for version, model in _saved_models(lake_root, storage, region).items()}


def route_models_change(lake_root: str, storage: delta.Storage, models: Models, change: TableChange) -> None:
    """Each touched region's route_models files replaced: the rows of a model estimated again get its centroids, k
    and trips; the rows of a route or model that went go."""
    table_uri = tables.ROUTE_MODELS_TABLE.uri(lake_root)
    regions = sorted({region for region, _ in models})
    for file in delta.snapshot_files(table_uri, storage, [{"region": region} for region in regions]):
        rows = rows_of(table_uri, storage, file)
        region, kept = file.partition_values["region"], []
        for row in rows.to_pylist():
            key = (region, row["model_version"])
            if key not in models:
                kept.append(row)
            elif (model := models[key]) is not None and row["route_id"] in model.centroids:
                kept.append(row | model.centroids[row["route_id"]] | {"k": model.k, "sample_rows": model.sample_rows})
        change.rows_erased += rows.num_rows - len(kept)
        replace(table_uri, storage, file, pa.Table.from_pylist(kept, schema=rows.schema), change)


def write_models(lake_root: str, storage: delta.Storage, models: Models) -> None:
    """The models' files under models/routes/ rewritten; a model that went loses its file (so the next ingestion of
    its region fits a new one)."""
    filesystem, root = storage.filesystem(f"{lake_root}/{tables.MODELS}")
    for (region, version), model in sorted(models.items()):
        path = f"{root}/{delta.partition_dir('region', region)}/{VERSION_DIR_PREFIX}{version}/{MODEL_METADATA}"
        if model is None:
            try:
                filesystem.delete_file(path)
            except FileNotFoundError:  # deleted by the run this one finishes
                pass
            continue
        with filesystem.open_output_stream(path) as sink:
            sink.write(json.dumps(model.metadata(), indent=2).encode())


def _partitions(lake_root: str, storage: delta.Storage, region: str) -> Iterator[tuple[pa.Table, pa.Table]]:
    """The region's route rows and trips (the columns a model's features need), one week partition at a time."""
    files = {}
    for table in (tables.TRIP_ROUTES_TABLE, tables.TRIPS_TABLE):
        files[table.location] = defaultdict(list)
        for file in delta.snapshot_files(table.uri(lake_root), storage, [{"region": region}]):
            files[table.location][file.partition_values["week_start"]].append(file)

    def rows(table: delta.TableSpec, week: str, columns: list[str]) -> pa.Table:
        # promote: files a forget wrote and files Spark wrote differ in whether a column may be null
        return pa.concat_tables([rows_of(table.uri(lake_root), storage, file).select(columns)
                                 for file in files[table.location][week]], promote_options="permissive")

    for week in sorted(set(files[tables.TRIP_ROUTES]) & set(files[tables.TRIPS])):
        yield (rows(tables.TRIP_ROUTES_TABLE, week, ["trip_id", "route_id", "model_version"]),
               rows(tables.TRIPS_TABLE, week, ["trip_id", *SPATIAL_FEATURES, "started_at"]))


def _saved_models(lake_root: str, storage: delta.Storage, region: str) -> dict[int, RouteModel]:
    filesystem, root = storage.filesystem(f"{lake_root}/{tables.MODELS}/{delta.partition_dir('region', region)}")
    models = {}
    for info in filesystem.get_file_info(pafs.FileSelector(root, allow_not_found=True)):
        if info.type == pafs.FileType.Directory and info.base_name.startswith(VERSION_DIR_PREFIX):
            try:
                with filesystem.open_input_stream(f"{info.path}/{MODEL_METADATA}") as stream:
                    models[int(info.base_name.removeprefix(VERSION_DIR_PREFIX))] = RouteModel.from_metadata(
                        json.loads(stream.read()))
            except FileNotFoundError:  # a version whose file an earlier erasure deleted
                continue
    return models
