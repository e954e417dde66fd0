"""Runs of the DAG that a stopped or killed local stack left `running`: marked failed before Airflow starts again.

`triplake stack up` runs this module in the stack's Airflow environment (its own AIRFLOW_HOME) before it starts
`airflow standalone`: every run of the DAG still queued or running is failed, with its unfinished tasks, and the
ingestions it had planned but not announced are printed as one JSON list, for the stack to announce them FAILED.
Their partial writes are rolled back by the lake's next ingestion (spark_jobs.common.publish.recover).
"""

from __future__ import annotations

import json
import sys

PLAN_TASK = "plan_ingestions"
ANNOUNCE_TASK = "ingestion.announce_succeeded"


def fail_interrupted_runs(dag_id: str) -> list[dict[str, str]]:
    from sqlalchemy import select

    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, State, TaskInstanceState

    interrupted = []
    with create_session() as session:
        runs = session.scalars(select(DagRun).where(
            DagRun.dag_id == dag_id, DagRun.state.in_([DagRunState.RUNNING, DagRunState.QUEUED]))).all()
        for run in runs:
            planned = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=dag_id, task_ids=PLAN_TASK,
                                                         key="return_value")).first()
            ingestions = XComModel.deserialize_value(planned) if planned is not None else []
            announced = set()
            for task_instance in run.get_task_instances(session=session):
                if task_instance.task_id == ANNOUNCE_TASK and task_instance.state == TaskInstanceState.SUCCESS:
                    announced.add(task_instance.map_index)
                if task_instance.state not in State.finished:
                    task_instance.state = TaskInstanceState.FAILED
            run.set_state(DagRunState.FAILED)
            unfinished = [{"dag_run_id": run.run_id, **ingestion} for index, ingestion in enumerate(ingestions or [])
                          if index not in announced]
            # A run stopped while it was still planning has no ingestions yet: it is reported on its own.
            interrupted += unfinished or [{"dag_run_id": run.run_id}]
    return interrupted


if __name__ == "__main__":
    print(json.dumps(fail_interrupted_runs(sys.argv[1])))
