"""Static checks: ruff over the whole repository (the code that runs where tests reach it late or not at all, Spark
jobs on EMR, DAG tasks, included), and that nothing refers to a file outside the repository."""

from __future__ import annotations

import subprocess
import sys

from triplake.settings import REPO_ROOT


def test_ruff_finds_nothing():
    # The rules are pyproject.toml's [tool.ruff]: pyflakes, pycodestyle, naming, bandit's security checks.
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(REPO_ROOT)],
                            capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_nothing_in_the_repository_refers_to_a_file_outside_it():
    # A clone is all a user has: the contract the code follows is docs/architecture.md.
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    outside = ("/".join(("..", "shared")), ".".join(("DESIGN", "md")))  # spelled apart: this file names them too
    offenders = []
    for name in tracked.stdout.splitlines():
        path = REPO_ROOT / name
        if not path.is_file() or path.suffix in {".png", ".gz", ".parquet"}:
            continue
        text = path.read_text(errors="replace")
        offenders += [f"{name}: {needle}" for needle in outside if needle in text]
    assert offenders == []
