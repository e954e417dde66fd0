"""
### trips_maintain — the lake's tables kept fast, whatever the number of uploads

Once a day, under the lake's writer lease (it waits while a batch of trips_ingest writes, and no batch writes
while it runs): each Delta table's small files are compacted toward `TRIPLAKE_COMPACT_TARGET_BYTES`, files
replaced more than `TRIPLAKE_VACUUM_RETENTION_HOURS` ago are deleted, and the logs are checkpointed. Each step is
one delta-rs operation: readers see every table before or after it, and a run that is stopped is finished by the
next one. `triplake maintain` does the same by hand.

Wiring only: what the task does lives in `triplake.maintain`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from airflow.sdk import dag, task

from triplake.settings import get_settings

settings = get_settings()


@dag(
    dag_id=Path(__file__).stem,
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["triplake"],
    description="Compaction, vacuum and checkpoints of the lake's Delta tables, under the lake's lease",
    doc_md=__doc__,
)
def trips_maintain():
    @task
    def maintain_tables() -> list[dict]:
        """Compacts, vacuums and checkpoints every table; returns what was done to each."""
        from dataclasses import asdict

        from triplake.maintain import maintain

        return [asdict(table) for table in maintain(settings.lake_root, settings)]

    maintain_tables()


trips_maintain()
