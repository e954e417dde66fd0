"""File operations on the lake through Hadoop's FileSystem API, so file://, s3:// and s3a:// behave alike.

Spark already carries the right filesystem for every scheme (S3A locally, EMRFS on EMR), so the jobs use it
through the JVM gateway instead of a second client library.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession


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
        self._jvm = spark.sparkContext._jvm  # noqa: SLF001 (the documented way into Hadoop from PySpark)
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()  # noqa: SLF001

    def _path(self, uri: str):
        return self._jvm.org.apache.hadoop.fs.Path(uri)

    def _fs(self, path):
        return path.getFileSystem(self._conf)

    def exists(self, uri: str) -> bool:
        path = self._path(uri)
        return bool(self._fs(path).exists(path))

    def list(self, uri: str) -> list[FileInfo]:
        """Entries directly under uri, sorted by name; empty when uri does not exist."""
        path = self._path(uri)
        fs = self._fs(path)
        if not fs.exists(path):
            return []
        entries = [
            FileInfo(str(s.getPath().toString()), str(s.getPath().getName()), bool(s.isDirectory()), int(s.getLen()))
            for s in fs.listStatus(path)
        ]
        return sorted(entries, key=lambda entry: entry.name)

    def list_files_recursive(self, uri: str) -> list[FileInfo]:
        path = self._path(uri)
        fs = self._fs(path)
        if not fs.exists(path):
            return []
        found = []
        iterator = fs.listFiles(path, True)
        while iterator.hasNext():
            status = iterator.next()
            found.append(FileInfo(str(status.getPath().toString()), str(status.getPath().getName()), False,
                                  int(status.getLen())))
        return sorted(found, key=lambda entry: entry.uri)

    def glob(self, pattern: str) -> list[FileInfo]:
        """Entries matching a Hadoop glob pattern (*, ?, [abc], {a,b}), sorted by URI; empty when none."""
        path = self._path(pattern)
        statuses = self._fs(path).globStatus(path) or []
        found = [
            FileInfo(str(s.getPath().toString()), str(s.getPath().getName()), bool(s.isDirectory()), int(s.getLen()))
            for s in statuses
        ]
        return sorted(found, key=lambda entry: entry.uri)

    def mkdirs(self, uri: str) -> None:
        path = self._path(uri)
        self._fs(path).mkdirs(path)

    def delete(self, uri: str) -> None:
        path = self._path(uri)
        self._fs(path).delete(path, True)

    def rename(self, source_uri: str, target_uri: str) -> None:
        source, target = self._path(source_uri), self._path(target_uri)
        fs = self._fs(source)
        fs.mkdirs(target.getParent())
        if not fs.rename(source, target):
            raise OSError(f"could not move {source_uri} to {target_uri}")

    def copy(self, source_uri: str, target_uri: str) -> None:
        """Copy one file unchanged, across filesystems if need be."""
        source, target = self._path(source_uri), self._path(target_uri)
        target_fs = self._fs(target)
        target_fs.mkdirs(target.getParent())
        copied = self._jvm.org.apache.hadoop.fs.FileUtil.copy(
            self._fs(source), source, target_fs, target, False, True, self._conf
        )
        if not copied:
            raise OSError(f"could not copy {source_uri} to {target_uri}")

    def write_text(self, uri: str, text: str) -> None:
        path = self._path(uri)
        stream = self._fs(path).create(path, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()

    def read_text(self, uri: str) -> str:
        path = self._path(uri)
        stream = self._fs(path).open(path)
        try:
            buffer = self._jvm.java.io.ByteArrayOutputStream()
            self._jvm.org.apache.hadoop.io.IOUtils.copyBytes(stream, buffer, 65536, False)
            return bytes(buffer.toByteArray()).decode("utf-8")
        finally:
            stream.close()
