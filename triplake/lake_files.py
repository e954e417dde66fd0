"""Reading lake tables from Python (pyarrow), for file:// lakes and s3:// lakes (AWS, moto or LocalStack)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlparse

from spark_jobs.common.delta import Storage
from triplake.settings import Settings

if TYPE_CHECKING:
    from pyarrow import fs as pafs

def filesystem(lake_root: str, settings: Settings) -> tuple[pafs.FileSystem, str]:
    """The filesystem of a lake root and the root's path on it."""
    from pyarrow import fs as pafs  # here: a query of a file:// lake never imports pyarrow

    parsed = urlparse(lake_root)
    if parsed.scheme in ("s3", "s3a"):
        options = {"region": settings.aws_region}
        if endpoint_url := settings.endpoint_url("s3"):
            endpoint = urlparse(endpoint_url)
            options |= {"endpoint_override": endpoint.netloc, "scheme": endpoint.scheme or "http"}
        if settings.aws_access_key_id and settings.aws_secret_access_key:
            options |= {"access_key": settings.aws_access_key_id, "secret_key": settings.aws_secret_access_key}
        return pafs.S3FileSystem(**options), f"{parsed.netloc}{parsed.path}".rstrip("/")
    if parsed.scheme in ("file", ""):
        return pafs.LocalFileSystem(), parsed.path.rstrip("/")
    raise ValueError(f"unsupported lake root {lake_root!r}: use file:// or s3://")


def delta_storage(settings: Settings) -> Storage:
    """How delta-rs and pyarrow reach the lake's object store under these settings."""
    return Storage(settings.endpoint_url("s3"), settings.aws_region, settings.aws_access_key_id,
                   settings.aws_secret_access_key)


def read_text(lake_root: str, relative: str, settings: Settings) -> str | None:
    """A small file of the lake (a report, a progress note) as text, or None when it is not there."""
    fs, root = filesystem(lake_root, settings)
    try:
        with fs.open_input_stream(f"{root}/{relative}") as stream:
            return stream.read().decode()
    except FileNotFoundError:
        return None
