"""LocalStack as a host process: the second local AWS, for S3, SQS, SNS and STS (its free community edition has no
Glue, Athena or EMR Serverless, which stay on moto).

Unlike moto, LocalStack sends SNS subscription confirmations and signs every HTTP delivery as SNS does (with a
certificate it serves under /_aws/sns/), and delivers asynchronously: what real AWS does. It lives in a venv of its
own (`make localstack`: .venv-localstack), since its pins differ from Airflow's; no Docker, no auth token.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from triplake.local.moto_server import LOOPBACK, free_port
from triplake.processes import alive, stop_group
from triplake.settings import REPO_ROOT

VENV = REPO_ROOT / ".venv-localstack"
SERVICES = ("s3", "sqs", "sns", "sts")


class LocalStackMissing(RuntimeError):
    """LocalStack's venv is not installed; the message says how to install it."""


def python() -> Path:
    executable = VENV / "bin" / "python"
    if not executable.exists():
        raise LocalStackMissing(f"LocalStack is not installed in {VENV}: `make localstack` installs it (pinned, "
                                "in a venv of its own)")
    return executable


def environment(port: int, directory: Path) -> dict[str, str]:
    """LocalStack's settings: loopback only, our services only, nothing kept (the stack saves its own state), and its
    files under the stack's directory (its S3 objects go under TMPDIR, whatever FILESYSTEM_ROOT says)."""
    address = f"{LOOPBACK}:{port}"
    return {
        "GATEWAY_LISTEN": address, "LOCALSTACK_HOST": address, "SERVICES": ",".join(SERVICES),
        "GATEWAY_SERVER": "hypercorn", "OVERRIDE_IN_DOCKER": "0", "DNS_ADDRESS": "0", "DISABLE_EVENTS": "1",
        "SKIP_SSL_CERT_DOWNLOAD": "1", "PERSISTENCE": "0",
        # Queue URLs on the endpoint's own host (http://127.0.0.1:PORT/queue/...), not on sqs.<region>.127.0.0.1.
        "SQS_ENDPOINT_STRATEGY": "path", "FILESYSTEM_ROOT": str(directory / "filesystem"),
        "TMPDIR": str(directory / "tmp"),
    }


def start(directory: Path, log: Path) -> tuple[int, str]:
    """Starts LocalStack in a process group of its own; returns its pid and endpoint (not yet ready: see ready())."""
    port = free_port()
    (directory / "tmp").mkdir(parents=True, exist_ok=True)
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "TRIPLAKE_"))}
    with log.open("a") as output:
        process = subprocess.Popen([str(python()), "-m", "localstack.runtime.main"], cwd=directory,
                                   env=env | environment(port, directory), stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    return process.pid, f"http://{LOOPBACK}:{port}"


def ready(endpoint: str) -> bool:
    """Whether every service we use reports itself available."""
    try:
        with urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=2) as response:  # noqa: S310 - loopback
            services = json.loads(response.read()).get("services", {})
    except (OSError, ValueError):
        return False
    return all(services.get(service) in ("available", "running") for service in SERVICES)


def certificate_url_prefix(endpoint: str) -> str:
    """Where LocalStack serves the certificate its SNS signs with (what a test trusts, and nothing else does)."""
    return f"{endpoint}/_aws/sns/"


@contextmanager
def running_localstack(directory: Path, timeout: float = 60.0) -> Iterator[str]:
    """LocalStack for the duration of the block (tests); yields its endpoint."""
    import time

    directory.mkdir(parents=True, exist_ok=True)
    pid, endpoint = start(directory, directory / "localstack.log")
    try:
        deadline = time.monotonic() + timeout
        while not ready(endpoint):
            if not alive(pid) or time.monotonic() > deadline:
                raise RuntimeError(f"LocalStack did not come up; see {directory / 'localstack.log'}")
            time.sleep(0.3)
        yield endpoint
    finally:
        stop_group(pid, grace=10.0)
