"""`triplake replay`: an ingestion's file ingested again with today's code, as a new ingestion.

The file is the ingestion's raw copy (`raw/<ingestion id>/<file>`, kept exactly as it was sent, or as a `forget`
left it), or, with rejected_only, its rejected lines under the copy's header line (after a parser fix): a file of
its own, named after the ingestion, that the new ingestion copies into its own raw folder like any upload. Trips
the lake holds already are counted `already_present` and not written again, so replaying is safe to repeat.
Erased trips never come back: a forget removed their lines from the raw copies and the rejected rows.
"""

from __future__ import annotations

import base64
from pathlib import Path

from spark_jobs.common.ingestions import INGESTION_ID_PATTERN
from spark_jobs.common.locations import RAW
from spark_jobs.common.input_format import RAW_BYTES_PREFIX
from triplake.lake_files import filesystem
from triplake.query.local import LocalEngine
from triplake.raw_copies import read_lines
from triplake.query.statement import Statement
from triplake.settings import Settings

REJECTED_LINES = Statement(
    "select line_number, raw_line from rejected_rows where ingestion_id = :ingestion_id order by line_number")


class ReplayError(ValueError):
    """The ingestion cannot be replayed; the message says why and what to do."""


def raw_copy(lake_root: str, settings: Settings, ingestion_id: str) -> str:
    """The URI of the ingestion's raw copy."""
    if not INGESTION_ID_PATTERN.match(ingestion_id):
        raise ReplayError(f"{ingestion_id!r} is not an ingestion id: the table `ingestions` lists them (`triplake sql`)")
    from pyarrow import fs as pafs

    fs, root = filesystem(lake_root, settings)
    found = [info for info in fs.get_file_info(pafs.FileSelector(f"{root}/{RAW}/{ingestion_id}", allow_not_found=True))
             if info.type == pafs.FileType.File]
    if not found:
        raise ReplayError(f"ingestion {ingestion_id} has no raw copy under {lake_root}/{RAW}/: it failed before its "
                          "file was copied (the file could not be read), or it is not an ingestion of this lake")
    return f"{lake_root.rstrip('/')}/{RAW}/{ingestion_id}/{found[0].base_name}"


def rejected_lines_file(lake_root: str, settings: Settings, ingestion_id: str, folder: Path) -> Path:
    """A file of the ingestion's rejected lines under its raw copy's header line, written into folder."""
    copy = raw_copy(lake_root, settings, ingestion_id)
    rows = LocalEngine(lake_root, settings).run(REJECTED_LINES, {"ingestion_id": ingestion_id}).records()
    if not rows:
        raise ReplayError(f"ingestion {ingestion_id} has no rejected rows to replay: replay the whole file instead "
                          "(without --rejected-only)")
    fs, root = filesystem(lake_root, settings)
    header = next(read_lines(fs, copy.replace(lake_root.rstrip("/"), root, 1)), b"")
    lines = [base64.b64decode(line[len(RAW_BYTES_PREFIX):]) if line.startswith(RAW_BYTES_PREFIX) else line.encode()
             for line in (row["raw_line"] for row in rows)]
    name = copy.rsplit("/", 1)[-1].removesuffix(".gz").removesuffix(".GZ")
    path = folder / f"{ingestion_id}-rejected-{name}"
    path.write_bytes(header.rstrip(b"\r\n") + b"\n" + b"".join(line.rstrip(b"\r\n") + b"\n" for line in lines))
    return path
