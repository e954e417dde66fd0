"""A moto server on 127.0.0.1 and a free port: local S3 (and later SQS, SNS, Glue) without an AWS account."""

from __future__ import annotations

import socket
from contextlib import contextmanager
from typing import Iterator

from moto.server import ThreadedMotoServer

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@contextmanager
def running_moto_server() -> Iterator[str]:
    """Run a moto server in this process for the duration of the block; yields its endpoint URL."""
    port = free_port()
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
    server.start()
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.stop()
