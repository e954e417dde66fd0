"""The local SparkSession of triplake: local mode, UTC, and the S3A connector pointed at the configured endpoint."""

from __future__ import annotations

import logging
import os

from pathlib import Path

from pyspark.sql import SparkSession

from spark_jobs.common import session as job_session
from triplake.jars import missing_jars, jar_paths
from triplake.settings import Settings

logger = logging.getLogger(__name__)

LOG4J2_CONFIG = Path(__file__).with_name("log4j2.properties")


def s3a_conf(settings: Settings) -> dict[str, str]:
    """Hadoop settings that make s3:// and s3a:// URIs go through S3A to AWS, moto or LocalStack."""
    conf = {
        # s3:// is what users and AWS write; locally S3A serves it (on EMR, EMRFS does).
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.endpoint.region": settings.aws_region,
    }
    if settings.aws_endpoint_url:
        conf |= {
            "spark.hadoop.fs.s3a.endpoint": settings.aws_endpoint_url,
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": str(settings.aws_endpoint_url.startswith("https")).lower(),
        }
    if settings.aws_access_key_id and settings.aws_secret_access_key:
        conf |= {
            "spark.hadoop.fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
            "spark.hadoop.fs.s3a.access.key": settings.aws_access_key_id,
            "spark.hadoop.fs.s3a.secret.key": settings.aws_secret_access_key,
        }
    return conf


def build_local_session(settings: Settings, app_name: str = "triplake") -> SparkSession:
    """One SparkSession per process (a JVM start costs ~7 s): callers share it."""
    # Spark binds its driver to this address; loopback keeps it off every network.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        SparkSession.builder.master(settings.spark_master)
        .appName(app_name)
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={LOG4J2_CONFIG.as_uri()} -XX:-DontCompileHugeMethods")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        .config("spark.sql.adaptive.enabled", "true")
    )
    for key, value in job_session.JOB_SQL_CONF.items():
        builder = builder.config(key, value)
    if missing_jars(settings.jars_dir):
        logger.warning("S3A jars missing in %s: s3:// URIs will not work (run `make setup`)", settings.jars_dir)
    else:
        builder = builder.config("spark.jars", ",".join(str(path) for path in jar_paths(settings.jars_dir)))
        for key, value in s3a_conf(settings).items():
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
