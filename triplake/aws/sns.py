"""Publishing ingestion status events to the SNS topic (their schema: docs/architecture.md, "Status events")."""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping

from triplake.events import message_attributes, status_subject

logger = logging.getLogger(__name__)


def publish_status(sns_client: Any, topic_arn: str, event: Mapping[str, Any]) -> str:
    """Publishes one status event with a boto3 client (outside Airflow; the DAG uses the provider's SnsHook);
    returns the SNS MessageId."""
    response = sns_client.publish(
        TopicArn=topic_arn,
        Subject=status_subject(event),
        Message=json.dumps(event),
        MessageAttributes={name: {"DataType": "String", "StringValue": value}
                           for name, value in message_attributes(event).items()},
    )
    logger.info("published %s of %s (%s)", event["status"], event["ingestion_id"], response["MessageId"])
    return response["MessageId"]
