"""The local stack: a moto server as AWS, the resources Terraform would create, and `airflow standalone` running the
DAG against them — no AWS account, no Docker. With `--aws localstack`, LocalStack serves S3, SQS, SNS and STS (it
signs and confirms as SNS does) and moto the rest, each service through its own endpoint. State lives in
.local/stack/; every process runs in its own process group, and `down` stops exactly the groups `up` started (by
their ids, never by name).

The moto server (and LocalStack, started with PERSISTENCE=0) keeps its data in memory, so `down` saves the buckets
and the landing queue's pending uploads under .local/stack/saved/ and `up` restores them before
anything can start a run: the lake and Airflow's history (its SQLite database, kept under .local/stack/airflow/) stay
together. `down --forget` wipes both. Runs that a stopped or killed stack left running are failed by the next `up`,
and what they had received is ingested.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from triplake.aws import clients
from triplake.local import localstack, restart, saved_state
from triplake.local.airflow_env import airflow_env
from triplake.local.bootstrap import bootstrap, connect_landing_notifications
from triplake.local.moto_server import LOOPBACK, free_port
from triplake.processes import alive, stop_group
from triplake.settings import AWS_SERVICES, LOCAL_DIR, Settings, endpoint_field

STACK_DIR = LOCAL_DIR / "stack"
STATE_FILE = "state.json"
SAVED_DIR = "saved"
AIRFLOW_DIR = "airflow"
LOCAL_CREDENTIALS = {"aws_access_key_id": "triplake-local", "aws_secret_access_key": "triplake-local"}
LOCAL_LAKE_ROOT = "s3://triplake-lake/lake"
AIRFLOW_USER = "admin"
LOCAL_AWS = ("moto", "localstack")


class StackError(RuntimeError):
    """The stack could not do what was asked; the message says what to do."""


@dataclass
class StackState:
    directory: str
    moto_pid: int
    moto_endpoint: str
    aws: str = "moto"  # or "localstack": LocalStack serves localstack.SERVICES, moto the rest
    localstack_pid: int | None = None
    localstack_endpoint: str | None = None
    airflow_pid: int | None = None
    airflow_url: str | None = None
    airflow_home: str | None = None
    resources: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # TRIPLAKE_* and AWS_* for commands that use the stack

    def save(self) -> None:
        Path(self.directory, STATE_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, directory: Path = STACK_DIR) -> StackState | None:
        path = directory / STATE_FILE
        return cls(**json.loads(path.read_text())) if path.exists() else None

    @property
    def pids(self) -> list[int]:
        return [pid for pid in (self.airflow_pid, self.localstack_pid, self.moto_pid) if pid]

    @property
    def service_endpoints(self) -> dict[str, str]:
        """The services with an endpoint other than moto's (LocalStack's, in a LocalStack stack)."""
        return {service: self.localstack_endpoint for service in localstack.SERVICES} if self.localstack_endpoint else {}


def stack_settings(state: StackState, base: Settings) -> Settings:
    endpoints = {endpoint_field(service): url for service, url in state.service_endpoints.items()}
    return base.model_copy(update={"aws_endpoint_url": state.moto_endpoint, "lake_root": LOCAL_LAKE_ROOT,
                                   **LOCAL_CREDENTIALS, **endpoints})


def settings_of(state: StackState) -> Settings:
    """The settings a command of `triplake stack env`'s shell has: the stack's endpoints, credentials and names."""
    return Settings(**{name.removeprefix("TRIPLAKE_").lower(): value for name, value in state.env.items()})


def client_env(settings: Settings, resources: dict[str, str]) -> dict[str, str]:
    """What a shell needs to use the stack (`eval "$(triplake stack env)"`): triplake's own settings, and the AWS
    SDKs' own names of the same endpoints, region and credentials, so the AWS CLI, boto3 or awswrangler scripts go
    to the stack too (AWS_ENDPOINT_URL, and AWS_ENDPOINT_URL_<SERVICE> for a service LocalStack serves)."""
    own_endpoints = {endpoint_field(service).upper(): url for service in AWS_SERVICES
                     if (url := getattr(settings, endpoint_field(service)))}
    endpoints = {"AWS_ENDPOINT_URL": str(settings.aws_endpoint_url), **own_endpoints}
    return {
        **{f"TRIPLAKE_{name}": url for name, url in endpoints.items()},
        **endpoints,
        "TRIPLAKE_AWS_REGION": settings.aws_region,
        "AWS_DEFAULT_REGION": settings.aws_region,
        "AWS_ACCESS_KEY_ID": str(settings.aws_access_key_id),
        "AWS_SECRET_ACCESS_KEY": str(settings.aws_secret_access_key),
        "TRIPLAKE_LAKE_ROOT": settings.lake_root,
        "TRIPLAKE_LANDING_QUEUE_URL": resources["landing_queue_url"],
        "TRIPLAKE_STATUS_TOPIC_ARN": resources["status_topic_arn"],
    }


def up(base: Settings, directory: Path = STACK_DIR, say: Callable[[str], None] = print,
       ready_timeout: float = 240.0, aws: str = "moto") -> StackState:
    if aws not in LOCAL_AWS:
        raise StackError(f"unknown local AWS {aws!r}: use one of {', '.join(LOCAL_AWS)}")
    if aws == "localstack":
        try:
            localstack.python()
        except localstack.LocalStackMissing as problem:
            raise StackError(str(problem)) from problem
    existing = StackState.load(directory)
    if existing and all(alive(pid) for pid in existing.pids):
        raise StackError(f"the stack is already up (Airflow {existing.airflow_url}); `triplake stack down` first")
    if existing:  # a stack that was killed: its state file is left, its processes are gone
        down(directory, say=lambda _: None, save=False)
        for pid in leftover_processes(directory / AIRFLOW_DIR):
            say(f"stopping process group {pid}, left running by the stack that was killed")
            stop_group(pid, grace=5.0)
    directory.mkdir(parents=True, exist_ok=True)

    port = free_port()
    moto = _start([sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)], directory / "moto.log")
    state = StackState(directory=str(directory), moto_pid=moto, moto_endpoint=f"http://{LOOPBACK}:{port}", aws=aws)
    if aws == "localstack":  # both start side by side
        state.localstack_pid, state.localstack_endpoint = localstack.start(directory, directory / "localstack.log")
    state.save()  # from here on, `down` can stop what runs
    try:
        _wait_for(lambda: _responds(f"{state.moto_endpoint}/moto-api/"), "the moto server", 30.0, directory / "moto.log",
                  state.pids)
        if state.localstack_endpoint:
            _wait_for(lambda: localstack.ready(str(state.localstack_endpoint)), "LocalStack", 60.0,
                      directory / "localstack.log", state.pids)
            say(f"LocalStack (S3, SQS, SNS, STS) at {state.localstack_endpoint}; moto server (Glue, Athena, "
                f"EMR Serverless) at {state.moto_endpoint}")
        else:
            say(f"moto server (local AWS) at {state.moto_endpoint}")
        settings = stack_settings(state, base)
        resources = bootstrap(settings, notify=False).to_dict()
        settings = settings.model_copy(update={"landing_queue_url": resources["landing_queue_url"],
                                               "status_topic_arn": resources["status_topic_arn"]})
        state.resources, state.env = resources, client_env(settings, resources)
        say(f"created buckets {resources['landing_bucket']} and {resources['lake_bucket']}, the landing queue with a "
            f"dead-letter queue, the status topic, Glue database {resources['glue_database']}, Athena workgroup")
        _restore(directory / SAVED_DIR, settings, say)

        home = directory / AIRFLOW_DIR
        api_port = free_port()
        # standalone starts `airflow scheduler`, `airflow triggerer`, ... by name: this venv's airflow comes first.
        env = os.environ | airflow_env(settings, home, api_port) | {
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
        _airflow(["db", "migrate"], env, directory / "airflow.log")
        try:
            restart.fail_interrupted_runs(env, directory / "airflow.log", directory / SAVED_DIR, settings, say)
        except restart.RestartError as problem:
            raise StackError(str(problem)) from problem
        state.airflow_pid = _start([_airflow_bin(), "standalone"], directory / "airflow.log", env)
        state.airflow_url, state.airflow_home = f"http://{LOOPBACK}:{api_port}", str(home)
        state.save()
        say(f"airflow standalone starting at {state.airflow_url} (log: {directory / 'airflow.log'})")
        _wait_for(lambda: _healthy(state.airflow_url), "Airflow's scheduler, triggerer and DAG processor",
                  ready_timeout, directory / "airflow.log", state.pids)
        # The bucket notification's s3:TestEvent waits in the landing queue: once the DAG's asset watcher has taken
        # it, uploads start runs.
        (sqs,) = clients(settings, "sqs")
        _wait_for(lambda: _queue_empty(sqs, resources["landing_queue_url"]), "the DAG's watcher on the landing queue",
                  ready_timeout, directory / "airflow.log", state.pids)
        say("the trips_receive DAG is watching the landing queue: uploads start ingestions")
        restart.answer_waiting_uploads(settings, lambda: _airflow(["dags", "trigger", restart.INGEST_DAG], env,
                                                                  directory / "airflow.log"), say)
    except BaseException:
        down(directory, say=lambda _: None, save=False)  # a half-started stack must not replace the saved state
        raise
    return state


def down(directory: Path = STACK_DIR, say: Callable[[str], None] = print, grace: float = 20.0,
         forget: bool = False, save: bool = True) -> bool:
    """Stops the stack; first saves its AWS state (unless forget, which wipes the saved state and Airflow's history
    together, so a later `up` starts empty)."""
    state = StackState.load(directory)
    if state is None:
        if forget:
            _forget(directory, say)
        else:
            say("the stack is not up")
        return False
    if state.airflow_pid:
        stop_group(state.airflow_pid, grace)  # no run may write while the state is saved
    if save and not forget and all(alive(pid) for pid in state.pids if pid != state.airflow_pid) and state.resources:
        _save(directory / SAVED_DIR, state, say)
    if state.localstack_pid:
        stop_group(state.localstack_pid, grace)
    stop_group(state.moto_pid, grace)
    Path(directory, STATE_FILE).unlink(missing_ok=True)
    say(f"stopped Airflow{', LocalStack' if state.localstack_pid else ''} and the moto server")
    if forget:
        _forget(directory, say)
    return True


def _save(saved: Path, state: StackState, say: Callable[[str], None]) -> None:
    s3, sqs = clients(settings_of(state), "s3", "sqs")
    resources = state.resources
    counts = saved_state.save(saved, s3, sqs, [resources["landing_bucket"], resources["lake_bucket"]],
                              resources["landing_queue_url"])
    say(f"saved {counts['objects']} objects and {counts['messages']} pending uploads to {saved} (`triplake stack up` "
        "restores them; `down --forget` wipes them)")


def _restore(saved: Path, settings: Settings, say: Callable[[str], None]) -> None:
    s3, sqs = clients(settings, "s3", "sqs")
    objects = saved_state.restore(saved, s3)
    connect_landing_notifications(settings, str(settings.landing_queue_url))  # restored objects started nothing
    pending = saved_state.restore_messages(saved, sqs, str(settings.landing_queue_url))
    if objects or pending:
        say(f"restored {objects} objects and {pending} pending uploads from {saved}")


def _forget(directory: Path, say: Callable[[str], None]) -> None:
    saved_state.forget(directory / SAVED_DIR)
    shutil.rmtree(directory / AIRFLOW_DIR, ignore_errors=True)
    say(f"forgot the saved buckets, catalog and Airflow history under {directory}")


def status(directory: Path = STACK_DIR) -> dict[str, Any]:
    state = StackState.load(directory)
    if state is None:
        return {"up": False}
    return {
        "up": all(alive(pid) for pid in state.pids),
        "aws": state.aws,
        "moto": {"endpoint": state.moto_endpoint, "pid": state.moto_pid, "running": alive(state.moto_pid)},
        **({"localstack": {"endpoint": state.localstack_endpoint, "pid": state.localstack_pid,
                           "running": alive(state.localstack_pid), "services": list(localstack.SERVICES)}}
           if state.localstack_pid else {}),
        "airflow": {"url": state.airflow_url, "pid": state.airflow_pid,
                    "running": bool(state.airflow_pid and alive(state.airflow_pid)),
                    "login": {"user": AIRFLOW_USER, "password": airflow_password(state)}},
        "resources": state.resources,
        "logs": str(directory),
    }


def airflow_password(state: StackState) -> str | None:
    """airflow standalone's simple auth manager writes the generated password of each user here."""
    path = Path(state.airflow_home or "", "simple_auth_manager_passwords.json.generated")
    return json.loads(path.read_text()).get(AIRFLOW_USER) if path.exists() else None


