"""``lodestar`` — one command line for every Lodestar process and tool.

Settings are resolved once here (``Settings.from_env``) and passed down.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from lodestar import __version__
from lodestar.settings import Settings, SettingsError, settings_table_markdown

Handler = Callable[[argparse.Namespace, Settings], int]


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for chatty in ("httpx", "httpcore"):  # one line per request drowns the CLI's own output
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from lodestar.api.app import create_app

    host = args.host or settings.api_host
    port = args.port or settings.api_port
    print(f"Lodestar API on http://{host}:{port} (Kafka {settings.kafka_bootstrap})", flush=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level.lower())
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from lodestar.engine.app import build_engine, run_worker
    from lodestar.topics_admin import ensure_topics

    asyncio.run(ensure_topics(settings))
    print(
        f"Lodestar worker {settings.worker_id}: Kafka {settings.kafka_bootstrap}, "
        f"ClickHouse {settings.describe()['clickhouse_dsn']}, "
        f"web http://{settings.worker_web_host}:{settings.worker_web_port}",
        flush=True,
    )
    run_worker(build_engine(settings, with_analytics=not args.without_analytics,
                            with_projections=not args.without_projections), settings)
    return 0


def cmd_projections(args: argparse.Namespace, settings: Settings) -> int:
    from lodestar.engine.app import run_projections
    from lodestar.topics_admin import ensure_topics

    asyncio.run(ensure_topics(settings))
    print(f"Lodestar projections {settings.worker_id}: Kafka {settings.kafka_bootstrap} → "
          f"PostgreSQL (endpoint read model, segment membership)", flush=True)
    run_projections(settings)
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from lodestar.control.migrate import migrate

    applied = asyncio.run(migrate(settings.postgres_dsn))
    listed = f": {', '.join(applied)}" if applied else ""
    print(f"PostgreSQL: {len(applied)} migration(s) applied{listed}")
    if not settings.clickhouse_embedded:
        from lodestar.analytics.clickhouse import connect
        from lodestar.analytics.clickhouse import migrate as migrate_clickhouse

        done = migrate_clickhouse(connect(settings.clickhouse_dsn))
        print(f"ClickHouse: {len(done)} migration(s) applied")
    else:
        print("ClickHouse: embedded; the worker applies its migrations when it opens the engine")
    return 0


def cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    from lodestar.topics_admin import ensure_topics

    created = asyncio.run(ensure_topics(settings))
    print(f"{len(created)} topic(s) created" + (": " + ", ".join(created) if created else ""))
    return 0


def cmd_events_count(args: argparse.Namespace, settings: Settings) -> int:
    from lodestar.analytics.reading import AnalyticsUnavailable, read_event_counts

    try:
        counts = read_event_counts(settings, args.app_id, args.event_type)
    except AnalyticsUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(counts, indent=2))
        return 0
    width = max([len(c["EventType"]) for c in counts["Counts"]] + [10])
    print(f"{'event type':<{width}}  count")
    for row in counts["Counts"]:
        print(f"{row['EventType']:<{width}}  {row['Count']}")
    print(f"{'total':<{width}}  {counts['Total']}")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from lodestar.demo import run_demo

    return run_demo(settings, app_id=args.app_id, endpoints=args.endpoints, timeout=args.timeout)


def _control(settings: Settings, work: Callable[[Any], Awaitable[int]]) -> int:
    """Run ``work(repository)`` on a small pool; 1 with a message when PostgreSQL is not ready."""
    from lodestar.api.app import open_control_plane
    from lodestar.control.apps import AppsRepository

    async def run() -> int:
        try:
            pool = await open_control_plane(settings)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        try:
            return await work(AppsRepository(pool))
        finally:
            await pool.close()

    return asyncio.run(run())


def _print_fields(fields: dict[str, Any]) -> None:
    width = max(len(k) for k in fields)
    for key, value in fields.items():
        print(f"{key:<{width}}  {value}")


def cmd_apps_create(args: argparse.Namespace, settings: Settings) -> int:
    from lodestar.api.apps import application_response, parse_create_request
    from lodestar.control.apps import AppExistsError

    tags = {}
    for item in args.tag or []:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"error: --tag takes KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        tags[key] = value
    try:
        name, tags = parse_create_request({"Name": args.name, "tags": tags})
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def work(repo: Any) -> int:
        try:
            app, key = await repo.create_app(name, tags, app_id=args.id)
        except (AppExistsError, ValueError) as exc:
            what = f"an application with id {exc} already exists" if isinstance(
                exc, AppExistsError) else str(exc)
            print(f"error: {what}", file=sys.stderr)
            return 1
        out = {**application_response(settings, app),
               "AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret}
        if args.json:
            print(json.dumps(out, indent=2))
        else:
            _print_fields({k: v for k, v in out.items() if k != "tags"} | (
                {"tags": json.dumps(app.tags)} if app.tags else {}))
        return 0

    return _control(settings, work)


def cmd_apps_list(args: argparse.Namespace, settings: Settings) -> int:
    from lodestar.api.apps import application_response
    from lodestar.control.apps import Cursor

    async def work(repo: Any) -> int:
        apps: list[Any] = []
        after = None
        while True:
            page = await repo.list_apps(1000, after)
            apps += page
            if len(page) < 1000:
                break
            after = Cursor(page[-1].created_at, page[-1].id)
        items = [application_response(settings, a) for a in apps]
        if args.json:
            print(json.dumps({"Item": items}, indent=2))
            return 0
        print(f"{'Id':<32}  {'CreationDate':<24}  Name")
        for item in items:
            print(f"{item['Id']:<32}  {item['CreationDate']:<24}  {item['Name']}")
        return 0

    return _control(settings, work)


def cmd_apps_delete(args: argparse.Namespace, settings: Settings) -> int:
    async def work(repo: Any) -> int:
        app = await repo.delete_app(args.app_id)
        if app is None:
            print(f"error: application {args.app_id} does not exist", file=sys.stderr)
            return 1
        print(f"deleted application {app.id} ({app.name}) and its API keys; running APIs "
              f"stop accepting them within {settings.auth_cache_seconds:g} s")
        return 0

    return _control(settings, work)


def _print_key(key: Any, as_json: bool, note: str = "") -> None:
    out = {"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret,
           "ApplicationId": key.app_id or "(admin)"}
    if as_json:
        print(json.dumps({**out, "ApplicationId": key.app_id}, indent=2))
        return
    _print_fields(out)
    if note:
        print(note)


def cmd_keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from lodestar.control.apps import AppNotFoundError

    async def work(repo: Any) -> int:
        try:
            key = await repo.create_key(args.app_id)
        except AppNotFoundError:
            print(f"error: application {args.app_id} does not exist "
                  "(`lodestar apps list` shows the applications)", file=sys.stderr)
            return 1
        _print_key(key, args.json)
        return 0

    return _control(settings, work)


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(repo: Any) -> int:
        keys = await repo.list_keys(args.app_id, admin=args.admin, include_revoked=args.all)
        rows = [{"AccessKeyId": k.access_key_id, "ApplicationId": k.app_id,
                 "CreationDate": k.created_at.isoformat(),
                 "RevokedDate": k.revoked_at.isoformat() if k.revoked_at else None}
                for k in keys]
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        print(f"{'AccessKeyId':<20}  {'ApplicationId':<32}  {'created':<32}  revoked")
        for r in rows:
            print(f"{r['AccessKeyId']:<20}  {r['ApplicationId'] or '(admin)':<32}  "
                  f"{r['CreationDate']:<32}  {r['RevokedDate'] or '-'}")
        return 0

    return _control(settings, work)


def cmd_keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    if args.access_key_id == settings.admin_access_key_id:
        print("error: that is the admin key of LODESTAR_ADMIN_ACCESS_KEY_ID; change the "
              "setting and restart the API to replace it", file=sys.stderr)
        return 1

    async def work(repo: Any) -> int:
        key = await repo.revoke_key(args.access_key_id)
        if key is None:
            print(f"error: no access key {args.access_key_id}", file=sys.stderr)
            return 1
        owner = f"application {key.app_id}" if key.app_id else "admin"
        print(f"revoked {key.access_key_id} ({owner}) at {key.revoked_at.isoformat()}; "
              f"running APIs refuse it within {settings.auth_cache_seconds:g} s")
        return 0

    return _control(settings, work)


def cmd_keys_admin(args: argparse.Namespace, settings: Settings) -> int:
    if settings.admin_access_key_id and not args.new:
        out = {"AccessKeyId": settings.admin_access_key_id,
               "SecretAccessKey": settings.admin_secret_access_key}
        if args.json:
            print(json.dumps({**out, "ApplicationId": None}, indent=2))
        else:
            _print_fields(out)
            print("(from LODESTAR_ADMIN_ACCESS_KEY_ID / LODESTAR_ADMIN_SECRET_ACCESS_KEY)")
        return 0

    async def work(repo: Any) -> int:
        if args.new:
            key, created = await repo.create_admin_key(), True
        else:
            key, created = await repo.ensure_admin_key()
        note = ("a new admin key; revoke the old one with `lodestar keys revoke <id>` once "
                "clients use this one") if args.new else (
                "created now" if created else "")
        _print_key(key, args.json, f"({note})" if note else "")
        return 0

    return _control(settings, work)


def _backfill_progress(body: dict[str, Any]) -> str:
    """One line: backfill state, endpoints evaluated, partitions done, members now."""
    backfill = body["Backfill"]
    done, total = backfill["EndpointsEvaluated"], backfill["EndpointsTotal"]
    share = f" ({100 * done / total:.1f}%)" if total else ""
    return (f"{backfill['State']}: version {backfill['Version']}, {done}/{total} endpoints "
            f"evaluated{share}, {backfill['PartitionsCompleted']}/{backfill['Partitions']} "
            f"partitions done, {body['Size']} members")


def _print_membership(body: dict[str, Any]) -> None:
    channels = ", ".join(f"{k} {v}" for k, v in body["ChannelCounts"].items())
    _print_fields({
        "Segment": body["SegmentId"],
        "Application": body["ApplicationId"],
        "Version": body["Version"],
        "Size": body["Size"],
        "ChannelCounts": channels or "-",
        "Backfill": body["Backfill"]["State"],
        "Progress": _backfill_progress(body).partition(": ")[2],
    })


def cmd_segments_status(args: argparse.Namespace, settings: Settings) -> int:
    from lodestar.api.app import open_control_plane
    from lodestar.api.segment_membership import membership_response
    from lodestar.control.segment_membership import COMPLETED
    from lodestar.control.segments import SegmentsRepository

    if not args.interval > 0:
        print(f"error: --interval must be a positive number of seconds, got {args.interval}",
              file=sys.stderr)
        return 2
    overwrite = args.watch and not args.json and sys.stdout.isatty()

    async def run() -> int:
        try:
            pool = await open_control_plane(settings)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        try:
            repo = SegmentsRepository(pool)
            shown = None
            while True:
                segment = await repo.get(args.app_id, args.segment_id)
                if segment is None:
                    if overwrite and shown is not None:
                        print()
                    print(f"error: segment {args.segment_id} does not exist in application "
                          f"{args.app_id} (`GET /v1/apps/{args.app_id}/segments` lists them)",
                          file=sys.stderr)
                    return 1
                body = await membership_response(pool, segment, settings.partitions)
                done = body["Backfill"]["State"] == COMPLETED
                if not args.watch:
                    if args.json:
                        print(json.dumps({"SegmentMembershipResponse": body}, indent=2))
                    else:
                        _print_membership(body)
                    return 0
                if body != shown:
                    if args.json:
                        print(json.dumps({"SegmentMembershipResponse": body}), flush=True)
                    elif overwrite:
                        print(f"\r\033[K{_backfill_progress(body)}", end="", flush=True)
                    else:
                        print(_backfill_progress(body), flush=True)
                    shown = body
                if done:
                    if not args.json:
                        if overwrite:
                            print()
                        _print_membership(body)
                    return 0
                await asyncio.sleep(args.interval)
        finally:
            await pool.close()

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


def _import_source(raw: str) -> str:
    """A URL as given (file://, http(s)://, s3://), or a local path made a file:/// URL."""
    from pathlib import Path

    if "://" in raw:
        return raw
    return Path(raw).expanduser().resolve().as_uri()


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from lodestar.api.app import open_control_plane
    from lodestar.api.event_publisher import EventPublisher
    from lodestar.api.job_runner import JobRunner
    from lodestar.api.jobs import JobRequestError, create_import_job
    from lodestar.contracts.codec import AvroCodec
    from lodestar.control.jobs import FINISHED, JobsRepository, JobStatus
    from lodestar.topics_admin import ensure_topics

    source = _import_source(args.source)
    fmt = args.format
    if fmt is None:
        suffix = Path(source.split("?", 1)[0]).suffix.lower()
        fmt = {".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json"}.get(suffix)
        if fmt is None:
            print(f"error: cannot tell the format of {args.source}; pass --format csv|json",
                  file=sys.stderr)
            return 2
    body: dict[str, Any] = {"Format": fmt.upper(), "S3Url": source, "RegisterEndpoints": True}
    if args.segment_name:
        body.update(DefineSegment=True, SegmentName=args.segment_name)
    if args.segment_id:
        body["SegmentId"] = args.segment_id

    async def run() -> int:
        try:
            pool = await open_control_plane(settings)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        publisher = EventPublisher(settings, AvroCodec.default())
        runner: JobRunner | None = None
        try:
            await ensure_topics(settings)
            await publisher.start()
            try:
                created = await create_import_job(pool, publisher, settings, args.app, body,
                                                  actor="lodestar-cli")
            except JobRequestError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            job = created.job
            print(f"import job {job.id} created ({body['Format']} from {source})")
            if created.segment is not None:
                print(f"segment {created.segment.id} ({created.segment.name}), version "
                      f"{created.segment.version}")
            if not args.wait:
                print("A running `lodestar api` runs it; follow it with GetImportJob, or run "
                      "this command with --wait.")
                return 0
            runner = JobRunner(pool, publisher, settings, poll_seconds=0.2,
                               only=(args.app, job.id))
            runner.start()  # a running API may claim it first: a job runs once
            jobs, shown = JobsRepository(pool), None
            while True:
                current = await jobs.get(args.app, job.id)
                if current is None:
                    print("error: the job disappeared (was the application deleted?)",
                          file=sys.stderr)
                    return 1
                p = current.progress
                line = (f"{current.status.value}: {p.total_processed} rows imported, "
                        f"{p.total_failures} failed, files {p.completed_pieces}/"
                        f"{p.total_pieces}")
                if line != shown:
                    print(line, flush=True)
                    shown = line
                if current.status in FINISHED:
                    for failure in p.failures[:args.show_failures]:
                        print(f"  {failure}")
                    if p.total_failures > min(len(p.failures), args.show_failures):
                        print(f"  … {p.total_failures} failures in all (GetImportJob lists "
                              "the first 100)")
                    return 0 if current.status is JobStatus.COMPLETED else 1
                await asyncio.sleep(0.5)
        finally:
            if runner is not None:
                await runner.stop()
            await publisher.stop()
            await pool.close()

    return asyncio.run(run())


def cmd_sender_email(args: argparse.Namespace, settings: Settings) -> int:
    import signal

    from lodestar.channels.email_sender import EmailSender, EmailSenderConfig
    from lodestar.topics_admin import ensure_topics

    config = EmailSenderConfig(
        batch_size=args.batch_size, concurrency=args.concurrency,
        connections=args.connections, rate_per_s=args.rate, max_attempts=args.max_attempts,
        retry_base_s=args.retry_base, retry_cap_s=args.retry_cap,
        retry_deadline_s=args.retry_deadline, group_id=args.group_id,
        freeze_gc=True,  # a process of its own: startup objects leave the collector's scans
    )

    async def run() -> None:
        await ensure_topics(settings)
        sender = EmailSender(settings, config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, sender.stop)
        print(f"Lodestar email sender {sender.instance_id}: "
              f"{settings.topic_prefix}.send.email → SMTP {settings.smtp_host}:"
              f"{settings.smtp_port}, deliveries on {settings.topic_prefix}.deliveries; "
              "SIGTERM stops it", flush=True)
        await sender.run()
        print(f"stopped: {sender.stats}", flush=True)

    asyncio.run(run())
    return 0


def cmd_sender_channel(args: argparse.Namespace, settings: Settings) -> int:
    import signal

    from lodestar.channels.channel_sender import ChannelSender, ChannelSenderConfig
    from lodestar.channels.factory import ChannelConfigError, build_plugin
    from lodestar.topics_admin import ensure_topics

    channel = args.sender_command
    try:
        plugin = build_plugin(channel, settings)
    except ChannelConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = ChannelSenderConfig(
        batch_size=args.batch_size, concurrency=args.concurrency, rate_per_s=args.rate,
        max_attempts=args.max_attempts, retry_base_s=args.retry_base,
        retry_cap_s=args.retry_cap, retry_deadline_s=args.retry_deadline,
        group_id=args.group_id, freeze_gc=True)

    async def run() -> None:
        await ensure_topics(settings)
        sender = ChannelSender(settings, plugin, config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, sender.stop)
        print(f"Lodestar {channel} sender {sender.instance_id}: "
              f"{settings.topic_prefix}.send.{channel} → {channel} provider, deliveries on "
              f"{settings.topic_prefix}.deliveries; SIGTERM stops it", flush=True)
        await sender.run()
        print(f"stopped: {sender.stats}", flush=True)

    asyncio.run(run())
    return 0


def cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    if args.markdown:
        print(settings_table_markdown())
    else:
        for name, value in settings.describe().items():
            print(f"{name:20} {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lodestar",
        description="Lodestar: a self-hosted, Kafka-native successor to Amazon Pinpoint. "
        "Configure with LODESTAR_* environment variables (`lodestar settings`).",
    )
    parser.add_argument("--version", action="version", version=f"lodestar {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("api", help="run the Pinpoint-compatible HTTP API")
    p.add_argument("--host", help="listen address (default LODESTAR_API_HOST)")
    p.add_argument("--port", type=int, help="listen port (default LODESTAR_API_PORT)")
    p.set_defaults(handler=cmd_api)

    p = sub.add_parser("worker", help="run an engine worker (Faust): state, analytics sink")
    p.add_argument(
        "--without-analytics", action="store_true",
        help="do not run the ClickHouse sink in this worker",
    )
    p.add_argument(
        "--without-projections", action="store_true",
        help="do not run the PostgreSQL projections (endpoint read model, segment "
        "membership) in this worker; run `lodestar projections` instead",
    )
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser(
        "projections",
        help="run the PostgreSQL read-model projections on their own (with workers "
        "started --without-projections)",
    )
    p.set_defaults(handler=cmd_projections)

    p = sub.add_parser("migrate", help="apply PostgreSQL (and ClickHouse server) migrations")
    p.set_defaults(handler=cmd_migrate)

    p = sub.add_parser("topics", help="create Lodestar's Kafka topics that are missing")
    p.set_defaults(handler=cmd_topics)

    p = sub.add_parser("events", help="read stored events")
    events_sub = p.add_subparsers(dest="events_command", metavar="ACTION", required=True)
    c = events_sub.add_parser("count", help="count stored events by event type (from ClickHouse)")
    c.add_argument("--app-id", help="only this application")
    c.add_argument("--event-type", help="only this event type")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(handler=cmd_events_count)

    p = sub.add_parser(
        "demo", help="send demo events through the API and wait until they are counted"
    )
    p.add_argument("--app-id", default="demo", help="application id to use (default: demo)")
    p.add_argument("--endpoints", type=int, default=50, help="demo endpoints (default: 50)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the counts")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("apps", help="manage applications (Pinpoint projects) in PostgreSQL")
    apps_sub = p.add_subparsers(dest="apps_command", metavar="ACTION", required=True)
    c = apps_sub.add_parser("create", help="create an application and its first API key")
    c.add_argument("--name", required=True, help="the application's name")
    c.add_argument("--id", help="keep this id (e.g. the Pinpoint project's); default: a new one")
    c.add_argument("--tag", action="append", metavar="KEY=VALUE", help="a tag (repeatable)")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(handler=cmd_apps_create)
    c = apps_sub.add_parser("list", help="list the applications")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(handler=cmd_apps_list)
    c = apps_sub.add_parser("delete", help="delete an application and its API keys")
    c.add_argument("app_id", metavar="APP_ID")
    c.set_defaults(handler=cmd_apps_delete)

    p = sub.add_parser("keys", help="manage API keys: app keys, the admin key, revocation")
    keys_sub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    c = keys_sub.add_parser("create", help="create another API key for an application")
    c.add_argument("--app-id", required=True, help="the application the key belongs to")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(handler=cmd_keys_create)
    c = keys_sub.add_parser("list", help="list API keys (never their secrets)")
    which = c.add_mutually_exclusive_group()
    which.add_argument("--app-id", help="only this application's keys")
    which.add_argument("--admin", action="store_true", help="only admin keys")
    c.add_argument("--all", action="store_true", help="include revoked keys")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(handler=cmd_keys_list)
    c = keys_sub.add_parser("revoke", help="revoke an API key")
    c.add_argument("access_key_id", metavar="ACCESS_KEY_ID")
    c.set_defaults(handler=cmd_keys_revoke)
    c = keys_sub.add_parser("admin", help="show the admin key (creating it if there is none)")
    c.add_argument("--new", action="store_true",
                   help="create an additional admin key (for rotation)")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(handler=cmd_keys_admin)

    p = sub.add_parser("segments", help="inspect segments: membership and backfill progress")
    segments_sub = p.add_subparsers(dest="segments_command", metavar="ACTION", required=True)
    c = segments_sub.add_parser(
        "status",
        help="show a segment's size, channel counts and backfill progress",
        description="Show how many endpoints are in a segment now (in total and per "
        "ChannelType) and how far the workers have got evaluating its latest version over "
        "the endpoints of their partitions (the backfill: PENDING, IN_PROGRESS, COMPLETED). "
        "Reads PostgreSQL directly (LODESTAR_POSTGRES_DSN); the same answer as "
        "GET /v1/apps/APP_ID/segments/SEGMENT_ID/membership. Exits 1 when the segment does "
        "not exist.",
        epilog="example: lodestar segments status \"$APP_ID\" \"$SEGMENT_ID\" --watch",
    )
    c.add_argument("app_id", metavar="APP_ID", help="the application (project) id")
    c.add_argument("segment_id", metavar="SEGMENT_ID", help="the segment id")
    c.add_argument("--watch", action="store_true",
                   help="refresh until the backfill is COMPLETED, printing the progress "
                   "(evaluated/total endpoints, partitions done) as it changes; Ctrl-C stops")
    c.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                   help="seconds between refreshes with --watch (default: 1)")
    c.add_argument("--json", action="store_true",
                   help="print the SegmentMembershipResponse as JSON (with --watch: one "
                   "compact JSON object per line, each time it changes)")
    c.set_defaults(handler=cmd_segments_status)

    p = sub.add_parser(
        "import", help="import endpoints from a CSV or JSON file, directory or URL",
        description="Create an import job, as Pinpoint's CreateImportJob does: every row\n"
        "becomes an endpoint (created or updated) and, with --segment-name or\n"
        "--segment-id, a member of an imported segment.\n\n"
        "CSV: a header row of Pinpoint paths (Id, ChannelType, Address,\n"
        "Location.Country, User.UserId, User.UserAttributes.<name>, Attributes.<name>,\n"
        "Metrics.<name>, ...); repeat a column for several values. JSON: one\n"
        "EndpointRequest object (with Id) per line. See docs/imports.md.",
        epilog="examples:\n  lodestar import users.csv --app APP --segment-name Newsletter "
        "--wait\n  lodestar import https://example.com/endpoints.json --app APP\n  "
        "lodestar import ./drop/ --app APP --format csv --wait",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", metavar="FILE_OR_URL",
                   help="a file or directory on this host (read by the process that runs the "
                   "job), a file:/// URL, or an http(s):// URL")
    p.add_argument("--app", required=True, help="the application (project) id")
    p.add_argument("--format", choices=["csv", "json"],
                   help="the file format (default: from the extension .csv/.json/.jsonl)")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--segment-name", metavar="NAME",
                        help="define a new imported segment of these endpoints")
    target.add_argument("--segment-id", metavar="ID",
                        help="add the endpoints to this imported segment (a new version)")
    p.add_argument("--wait", action="store_true",
                   help="run the job here (or let a running API run it) and show progress "
                   "until it ends; exit 1 if it FAILED")
    p.add_argument("--show-failures", type=int, default=10, metavar="N",
                   help="with --wait, print the first N row failures (default: 10)")
    p.set_defaults(handler=cmd_import)

    p = sub.add_parser(
        "sender", help="run a channel sender: consume send requests and deliver them")
    sender_sub = p.add_subparsers(dest="sender_command", metavar="CHANNEL", required=True)
    c = sender_sub.add_parser(
        "email",
        help="deliver <prefix>.send.email over SMTP, each message id at most once",
        description="Consume SendRequests from <prefix>.send.email (consumer group "
        "<prefix>-sender-email), render the template against the request's endpoint "
        "snapshot, send over SMTP (LODESTAR_SMTP_*), retry transient failures with "
        "backoff, and publish _email.* records on <prefix>.deliveries. Each message id "
        "is claimed in PostgreSQL (table sent_messages; run `lodestar migrate` first) "
        "before it reaches SMTP, so it is delivered at most once across crashes and "
        "rebalances (docs/email.md). Runs until SIGTERM or Ctrl-C; run more processes "
        "to scale out.",
    )
    c.add_argument("--batch-size", type=int, default=500,
                   help="send requests per poll; offsets are committed after each (default 500)")
    c.add_argument("--concurrency", type=int, default=32,
                   help="messages in flight at once; also the claim chunk, so a crash leaves "
                   "at most this many with an unknown outcome (default 32)")
    c.add_argument("--connections", type=int, default=8,
                   help="SMTP connections kept open to the relay (default 8)")
    c.add_argument("--rate", type=float, default=0.0, metavar="PER_SECOND",
                   help="relay rate limit in messages a second; 0 means none (default 0)")
    c.add_argument("--max-attempts", type=int, default=5,
                   help="SMTP attempts per message for transient failures (default 5)")
    c.add_argument("--retry-base", type=float, default=0.5, metavar="SECONDS",
                   help="first backoff ceiling, doubled per attempt, full jitter (default 0.5)")
    c.add_argument("--retry-cap", type=float, default=30.0, metavar="SECONDS",
                   help="largest backoff between attempts (default 30)")
    c.add_argument("--retry-deadline", type=float, default=120.0, metavar="SECONDS",
                   help="give up retrying a message this long after its first attempt "
                   "(default 120)")
    c.add_argument("--group-id", help="consumer group (default <prefix>-sender-email)")
    c.set_defaults(handler=cmd_sender_email)
    for name, what, doc in (
        ("sms", "SMS through Twilio or a generic HTTP provider (LODESTAR_SMS_*, "
         "LODESTAR_TWILIO_*), origination identity per destination country",
         "docs/sms.md"),
        ("push", "push notifications through FCM HTTP v1, APNs (HTTP/2, token auth), "
         "Web Push (VAPID, RFC 8291), ADM or Baidu Cloud Push, by the endpoint's ChannelType "
         "(LODESTAR_FCM_*, LODESTAR_APNS_*, LODESTAR_WEBPUSH_*, LODESTAR_ADM_*, "
         "LODESTAR_BAIDU_*); dead tokens make the endpoint INACTIVE",
         "docs/push.md"),
        ("voice", "voice calls through Twilio's Calls API with TwiML <Say> "
         "(LODESTAR_TWILIO_*, LODESTAR_VOICE_*)", "docs/voice-and-custom.md"),
        ("custom", "signed HTTPS webhooks (HMAC-SHA256, LODESTAR_WEBHOOK_*), refusing "
         "private and loopback destinations unless allowed", "docs/voice-and-custom.md"),
    ):
        c = sender_sub.add_parser(
            name, help=f"deliver <prefix>.send.{name}, each message id at most once",
            description=f"Consume SendRequests from <prefix>.send.{name} (consumer group "
            f"<prefix>-sender-{name}) and deliver {what}. Each chunk of message ids is "
            "claimed in PostgreSQL (sent_messages; run `lodestar migrate` first) before it "
            "reaches the provider, so each is delivered at most once across crashes; "
            "transient failures (HTTP 408/429/5xx, timeouts) are retried with backoff "
            "honouring Retry-After; outcomes go to <prefix>.deliveries with Pinpoint's "
            f"event types. See {doc}. Runs until SIGTERM or Ctrl-C.")
        c.add_argument("--batch-size", type=int, default=500,
                       help="send requests per poll (default 500)")
        c.add_argument("--concurrency", type=int, default=64,
                       help="messages in flight at once; also the claim chunk (default 64)")
        c.add_argument("--rate", type=float, default=0.0, metavar="PER_SECOND",
                       help="provider rate limit in messages a second; 0 means none")
        c.add_argument("--max-attempts", type=int, default=5,
                       help="attempts per message for transient failures (default 5)")
        c.add_argument("--retry-base", type=float, default=0.5, metavar="SECONDS",
                       help="first backoff ceiling, doubled per attempt (default 0.5)")
        c.add_argument("--retry-cap", type=float, default=30.0, metavar="SECONDS",
                       help="largest backoff between attempts (default 30)")
        c.add_argument("--retry-deadline", type=float, default=120.0, metavar="SECONDS",
                       help="give up this long after a message's first attempt (default 120)")
        c.add_argument("--group-id", help=f"consumer group (default <prefix>-sender-{name})")
        c.set_defaults(handler=cmd_sender_channel)

    p = sub.add_parser("settings", help="show the resolved settings")
    p.add_argument("--markdown", action="store_true", help="print the settings table as Markdown")
    p.set_defaults(handler=cmd_settings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _configure_logging(settings.log_level)
    handler: Handler = args.handler
    return handler(args, settings)


if __name__ == "__main__":
    sys.exit(main())
