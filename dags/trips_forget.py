"""
### trips_forget — trips erased from the lake for good, when the law or a contract asks

Triggered by hand with the selection as its conf: the options of `triplake forget`, e.g.

```json
{"datasource": "cheap_mobile"}
{"region": "Prague", "from": "2018-05-01", "to": "2018-05-31"}
{"bbox": "14.40,50.03,14.48,50.10", "match": "any", "from": "2018-05-01", "to": "2018-05-07"}
{"trip_ids": ["9f1c...", "..."], "dry_run": true}
```

Under the lake's writer lease (it waits while a batch of trips_ingest writes): the trips go from `trips`, their
routes from `trip_routes`, the touched weeks of `weekly_trips` are recounted, their lines go from the rejected rows
and the raw copies, and every replaced file and old object version is deleted. The run's return value (XCom) and the
table `erasures` say how many rows of each table went; `dry_run` only counts. A run stopped on the way is finished
by the next erasure. Wiring only: what the task does lives in `triplake.forget` (docs/runbook.md, "Erasing trips").
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from airflow.sdk import Asset, Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

from triplake import orchestration
from triplake.settings import get_settings

settings = get_settings()

# What readers see change: a downstream DAG scheduled on these runs again after an erasure, as after an ingestion.
published_tables = [Asset(name=f"triplake_{name}", uri=uri)
                    for name, uri in orchestration.published_table_uris(settings.lake_root).items()]
OPTIONAL_TEXT = ["null", "string"]


@dag(
    dag_id=Path(__file__).stem,
    schedule=None,
    catchup=False,
    max_active_runs=1,
    tags=["triplake"],
    description="Erase a data source's, an area's or listed trips from every table, raw copy and old version",
    doc_md=__doc__,
    params={
        "datasource": Param(None, type=OPTIONAL_TEXT, description="the trips of this data source"),
        "region": Param(None, type=OPTIONAL_TEXT, description="the trips of this region"),
        "bbox": Param(None, type=OPTIONAL_TEXT, description="min_lon,min_lat,max_lon,max_lat, bounds inclusive"),
        "match": Param("both", enum=["origin", "destination", "both", "any"], description="with bbox: which end"),
        "from": Param(None, type=OPTIONAL_TEXT, description="first day (UTC), YYYY-MM-DD"),
        "to": Param(None, type=OPTIONAL_TEXT, description="last day (UTC), YYYY-MM-DD"),
        "trip_ids": Param(None, type=["null", "array"], description="the trips with these trip_ids"),
        "dry_run": Param(False, type="boolean", description="only count what would go"),
    },
)
def trips_forget():
    # A busy or refusing lake (an interrupted ingestion awaiting its rollback) is tried again; a bad selection is not.
    @task(outlets=published_tables, retries=2, retry_delay=timedelta(minutes=5))
    def forget_trips(**context) -> dict:
        """Erases the selection of the run's params; returns the erasure's counts."""
        from triplake.erasure import Selection, SelectionError
        from triplake.forget import forget
        from triplake.weekly_average import AreaError

        run = context["dag_run"]
        try:
            selection, dry_run = Selection.from_conf(context["params"])
        except (SelectionError, AreaError) as problem:
            raise AirflowFailException(f"the conf of {run.run_id} selects nothing erasable: {problem}") from problem
        who = getattr(run, "triggering_user_name", None) or "airflow"
        return forget(settings.lake_root, settings, selection, dry_run=dry_run,
                      erased_by=f"{who} (trips_forget run {run.run_id})").to_dict()

    forget_trips()


trips_forget()
