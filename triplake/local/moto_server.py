"""A moto server on 127.0.0.1 and a free port: local S3, SQS, SNS, Glue... without an AWS account.

It runs as a process of its own (in its own process group, stopped by its id), never as a thread of the caller:
delta-rs holds the Python interpreter while it talks to S3, so a moto thread in the same process could not answer.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from triplake.processes import stop_group

LOOPBACK = "127.0.0.1"
READY_SECONDS = 30.0


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@contextmanager
def running_moto_server(request_log: Path | None = None) -> Iterator[str]:
    """Run a moto server for the duration of the block; yields its endpoint URL. request_log: where the server's
    log goes, one line per request it answered ("PUT /bucket/key HTTP/1.1" 200), to count requests from."""
    port = free_port()
    endpoint = f"http://{LOOPBACK}:{port}"
    log = request_log.open("ab") if request_log is not None else subprocess.DEVNULL
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)],
                               stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):  # noqa: S310 - our loopback server
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the moto server on {endpoint} did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        stop_group(process.pid, grace=5.0)
        if request_log is not None:
            log.close()
