"""The local SparkSession of triplake: local mode, UTC, and the S3A connector pointed at the configured endpoint."""

from __future__ import annotations

import logging
import os
import sys

from pathlib import Path

from pyspark.sql import SparkSession

from spark_jobs.common import session as job_session
from spark_jobs.common.ingestions import JIT_OPTIONS
from spark_jobs.common.publish import FAULT_CONF
from triplake.jars import missing_jars, jar_paths
from triplake.settings import Settings

logger = logging.getLogger(__name__)

LOG4J2_CONFIG = Path(__file__).with_name("log4j2.properties")


def s3a_conf(settings: Settings, with_credentials: bool = True) -> dict[str, str]:
    """Hadoop settings that make s3:// and s3a:// URIs go through S3A to AWS, moto or LocalStack.

    Without credentials, S3A finds them itself (AWS_* environment variables, then the instance role): what a
    spark-submit command line uses, since its arguments are visible to every user of the machine."""
    conf = {
        # s3:// is what users and AWS write; locally S3A serves it (on EMR, EMRFS does).
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.endpoint.region": settings.aws_region,
    }
    if endpoint := settings.endpoint_url("s3"):
        conf |= {
            "spark.hadoop.fs.s3a.endpoint": endpoint,
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": str(endpoint.startswith("https")).lower(),
        }
    if with_credentials and settings.aws_access_key_id and settings.aws_secret_access_key:
        conf |= {
            "spark.hadoop.fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
            "spark.hadoop.fs.s3a.access.key": settings.aws_access_key_id,
            "spark.hadoop.fs.s3a.secret.key": settings.aws_secret_access_key,
        }
    return conf


def local_spark_conf(settings: Settings, with_credentials: bool = True) -> dict[str, str]:
    """Everything a local-mode Spark of triplake is configured with, in-process or through spark-submit."""
    conf = {
        "spark.master": settings.spark_master,
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={LOG4J2_CONFIG.as_uri()} {JIT_OPTIONS}",
        # Spark binds its driver to this address; loopback keeps it off every network.
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.sql.adaptive.enabled": "true",
        **job_session.JOB_SQL_CONF,
    }
    if settings.fault_at:
        conf[FAULT_CONF] = settings.fault_at
    if settings.spark_event_log_dir:
        conf |= {"spark.eventLog.enabled": "true", "spark.eventLog.dir": settings.spark_event_log_dir}
    if missing_jars(settings.jars_dir):
        logger.warning("S3A jars missing in %s: s3:// URIs will not work (run `make setup`)", settings.jars_dir)
    else:
        conf["spark.jars"] = ",".join(str(path) for path in jar_paths(settings.jars_dir))
        conf |= s3a_conf(settings, with_credentials)
    return conf


def build_local_session(settings: Settings, app_name: str = "triplake") -> SparkSession:
    """One SparkSession per process (a JVM start costs ~7 s): callers share it."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the tasks that write tables run this Python's pyarrow
    builder = SparkSession.builder.appName(app_name)
    for key, value in local_spark_conf(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
