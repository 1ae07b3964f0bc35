"""``lodestar`` — one command line for every Lodestar process and tool.

Settings are resolved once here (``Settings.from_env``) and passed down.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Sequence

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
    run_worker(build_engine(settings, with_analytics=not args.without_analytics), settings)
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
    from lodestar.analytics.reading import EventCountsUnavailable, read_event_counts

    try:
        counts = read_event_counts(settings, args.app_id, args.event_type)
    except EventCountsUnavailable as exc:
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
    p.set_defaults(handler=cmd_worker)

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
