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


def delete_old_versions(lake_root: str, settings: Settings, locations: list[str]) -> int:
    """On an s3:// lake, the noncurrent object versions and delete markers under the locations go: a versioned
    bucket keeps the old bytes of every object replaced or deleted, and an erased trip would live on in them (no
    reader of the lake reads an old version: Delta reads current objects only). Returns how many went."""
    parsed = urlparse(lake_root)
    if parsed.scheme not in ("s3", "s3a"):
        return 0
    from triplake.aws import clients

    (s3,) = clients(settings, "s3")
    bucket, prefix = parsed.netloc, parsed.path.strip("/")
    deleted = 0
    for location in locations:
        old = []
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket,
                                                                      Prefix=f"{prefix}/{location}/".lstrip("/")):
            old += [{"Key": version["Key"], "VersionId": version["VersionId"]}
                    for version in page.get("Versions", []) if not version["IsLatest"]]
            old += [{"Key": marker["Key"], "VersionId": marker["VersionId"]} for marker in page.get("DeleteMarkers", [])]
        for start in range(0, len(old), 1000):  # delete_objects takes 1,000 keys a request
            failed = s3.delete_objects(Bucket=bucket, Delete={"Objects": old[start:start + 1000], "Quiet": True}
                                       ).get("Errors", [])
            if failed:  # answered per key, with HTTP 200: nothing would say the erased bytes are still there
                raise PermissionError(
                    f"{len(failed)} old object version(s) under s3://{bucket}/{prefix}/{location}/ could not be "
                    f"deleted, e.g. {failed[0].get('Key')}: {failed[0].get('Code')} {failed[0].get('Message')}. Give "
                    "the role s3:DeleteObjectVersion there (infra/airflow.tf), or lift the version's Object Lock "
                    "(retention or legal hold), then run the same forget again: it finds nothing more to erase and "
                    "deletes the old versions")
        deleted += len(old)
    return deleted