def leftover_processes(airflow_home: Path) -> list[int]:
    """Process groups still running with this stack's AIRFLOW_HOME, e.g. task workers (each in a session of its own)
    that outlived a stack killed without `down`: found by their environment, never by name."""
    marker = f"AIRFLOW_HOME={airflow_home}".encode()
    groups = set()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0") and int(entry.name) != os.getpid():
                groups.add(os.getpgid(int(entry.name)))
        except (OSError, ValueError):
            continue
    return sorted(groups - {os.getpgrp()})


def _airflow_bin() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def _airflow(arguments: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("a") as output:
        completed = subprocess.run([_airflow_bin(), *arguments], env=env, stdout=output, stderr=subprocess.STDOUT)
    if completed.returncode != 0:
        raise StackError(f"`airflow {' '.join(arguments[:2])}` failed; see {log}")


def _start(command: list[str], log: Path, env: dict[str, str] | None = None) -> int:
    with log.open("a") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, start_new_session=True)  # its own process group, stopped by its id
    return process.pid


def _responds(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own loopback endpoint
            return True
    except OSError:
        return False


def _healthy(airflow_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{airflow_url}/api/v2/monitor/health", timeout=2) as response:  # noqa: S310
            health = json.loads(response.read())
    except (OSError, ValueError):
        return False
    parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    return all((health.get(part) or {}).get("status") == "healthy" for part in parts)


def _queue_empty(sqs: Any, queue_url: str) -> bool:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return all(int(value) == 0 for value in attributes.values())


def _wait_for(check: Callable[[], bool], what: str, timeout: float, log: Path, pids: list[int]) -> None:
    """Waits until check() holds; fails at once, pointing at the log, when a process it waits on has exited."""
    deadline = time.monotonic() + timeout
    while not check():
        if not all(alive(pid) for pid in pids):
            raise StackError(f"{what}: a process of the stack exited while starting; see {log}")
        if time.monotonic() > deadline:
            raise StackError(f"{what} did not come up within {timeout:.0f} s; see {log}")
        time.sleep(0.5)
