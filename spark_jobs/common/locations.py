"""Where each table's files live under the lake root, with no pyspark import: the DAG file and the orchestrator's
tasks name the published tables by these paths too (as Airflow Assets)."""

from __future__ import annotations

TRIPS = "curated/trips"
TRIP_ROUTES = "curated/trip_routes"
ROUTE_MODELS = "curated/route_models"  # one row per route of every fitted model version
MODELS = "models/routes"  # the fitted models: region=<r>/v=<version>/route_model.json
WEEKLY_TRIPS = "marts/weekly_trips"
REJECTED_ROWS = "curated/rejected_rows"
INGESTIONS = "curated/ingestions"
RAW = "raw"
STAGING = "_staging"
# The stage an ingestion is in, for `triplake watch --progress`: in its staging directory, so it is gone once the
# ingestion committed (or was rolled back).
PROGRESS = "progress.json"


def progress_path(ingestion_id: str) -> str:
    """Where a running ingestion says which stage it is in, relative to the lake root."""
    return f"{STAGING}/{ingestion_id}/{PROGRESS}"
