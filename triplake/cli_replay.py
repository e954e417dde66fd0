"""`triplake replay`: an ingestion's raw file, or only its rejected lines, ingested again as a new ingestion."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Callable

from triplake.settings import get_settings
from triplake.terminal import UsageError

RunFiles = Callable[..., int]  # triplake.cli.run_files: (locations, lake_root, as_json, refit, verbose) -> exit code


def add_parser(commands, run_files: RunFiles, lake_root_of: Callable[[argparse.Namespace], str]) -> None:
    replay = commands.add_parser(
        "replay", help="ingest an ingestion's raw file again (or only its rejected lines) as a new ingestion",
        description="With today's code, e.g. after a parser fix: every guarantee of `triplake run` holds; trips the "
                    "lake holds already count as already_present.")
    replay.add_argument("ingestion_id", help="the ingestion to replay (see `triplake sql \"select * from ingestions\"`)")
    replay.add_argument("--rejected-only", action="store_true", help="only the lines it rejected, under its header line")
    replay.add_argument("--lake-root", help="lake URI or path (default: TRIPLAKE_LAKE_ROOT or .local/lake)")
    replay.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout, as `run` does")
    replay.set_defaults(handler=lambda args: replay_command(args, run_files, lake_root_of(args)))


def replay_command(args: argparse.Namespace, run_files: RunFiles, lake_root: str) -> int:
    from triplake.replay import ReplayError, raw_copy, rejected_lines_file

    settings = get_settings()
    with tempfile.TemporaryDirectory(prefix="triplake-replay-") as folder:
        try:
            source = (rejected_lines_file(lake_root, settings, args.ingestion_id, Path(folder)).as_uri()
                      if args.rejected_only else raw_copy(lake_root, settings, args.ingestion_id))
        except ReplayError as problem:
            raise UsageError(str(problem)) from problem
        return run_files([source], lake_root, as_json=args.json, refit=False, verbose=args.verbose)
