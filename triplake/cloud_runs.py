"""A Spark job run in the cloud (EMR Serverless or AWS Glue), watched for its whole life under the lake's lease.

The writer lease must be held exactly as long as the job run lives: renewed while it runs, so a long run keeps the
lake, and given back only once the run has ended (finished, failed or cancelled), so the next writer never writes
beside it. A deferred operator has no process that lives that long, so the task that starts the run also watches
it: it polls the run's state, the lease's keep-alive renews the lease meanwhile, and when the task is stopped or
fails it cancels the run and waits for the run to end before the lease is released. If the task's process dies
outright, nothing renews the lease any more: it expires within TRIPLAKE_LAKE_LEASE_SECONDS and the next writer
takes the lake over, while the orphaned run's jobs stop at their next fence (they check the lease before each
publish and before the commit).

The clients are boto3's (in the DAG: the amazon provider hooks' connections), so moto tests them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from triplake.lease import StillWriting

logger = logging.getLogger(__name__)


class JobRunFailed(RuntimeError):
    """The job run ended without succeeding; the message names its final state and why."""


class JobRunNotStopped(StillWriting):
    """A job run that was to be cancelled could not be seen to end: the lake's lease is left to expire."""


@dataclass(frozen=True)
class RunState:
    name: str
    ended: bool
    succeeded: bool
    detail: str = ""


class JobRuns(Protocol):
    service: str

    def start(self) -> str: ...

    def state(self, run_id: str) -> RunState: ...

    def cancel(self, run_id: str) -> None: ...


class EmrServerlessRuns:
    """Runs of one job on an EMR Serverless application."""

    service = "EMR Serverless"
    _ENDED = {"SUCCESS", "FAILED", "CANCELLED"}

    def __init__(self, client: Any, application_id: str, execution_role_arn: str, job_driver: dict, name: str) -> None:
        self.client, self.application_id, self.execution_role_arn = client, application_id, execution_role_arn
        self.job_driver, self.name = job_driver, name

    def start(self) -> str:
        return self.client.start_job_run(applicationId=self.application_id, executionRoleArn=self.execution_role_arn,
                                         jobDriver=self.job_driver, configurationOverrides={}, name=self.name)["jobRunId"]

    def state(self, run_id: str) -> RunState:
        run = self.client.get_job_run(applicationId=self.application_id, jobRunId=run_id)["jobRun"]
        name = run["state"]
        return RunState(name, name in self._ENDED, name == "SUCCESS", run.get("stateDetails") or "")

    def cancel(self, run_id: str) -> None:
        self.client.cancel_job_run(applicationId=self.application_id, jobRunId=run_id)


class GlueRuns:
    """Runs of one AWS Glue job."""

    service = "AWS Glue"
    _ENDED = {"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED"}

    def __init__(self, client: Any, job_name: str, arguments: dict[str, str]) -> None:
        self.client, self.job_name, self.arguments = client, job_name, arguments

    def start(self) -> str:
        return self.client.start_job_run(JobName=self.job_name, Arguments=self.arguments)["JobRunId"]

    def state(self, run_id: str) -> RunState:
        run = self.client.get_job_run(JobName=self.job_name, RunId=run_id)["JobRun"]
        name = run["JobRunState"]
        return RunState(name, name in self._ENDED, name == "SUCCEEDED", run.get("ErrorMessage") or "")

    def cancel(self, run_id: str) -> None:
        self.client.batch_stop_job_run(JobName=self.job_name, JobRunIds=[run_id])


def run_to_the_end(runs: JobRuns, poll_seconds: float, keep_going: Callable[[], None] = lambda: None,
                   sleep: Callable[[float], None] = time.sleep, cancel_timeout: float = 1800.0) -> RunState:
    """Starts a job run and waits for it to end; JobRunFailed unless it succeeded. keep_going() is asked at every
    poll and raises to stop (the lease was lost). Stopped on the way (that, the task killed, an error), it cancels
    the run and waits for the run to end before it lets the caller go on (and release the lease)."""
    run_id = runs.start()
    logger.info("%s job run %s started", runs.service, run_id)
    try:
        while not (state := runs.state(run_id)).ended:
            keep_going()
            sleep(poll_seconds)
    except BaseException as stopped:
        logger.warning("stopping %s job run %s", runs.service, run_id)
        try:
            _cancel_and_wait(runs, run_id, poll_seconds, cancel_timeout)
        except JobRunNotStopped as still_running:
            raise still_running from stopped
        raise
    logger.info("%s job run %s ended: %s", runs.service, run_id, state.name)
    if not state.succeeded:
        raise JobRunFailed(f"{runs.service} job run {run_id} ended {state.name}"
                           + (f": {state.detail}" if state.detail else ""))
    return state


def _cancel_and_wait(runs: JobRuns, run_id: str, poll_seconds: float, timeout: float) -> None:
    """Cancels a run and waits until it has ended; JobRunNotStopped when that cannot be seen."""
    deadline = time.monotonic() + timeout
    try:
        if runs.state(run_id).ended:
            return
        runs.cancel(run_id)
        while not runs.state(run_id).ended:
            if time.monotonic() > deadline:
                raise JobRunNotStopped(f"{runs.service} job run {run_id} did not end within {timeout:.0f} s of "
                                       "its cancel")
            time.sleep(poll_seconds)
    except JobRunNotStopped:
        raise
    except Exception as problem:
        raise JobRunNotStopped(f"could not cancel {runs.service} job run {run_id}: {problem}") from problem
