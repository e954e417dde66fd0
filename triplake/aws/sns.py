"""Publishing ingestion status events to the SNS topic (their schema: docs/architecture.md, "Status events")."""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping

from triplake.events import message_attributes

logger = logging.getLogger(__name__)


def publish_status(sns_client: Any, topic_arn: str, event: Mapping[str, Any]) -> str:
    """Publishes one status event; returns the SNS MessageId."""
    response = sns_client.publish(
        TopicArn=topic_arn,
        Subject=f"triplake ingestion {event['ingestion_id']}: {event['status']}"[:100],
        Message=json.dumps(event),
        MessageAttributes=message_attributes(event),
    )
    logger.info("published %s of %s (%s)", event["status"], event["ingestion_id"], response["MessageId"])
    return response["MessageId"]
