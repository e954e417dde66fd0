"""The `local` Spark runner: each job is a spark-submit subprocess in local mode, against the same lake URI."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections import deque
from pathlib import Path

from triplake.settings import Settings
from triplake.spark import local_spark_conf

logger = logging.getLogger(__name__)

JOBS_DIR = Path(__file__).resolve().parents[2] / "spark_jobs"
ERROR_TAIL_LINES = 20


class SparkJobFailed(RuntimeError):
    """A spark-submit exited non-zero; the message ends with the last lines it wrote to stderr."""


def spark_submit_command(job: str, job_args: list[str], settings: Settings) -> list[str]:
    spark_submit = Path(sys.executable).with_name("spark-submit")
    command = [str(spark_submit), "--name", f"triplake-{job}"]
    for key, value in local_spark_conf(settings, with_credentials=False).items():
        command += ["--conf", f"{key}={value}"]
    return [*command, str(JOBS_DIR / f"{job}.py"), *job_args]


def spark_submit_env(settings: Settings) -> dict[str, str]:
    """The job's environment: this Python for the workers, and credentials where S3A looks for them."""
    env = os.environ | {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
                        "SPARK_LOCAL_IP": "127.0.0.1"}
    if settings.aws_access_key_id and settings.aws_secret_access_key:
        env |= {"AWS_ACCESS_KEY_ID": settings.aws_access_key_id, "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key}
    return env


def run_spark_job(job: str, job_args: list[str], settings: Settings) -> None:
    """Runs one job of spark_jobs/ to the end; its output goes to this process's log as it comes."""
    command = spark_submit_command(job, job_args, settings)
    logger.info("spark-submit %s %s", job, " ".join(job_args))
    tail: deque[str] = deque(maxlen=ERROR_TAIL_LINES)
    with subprocess.Popen(command, env=spark_submit_env(settings), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as process:
        for line in process.stdout or ():  # stdout is a pipe: never None
            logger.info("%s", line.rstrip())
            tail.append(line.rstrip())
    if process.returncode != 0:
        raise SparkJobFailed(f"spark job {job} exited with {process.returncode}; last output:\n" + "\n".join(tail))
