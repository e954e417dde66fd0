"""`triplake forget`: erase a data source's, an area's or a list of trips from the lake for good (triplake.forget)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

from rich.console import Console

from triplake.settings import get_settings
from triplake.terminal import UsageError, result_table, stderr

COUNTS = ("trips", "trip_routes", "weekly_partitions", "rejected_rows", "raw_lines", "raw_files", "files_deleted",
          "object_versions_deleted")


def add_parser(commands, parse_date: Callable[[str], object], lake_root_of: Callable[[argparse.Namespace], str]) -> None:
    forget = commands.add_parser(
        "forget", help="erase trips from the lake for good: a data source's, an area's or listed ones (under its lease)",
        description="Every criterion given must hold. The trips go from every table, their lines from every raw copy "
                    "and rejected row, the replaced files are deleted and an erasure record stays in `erasures`.")
    forget.add_argument("--datasource", help="the trips of this data source (e.g. cheap_mobile)")
    forget.add_argument("--region", help="the trips of this region (e.g. Prague)")
    forget.add_argument("--bbox", metavar="MIN_LON,MIN_LAT,MAX_LON,MAX_LAT", help="the trips in this box, bounds inclusive")
    forget.add_argument("--match", choices=("origin", "destination", "both", "any"), default="both",
                        help="with --bbox: which end of a trip must lie in the box (default: both)")
    forget.add_argument("--trip-ids", type=Path, metavar="FILE", help="the trips listed in this file, one trip_id per line")
    forget.add_argument("--from", dest="from_date", type=parse_date, metavar="YYYY-MM-DD", help="first day (UTC) of the trips")
    forget.add_argument("--to", dest="to_date", type=parse_date, metavar="YYYY-MM-DD", help="last day (UTC) of the trips")
    forget.add_argument("--dry-run", action="store_true", help="count what would go, per table and raw copies; change nothing")
    forget.add_argument("--lake-root", help="lake URI or path (default: TRIPLAKE_LAKE_ROOT or .local/lake)")
    forget.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    forget.set_defaults(handler=lambda args: forget_command(args, lake_root_of(args)))


def forget_command(args: argparse.Namespace, lake_root: str) -> int:
    from spark_jobs.common.records import OldLayoutError
    from triplake.erasure import Selection, SelectionError
    from triplake.forget import forget
    from triplake.lease import LakeBusyError
    from triplake.maintain import MaintenanceRefused
    from triplake.weekly_average import AreaError, BoundingBox

    try:
        criteria = {"datasource": args.datasource, "region": args.region, "match": args.match,
                    "bbox": BoundingBox.parse(args.bbox) if args.bbox else None,
                    "from_date": args.from_date, "to_date": args.to_date}
        if args.trip_ids is not None:
            if not args.trip_ids.is_file():
                raise UsageError(f"no such file: {args.trip_ids}")
            selection = Selection.with_trip_ids_from(args.trip_ids, **criteria)
        else:
            selection = Selection(**criteria)
        erasure = forget(lake_root, get_settings(), selection, dry_run=args.dry_run)
    except (SelectionError, AreaError, OldLayoutError, MaintenanceRefused, LakeBusyError, PermissionError) as problem:
        raise UsageError(str(problem)) from problem
    if args.json:
        print(json.dumps(erasure.to_dict()))
        return 0
    verb = "would erase" if erasure.dry_run else "erased"
    counted = COUNTS[:6] if erasure.dry_run else COUNTS  # a dry run deletes nothing
    Console().print(result_table(("what", f"{verb}"), [[name, getattr(erasure, name)] for name in counted]))
    stderr.print(f"{erasure.erasure_id}: {verb} {erasure.trips} trips"
                 + ("" if erasure.dry_run else " (recorded in the table `erasures`)"))
    return 0
