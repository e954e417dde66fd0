"""One endpoint per AWS service (AWS_ENDPOINT_URL_<SERVICE>, the SDKs' convention): what the LocalStack stack needs
to send S3, SQS, SNS and STS to LocalStack and the rest to moto. Every client the code builds honours it."""

from __future__ import annotations

import json
import os

import boto3
import pytest

from triplake.aws import clients
from triplake.lake_files import filesystem
from triplake.local.airflow_env import aws_connection
from triplake.settings import AWS_SERVICES, Settings
from triplake.spark import s3a_conf

MOTO, LOCALSTACK = "http://127.0.0.1:5000", "http://127.0.0.1:4566"


@pytest.fixture
def split(monkeypatch) -> Settings:
    """Settings as a shell of `triplake stack up --aws localstack` has them, from the SDKs' own variable names."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", MOTO)
    for service in ("S3", "SQS", "SNS", "STS"):
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", LOCALSTACK)
    return Settings(aws_access_key_id="testing", aws_secret_access_key="testing")


def test_the_services_are_named_as_boto3_names_them():
    assert set(AWS_SERVICES) <= set(boto3.session.Session().get_available_services())
    assert set(AWS_SERVICES) == {"s3", "sqs", "sns", "sts", "glue", "athena", "emr-serverless"}


def test_a_service_without_an_endpoint_of_its_own_takes_the_shared_one(split):
    assert {service: split.endpoint_url(service) for service in AWS_SERVICES} == {
        "s3": LOCALSTACK, "sqs": LOCALSTACK, "sns": LOCALSTACK, "sts": LOCALSTACK,
        "glue": MOTO, "athena": MOTO, "emr-serverless": MOTO}
    assert split.emulated


def test_without_any_endpoint_everything_goes_to_aws(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "TRIPLAKE_AWS_ENDPOINT_URL",
                 *[f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}" for service in AWS_SERVICES]):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert not settings.emulated and all(settings.endpoint_url(service) is None for service in AWS_SERVICES)


def test_boto3_clients_spark_and_pyarrow_reach_each_service_at_its_own_endpoint(split):
    s3, glue = clients(split, "s3", "glue")
    assert (s3.meta.endpoint_url, glue.meta.endpoint_url) == (LOCALSTACK, MOTO)
    assert s3a_conf(split)["spark.hadoop.fs.s3a.endpoint"] == LOCALSTACK
    fs, root = filesystem("s3://lake-bucket/lake", split)
    options = fs.__reduce__()[1][0]  # pyarrow's own record of how the filesystem was made
    assert (options["endpoint_override"], options["scheme"], root) == ("127.0.0.1:4566", "http", "lake-bucket/lake")


def test_the_airflow_connection_gives_the_providers_hooks_each_services_endpoint(split):
    from airflow.models.connection import Connection
    from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper

    connection = Connection(conn_id="aws_default", **json.loads(aws_connection(split)))
    wrapper = AwsConnectionWrapper(conn=connection)
    assert {service: wrapper.get_service_endpoint_url(service) for service in AWS_SERVICES} == {
        service: split.endpoint_url(service) for service in AWS_SERVICES}


def test_a_shell_prepared_by_stack_env_sends_any_aws_sdk_to_the_stack(monkeypatch):
    from triplake.local.stack import client_env

    settings = Settings(aws_endpoint_url=MOTO, aws_region="eu-west-1", aws_access_key_id="triplake-local",
                        aws_secret_access_key="triplake-local",
                        **{f"aws_endpoint_url_{service}": LOCALSTACK for service in ("s3", "sqs", "sns", "sts")})
    exported = client_env(settings, {"landing_queue_url": "q", "status_topic_arn": "t"})
    for name in [name for name in os.environ if name.startswith(("AWS_", "TRIPLAKE_"))]:
        monkeypatch.delenv(name)
    for name, value in exported.items():
        monkeypatch.setenv(name, value)
    session = boto3.session.Session()  # boto3 itself, as the AWS CLI or an awswrangler script would build it
    assert session.region_name == "eu-west-1"
    assert {service: session.client(service).meta.endpoint_url for service in AWS_SERVICES} == {
        "s3": LOCALSTACK, "sqs": LOCALSTACK, "sns": LOCALSTACK, "sts": LOCALSTACK,
        "glue": MOTO, "athena": MOTO, "emr-serverless": MOTO}
    assert Settings().endpoint_url("s3") == LOCALSTACK and Settings().lake_root == settings.lake_root
