"""What the command line prints in a terminal: its errors, the tables of a run, a query's result, a status event's
line."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

stderr = Console(stderr=True, soft_wrap=True)  # messages stay one line, whole, in logs too


class UsageError(Exception):
    """A problem with what the user asked for; printed without a traceback (exit 2)."""


def ingestions_table(result) -> Table:
    table = Table(title=f"Ingestions into {result.lake_root}")
    for column in ("file", "status", "read", "valid", "rejected", "duplicates", "already in lake", "written"):
        table.add_column(column, justify="left" if column in ("file", "status") else "right")
    for ingestion in result.ingestions:
        counts = ingestion.counts
        table.add_row(
            ingestion.source_uri.rsplit("/", 1)[-1],
            ingestion.status,
            *(f"{value:,}" for value in (counts.rows_read, counts.rows_valid, counts.rows_rejected,
                                        counts.duplicates_in_batch, counts.already_present, counts.rows_written)),
        )
    return table


def routes_table(result) -> Table:
    """The routes of every region the run touched, as the last routes step left them."""
    from triplake.routes_map import hour_text

    latest = {region.region: region for routes in result.routes.values() for region in routes.regions}
    # Why each region's model was last fitted in this run ("new region", "grew 4.2x ...", "refit asked").
    fitted = {region.region: region.fit_reason for routes in result.routes.values() for region in routes.regions
              if region.refitted}
    published = result.routes_in_lake  # every route with its trips in the whole lake, as the run left it
    table = Table(title="Routes per region (trips in the whole lake)")
    for column in ("region", "model", "routes", "silhouette", "busiest routes: trips, typical hour (UTC)"):
        table.add_column(column, justify="right" if column in ("routes", "silhouette") else "left")
    for name, region in sorted(latest.items()):
        busiest = sorted(published.get(name, []), key=lambda route: -route["trips"])[:3]
        table.add_row(
            name,
            f"v{region.model_version}, " + (f"fitted: {fitted[name]}" if name in fitted else "reused"),
            str(region.k),
            "-" if region.silhouette is None else f"{region.silhouette:.2f}",
            ", ".join(f"{route['route_id']} {route['trips']:,} @ {hour_text(route['typical_hour'])}" for route in busiest),
        )
    return table


def result_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> Table:
    """A query result for a terminal: a value too wide for its column wraps onto more lines, never cut short
    (ids, URIs and file names are what a user copies from it)."""
    table = Table()
    for index, column in enumerate(columns):
        numeric = all(isinstance(row[index], (int, float)) for row in rows if row[index] is not None)
        table.add_column(column, justify="right" if numeric and rows else "left", overflow="fold")
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    return table


STAGE_NAMES = {"group_routes": "grouping trips into routes", "build_weekly": "counting weeks, then the commit"}


def progress_line(progress: dict) -> str:
    """What a running ingestion has done and the stage it is in now."""
    when = str(progress.get("since", ""))[:19].replace("T", " ")
    done = progress.get("done", {})
    parts = []
    if ingest := done.get("ingest"):
        parts.append(f"ingest done in {ingest['seconds']} s (read {ingest['rows_read']}, written "
                     f"{ingest['rows_written']}, rejected {ingest['rows_rejected']})")
    if routes := done.get("group_routes"):
        fitted = f", fitted {', '.join(routes['fitted'])}" if routes["fitted"] else ""
        parts.append(f"routes done in {routes['seconds']} s ({routes['trips_assigned']} trips{fitted})")
    stage = STAGE_NAMES.get(progress["stage"], progress["stage"])
    return f"{when}  {'RUNNING':<9}  {progress['ingestion_id']}  {'; '.join([*parts[-1:], stage])}"


def event_line(event: dict) -> str:
    when = (event.get("finished_at") or event.get("started_at") or "")[:19].replace("T", " ")
    line = f"{when}  {event['status']:<9}  {event['ingestion_id']}  {event['source_uri']}"
    if event.get("counts"):
        counts = event["counts"]
        line += (f"  read {counts['rows_read']}, written {counts['rows_written']}, rejected {counts['rows_rejected']}, "
                 f"duplicates {counts['duplicates_in_batch']}, already in the lake {counts['already_present']}")
    if fitted := {region: model for region, model in (event.get("routes") or {}).items() if model.get("fitted")}:
        line += "  routes fitted: " + ", ".join(f"{region} v{model['model_version']} ({model['fitted']})"
                                               for region, model in sorted(fitted.items()))
    if event.get("error"):
        error = event["error"]
        line += f"  {error['kind']} in {error.get('task', '?')}: {error['message']}"
    return line
