"""What a stopped or killed local stack left behind in Airflow, read before Airflow starts again.

`triplake stack up` runs this module in the stack's Airflow environment (its own AIRFLOW_HOME) before it starts
`airflow standalone`. Every run of the DAGs still queued or running is failed, with its unfinished tasks. The
uploads received since the stack's state was last saved and not announced since are listed too: the moto server
keeps everything in memory, so after a kill the lake, the inbox and the uploaded files themselves are back to
that save, and only Airflow's database remembers those uploads (in the XCom of `receive_uploads`); the stack answers
them FAILED. What `down` stopped is not lost: `down` saves the inbox with the lake, and the next trips_ingest run
answers it.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime

RECEIVE_DAG, RECEIVE_TASK = "trips_receive", "receive_uploads"
INGEST_DAG, ANNOUNCE_TASK = "trips_ingest", "batch.announce_outcomes"


def left_behind(since: datetime | None) -> dict[str, list[dict]]:
    from sqlalchemy import select

    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, State, TaskInstanceState

    def returned(session, run: DagRun, task_id: str) -> list:
        rows = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id,
                                                  key="return_value", map_indexes=None)).all()
        return [XComModel.deserialize_value(row) for row in rows]

    interrupted, received, announced = [], {}, set()
    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id.in_([RECEIVE_DAG, INGEST_DAG]))).all()
        for run in runs:
            if run.state in (DagRunState.RUNNING, DagRunState.QUEUED):
                for task_instance in run.get_task_instances(session=session):
                    if task_instance.state not in State.finished:
                        task_instance.state = TaskInstanceState.FAILED
                run.set_state(DagRunState.FAILED)
                interrupted.append({"dag_id": run.dag_id, "dag_run_id": run.run_id})
            if since is not None and run.run_after < since:
                continue  # its effects are in the saved state
            if run.dag_id == RECEIVE_DAG:
                for receipts in returned(session, run, RECEIVE_TASK):
                    received |= {receipt["ingestion_id"]: receipt for receipt in receipts or []}
            else:
                for statuses in returned(session, run, ANNOUNCE_TASK):
                    announced |= set(statuses or {})
    unanswered = [receipt for ingestion_id, receipt in received.items() if ingestion_id not in announced]
    return {"interrupted_runs": interrupted, "unanswered_receipts": unanswered}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--since", type=datetime.fromisoformat, default=None)
    print(json.dumps(left_behind(parser.parse_args().since)))
