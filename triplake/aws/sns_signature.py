"""Verifying that an HTTP(S) message really comes from Amazon SNS, before `triplake watch` trusts it.

SNS signs every message it delivers to an HTTP/S endpoint: the signature covers a canonical string of the
message's fields, made with the private key of a certificate that SNS serves from
https://sns.<region>.amazonaws.com/...pem. We check the certificate's URL (HTTPS, an SNS host, a .pem path)
before fetching it, so a forged message cannot point us at its own certificate.
See https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html.
"""

from __future__ import annotations

import base64
import re
import urllib.request
from functools import lru_cache
from typing import Any, Callable, Mapping
from urllib.parse import urlparse

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

SNS_CERTIFICATE_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
SIGNATURE_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


class ForgedMessage(Exception):
    """A message that does not carry a valid SNS signature; the reason says what is wrong."""


def canonical_string(message: Mapping[str, Any]) -> bytes:
    """The bytes SNS signed: 'name\\nvalue\\n' for each signed field the message has, in SNS's order."""
    fields = SIGNED_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise ForgedMessage(f"unknown SNS message type {message.get('Type')!r}")
    return "".join(f"{name}\n{message[name]}\n" for name in fields if name in message).encode()


def check_certificate_url(url: str, trusted_prefix: str | None = None) -> None:
    """Only SNS's own certificates, or those under one prefix the user trusts (an emulator's, e.g. LocalStack's)."""
    parsed = urlparse(url)
    if trusted_prefix is not None:
        trusted = urlparse(trusted_prefix)
        inside = (parsed.scheme, parsed.netloc) == (trusted.scheme, trusted.netloc) and parsed.path.startswith(
            trusted.path) and ".." not in parsed.path
        if not inside or not parsed.path.endswith(".pem"):
            raise ForgedMessage(f"signing certificate {url!r} is not a .pem under the trusted {trusted_prefix!r}")
        return
    if parsed.scheme != "https" or not SNS_CERTIFICATE_HOST.match(parsed.hostname or "") or not parsed.path.endswith(".pem"):
        raise ForgedMessage(f"signing certificate {url!r} is not an https://sns.<region>.amazonaws.com/....pem URL")


@lru_cache(maxsize=16)
def fetch_certificate(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - URL checked by check_certificate_url
        return response.read()


def verify(message: Mapping[str, Any], certificate_of: Callable[[str], bytes] = fetch_certificate,
           trusted_certificate_url: str | None = None) -> None:
    """Raises ForgedMessage unless the message is signed by SNS's certificate (or one under the trusted prefix)."""
    for field in ("Signature", "SignatureVersion", "SigningCertURL"):
        if not message.get(field):
            raise ForgedMessage(f"unsigned message: no {field}")
    algorithm = SIGNATURE_HASHES.get(str(message["SignatureVersion"]))
    if algorithm is None:
        raise ForgedMessage(f"unknown SignatureVersion {message['SignatureVersion']!r}")
    check_certificate_url(str(message["SigningCertURL"]), trusted_certificate_url)
    certificate = x509.load_pem_x509_certificate(certificate_of(str(message["SigningCertURL"])))
    try:
        signature = base64.b64decode(str(message["Signature"]), validate=True)
        certificate.public_key().verify(signature, canonical_string(message), padding.PKCS1v15(), algorithm())
    except (InvalidSignature, ValueError) as problem:
        raise ForgedMessage("the signature does not match the message") from problem
