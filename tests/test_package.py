"""`make package`: the zip EMR Serverless gets holds spark_jobs/ only and imports with pyspark alone."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from triplake.package import build_package


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
