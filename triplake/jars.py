"""Fetch the two S3A connector jars once into a cache outside git.

Maven Central is not reachable from the build machines, but the PyPI sdist of sagemaker_pyspark 1.4.5
carries hadoop-aws 3.3.1 and the matching AWS SDK bundle, which work with pyspark 3.5.6.
Run as `python -m triplake.jars`; it does nothing when the jars are already cached.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from triplake.settings import get_settings

logger = logging.getLogger(__name__)

SOURCE_PACKAGE = "sagemaker_pyspark==1.4.5"
S3A_JARS = ("hadoop-aws-3.3.1.jar", "aws-java-sdk-bundle-1.11.901.jar")


def jar_paths(jars_dir: Path) -> list[Path]:
    return [jars_dir / name for name in S3A_JARS]


def missing_jars(jars_dir: Path) -> list[Path]:
    return [path for path in jar_paths(jars_dir) if not path.is_file()]


def ensure_jars(jars_dir: Path) -> list[Path]:
    """Return the jar paths, downloading and extracting them first if any is missing."""
    if not missing_jars(jars_dir):
        return jar_paths(jars_dir)
    jars_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="triplake-jars-") as tmp:
        print(f"Fetching the S3A jars from the PyPI sdist {SOURCE_PACKAGE} (once, ~180 MB)...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
             "--disable-pip-version-check", SOURCE_PACKAGE, "--dest", tmp],
            check=True,
        )
        (sdist,) = Path(tmp).glob("sagemaker_pyspark-*.tar.gz")
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                name = Path(member.name).name
                if name in S3A_JARS and member.isfile():
                    source = archive.extractfile(member)
                    if source is None:  # only links have no content, and isfile() excluded them
                        raise RuntimeError(f"{name} in the sagemaker_pyspark sdist cannot be read")
                    partial = jars_dir / f".{name}.partial"
                    with partial.open("wb") as target:
                        shutil.copyfileobj(source, target)
                    partial.replace(jars_dir / name)  # atomic: a killed download leaves no half jar
    still_missing = missing_jars(jars_dir)
    if still_missing:
        raise SystemExit(f"{SOURCE_PACKAGE} did not contain {', '.join(p.name for p in still_missing)}")
    return jar_paths(jars_dir)


if __name__ == "__main__":
    jars = ensure_jars(get_settings().jars_dir)
    print("S3A jars ready:", ", ".join(str(path) for path in jars))
