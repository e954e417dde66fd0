"""Static checks of the code that runs where tests reach it late or not at all (Spark jobs on EMR, DAG tasks)."""

from __future__ import annotations

import subprocess
import sys

from triplake.settings import REPO_ROOT


def test_no_undefined_names_or_unused_imports():
    checked = [str(REPO_ROOT / folder) for folder in ("spark_jobs", "triplake", "dags", "bench")]
    result = subprocess.run([sys.executable, "-m", "pyflakes", *checked], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
