"""The `triplake` command line: run, replay, maintain, forget, upload, redrive, watch, weekly-average, sql, generate, stack, routes-map."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path

from rich.console import Console

from triplake.settings import get_settings
from triplake import cli_aws, cli_forget, cli_replay
from triplake.terminal import UsageError, ingestions_table, result_table, routes_table, stderr

def _generate(args: argparse.Namespace) -> int:
    from triplake.generate import GenerateOptions, generate

    try:
        options = GenerateOptions(
            rows=args.rows,
            seed=args.seed,
            duplicate_rate=args.duplicate_rate,
            noise_rate=args.noise_rate,
            routes_per_region=args.routes_per_region,
            days=args.days,
            **({"start": args.start} if args.start else {}),
        )
    except ValueError as problem:
        raise UsageError(str(problem)) from problem
    written = generate(options, args.out, args.truth_out, progress=args.rows >= 1_000_000 and stderr.is_terminal)
    stderr.print(f"wrote {written:,} trips to {args.out}" + (f" (planted routes in {args.truth_out})" if args.truth_out else ""))
    return 0


def _run(args: argparse.Namespace) -> int:
    return run_files(args.input, args.lake_root, as_json=args.json, refit=args.refit, verbose=args.verbose)


def run_files(locations: list[str], lake_root: str | None, as_json: bool, refit: bool, verbose: bool) -> int:
    """`triplake run` of these files (paths or URIs) into the lake (default: the settings'): what it prints, and its
    exit code. `triplake replay` runs its file through here too."""
    from spark_jobs.common import records
    from spark_jobs.common.lease import LeaseLostError
    from triplake.lake_files import delta_storage
    from triplake.lease import LakeBusyError
    from triplake.pipeline import run_pipeline
    from triplake.spark import build_local_session
    from triplake.uris import local_path, to_uri

    settings = get_settings()
    try:
        inputs = [to_uri(location) for location in locations]
        lake_root = to_uri(lake_root or settings.lake_root)
    except ValueError as problem:
        raise UsageError(str(problem)) from problem
    missing = [uri for uri in inputs if (path := local_path(uri)) is not None and not path.is_file()]
    if missing:
        raise UsageError(f"input file not found: {', '.join(missing)}")
    try:
        records.check_layout(lake_root, delta_storage(settings))
    except records.OldLayoutError as problem:
        raise UsageError(str(problem)) from problem

    def waiting(holder) -> None:
        stderr.print(f"waiting for the lake: it is being written by {holder.describe()}")

    with stderr.status("starting Spark (local mode)...", spinner="dots"):
        spark = build_local_session(settings)
    if not verbose:  # a file's problem is reported in one line below; Spark's stack traces only with -v
        spark.sparkContext.setLogLevel("OFF")
    try:
        with stderr.status(f"ingesting {len(inputs)} file(s) and grouping their trips into routes...", spinner="dots"):
            result = run_pipeline(spark, inputs, lake_root, refit=refit, settings=settings, on_wait=waiting)
    except (LakeBusyError, LeaseLostError) as problem:
        stderr.print(f"[red]error:[/red] {problem}")
        return 1

    if as_json:
        print(json.dumps(result.to_dict(), default=str))
    else:
        # Off a terminal (CI logs, pipes) rich assumes 80 columns; the summary needs more to stay readable.
        console = Console(width=None if Console().is_terminal else 140)
        console.print(ingestions_table(result))
        for ingestion in result.ingestions:
            if ingestion.counts.rejected_by_reason:
                reasons = ", ".join(f"{reason} {count:,}" for reason, count in ingestion.counts.rejected_by_reason.items())
                console.print(f"  {ingestion.ingestion_id}: rejected rows by reason: {reasons}")
            if ingestion.error:
                console.print(f"  [red]{ingestion.ingestion_id} FAILED[/red] ({ingestion.error['kind']}): {ingestion.error['message']}")
        if result.routes:
            console.print(routes_table(result))
        console.print(f"Raw copies under {lake_root}/raw; query the lake with `triplake sql` or "
                      "`triplake weekly-average` (tables trips, routes, weekly_trips, ingestions, rejected_rows).")
    for ingestion in result.ingestions:
        if ingestion.error:
            stderr.print(f"[red]error:[/red] {ingestion.source_uri}: {ingestion.error['message']}")
    return 0 if result.succeeded else 1


def _routes_map(args: argparse.Namespace) -> int:
    from triplake.routes_map import NoRoutesError, draw, load_region
    from triplake.uris import to_uri

    settings = get_settings()
    try:
        lake_root = to_uri(args.lake_root or settings.lake_root)
        picture = load_region(lake_root, args.region, settings)
    except (ValueError, NoRoutesError) as problem:
        raise UsageError(str(problem)) from problem
    out = draw(picture, args.out)
    stderr.print(f"wrote {out}: {len(picture.routes)} routes of {args.region}")
    return 0


def _maintain(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from spark_jobs.common.records import OldLayoutError
    from triplake.lease import LakeBusyError
    from triplake.maintain import MaintenanceRefused, maintain

    try:
        done = maintain(_lake_root(args), get_settings())
    except (OldLayoutError, MaintenanceRefused, LakeBusyError) as problem:
        raise UsageError(str(problem)) from problem
    if args.json:
        print(json.dumps({"tables": [asdict(table) for table in done]}))
    else:
        columns = ("table", "files_before", "files_after", "files_compacted", "files_added", "files_vacuumed", "version")
        Console().print(result_table(columns, [[getattr(table, column) for column in columns] for table in done]))
    return 0


def _lake_root(args: argparse.Namespace) -> str:
    from triplake.uris import to_uri

    try:
        return to_uri(args.lake_root or get_settings().lake_root)
    except ValueError as problem:
        raise UsageError(str(problem)) from problem


def _engine(args: argparse.Namespace):
    from triplake.query import engine_for

    return engine_for(args.engine, _lake_root(args), get_settings())


def _weekly_average(args: argparse.Namespace) -> int:
    from triplake.query.statement import SqlError
    from triplake.weekly_average import Area, AreaError, BoundingBox, weekly_average

    try:
        area = Area(
            region=args.region,
            route_id=args.route,
            bbox=BoundingBox.parse(args.bbox) if args.bbox is not None else None,
            match=args.match,
        )
        answer = weekly_average(_engine(args), area, args.from_date, args.to_date)
    except (AreaError, SqlError) as problem:
        raise UsageError(str(problem)) from problem
    if args.json:
        print(json.dumps(answer))
    else:
        print(f"{area.label()}: {answer['weekly_average']:,.2f} trips per week "
              f"({answer['trips']:,} trips over {answer['weeks']} weeks, "
              f"weeks of {answer['first_week']} to {answer['last_week']})")
    return 0


def _sql(args: argparse.Namespace) -> int:
    from triplake.query import result_value
    from triplake.query.statement import SqlError, Statement

    if args.create_views:
        return _create_views(args)
    try:
        statement = Statement.from_file(args.file) if args.file else Statement(args.query)
        if statement.is_ddl:
            statement = statement.with_lake_root(_lake_root(args))
        values = dict(_parameter(text) for text in args.param)
        result = _engine(args).run(statement, values)
    except OSError as problem:
        raise UsageError(f"cannot read {args.file}: {problem.strerror}") from problem
    except SqlError as problem:
        raise UsageError(str(problem)) from problem
    rows = [[result_value(value) for value in row] for row in result.rows]
    if args.format == "json":
        print(json.dumps({"columns": list(result.columns), "rows": [dict(zip(result.columns, row)) for row in rows]}))
    elif args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows(rows)
    else:
        Console(width=None if Console().is_terminal else 160).print(result_table(result.columns, rows))
    return 0


def _create_views(args: argparse.Namespace) -> int:
    from triplake.query.statement import SqlError, ordered_views

    engine = _engine(args)
    try:
        for view in ordered_views():
            engine.run(view, {})
            stderr.print(f"created view {view.expression.this.name}")
    except SqlError as problem:
        raise UsageError(str(problem)) from problem
    return 0


def _parameter(text: str) -> tuple[str, str]:
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise UsageError(f"--param {text!r}: expected name=value, e.g. --param region=Prague")
    return name, value


def _date(text: str):
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: expected YYYY-MM-DD") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="triplake", description="Event-driven data lake for vehicle trips.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = commands.add_parser("generate", help="write synthetic trips with planted routes")
    generate.add_argument("--rows", type=int, required=True, help="number of trips (duplicates included)")
    generate.add_argument("--out", type=Path, required=True, help="output .csv or .csv.gz")
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument("--duplicate-rate", type=float, default=0.0, help="share of rows that copy another row")
    generate.add_argument("--noise-rate", type=float, default=0.1, help="share of trips that follow no route")
    generate.add_argument("--routes-per-region", type=int, default=5)
    generate.add_argument("--start", type=_date, metavar="YYYY-MM-DD",
                          help="first day of the trips (default 2018-05-01, the month of the sample)")
    generate.add_argument("--days", type=int, default=31, help="trips spread over this many days from --start")
    generate.add_argument("--truth-out", type=Path, help="also write the planted route of every line here")
    generate.set_defaults(handler=_generate)

    run = commands.add_parser("run", help="run the batch pipeline on local Spark")
    run.add_argument("--input", nargs="+", required=True, metavar="PATH", help="CSV or CSV.gz files (paths or URIs)")
    run.add_argument("--lake-root", help="lake URI or path (default: TRIPLAKE_LAKE_ROOT or .local/lake)")
    run.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    run.add_argument("--refit", action="store_true", help="fit the route models of the files' regions again")
    run.set_defaults(handler=_run)

    maintain = commands.add_parser("maintain", help="compact, vacuum and checkpoint the lake's tables (under its lease)")
    maintain.add_argument("--lake-root", help="lake URI or path (default: TRIPLAKE_LAKE_ROOT or .local/lake)")
    maintain.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    maintain.set_defaults(handler=_maintain)

    cli_forget.add_parser(commands, _date, _lake_root)
    cli_replay.add_parser(commands, run_files, _lake_root)

    routes_map = commands.add_parser("routes-map", help="draw a region's routes to a PNG file")
    routes_map.add_argument("--region", required=True)
    routes_map.add_argument("--out", type=Path, required=True, help="PNG file to write")
    routes_map.add_argument("--lake-root", help="lake URI or path (default: TRIPLAKE_LAKE_ROOT or .local/lake)")
    routes_map.set_defaults(handler=_routes_map)

    lake_options = argparse.ArgumentParser(add_help=False)
    lake_options.add_argument("--lake-root", help="lake URI or path (default: TRIPLAKE_LAKE_ROOT or .local/lake)")
    lake_options.add_argument("--engine", choices=("local", "athena"), default="local",
                              help="local: DuckDB over the lake's files; athena: the Glue catalog through Athena")

    average = commands.add_parser("weekly-average", parents=[lake_options],
                                  help="weekly average number of trips in a region or a bounding box")
    area = average.add_mutually_exclusive_group(required=True)
    area.add_argument("--region", help="region name, as in the data (e.g. Prague)")
    area.add_argument("--bbox", metavar="MIN_LON,MIN_LAT,MAX_LON,MAX_LAT", help="bounding box, bounds inclusive")
    average.add_argument("--match", choices=("origin", "destination", "both", "any"), default="both",
                         help="with --bbox: which end of a trip must lie in the box (default: both)")
    average.add_argument("--route", help="with --region: only this route (e.g. Prague-03)")
    average.add_argument("--from", dest="from_date", type=_date, metavar="YYYY-MM-DD",
                         help="first day of the window (default: week of the earliest trip in the lake)")
    average.add_argument("--to", dest="to_date", type=_date, metavar="YYYY-MM-DD",
                         help="last day of the window (default: week of the latest trip in the lake)")
    average.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    average.set_defaults(handler=_weekly_average)

    sql = commands.add_parser("sql", parents=[lake_options], help="run an SQL statement (Athena dialect) on the lake")
    source = sql.add_mutually_exclusive_group(required=True)
    source.add_argument("query", nargs="?", help="the statement, e.g. \"select region, count(*) from trips group by region\"")
    source.add_argument("--file", type=Path, help="a file holding one statement, e.g. sql/queries/regions_of_datasource.sql")
    source.add_argument("--create-views", action="store_true",
                        help="create every view of sql/views, each after the views it reads (once per Athena catalog)")
    sql.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="value of a :NAME parameter")
    sql.add_argument("--format", choices=("table", "json", "csv"), default="table")
    sql.set_defaults(handler=_sql)

    upload = commands.add_parser("upload", help="put a file into the landing bucket (its upload starts an ingestion)")
    upload.add_argument("file", type=Path, help="a .csv or .csv.gz file of trips")
    upload.set_defaults(handler=cli_aws.upload)

    stack = commands.add_parser("stack", help="local AWS (moto server) and Airflow standalone, resources bootstrapped")
    stack.add_argument("action", choices=("up", "down", "status", "env"),
                       help="up | down | status | env (export lines for the stack's endpoint and names)")
    stack.add_argument("--json", action="store_true", help="status: print exactly one JSON object on stdout")
    stack.add_argument("--aws", choices=("moto", "localstack"), default="moto",
                       help="up: the local AWS; localstack serves S3, SQS, SNS and STS (signed SNS deliveries), moto the "
                            "rest (`make localstack` installs it)")
    stack.add_argument("--directory", type=Path, default=None,
                       help="where the stack keeps its state and logs (default .local/stack): one stack per directory")
    stack.add_argument("--forget", action="store_true",
                       help="down: also wipe the saved buckets, catalog and Airflow history (the next up starts empty)")
    stack.set_defaults(handler=cli_aws.stack_command)

    redrive = commands.add_parser("redrive", help="send the landing queue's dead-letter messages back, each upload answered")
    redrive.add_argument("--dry-run", action="store_true", help="say what would be sent back; move nothing")
    redrive.add_argument("--lake-root", help="lake URI or path, whose receipts tell what was received already")
    redrive.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    redrive.set_defaults(handler=lambda args: cli_aws.redrive(args, _lake_root(args)))

    watch = commands.add_parser("watch", help="receive ingestion status events as they happen (SNS HTTP subscription)")
    watch.add_argument("--until-done", action="store_true",
                       help="exit after the next ingestion ends: 0 when it SUCCEEDED, 1 when it FAILED")
    watch.add_argument("--ingestions", type=int, default=1, metavar="N", help="with --until-done: wait for N ingestions")
    watch.add_argument("--timeout", type=float, metavar="SECONDS", help="give up after this long (exit 3)")
    watch.add_argument("--port", type=int, default=0, help="port of the endpoint on 127.0.0.1 (default: a free one)")
    watch.add_argument("--public-url", help="URL at which SNS reaches this endpoint (AWS: e.g. an HTTPS tunnel)")
    watch.add_argument("--json", action="store_true", help="print each event as one JSON line")
    watch.add_argument("--progress", action="store_true",
                       help="also print the stage each running ingestion is in (read from the lake, every 2 s)")
    watch.set_defaults(handler=cli_aws.watch)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except UsageError as problem:
        stderr.print(f"[red]error:[/red] {problem}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
