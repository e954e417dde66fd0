"""SNS message signatures: a message signed by the certificate SNS serves is accepted, anything else rejected.

The certificate here is made by the test (no AWS); it is served at an SNS-looking URL by an injected fetcher,
exactly where verify() would download it from sns.<region>.amazonaws.com.
"""

from __future__ import annotations

import base64
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from triplake.aws.sns_signature import ForgedMessage, canonical_string, verify

CERT_URL = "https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"


@pytest.fixture(scope="module")
def signer():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    return key, certificate.public_bytes(serialization.Encoding.PEM)


def signed(key, version: str = "2", **fields) -> dict:
    message = {"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:eu-central-1:123456789012:triplake-ingestion-status",
               "Subject": "triplake ingestion i-1: SUCCEEDED", "Message": '{"status": "SUCCEEDED"}',
               "Timestamp": "2026-11-25T10:00:00.000Z", "SignatureVersion": version, "SigningCertURL": CERT_URL, **fields}
    algorithm = hashes.SHA256() if version == "2" else hashes.SHA1()  # noqa: S303 - SNS SignatureVersion 1 is SHA1
    message["Signature"] = base64.b64encode(key.sign(canonical_string(message), padding.PKCS1v15(), algorithm)).decode()
    return message


def served(pem: bytes):
    return lambda url: pem if url == CERT_URL else pytest.fail(f"fetched an unexpected certificate {url}")


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_message_signed_by_the_sns_certificate_is_accepted(signer, version):
    key, pem = signer
    verify(signed(key, version), served(pem))


def test_a_changed_message_is_rejected(signer):
    key, pem = signer
    message = signed(key) | {"Message": '{"status": "FAILED"}'}
    with pytest.raises(ForgedMessage, match="signature does not match"):
        verify(message, served(pem))


def test_a_message_signed_by_another_key_is_rejected(signer):
    _, pem = signer
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(ForgedMessage, match="signature does not match"):
        verify(signed(other), served(pem))


@pytest.mark.parametrize("url", [
    "http://sns.eu-central-1.amazonaws.com/cert.pem",
    "https://sns.eu-central-1.amazonaws.com.evil.example/cert.pem",
    "https://evil.example/sns.eu-central-1.amazonaws.com/cert.pem",
    "https://sns.eu-central-1.amazonaws.com/cert.txt",
])
def test_a_certificate_outside_sns_is_never_fetched(signer, url):
    key, _ = signer
    with pytest.raises(ForgedMessage, match="is not an https://sns"):
        verify(signed(key, SigningCertURL=url), lambda _: pytest.fail("fetched a certificate it should have refused"))


def test_an_unsigned_message_is_rejected(signer):
    key, pem = signer
    message = signed(key)
    del message["Signature"]
    with pytest.raises(ForgedMessage, match="unsigned message: no Signature"):
        verify(message, served(pem))


EMULATOR_CERTIFICATES = "http://127.0.0.1:4566/_aws/sns/"


def test_a_certificate_under_the_trusted_prefix_is_fetched_and_checked(signer):
    key, pem = signer
    url = f"{EMULATOR_CERTIFICATES}SimpleNotificationService-local.pem"
    verify(signed(key, SigningCertURL=url), lambda fetched: pem if fetched == url else pytest.fail(fetched),
           trusted_certificate_url=EMULATOR_CERTIFICATES)
    with pytest.raises(ForgedMessage, match="signature does not match"):
        verify(signed(key, SigningCertURL=url) | {"Message": "{}"}, lambda _: pem,
               trusted_certificate_url=EMULATOR_CERTIFICATES)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:4566/elsewhere/cert.pem",
    "http://127.0.0.1:45660/_aws/sns/cert.pem",
    "http://127.0.0.1:4566/_aws/sns/../cert.pem",
    "http://127.0.0.1:4566/_aws/sns/cert.txt",
    CERT_URL,  # trusting an emulator trusts nothing else
])
def test_with_a_trusted_prefix_a_certificate_outside_it_is_never_fetched(signer, url):
    key, _ = signer
    with pytest.raises(ForgedMessage, match="is not a .pem under the trusted"):
        verify(signed(key, SigningCertURL=url), lambda _: pytest.fail("fetched a certificate it should have refused"),
               trusted_certificate_url=EMULATOR_CERTIFICATES)
