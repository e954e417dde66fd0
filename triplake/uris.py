"""Turning what a user types (a path or a URI) into the URI the jobs read."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

REMOTE_SCHEMES = ("s3", "s3a")


def to_uri(location: str) -> str:
    """s3://... stays as it is; file://... and plain paths become absolute file:// URIs. A file:// URI carries its
    path as it is, spaces and all, as an s3:// URI carries its key and as Hadoop reads it (a percent-encoded one,
    as Path.as_uri() writes, is decoded)."""
    scheme = urlparse(location).scheme
    if scheme in REMOTE_SCHEMES:
        return location
    if scheme == "file":
        return f"file://{Path(unquote(urlparse(location).path)).resolve()}"
    if scheme:
        raise ValueError(f"unsupported location {location!r}: use a local path, file:// or s3:// URI")
    return f"file://{Path(location).expanduser().resolve()}"


def local_path(uri: str) -> Path | None:
    """The local path of a file:// URI, None for remote URIs."""
    parsed = urlparse(uri)
    return Path(parsed.path) if parsed.scheme == "file" else None
