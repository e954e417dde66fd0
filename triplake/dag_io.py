"""What the DAGs' tasks read and write, through the amazon provider's hooks on the connection
TRIPLAKE_AIRFLOW_AWS_CONN_ID: status events on SNS, the lake's control objects and the jobs' reports on S3.

Imported by the tasks when they run, never when a DAG file is parsed (no AWS call at parse time).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Callable

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.hooks.sns import SnsHook
from airflow.providers.amazon.aws.hooks.sts import StsHook

from triplake import orchestration
from triplake.events import message_attributes, status_subject
from triplake.lake_objects import LakeObjects, lake_objects
from triplake.settings import get_settings


@cache
def status_topic_arn() -> str:
    """Asks STS for the account only when the topic's ARN is not configured, and once per task process."""
    settings = get_settings()
    return orchestration.topic_arn(settings, StsHook(aws_conn_id=settings.airflow_aws_conn_id).get_account_number)


def publish(event: dict) -> None:
    publisher()(event)


def publisher() -> Callable[[dict], None]:
    """publish, with its connection and topic looked up now: a thread of the task (which must not ask Airflow for
    connections itself) can then publish with it."""
    hook, target_arn = SnsHook(aws_conn_id=get_settings().airflow_aws_conn_id), status_topic_arn()
    hook.get_conn()  # the client is made (and kept by the hook) here, in the task's own thread

    def publish_event(event: dict) -> None:
        hook.publish_to_target(target_arn=target_arn, message=json.dumps(event), subject=status_subject(event),
                               message_attributes=message_attributes(event))

    return publish_event


def s3_client() -> Any:
    return S3Hook(aws_conn_id=get_settings().airflow_aws_conn_id).get_conn()


def objects() -> LakeObjects:
    """The lake's control objects (receipts, inbox, lease, batches): compare-and-swap writes need the S3 client."""
    settings = get_settings()
    return lake_objects(settings.lake_root, settings, s3_client())
