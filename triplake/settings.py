"""The one Settings object: every knob of triplake comes from a TRIPLAKE_* environment variable.

Nothing else in the code base reads os.environ. AWS credentials and the endpoint also accept the
standard AWS_* names, so moto, LocalStack and real AWS are configured the way users already know.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL_DIR = REPO_ROOT / ".local"


def endpoint_field(service: str) -> str:
    """The Settings field of one service's own endpoint, by boto3's name of the service (emr-serverless ->
    aws_endpoint_url_emr_serverless); its variable is that name in upper case, with TRIPLAKE_ or without."""
    return f"aws_endpoint_url_{service.replace('-', '_')}"


def _service_endpoint(service: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(f"TRIPLAKE_AWS_ENDPOINT_URL_{service}",
                                                              f"AWS_ENDPOINT_URL_{service}"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIPLAKE_", extra="ignore")

    lake_root: str = Field(
        default=(LOCAL_DIR / "lake").as_uri(),
        description="URI of the lake: s3://bucket/prefix or file:///path",
    )
    jars_dir: Path = Field(
        default=Path.home() / ".cache" / "triplake" / "jars",
        description="Cache of the S3A connector jars (outside git)",
    )
    sql_cache_dir: Path | None = Field(
        default=Path.home() / ".cache" / "triplake" / "sql",
        description="DuckDB forms of the sql/ files, so a local query starts without transpiling (None: no cache)",
    )

    spark_runner: Literal["local", "emr-serverless", "glue"] = "local"
    spark_master: str = "local[*]"
    spark_driver_memory: str = "4g"
    spark_shuffle_partitions: int = Field(default=8, ge=1)
    spark_event_log_dir: str | None = Field(
        default=None, description="Local Spark writes its event log here (history server, spill figures of bench-scale)"
    )

    lake_lease_seconds: float = Field(
        default=120.0, gt=0,
        description="Life of the lake's writer lease without renewal; its holder renews it every third of that",
    )
    lake_lease_wait_seconds: float = Field(
        default=1800.0, ge=0,
        description="How long a writer waits for a lake whose holder shows no progress (its lease neither renewed nor "
                    "expired), then fails; a holder that renews is waited for",
    )
    compact_target_bytes: int = Field(
        default=128 * 2**20, ge=2**20, description="`triplake maintain` compacts a table's small files toward this size"
    )
    vacuum_retention_hours: int = Field(
        default=168, ge=0,
        description="`triplake maintain` deletes files replaced longer ago than this: longer than any query runs",
    )
    fault_at: str | None = Field(
        default=None, description="Tests only: the publish point (e.g. ingest:moving) where a Spark job kills itself"
    )

    landing_bucket: str = Field(default="triplake-landing", description="Bucket users upload their CSV files to")
    landing_prefix: str = Field(default="incoming/", description="Key prefix whose new objects start an ingestion")
    landing_queue_name: str = Field(default="triplake-landing", description="SQS queue of the landing bucket's events")
    landing_queue_url: str | None = Field(
        default=None, description="URL of that queue, which the DAG's asset watcher reads (terraform output)"
    )
    status_topic_name: str = Field(default="triplake-ingestion-status", description="SNS topic of status events")
    status_topic_arn: str | None = Field(
        default=None, description="ARN of that topic; None looks it up from the account at run time"
    )

    airflow_aws_conn_id: str = Field(default="aws_default", description="Airflow connection the DAG's AWS calls use")
    batch_max_files: int = Field(
        default=100, ge=1, description="At most this many waiting uploads are ingested by one Spark application"
    )
    batch_max_bytes: int = Field(
        default=2 * 2**30, ge=1,
        description="...and at most this many bytes of them (a larger file is a batch of its own): a folder of ten "
                    "thousand files is a series of bounded jobs",
    )

    emr_application_id: str | None = Field(default=None, description="EMR Serverless application (emr-serverless runner)")
    emr_execution_role_arn: str | None = Field(default=None, description="Job role of the EMR Serverless job runs")
    announce_poll_seconds: float = Field(
        default=2.0, gt=0, description="While a batch runs, how often the lake is read for the files that have ended, "
                                       "so each upload is answered once its file commits")
    emr_poll_seconds: int = Field(default=30, ge=1, description="How often a running EMR or Glue job run is checked")
    emr_package_uri: str | None = Field(
        default=None, description="s3:// prefix holding the `make package` zip and entry points (EMR Serverless, Glue)"
    )
    glue_job_name: str = Field(default="triplake-ingestion", description="The AWS Glue job of a batch's ingestions "
                               "(glue runner; infra/ defines it)")

    glue_database: str = Field(default="triplake", description="Glue catalog database of the lake's tables")
    athena_workgroup: str = Field(default="triplake", description="Athena workgroup (holds the result location)")
    athena_query_timeout_seconds: float = Field(default=300.0, gt=0)

    aws_region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("TRIPLAKE_AWS_REGION", "AWS_DEFAULT_REGION", "AWS_REGION"),
    )
    aws_endpoint_url: str | None = Field(
        default=None,
        description="moto or LocalStack endpoint of every service without an endpoint of its own; None means real AWS",
        validation_alias=AliasChoices("TRIPLAKE_AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL"),
    )
    # One endpoint per service, named as the AWS SDKs name them (AWS_ENDPOINT_URL_<SERVICE>): the LocalStack stack
    # serves S3, SQS, SNS and STS from LocalStack and Glue, Athena and EMR Serverless from moto.
    aws_endpoint_url_s3: str | None = _service_endpoint("S3")
    aws_endpoint_url_sqs: str | None = _service_endpoint("SQS")
    aws_endpoint_url_sns: str | None = _service_endpoint("SNS")
    aws_endpoint_url_sts: str | None = _service_endpoint("STS")
    aws_endpoint_url_glue: str | None = _service_endpoint("GLUE")
    aws_endpoint_url_athena: str | None = _service_endpoint("ATHENA")
    aws_endpoint_url_emr_serverless: str | None = _service_endpoint("EMR_SERVERLESS")
    aws_access_key_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TRIPLAKE_AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
    )
    aws_secret_access_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TRIPLAKE_AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
    )
    sns_trusted_certificate_url: str | None = Field(
        default=None,
        description="URL prefix of the certificates `triplake watch` trusts to sign SNS messages; None: only "
                    "https://sns.<region>.amazonaws.com/ (a test points it at LocalStack's /_aws/sns/)",
    )

    def endpoint_url(self, service: str) -> str | None:
        """The endpoint of one service (boto3's name: s3, sqs, emr-serverless...): its own, else the shared one."""
        own = getattr(self, endpoint_field(service), None)
        return own or self.aws_endpoint_url

    @property
    def emulated(self) -> bool:
        """True when any service is served by moto or LocalStack rather than AWS."""
        return any(getattr(self, name) for name in type(self).model_fields if name.startswith("aws_endpoint_url"))


# The services with an endpoint setting of their own, in boto3's names (s3, ..., emr-serverless).
AWS_SERVICES = tuple(name.removeprefix("aws_endpoint_url_").replace("_", "-") for name in Settings.model_fields
                     if name.startswith("aws_endpoint_url_"))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
