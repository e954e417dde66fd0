"""A batch's job run in the cloud, watched to its end under the lake's lease, against moto's EMR Serverless and Glue:
the lease lives as long as the run (beyond its first term), and a run that is stopped is cancelled and seen to end
before the lake is given back, or the lease is left to expire when that cannot be seen."""

from __future__ import annotations

import json
import urllib.request
import uuid

import boto3
import pytest

from tests.conftest import MOTO_CREDENTIALS
from triplake.cloud_runs import EmrServerlessRuns, GlueRuns, JobRunFailed, JobRunNotStopped, run_to_the_end
from triplake.lake_objects import S3Objects
from triplake.lease import LakeBusyError, LakeLease

LEASE_SECONDS = 1.5


class TaskKilled(BaseException):
    """What Airflow raises in a task it stops."""


@pytest.fixture
def aws(moto_endpoint):
    def client(service: str):
        return boto3.client(service, endpoint_url=moto_endpoint, region_name="us-east-1", **MOTO_CREDENTIALS)

    s3 = client("s3")
    s3.create_bucket(Bucket=(bucket := f"runs-{uuid.uuid4().hex[:12]}"))
    client.objects = S3Objects(s3, bucket, "lake")
    return client


def lease_of(objects, writer: str) -> LakeLease:
    return LakeLease(objects, writer, [f"{writer}-file"], owner=f"test {writer}", seconds=LEASE_SECONDS)


def glue_runs_take(moto_endpoint: str, polls: int | None) -> None:
    """moto's Glue job runs go STARTING -> RUNNING -> SUCCEEDED, one step every `polls` reads (None: at once)."""
    action, transition = ("set-transition", {"progression": "manual", "times": polls}) if polls else ("unset-transition", {})
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/state-manager/{action}", method="POST",
                                     data=json.dumps({"model_name": "glue::job_run", "transition": transition}).encode())
    urllib.request.urlopen(request).close()


def test_a_glue_run_that_outlives_the_first_lease_term_keeps_the_lake_until_it_has_ended(aws, moto_endpoint):
    glue = aws("glue")
    glue.create_job(Name="triplake-ingestion", Role="arn:aws:iam::123456789012:role/glue",
                    Command={"Name": "glueetl", "ScriptLocation": "s3://p/ingestion.py"})
    runs = GlueRuns(glue, "triplake-ingestion", {"--batch-id": "batch-1"})
    lease, rival = lease_of(aws.objects, "batch-1"), lease_of(aws.objects, "rival")
    refused = []

    def someone_else_tries() -> None:
        with pytest.raises(LakeBusyError):
            rival.acquire(wait_seconds=0)
        refused.append(lease.read()[0].expires_at)

    glue_runs_take(moto_endpoint, polls=5)
    try:
        with lease.held(wait_seconds=0):
            state = run_to_the_end(runs, poll_seconds=0.4, keep_going=someone_else_tries)
    finally:
        glue_runs_take(moto_endpoint, polls=None)
    assert state.name == "SUCCEEDED"
    assert len(refused) >= 8 and 0.4 * len(refused) > 2 * LEASE_SECONDS, "the run lived beyond two lease terms"
    assert len(set(refused)) > 1, "and the lease was renewed meanwhile"
    assert lease.read() is None, "given back once the run had ended"
    (run,) = glue.get_job_runs(JobName="triplake-ingestion")["JobRuns"]
    assert run["Arguments"] == {"--batch-id": "batch-1"}


class StillRunning:
    """moto's EMR Serverless job runs succeed at once; this one runs until it is cancelled (moto's own state)."""

    def __init__(self, client) -> None:
        self.client, self.reads = client, []

    def __getattr__(self, name):
        return getattr(self.client, name)

    def get_job_run(self, **kwargs):
        run = self.client.get_job_run(**kwargs)
        if run["jobRun"]["state"] == "SUCCESS":
            run["jobRun"]["state"] = "RUNNING"
        self.reads.append(run["jobRun"]["state"])
        return run


def emr_runs(aws, client) -> EmrServerlessRuns:
    application = aws("emr-serverless").create_application(name="t", releaseLabel="emr-7.12.0", type="SPARK")
    return EmrServerlessRuns(client, application["applicationId"], "arn:aws:iam::123456789012:role/emr",
                             {"sparkSubmit": {"entryPoint": "s3://p/ingestion.py"}}, name="triplake-batch-1")


def test_a_stopped_task_cancels_its_emr_run_and_gives_the_lake_back_only_after_the_run_has_ended(aws):
    client = StillRunning(aws("emr-serverless"))
    runs = emr_runs(aws, client)
    lease = lease_of(aws.objects, "batch-1")
    polls = []

    def killed_at_the_third_poll() -> None:
        polls.append(lease.read())
        if len(polls) == 3:
            raise TaskKilled()

    with pytest.raises(TaskKilled):
        with lease.held(wait_seconds=0):
            run_to_the_end(runs, poll_seconds=0.05, keep_going=killed_at_the_third_poll)
    (run,) = client.list_job_runs(applicationId=runs.application_id)["jobRuns"]
    assert run["state"] == "CANCELLED" and client.reads[-1] == "CANCELLED", "seen to end before the lake was free"
    assert all(held[0].writer == "batch-1" for held in polls) and lease.read() is None


def test_a_run_that_fails_fails_the_batch_and_one_that_cannot_be_stopped_keeps_the_lake_until_its_lease_expires(aws):
    class Fails(StillRunning):
        def get_job_run(self, **kwargs):
            run = self.client.get_job_run(**kwargs)
            run["jobRun"] |= {"state": "FAILED", "stateDetails": "Job failed, ExitCode: 1"}
            return run

    lease = lease_of(aws.objects, "batch-1")
    with pytest.raises(JobRunFailed, match="ended FAILED: Job failed, ExitCode: 1"):
        with lease.held(wait_seconds=0):
            run_to_the_end(emr_runs(aws, Fails(aws("emr-serverless"))), poll_seconds=0.05)
    assert lease.read() is None

    class CannotCancel(StillRunning):
        def cancel_job_run(self, **kwargs):
            raise RuntimeError("the service is unreachable")

    def killed() -> None:
        raise TaskKilled()

    with pytest.raises(JobRunNotStopped, match="could not cancel EMR Serverless job run .*unreachable"):
        with lease.held(wait_seconds=0):
            run_to_the_end(emr_runs(aws, CannotCancel(aws("emr-serverless"))), poll_seconds=0.05, keep_going=killed)
    held, _ = lease.read()
    assert held.writer == "batch-1" and not held.released_at, "left to expire: nobody writes beside the run before then"
