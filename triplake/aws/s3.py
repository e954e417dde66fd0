"""Putting a user's file into the landing bucket, where its upload event starts the pipeline."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig

logger = logging.getLogger(__name__)

# moto (and so the local stack) sends bucket notifications for PutObject and CopyObject only, not for multipart
# uploads (docs/architecture.md): against an emulator, files up to S3's single-PUT limit go up in one request.
SINGLE_PUT_LIMIT = 5 * 2**30


def landing_key(path: Path, prefix: str) -> str:
    return f"{prefix.rstrip('/')}/{path.name}" if prefix else path.name


def upload_file(s3_client: Any, path: Path, bucket: str, key: str, emulator: bool = False) -> str:
    """Uploads a local file; returns its s3:// URI."""
    config = TransferConfig(multipart_threshold=SINGLE_PUT_LIMIT) if emulator else TransferConfig()
    s3_client.upload_file(str(path), bucket, key, Config=config)
    uri = f"s3://{bucket}/{key}"
    logger.info("uploaded %s to %s", path, uri)
    return uri
