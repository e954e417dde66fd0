"""An HTTP endpoint that receives ingestion status events from SNS the moment they are published (no polling).

`StatusReceiver` listens on 127.0.0.1 and a free port, subscribes itself to the status topic, and hands each
event to the caller. Against AWS every message must carry a valid SNS signature (triplake.aws.sns_signature),
and the subscription is confirmed by visiting its SubscribeURL once the confirmation's signature checks out.
A moto server delivers unsigned messages synchronously and needs no confirmation (docs/architecture.md), so the
signature check is relaxed only when the endpoint is a local emulator, never against AWS. LocalStack signs as SNS
does, with a certificate it serves itself: trusting that certificate's URL (TRIPLAKE_SNS_TRUSTED_CERTIFICATE_URL)
turns the check on against it.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping

from triplake.aws.sns_signature import ForgedMessage, fetch_certificate, verify

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
MAX_MESSAGE_BYTES = 256 * 1024  # SNS messages are at most 256 KiB


class StatusReceiver:
    """Receives SNS HTTP deliveries; `events` yields each status event (the decoded Message) in arrival order."""

    def __init__(self, verify_signatures: bool = True, host: str = LOOPBACK, port: int = 0,
                 certificate_of: Callable[[str], bytes] = fetch_certificate,
                 trusted_certificate_url: str | None = None) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.rejected: list[str] = []
        self.verify_signatures = verify_signatures
        self._certificate_of = certificate_of
        self._trusted_certificate_url = trusted_certificate_url
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="triplake-watch", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def __enter__(self) -> StatusReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def accept(self, message: Mapping[str, Any]) -> None:
        """Handles one SNS delivery; raises ForgedMessage for anything that is not from SNS."""
        if self.verify_signatures:
            verify(message, self._certificate_of, self._trusted_certificate_url)
        kind = message.get("Type")
        if kind == "SubscriptionConfirmation":
            with urllib.request.urlopen(str(message["SubscribeURL"]), timeout=10):  # noqa: S310 - signed by SNS
                logger.info("confirmed the subscription to %s", message.get("TopicArn"))
            return
        if kind != "Notification":
            return
        try:
            event = json.loads(message["Message"])
        except (KeyError, TypeError, ValueError) as problem:
            raise ForgedMessage("the notification's Message is not a status event (JSON)") from problem
        self.events.put(event)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_MESSAGE_BYTES:
                    self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
                    return
                try:
                    receiver.accept(json.loads(self.rfile.read(length)))
                except (ForgedMessage, ValueError) as problem:
                    receiver.rejected.append(str(problem))
                    logger.warning("rejected a message: %s", problem)
                    self._reply(HTTPStatus.FORBIDDEN)
                    return
                self._reply(HTTPStatus.OK)

            def _reply(self, status: HTTPStatus) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: events are printed by the CLI
                logger.debug(format, *args)

        return Handler


def subscribe(sns_client: Any, topic_arn: str, endpoint_url: str) -> str:
    """Subscribes an HTTP endpoint to the topic (raw delivery off: SNS wraps and signs each message)."""
    response = sns_client.subscribe(TopicArn=topic_arn, Protocol="http" if endpoint_url.startswith("http:") else "https",
                                    Endpoint=endpoint_url, ReturnSubscriptionArn=True)
    return response["SubscriptionArn"]
