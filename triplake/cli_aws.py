"""The commands that talk to AWS or to the local stack: `triplake upload`, `triplake stack`, `triplake watch`."""

from __future__ import annotations

import argparse
import io
import json
import queue
import time

from triplake.settings import get_settings
from triplake.terminal import UsageError, event_line, progress_line, stderr

PROGRESS_POLL_SECONDS = 2.0


def upload(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from triplake.aws import clients
    from triplake.aws.s3 import landing_key, upload_file
    from triplake.events import is_ingestible, unsupported_file_message

    settings = get_settings()
    if not args.file.is_file():
        raise UsageError(f"no such file: {args.file}")
    if not is_ingestible(args.file.name):
        raise UsageError(unsupported_file_message(args.file.name))
    (s3,) = clients(settings, "s3")
    key = landing_key(args.file, settings.landing_prefix)
    try:
        uri = upload_file(s3, args.file, settings.landing_bucket, key, emulator=settings.endpoint_url("s3") is not None)
    except (BotoCoreError, ClientError) as problem:
        raise UsageError(f"could not upload {args.file} to s3://{settings.landing_bucket}/{key}: {problem} "
                         "(is the stack up? `triplake stack status`)") from problem
    print(uri)
    return 0


def stack_command(args: argparse.Namespace) -> int:
    import shlex

    from triplake.local import stack

    directory = args.directory or stack.STACK_DIR
    if args.action == "up":
        try:
            state = stack.up(get_settings(), directory, say=lambda line: stderr.print(line), aws=args.aws)
        except stack.StackError as problem:
            raise UsageError(str(problem)) from problem
        stderr.print(f"Airflow UI: {state.airflow_url}  (user {stack.AIRFLOW_USER}, password: `triplake stack status`)")
        where = f" --directory {shlex.quote(str(args.directory))}" if args.directory else ""
        stderr.print(f'Use the stack from this shell: eval "$(triplake stack env{where})"')
        return 0
    if args.action == "down":
        stack.down(directory, say=lambda line: stderr.print(line), forget=args.forget)
        return 0
    state = stack.StackState.load(directory)
    if args.action == "env":
        if state is None:
            raise UsageError("the stack is not up: `triplake stack up` first")
        print("\n".join(f"export {name}={shlex.quote(value)}" for name, value in state.env.items()))
        return 0
    report = stack.status(directory)
    if args.json:
        print(json.dumps(report))
        return 0 if report["up"] else 1
    if state is None:
        stderr.print("the stack is not up: `triplake stack up` starts it")
        return 1
    airflow, moto = report["airflow"], report["moto"]
    stderr.print(f"stack: {'[green]up[/green]' if report['up'] else '[red]not fully running[/red]'} (state and logs in {report['logs']})")
    stderr.print(f"  moto server  pid {moto['pid']}  {moto['endpoint']}  {'running' if moto['running'] else 'stopped'}")
    if localstack := report.get("localstack"):
        stderr.print(f"  LocalStack   pid {localstack['pid']}  {localstack['endpoint']}  "
                     f"{'running' if localstack['running'] else 'stopped'}  ({', '.join(localstack['services'])})")
    stderr.print(f"  Airflow      pid {airflow['pid']}  {airflow['url']}  {'running' if airflow['running'] else 'stopped'}"
                 f"  login {airflow['login']['user']} / {airflow['login']['password'] or '(not generated yet)'}")
    for name, value in report["resources"].items():
        stderr.print(f"  {name:<22} {value}")
    return 0 if report["up"] else 1


def watch(args: argparse.Namespace) -> int:
    from triplake.aws import clients
    from triplake.events import FAILED, RECEIVED, SUCCEEDED
    from triplake.orchestration import topic_arn
    from triplake.watch import StatusReceiver, subscribe

    settings = get_settings()
    sns, sts = clients(settings, "sns", "sts")
    # moto signs nothing (docs/architecture.md, "Facts the code relies on"): signatures are checked against AWS, and
    # against an emulator only when its signing certificate is trusted explicitly (LocalStack signs as SNS does).
    trusted = settings.sns_trusted_certificate_url
    with StatusReceiver(verify_signatures=settings.endpoint_url("sns") is None or trusted is not None,
                        trusted_certificate_url=trusted, port=args.port) as receiver:
        endpoint = args.public_url or receiver.url
        try:
            arn = topic_arn(settings, lambda: sts.get_caller_identity()["Account"])
            subscription = subscribe(sns, arn, endpoint)
        except Exception as problem:  # botocore's errors name the cause; the user needs the stack or credentials
            raise UsageError(f"could not subscribe {endpoint} to the status topic: {problem} "
                             "(is the stack up? `triplake stack status`)") from problem
        stderr.print(f"watching {arn} at {endpoint} (Ctrl-C to stop)")
        pending: dict[str, str | None] = {}  # each running ingestion and the last stage shown for it
        finished: list[str] = []
        exit_code = 0
        progress_due = time.monotonic()
        try:
            deadline = time.monotonic() + args.timeout if args.timeout else None
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    stderr.print(f"[red]no end of the ingestion within {args.timeout:.0f} s[/red]")
                    return 3
                if args.progress and pending and time.monotonic() >= progress_due:
                    _show_progress(settings, pending, args.json)
                    progress_due = time.monotonic() + PROGRESS_POLL_SECONDS
                try:
                    event = receiver.events.get(timeout=min(remaining, 1.0) if remaining is not None else 1.0)
                except queue.Empty:
                    continue
                print(json.dumps(event) if args.json else event_line(event), flush=True)
                if event["status"] == RECEIVED:
                    pending[event["ingestion_id"]] = None
                elif event["status"] in (SUCCEEDED, FAILED):
                    pending.pop(event["ingestion_id"], None)
                    finished.append(event["ingestion_id"])
                    exit_code = max(exit_code, 1 if event["status"] == FAILED else 0)
                    if args.until_done and len(finished) >= args.ingestions:
                        return exit_code
        except KeyboardInterrupt:
            return exit_code
        finally:
            sns.unsubscribe(SubscriptionArn=subscription)


def _show_progress(settings, pending: dict[str, str | None], as_json: bool) -> None:
    """The stage each running ingestion is in, once per stage: read from its progress note in the lake (the status
    events say RECEIVED and how it ended; this is what happens in between)."""
    from spark_jobs.common.locations import progress_path
    from triplake.lake_files import read_text

    for ingestion_id, shown in pending.items():
        try:
            text = read_text(settings.lake_root, progress_path(ingestion_id), settings)
        except OSError:  # the lake is not readable from here: the events still come
            continue
        progress = json.loads(text) if text else None
        if progress and progress.get("stage") != shown:
            pending[ingestion_id] = progress["stage"]
            print(json.dumps({"progress": progress}) if as_json else progress_line(progress), flush=True)


def redrive(args: argparse.Namespace, lake_root: str) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from spark_jobs.common import delta
    from triplake.aws import clients
    from triplake.lake_files import delta_storage
    from triplake.lake_objects import lake_objects
    from triplake.lake_snapshot import ERASURES
    from triplake.redrive import SENT_BACK, ErasureCheck, RedriveError, past_erasures
    from triplake.redrive import redrive as redrive_queue

    settings = get_settings()
    sqs, s3 = clients(settings, "sqs", "s3")

    def open_upload(upload):  # an upload no longer in the landing bucket holds nothing: sent back, it fails, named
        try:
            return s3.get_object(Bucket=upload.bucket, Key=upload.key)["Body"]
        except s3.exceptions.NoSuchKey:
            return io.BytesIO()

    try:
        erasures = past_erasures(delta.rows(f"{lake_root.rstrip('/')}/{ERASURES}", delta_storage(settings),
                                            ["erasure_id", "selection", "erased_at"]))
        queue_url = settings.landing_queue_url or sqs.get_queue_url(QueueName=settings.landing_queue_name)["QueueUrl"]
        messages = redrive_queue(sqs, queue_url, settings.landing_prefix, lake_objects(lake_root, settings),
                                 ErasureCheck(erasures, open_upload), dry_run=args.dry_run)
    except RedriveError as problem:
        raise UsageError(str(problem)) from problem
    except (BotoCoreError, ClientError) as problem:
        raise UsageError(f"could not redrive the landing queue {settings.landing_queue_name}: {problem} "
                         "(is the stack up? `triplake stack status`; in AWS: TRIPLAKE_LANDING_QUEUE_URL)") from problem
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, "messages": [message.to_dict() for message in messages]}))
        return 0
    verb = "would be" if args.dry_run else "was"
    for message in messages:
        named = ", ".join(upload.uri + (f" (ingestion {upload.ingestion_id})" if upload.ingestion_id else "")
                          + (f" (uploaded before {', '.join(upload.held_by)}, which take(s) lines of it: see "
                             "docs/runbook.md, 'A held upload')" if upload.held_by else "")
                          for upload in message.uploads) or "; ".join(f"{item.what}: {item.reason}" for item in message.skipped)
        stderr.print(f"{message.message_id} {verb} {message.action}: {named}")
    sent = sum(message.action == SENT_BACK for message in messages)
    stderr.print(f"{len(messages)} dead-letter message(s); {sent} {verb} sent back to the landing queue"
                 + ("" if args.dry_run or not sent else ": `triplake watch` shows each upload's answer"))
    return 0
