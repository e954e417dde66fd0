"""`make package`: what EMR Serverless runs — spark_jobs/ as one zip (for --py-files) and each job's file as an
entry point beside it. Upload the folder to the s3:// prefix named by TRIPLAKE_EMR_PACKAGE_URI.

Run as `python -m triplake.package [--out DIR]`; the zip holds only the package's .py files, so it imports with
pyspark and the standard library alone (and numpy, which pyspark.ml brings).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import zipfile
from pathlib import Path

from triplake.orchestration import PACKAGE_ZIP, SPARK_JOBS
from triplake.settings import LOCAL_DIR, REPO_ROOT

SOURCE = REPO_ROOT / "spark_jobs"
# A fixed timestamp: the same sources give the same zip, byte for byte.
ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def build_package(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    archive = out / PACKAGE_ZIP
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for source in sorted(SOURCE.rglob("*.py")):
            entry = zipfile.ZipInfo(str(source.relative_to(REPO_ROOT)), date_time=ZIP_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(entry, source.read_bytes())
    entry_points = []
    for job in SPARK_JOBS:
        entry_points.append(out / f"{job}.py")
        shutil.copyfile(SOURCE / f"{job}.py", entry_points[-1])
    return [archive, *entry_points]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="package", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=LOCAL_DIR / "package")
    args = parser.parse_args(argv)
    for path in build_package(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
