"""The watch endpoint: status events arrive the moment SNS publishes them; forged messages are refused."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import boto3

from tests.conftest import MOTO_CREDENTIALS
from tests.test_sns_signature import CERT_URL, signed, signer  # noqa: F401 - signer is a fixture
from triplake.aws.sns import publish_status
from triplake.events import SUCCEEDED, status_event
from triplake.watch import StatusReceiver, subscribe


def post(url: str, message: dict) -> int:
    request = urllib.request.Request(url, data=json.dumps(message).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_an_event_published_to_the_topic_arrives_at_the_receiver(moto_endpoint, test_settings):
    sns = boto3.client("sns", endpoint_url=moto_endpoint, region_name=test_settings.aws_region, **MOTO_CREDENTIALS)
    topic_arn = sns.create_topic(Name="triplake-ingestion-status-watch-test")["TopicArn"]
    event = status_event(ingestion_id="i-3", status=SUCCEEDED, source_uri="s3://b/landing/a.csv", counts={"rows_read": 1})
    # moto delivers unsigned messages: signatures are checked only against AWS.
    with StatusReceiver(verify_signatures=False) as receiver:
        assert receiver.url.startswith("http://127.0.0.1:")
        subscribe(sns, topic_arn, receiver.url)
        publish_status(sns, topic_arn, event)
        assert receiver.events.get(timeout=5) == event


def test_with_signatures_checked_a_signed_message_passes_and_an_unsigned_or_altered_one_is_refused(signer):  # noqa: F811
    key, pem = signer
    event = status_event(ingestion_id="i-4", status=SUCCEEDED, source_uri="s3://b/landing/a.csv")
    with StatusReceiver(verify_signatures=True, certificate_of=lambda url: pem) as receiver:
        genuine = signed(key, Message=json.dumps(event))
        assert post(receiver.url, genuine) == 200
        assert receiver.events.get(timeout=1) == event

        unsigned = {name: value for name, value in genuine.items() if name != "Signature"}
        altered = genuine | {"Message": json.dumps(event | {"status": "FAILED"})}
        assert post(receiver.url, unsigned) == 403
        assert post(receiver.url, altered) == 403
        assert receiver.events.empty()
        assert receiver.rejected == ["unsigned message: no Signature", "the signature does not match the message"]
