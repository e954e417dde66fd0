"""The raw copies of a lake's files (raw/<ingestion id>/<file>) as `triplake forget` reads and rewrites them: which
lines an erasure takes (triplake.erasure), and each copy rewritten without them."""

from __future__ import annotations

import gzip
import uuid

from pyarrow import fs as pafs

from spark_jobs.common import delta
from spark_jobs.common.locations import RAW
from triplake.erasure import Selection, header_positions, line_fields, trip_id_of


class RawCopies:
    """The raw copies of every ingestion (raw/<ingestion id>/<file>) and which of their lines the erasure takes."""

    def __init__(self, lake_root: str, storage: delta.Storage, selection: Selection, erased: set[str]) -> None:
        self.filesystem, self.root = storage.filesystem(f"{lake_root}/{RAW}")
        self.selection, self.erased = selection, erased
        self._headers: dict[str, dict[str, int] | None] = {}
        self._files: list[pafs.FileInfo] | None = None

    def files(self) -> list[pafs.FileInfo]:
        if self._files is None:
            found = self.filesystem.get_file_info(pafs.FileSelector(self.root, recursive=True, allow_not_found=True))
            self._files = sorted((info for info in found if info.type == pafs.FileType.File), key=lambda info: info.path)
        return self._files

    def takes(self, ingestion_id: str, line: str, positions: dict[str, int] | None = None) -> bool:
        """Whether the line (of that ingestion's file) is selected or is an erased trip's."""
        if positions is None:
            positions = self._positions(ingestion_id)
        fields = line_fields(line, positions) if positions else None
        if fields is None:
            return False
        return self.selection.takes_line(fields) or (bool(self.erased) and trip_id_of(fields) in self.erased)

    def _positions(self, ingestion_id: str) -> dict[str, int] | None:
        if ingestion_id not in self._headers:
            copies = [info for info in self.files() if info.path.startswith(f"{self.root}/{ingestion_id}/")]
            lines = self._lines(copies[0].path) if copies else []
            self._headers[ingestion_id] = header_positions(lines[0].decode(errors="replace")) if lines else None
        return self._headers[ingestion_id]

    def _lines(self, path: str) -> list[bytes]:
        with self.filesystem.open_input_stream(path) as stream:
            body = stream.read()
        return (gzip.decompress(body) if path.endswith(".gz") else body).splitlines(keepends=True)

    def _kept(self, path: str) -> tuple[list[bytes], int]:
        lines = self._lines(path)
        if not lines:
            return lines, 0
        positions = header_positions(lines[0].decode(errors="replace"))
        kept = lines[:1] + [line for line in lines[1:]
                            if not (positions and self.takes("", line.decode(errors="replace").rstrip("\r\n"), positions))]
        return kept, len(lines) - len(kept)

    def count(self) -> tuple[int, int]:
        """(files, lines) the erasure would take out of the raw copies."""
        taken = [self._kept(info.path)[1] for info in self.files()]
        return sum(1 for lines in taken if lines), sum(taken)

    def rewrite(self) -> tuple[int, int]:
        """Rewrites every raw copy that holds a taken line without it; returns (files, lines)."""
        files = lines = 0
        for info in self.files():
            kept, taken = self._kept(info.path)
            if not taken:
                continue
            body = b"".join(kept)
            partial = f"{info.path}.forget-{uuid.uuid4().hex[:8]}"
            with self.filesystem.open_output_stream(partial) as sink:
                sink.write(gzip.compress(body) if info.path.endswith(".gz") else body)
            self.filesystem.move(partial, info.path)  # readers see the old copy or the new one
            files, lines = files + 1, lines + taken
        return files, lines
