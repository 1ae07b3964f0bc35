"""ClickHouse connection and schema migrations.

``connect(dsn, database)`` returns a clickhouse-connect client for either the
embedded engine (``chdb:///path``) or a server (``http(s)://…``); the caller
owns it. ``migrate(client)`` applies ``migrations/*.sql`` in name order, once
each, recording them in ``lodestar_migrations``.

The embedded engine is owned by one process (DESIGN §4): only that process
may call ``connect`` with a ``chdb:`` DSN.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from lodestar.sql_files import bundled_migrations

log = logging.getLogger(__name__)

_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def connect(dsn: str, database: str | None = None) -> Client:
    """A client on ``dsn``; creates ``database`` first when it is given and missing."""
    if database is None:
        return clickhouse_connect.get_client(dsn=dsn)
    if not _DB_NAME.match(database):
        raise ValueError(f"invalid ClickHouse database name {database!r}")
    bootstrap = clickhouse_connect.get_client(dsn=dsn)
    bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    if dsn.startswith("chdb:"):
        return clickhouse_connect.get_client(dsn=dsn, database=database)
    bootstrap.close()
    return clickhouse_connect.get_client(dsn=dsn, database=database)


def migration_files() -> list[tuple[str, str]]:
    """``(version, sql)`` for every bundled migration, in order."""
    return bundled_migrations("lodestar.analytics")


def migrate(client: Client) -> list[str]:
    """Apply the pending migrations; return the versions applied now."""
    client.command(
        "CREATE TABLE IF NOT EXISTS lodestar_migrations "
        "(version String, applied_at DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    done = {row[0] for row in client.query("SELECT version FROM lodestar_migrations").result_rows}
    applied: list[str] = []
    for version, sql in migration_files():
        if version in done:
            continue
        for statement in _statements(sql):
            client.command(statement)
        client.insert("lodestar_migrations", [[version]], column_names=["version"])
        applied.append(version)
        log.info("ClickHouse migration %s applied", version)
    return applied


def _statements(sql: str) -> list[str]:
    body = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def scalar(client: Client, query: str, parameters: dict[str, Any] | None = None) -> Any:
    """The first column of the first row of ``query`` (None when empty)."""
    rows = client.query(query, parameters=parameters).result_rows
    return rows[0][0] if rows else None


TTL_COLUMNS: dict[str, str] = {
    "events": "event_time",
    "deliveries": "event_time",
    "activity": "step_time",
    "segment_membership": "change_time",
}
"""The raw tables a retention period applies to, and the time column it counts from.
The daily rollups are kept: they are small and keep whole-day KPIs over any range."""


def apply_ttl(client: Client, days: int) -> None:
    """Keep raw rows ``days`` days (``LODESTAR_CLICKHOUSE_TTL_DAYS``); 0 keeps them forever.
    Idempotent: run at every start, so changing the setting changes the tables."""
    if days < 0:
        raise ValueError("the TTL must be 0 (keep forever) or a number of days")
    for table, column in TTL_COLUMNS.items():
        if days:
            client.command(f"ALTER TABLE {table} MODIFY TTL "
                           f"toDateTime({column}) + INTERVAL {int(days)} DAY")
        else:
            try:
                client.command(f"ALTER TABLE {table} REMOVE TTL")
            except Exception as exc:  # no TTL to remove: nothing to do
                if "TTL" not in str(exc) and "ttl" not in str(exc):
                    raise
