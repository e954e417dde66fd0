"""File operations on the lake from the Spark driver, for file://, s3:// and s3a:// alike, through pyarrow's
filesystems: the small files of the jobs (intents, manifests, reports, progress notes, the lease, models) and the raw
copy of each upload.

pyarrow rather than Hadoop's FileSystem through the JVM: on S3 each operation here is the request it names (a PUT to
write, a GET to read, a listing to list), while Hadoop's S3A probes a key and its "directory" before most
operations and deletes directory markers after each write, which was most of an ingestion's S3 requests
(docs/benchmarks.md). The store is reached as Spark's S3A is configured (`delta.Storage.from_spark`): the endpoint
and keys locally, the default AWS credential chain on EMR Serverless and Glue.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from pyarrow import fs as pafs
from pyspark.sql import SparkSession

from spark_jobs.common.delta import Storage


def join_uri(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *(part.strip("/") for part in parts if part)])


@dataclass(frozen=True)
class FileInfo:
    uri: str
    name: str
    is_dir: bool
    size: int


class LakeFs:
    def __init__(self, spark: SparkSession) -> None:
        self._storage = Storage.from_spark(spark)
        self._filesystems: dict[str, pafs.FileSystem] = {}

    def _locate(self, uri: str) -> tuple[pafs.FileSystem, str]:
        """The filesystem of a URI (one per scheme, reused) and the URI's path on it."""
        scheme = urlparse(uri).scheme or "file"
        if scheme not in self._filesystems:
            self._filesystems[scheme] = self._storage.filesystem(uri)[0]
        return self._filesystems[scheme], Storage.path(uri).rstrip("/")

    def _info(self, uri: str) -> tuple[pafs.FileSystem, str, pafs.FileInfo]:
        filesystem, path = self._locate(uri)
        return filesystem, path, filesystem.get_file_info(path)

    def exists(self, uri: str) -> bool:
        return self._info(uri)[2].type != pafs.FileType.NotFound

    def list(self, uri: str) -> list[FileInfo]:
        """Entries directly under uri, sorted by name; empty when uri does not exist."""
        return self._listing(uri, recursive=False)

    def list_files_recursive(self, uri: str) -> list[FileInfo]:
        """Every file below uri, sorted by URI; empty when uri does not exist."""
        return sorted((entry for entry in self._listing(uri, recursive=True) if not entry.is_dir),
                      key=lambda entry: entry.uri)

    def _listing(self, uri: str, recursive: bool) -> list[FileInfo]:
        filesystem, path = self._locate(uri)
        selector = pafs.FileSelector(path, allow_not_found=True, recursive=recursive)
        entries = [FileInfo(join_uri(uri, info.path[len(path):]), info.base_name,
                            info.type == pafs.FileType.Directory, info.size or 0)
                   for info in filesystem.get_file_info(selector)]
        return sorted(entries, key=lambda entry: entry.name)

    def delete(self, uri: str) -> None:
        """Deletes a file, or a directory and everything below it; nothing when uri does not exist."""
        filesystem, path, info = self._info(uri)
        if info.type == pafs.FileType.Directory:
            filesystem.delete_dir(path)
        elif info.type == pafs.FileType.File:
            filesystem.delete_file(path)

    def rename(self, source_uri: str, target_uri: str) -> None:
        """Moves a file or a directory (on S3, each file copied and deleted: S3 has no rename)."""
        filesystem, source, info = self._info(source_uri)
        _, target = self._locate(target_uri)
        if info.type == pafs.FileType.NotFound:
            raise OSError(f"could not move {source_uri} to {target_uri}: it does not exist")
        if isinstance(filesystem, pafs.LocalFileSystem) or info.type == pafs.FileType.File:
            self._make_parent(filesystem, target)
            filesystem.move(source, target)
            return
        for entry in filesystem.get_file_info(pafs.FileSelector(source, recursive=True)):
            if entry.type == pafs.FileType.File:
                filesystem.move(entry.path, target + entry.path[len(source):])

    def copy(self, source_uri: str, target_uri: str) -> None:
        """Copies one file unchanged, across filesystems if need be (an upload in S3 or on disk into the lake)."""
        source_filesystem, source = self._locate(source_uri)
        target_filesystem, target = self._locate(target_uri)
        self._make_parent(target_filesystem, target)
        pafs.copy_files(source, target, source_filesystem=source_filesystem, destination_filesystem=target_filesystem)

    def write_text(self, uri: str, text: str) -> None:
        filesystem, path = self._locate(uri)
        self._make_parent(filesystem, path)
        with filesystem.open_output_stream(path) as sink:
            sink.write(text.encode("utf-8"))

    def read_text(self, uri: str) -> str:
        filesystem, path = self._locate(uri)
        with filesystem.open_input_stream(path) as source:
            return source.read().decode("utf-8")

    @staticmethod
    def _make_parent(filesystem: pafs.FileSystem, path: str) -> None:
        if isinstance(filesystem, pafs.LocalFileSystem):  # S3 has no directories to make
            filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
