"""The AWS CLI against a local stack, as a user runs it, and the order the stack answered the uploads in.

Used by the stack tests and `make bench-burst`: the CLI (installed in .venv-awscli by `make test` and
`make bench-burst`) runs in a shell that knows the stack only through `eval "$(triplake stack env)"`, with a PATH
of its own, so nothing of the caller's environment reaches it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from triplake.inbox import RECEIPTS, Receipt
from triplake.lake_objects import lake_objects
from triplake.local import stack
from triplake.query.local import LocalEngine
from triplake.query.statement import Statement
from triplake.settings import REPO_ROOT

AWS_CLI = REPO_ROOT / ".venv-awscli" / "bin" / "aws"


def run(stack_directory: Path, working_directory: Path, *commands: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs the shell commands (`aws s3 cp ...`) in working_directory; returns what they printed and their exit code."""
    shell = (f'set -euo pipefail; eval "$(triplake stack env --directory {stack_directory})"; '
             + "; ".join(commands))
    clean = {"PATH": os.pathsep.join([str(AWS_CLI.parent), str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
             "HOME": str(working_directory)}
    return subprocess.run(["/bin/bash", "-c", shell], env=clean, cwd=working_directory, capture_output=True,
                          text=True, timeout=timeout)


def upload_order(state: stack.StackState) -> list[str]:
    """The ingestion ids of every upload the stack received, in the order S3 took the uploads (their receipts)."""
    objects = lake_objects(state.env["TRIPLAKE_LAKE_ROOT"], stack.settings_of(state))
    receipts = [Receipt.from_json(objects.read(key)[0]) for key in objects.keys(f"{RECEIPTS}/")]
    return [receipt.ingestion_id for receipt in sorted(receipts, key=lambda receipt: receipt.inbox_key)]


def commit_order(state: stack.StackState) -> list[str]:
    """The ingestion ids the lake recorded, in the order they finished (the `ingestions` table's finished_at)."""
    engine = LocalEngine(state.env["TRIPLAKE_LAKE_ROOT"], stack.settings_of(state))
    rows = engine.run(Statement("select ingestion_id from ingestions order by finished_at"), {}).records()
    return [row["ingestion_id"] for row in rows]
