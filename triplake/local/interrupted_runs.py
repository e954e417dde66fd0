"""Runs that a stopped or killed local stack left `running`: marked failed before Airflow starts again.

`triplake stack up` runs this module in the stack's Airflow environment (its own AIRFLOW_HOME) before it starts
`airflow standalone`: every run of the given DAGs still queued or running is failed, with its unfinished tasks, and
printed as one JSON list. No upload is lost with them: what trips_receive had received waits in the lake's inbox,
and the next trips_ingest run answers it (an ingestion that a killed batch had begun is rolled back and answered
FAILED `interrupted` from its record; one it had not reached is ingested).
"""

from __future__ import annotations

import json
import sys


def fail_interrupted_runs(dag_ids: list[str]) -> list[dict[str, str]]:
    from sqlalchemy import select

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, State, TaskInstanceState

    interrupted = []
    with create_session() as session:
        runs = session.scalars(select(DagRun).where(
            DagRun.dag_id.in_(dag_ids), DagRun.state.in_([DagRunState.RUNNING, DagRunState.QUEUED]))).all()
        for run in runs:
            for task_instance in run.get_task_instances(session=session):
                if task_instance.state not in State.finished:
                    task_instance.state = TaskInstanceState.FAILED
            run.set_state(DagRunState.FAILED)
            interrupted.append({"dag_id": run.dag_id, "dag_run_id": run.run_id})
    return interrupted


if __name__ == "__main__":
    print(json.dumps(fail_interrupted_runs(sys.argv[1:])))
