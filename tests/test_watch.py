"""The watch endpoint: status events arrive the moment SNS publishes them; forged messages are refused."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import boto3
import pytest

from tests.conftest import MOTO_CREDENTIALS
from tests.test_sns_signature import CERT_URL, signed, signer  # noqa: F401 - signer is a fixture
from triplake.aws import clients
from triplake.aws.sns import publish_status
from triplake.aws.sns_signature import verify
from triplake.local import localstack
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


@pytest.mark.localstack
def test_against_localstack_the_receiver_confirms_its_subscription_and_checks_real_signatures(
        test_settings, localstack_endpoint, monkeypatch):
    """LocalStack signs as SNS does: the confirmation and the event pass the real check; a copy with another
    Message is refused, and so is a genuine message once its certificate is not trusted."""
    import triplake.watch

    (sns,) = clients(test_settings, "sns")
    topic_arn = sns.create_topic(Name="triplake-ingestion-status-signed")["TopicArn"]
    event = status_event(ingestion_id="i-5", status=SUCCEEDED, source_uri="s3://b/landing/a.csv")
    delivered: list[dict] = []

    def recording_verify(message, certificate_of, trusted):
        delivered.append(dict(message))
        verify(message, certificate_of, trusted)

    monkeypatch.setattr(triplake.watch, "verify", recording_verify)
    trusted = localstack.certificate_url_prefix(localstack_endpoint)
    with StatusReceiver(verify_signatures=True, trusted_certificate_url=trusted) as receiver:
        subscription = subscribe(sns, topic_arn, receiver.url)
        deadline = time.monotonic() + 20
        while sns.get_subscription_attributes(SubscriptionArn=subscription)["Attributes"]["PendingConfirmation"] != "false":
            assert time.monotonic() < deadline, f"not confirmed; rejected: {receiver.rejected}"
            time.sleep(0.2)
        publish_status(sns, topic_arn, event)
        assert receiver.events.get(timeout=20) == event
        assert [message["Type"] for message in delivered] == ["SubscriptionConfirmation", "Notification"]
        assert delivered[-1]["SigningCertURL"].startswith(trusted)

        genuine = delivered[-1]
        assert post(receiver.url, genuine | {"Message": json.dumps(event | {"status": "FAILED"})}) == 403
        assert receiver.rejected == ["the signature does not match the message"]
    with StatusReceiver(verify_signatures=True) as untrusting:  # AWS's rule: LocalStack's certificate is refused
        assert post(untrusting.url, genuine) == 403
        assert "is not an https://sns" in untrusting.rejected[0]
