"""The raw copies of a lake's files (raw/<ingestion id>/<file>) as `triplake forget` reads and rewrites them: which
lines an erasure takes (triplake.erasure), and each copy rewritten without them.

A raw copy is read as a stream of lines, never whole: an upload can be larger than memory. It is opened with
compression=None (pyarrow's default, 'detect', would gunzip by the name): whether it is gzip is told by its first
bytes, whatever its name, and the copy is rewritten compressed exactly when it was. A gzip copy that ends early
loses, when it is rewritten, the piece of a line its cut left (no reader could read it).
"""

from __future__ import annotations

import gzip
import io
import logging
import uuid
from typing import Callable, Iterable, Iterator

from pyarrow import fs as pafs

from spark_jobs.common import delta
from spark_jobs.common.locations import RAW
from triplake.erasure import Selection, header_positions, line_fields, trip_id_of

WRITE_BUFFER_BYTES = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
logger = logging.getLogger(__name__)


def is_gzip(filesystem: pafs.FileSystem, path: str) -> bool:
    """Whether the copy is gzip data, by its first bytes: a file named .gz that is not (the ingest refused it) holds
    text all the same."""
    with filesystem.open_input_stream(path, compression=None) as stream:
        return stream.read(2) == GZIP_MAGIC


def read_lines(filesystem: pafs.FileSystem, path: str) -> Iterator[bytes]:
    """The lines of a raw copy (gunzipped if it is gzip), each with its line end, read as a stream. Gzip data that
    ends early (a truncated upload, which the ingest refused) gives the lines before its end."""
    with filesystem.open_input_stream(path, compression=None) as stream:
        yield from stream_lines(stream, path)


def stream_lines(stream, name: str) -> Iterator[bytes]:
    """The lines of an open binary stream (anything with read(n): a pyarrow stream, a boto3 body), as read_lines."""
    buffered = io.BufferedReader(_Readable(stream))
    if buffered.peek(2)[:2] != GZIP_MAGIC:
        yield from buffered
        return
    try:
        yield from gzip.GzipFile(fileobj=buffered)
    except EOFError:
        logger.warning("%s: the gzip data ends early; its lines up to there were read", name)


def scan(lines: Iterable[bytes], takes: Callable[[dict[str, str]], bool],
         keep: Callable[[bytes], None] | None = None) -> int:
    """How many lines of an upload (its header first) takes() takes, by their fields; each line it does not take
    (the header first) goes to keep. A line whose fields cannot be told is never taken."""
    taken, positions = 0, None
    for number, line in enumerate(lines):
        if number == 0:
            positions = header_positions(line.decode(errors="replace"))
        elif positions and (fields := line_fields(line.decode(errors="replace").rstrip("\r\n"), positions)) \
                and takes(fields):
            taken += 1
            continue
        if keep is not None:
            keep(line)
    return taken


class RawCopies:
    """The raw copies of every ingestion (raw/<ingestion id>/<file>) and which of their lines the erasure takes."""

    def __init__(self, lake_root: str, storage: delta.Storage, selection: Selection, erased: set[str]) -> None:
        self.filesystem, self.root = storage.filesystem(f"{lake_root}/{RAW}")
        self.selection, self.erased = selection, erased
        self._headers: dict[str, dict[str, int] | None] = {}
        self._files: list[pafs.FileInfo] | None = None
        self._taken: dict[str, int] | None = None  # path -> lines taken, of the copies holding one: count()'s

    def files(self) -> list[pafs.FileInfo]:
        if self._files is None:
            found = self.filesystem.get_file_info(pafs.FileSelector(self.root, recursive=True, allow_not_found=True))
            self._files = sorted((info for info in found if info.type == pafs.FileType.File), key=lambda info: info.path)
        return self._files

    def takes(self, ingestion_id: str, line: str) -> bool:
        """Whether the line (of that ingestion's file) is selected or is an erased trip's."""
        positions = self._positions(ingestion_id)
        fields = line_fields(line, positions) if positions else None
        return fields is not None and self._takes_fields(fields)

    def _takes_fields(self, fields: dict[str, str]) -> bool:
        return self.selection.takes_line(fields) or (bool(self.erased) and trip_id_of(fields) in self.erased)

    def _positions(self, ingestion_id: str) -> dict[str, int] | None:
        if ingestion_id not in self._headers:
            copies = [info for info in self.files() if info.path.startswith(f"{self.root}/{ingestion_id}/")]
            header = next(read_lines(self.filesystem, copies[0].path), b"") if copies else b""
            self._headers[ingestion_id] = header_positions(header.decode(errors="replace")) if header else None
        return self._headers[ingestion_id]

    def _scan(self, path: str, keep: Callable[[bytes], None] | None = None) -> int:
        return scan(read_lines(self.filesystem, path), self._takes_fields, keep)

    def count(self) -> tuple[int, int]:
        """(files, lines) the erasure takes out of the raw copies: every copy read once."""
        if self._taken is None:
            self._taken = {info.path: lines for info in self.files() if (lines := self._scan(info.path))}
        return len(self._taken), sum(self._taken.values())

    def rewrite(self) -> None:
        """Rewrites every raw copy that holds a taken line (count() found them) without it: those alone are read
        again, and no other copy is written."""
        self.count()
        for path in self._taken:
            partial = f"{path}.forget-{uuid.uuid4().hex[:8]}"
            try:
                with self.filesystem.open_output_stream(partial, compression=None) as sink:
                    compressed = is_gzip(self.filesystem, path)
                    with _Buffered(gzip.GzipFile(fileobj=sink, mode="wb") if compressed else sink) as out:
                        self._scan(path, out.write)
            except BaseException:
                self.filesystem.delete_file(partial)  # not left beside the copies, where it would read as one
                raise
            self.filesystem.move(partial, path)  # readers see the old copy or the new one


class _Readable(io.RawIOBase):
    """A pyarrow input stream as a raw Python stream, so io.BufferedReader can give its lines."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class _Buffered:
    """Lines gathered into writes of about a mebibyte (a write per line would be one call into pyarrow each)."""

    def __init__(self, target) -> None:
        self.target, self.pending, self.size = target, [], 0

    def write(self, line: bytes) -> None:
        self.pending.append(line)
        self.size += len(line)
        if self.size >= WRITE_BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        self.target.write(b"".join(self.pending))
        self.pending, self.size = [], 0

    def __enter__(self) -> _Buffered:
        return self

    def __exit__(self, *failure) -> None:
        if failure[0] is None:
            self.flush()
            if isinstance(self.target, gzip.GzipFile):
                self.target.close()  # writes the gzip trailer; the sink stays open for its own `with`
