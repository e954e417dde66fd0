"""Thin, typed AWS helpers: clients are injected, so moto tests stay trivial."""

from __future__ import annotations

from typing import Any

from triplake.settings import Settings


def session(settings: Settings) -> Any:
    """A boto3 session of the configured region and credentials; without credentials in Settings, boto3's own
    chain finds them (environment, profile, instance role)."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        region_name=settings.aws_region,
    )


def clients(settings: Settings, *services: str) -> list[Any]:
    """boto3 clients of the configured region, endpoint (moto, LocalStack or AWS) and credentials."""
    configured = session(settings)
    return [configured.client(service, endpoint_url=settings.endpoint_url(service)) for service in services]
