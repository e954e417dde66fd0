"""`make package`: the zip EMR Serverless and Glue get holds spark_jobs/ only and imports with pyspark alone; the
libraries the runners install beside it are the tested pins and resolve on their platform."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile

import pytest

from triplake.orchestration import jobs_requirements
from triplake.package import build_package
from triplake.settings import REPO_ROOT

CONSTRAINTS = REPO_ROOT / "constraints.txt"
JOBS_REQUIREMENTS = REPO_ROOT / "spark_jobs" / "requirements.txt"


def test_the_package_holds_the_jobs_and_imports_with_pyspark_alone(tmp_path):
    archive, *entry_points = build_package(tmp_path / "package")
    names = zipfile.ZipFile(archive).namelist()
    assert "spark_jobs/ingest.py" in names and "spark_jobs/common/session.py" in names
    assert all(name.startswith("spark_jobs/") and name.endswith(".py") for name in names)
    assert [path.name for path in entry_points] == ["ingestion.py", "ingest.py", "group_routes.py", "build_weekly.py"]

    # As on EMR: the zip on the path, no triplake, no repository, nothing installed but pyspark (the venv's).
    check = ("import sys; import spark_jobs.ingestion, spark_jobs.ingest, spark_jobs.group_routes, spark_jobs.build_weekly; "
             "assert not any(name.split('.')[0] in ('triplake', 'boto3', 'airflow', 'duckdb') for name in sys.modules), "
             "sorted(sys.modules); "
             f"assert spark_jobs.ingest.__file__.startswith({str(archive)!r}), spark_jobs.ingest.__file__")
    result = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(archive)!r}); {check}"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_same_sources_give_the_same_zip(tmp_path):
    first, *_ = build_package(tmp_path / "one")
    second, *_ = build_package(tmp_path / "two")
    assert first.read_bytes() == second.read_bytes()


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("architecture", ["x86_64", "aarch64"])  # Glue's workers; the EMR Serverless default, ARM64
def test_the_jobs_libraries_are_the_tested_pins_and_install_alone_on_the_runners_python_and_platform(architecture,
                                                                                                   tmp_path):
    pins = {canonical(name): version for name, version in (pin.split("==") for pin in jobs_requirements())}
    tested = {canonical(name): version for name, version in
              (line.split("==") for line in CONSTRAINTS.read_text().splitlines() if "==" in line)}
    assert {"deltalake", "pyarrow", "numpy"} <= pins.keys() and all(tested[name] == pins[name] for name in pins)

    # Glue 5.1 and the EMR Serverless image run Amazon Linux 2023 (glibc 2.34) and Python 3.11: pip resolves the
    # list for that platform from PyPI's metadata, without installing anything.
    platforms = [f"manylinux_2_{minor}_{architecture}" for minor in range(34, 4, -1)] + [f"manylinux2014_{architecture}"]
    report = tmp_path / "report.json"
    resolve = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed", "--target",
         str(tmp_path / "target"), *(f"--platform={platform}" for platform in platforms), "--only-binary=:all:",
         "--python-version=3.11", "--implementation=cp", f"--report={report}", "-r", str(JOBS_REQUIREMENTS)],
        capture_output=True, text=True, timeout=300)
    assert resolve.returncode == 0, resolve.stderr[-2000:]
    resolved = {canonical(item["metadata"]["name"]): item["metadata"]["version"]
                for item in json.loads(report.read_text())["install"]}
    assert resolved == pins, "every library the list needs is on it, at its pin: the runner installs nothing else"
