"""The lake's small control objects, written atomically: the writer lease, the uploads' receipts and the inbox.

Two processes that write one of these at the same moment must never both win, so every write that matters is a
compare-and-swap against what was read:

- on S3 (AWS, moto, LocalStack) with conditional writes: created with `If-None-Match: *`, replaced or deleted with
  `If-Match` on the ETag that was read (S3 refuses the write when the object changed in between);
- on file:// with O_EXCL to create, and an exclusive flock on a lock file around every compare-and-swap; the
  version of a file is the md5 of its bytes, as an S3 ETag is of a single-PUT object.

Keys are relative to the lake root (`_lease.json`, `_uploads/<id>.json`); nothing here knows what they mean.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol
from urllib.parse import urlparse

from triplake.settings import Settings
from triplake.uris import local_path


class ConditionalDeleteUnsupported(RuntimeError):
    """The S3 refuses `DeleteObject` with `If-Match` (LocalStack 4.13 answers NotImplemented)."""


class LakeObjects(Protocol):
    """Small objects under one lake root; `version` is what a compare-and-swap compares (ETag, md5)."""

    def location(self, key: str) -> str: ...

    def read(self, key: str) -> tuple[bytes, str] | None: ...

    def create(self, key: str, body: bytes) -> bool: ...

    def replace(self, key: str, body: bytes, version: str) -> bool: ...

    def delete(self, key: str, version: str) -> bool: ...

    def put(self, key: str, body: bytes) -> None: ...

    def remove(self, key: str) -> None: ...

    def keys(self, prefix: str) -> list[str]: ...


class FileObjects:
    """The control objects of a file:// lake."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def location(self, key: str) -> str:
        return str(self.root / key)

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _read(path: Path) -> tuple[bytes, str] | None:
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            return None
        return body, hashlib.md5(body, usedforsecurity=False).hexdigest()

    def read(self, key: str) -> tuple[bytes, str] | None:
        path = self.root / key
        with self._locked(path):
            return self._read(path)

    def create(self, key: str, body: bytes) -> bool:
        path = self.root / key
        with self._locked(path):
            try:
                descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(descriptor, "wb") as created:
                created.write(body)
            return True

    def replace(self, key: str, body: bytes, version: str) -> bool:
        path = self.root / key
        with self._locked(path):
            current = self._read(path)
            if current is None or current[1] != version:
                return False
            self._write(path, body)
            return True

    def delete(self, key: str, version: str) -> bool:
        path = self.root / key
        with self._locked(path):
            current = self._read(path)
            if current is None or current[1] != version:
                return False
            path.unlink()
            return True

    def put(self, key: str, body: bytes) -> None:
        path = self.root / key
        with self._locked(path):
            self._write(path, body)

    def remove(self, key: str) -> None:
        path = self.root / key
        with self._locked(path):
            path.unlink(missing_ok=True)

    def keys(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        if not folder.is_dir():
            return []
        return sorted(f"{prefix.rstrip('/')}/{path.name}" for path in folder.iterdir()
                      if path.is_file() and not path.name.endswith((".lock", ".tmp")))

    @staticmethod
    def _write(path: Path, body: bytes) -> None:
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_bytes(body)
        partial.replace(path)  # readers see the old bytes or the new, never half of them


class S3Objects:
    """The control objects of an s3:// lake, through S3's conditional writes."""

    _CONFLICT = ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "404", "409", "412")

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def read(self, key: str) -> tuple[bytes, str] | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey:
            return None
        return response["Body"].read(), response["ETag"]

    def _conditional(self, call: Callable[..., Any], key: str, **kwargs: Any) -> bool:
        from botocore.exceptions import ClientError

        try:
            call(Bucket=self.bucket, Key=self._key(key), **kwargs)
        except ClientError as refused:
            if refused.response.get("Error", {}).get("Code") in self._CONFLICT:
                return False
            raise
        return True

    def create(self, key: str, body: bytes) -> bool:
        return self._conditional(self.client.put_object, key, Body=body, IfNoneMatch="*")

    def replace(self, key: str, body: bytes, version: str) -> bool:
        return self._conditional(self.client.put_object, key, Body=body, IfMatch=version)

    def delete(self, key: str, version: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            return self._conditional(self.client.delete_object, key, IfMatch=version)
        except ClientError as refused:
            if refused.response.get("Error", {}).get("Code") == "NotImplemented":
                raise ConditionalDeleteUnsupported(str(refused)) from refused
            raise

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=body)

    def remove(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def keys(self, prefix: str) -> list[str]:
        start = self._key(prefix.rstrip("/") + "/")
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
            found += [item["Key"].removeprefix(f"{self.prefix}/" if self.prefix else "") for item in page.get("Contents", [])]
        return sorted(found)


def lake_objects(lake_root: str, settings: Settings, s3_client: Any | None = None) -> LakeObjects:
    """The control objects of a lake root (file:// or s3://); an S3 client may be given (an Airflow hook's)."""
    local = local_path(lake_root)
    if local is not None:
        return FileObjects(local)
    parsed = urlparse(lake_root)
    if parsed.scheme not in ("s3", "s3a"):
        raise ValueError(f"unsupported lake root {lake_root!r}: use file:// or s3://")
    if s3_client is None:
        from triplake.aws import clients

        (s3_client,) = clients(settings, "s3")
    return S3Objects(s3_client, parsed.netloc, parsed.path)
