"""Creates in moto (or LocalStack) what Terraform creates in AWS, so the local stack runs the same DAG.

Landing and lake buckets (private, encrypted), the landing queue with its dead-letter queue, the bucket's
ObjectCreated notification to that queue for every object under the landing prefix, the status topic, the Glue
database with the tables of sql/ddl, and the Athena workgroup. Every step is idempotent: running it twice is fine.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlparse

from triplake.aws import clients, glue
from triplake.settings import Settings

logger = logging.getLogger(__name__)

MAX_RECEIVES_BEFORE_DEAD_LETTER = 5


@dataclass(frozen=True)
class Resources:
    landing_bucket: str
    lake_bucket: str
    landing_queue_url: str
    dead_letter_queue_url: str
    status_topic_arn: str
    glue_database: str
    athena_workgroup: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def lake_bucket(settings: Settings) -> str:
    parsed = urlparse(settings.lake_root)
    if parsed.scheme != "s3":
        raise ValueError(f"the stack needs an s3:// lake root, not {settings.lake_root!r}")
    return parsed.netloc


def bootstrap(settings: Settings, notify: bool = True) -> Resources:
    """Creates every resource. notify=False leaves the landing bucket's notification for later
    (connect_landing_notifications): the local stack first restores its saved objects, which must start nothing."""
    s3, sqs, sns, glue_client, athena = clients(settings, "s3", "sqs", "sns", "glue", "athena")
    for bucket in (settings.landing_bucket, lake_bucket(settings)):
        _private_encrypted_bucket(s3, bucket, settings.aws_region)

    dead_letter_url = sqs.create_queue(QueueName=f"{settings.landing_queue_name}-dlq")["QueueUrl"]
    queue_url = sqs.create_queue(
        QueueName=settings.landing_queue_name,
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": _queue_arn(sqs, dead_letter_url),
                                                 "maxReceiveCount": str(MAX_RECEIVES_BEFORE_DEAD_LETTER)})},
    )["QueueUrl"]
    queue_arn = _queue_arn(sqs, queue_url)
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(_only_bucket_may_send(
        queue_arn, settings.landing_bucket))})
    if notify:
        connect_landing_notifications(settings, queue_url)

    topic_arn = sns.create_topic(Name=settings.status_topic_name)["TopicArn"]
    glue.ensure_catalog(glue_client, settings.glue_database, settings.lake_root)
    _athena_workgroup(athena, settings)
    resources = Resources(
        landing_bucket=settings.landing_bucket, lake_bucket=lake_bucket(settings), landing_queue_url=queue_url,
        dead_letter_queue_url=dead_letter_url, status_topic_arn=topic_arn, glue_database=settings.glue_database,
        athena_workgroup=settings.athena_workgroup,
    )
    logger.info("bootstrapped %s", resources)
    return resources


def connect_landing_notifications(settings: Settings, queue_url: str) -> None:
    """The landing bucket tells the queue about every object created under the landing prefix, whatever its name:
    the DAG decides what it ingests (triplake.events.is_ingestible) and answers the rest FAILED, so no upload goes
    unanswered. (A suffix filter would be case-sensitive and silent about what it drops.)"""
    s3, sqs = clients(settings, "s3", "sqs")
    s3.put_bucket_notification_configuration(
        Bucket=settings.landing_bucket,
        NotificationConfiguration={"QueueConfigurations": [
            {"Id": "triplake-landing-uploads", "QueueArn": _queue_arn(sqs, queue_url), "Events": ["s3:ObjectCreated:*"],
             "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": settings.landing_prefix}]}}}
        ]},
    )


def _private_encrypted_bucket(s3: Any, bucket: str, region: str) -> None:
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        pass
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})


def _queue_arn(sqs: Any, queue_url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _only_bucket_may_send(queue_arn: str, bucket: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "LandingBucketNotifications", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "sqs:SendMessage", "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}}}]}


def _athena_workgroup(athena: Any, settings: Settings) -> None:
    names = {group["Name"] for group in athena.list_work_groups()["WorkGroups"]}
    if settings.athena_workgroup not in names:
        athena.create_work_group(Name=settings.athena_workgroup, Configuration={
            "ResultConfiguration": {"OutputLocation": f"{settings.lake_root.rstrip('/')}/_athena_results/"},
            "EnforceWorkGroupConfiguration": True})


if __name__ == "__main__":  # docker-compose.yml's bootstrap service: create the resources, print what was made
    from triplake.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(json.dumps(bootstrap(get_settings()).to_dict(), indent=2))
