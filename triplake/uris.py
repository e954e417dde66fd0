"""Turning what a user types (a path or a URI) into the URI the jobs read."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

REMOTE_SCHEMES = ("s3", "s3a")


def to_uri(location: str) -> str:
    """s3://... stays as it is; file://... and plain paths become absolute file:// URIs."""
    scheme = urlparse(location).scheme
    if scheme in REMOTE_SCHEMES:
        return location
    if scheme == "file":
        return Path(urlparse(location).path).resolve().as_uri()
    if scheme:
        raise ValueError(f"unsupported location {location!r}: use a local path, file:// or s3:// URI")
    return Path(location).expanduser().resolve().as_uri()


def local_path(uri: str) -> Path | None:
    """The local path of a file:// URI, None for remote URIs."""
    parsed = urlparse(uri)
    return Path(parsed.path) if parsed.scheme == "file" else None
