"""Applications (Pinpoint "projects") and their API keys, in PostgreSQL.

Plain SQL over an asyncpg pool that the caller owns. An application has an id
like Pinpoint's (32 lowercase hex characters, unless an id is chosen on
creation, e.g. to keep a Pinpoint project's id), a name and tags. An API key
is an access key id (20 upper-case letters and digits, ``LSK…`` for app keys,
``LSA…`` for admin keys) and a 40-character secret. The secret is stored as
it is: SigV4 signatures are HMACs keyed with it, so the server needs it back
(docs/authentication.md asks for encryption at rest). An admin key has no
application (``app_id`` NULL); an app key is deleted with its application.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

APP_KEY_PREFIX = "LSK"
ADMIN_KEY_PREFIX = "LSA"
ACCESS_KEY_ID_LENGTH = 20
SECRET_LENGTH = 40

_KEY_ID_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits
# an application id travels in URL paths and ARNs: keep it to path-safe characters
APP_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_ADMIN_LOCK_ID = 0x10DE5A0C  # serialises "create the admin key if there is none"


class AppExistsError(Exception):
    """An application with the chosen id already exists."""


class AppNotFoundError(Exception):
    """No application has this id."""


def new_app_id() -> str:
    """A fresh application id in Pinpoint's form: 32 lowercase hex characters."""
    return secrets.token_hex(16)


def new_access_key_id(prefix: str = APP_KEY_PREFIX) -> str:
    """A fresh access key id: ``prefix`` then random upper-case letters and digits (20 in all)."""
    tail = "".join(
        secrets.choice(_KEY_ID_ALPHABET) for _ in range(ACCESS_KEY_ID_LENGTH - len(prefix))
    )
    return prefix + tail


def new_secret() -> str:
    """A fresh secret access key: 40 random letters and digits (about 238 bits)."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(SECRET_LENGTH))


@dataclass(frozen=True)
class App:
    id: str
    name: str
    tags: dict[str, str]
    created_at: datetime


@dataclass(frozen=True)
class ApiKey:
    access_key_id: str
    secret: str
    app_id: str | None
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.app_id is None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Cursor:
    """Where a page of applications ends: the last (created_at, id) returned."""

    created_at: datetime
    app_id: str


_APP_COLUMNS = "id, name, tags, created_at"
_KEY_COLUMNS = "access_key_id, secret, app_id, created_at, revoked_at"


def _app(row: asyncpg.Record) -> App:
    tags = row["tags"]
    return App(
        id=row["id"],
        name=row["name"],
        tags=json.loads(tags) if isinstance(tags, str) else dict(tags),
        created_at=row["created_at"],
    )


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        access_key_id=row["access_key_id"],
        secret=row["secret"],
        app_id=row["app_id"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


class AppsRepository:
    """Applications and API keys. Every method is one statement or one transaction."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    # -- applications ---------------------------------------------------------

    async def create_app(
        self, name: str, tags: dict[str, str] | None = None, app_id: str | None = None
    ) -> tuple[App, ApiKey]:
        """Create an application and its first app key, in one transaction.

        Raises ``AppExistsError`` when ``app_id`` is given and taken, ``ValueError``
        when it does not match ``APP_ID_PATTERN``.
        """
        if app_id is not None and not APP_ID_PATTERN.fullmatch(app_id):
            raise ValueError(
                "an application id is 1-64 letters, digits, '-' or '_', starting with a "
                f"letter or digit; got {app_id!r}"
            )
        app_id = app_id or new_app_id()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"INSERT INTO apps (id, name, tags) VALUES ($1, $2, $3::jsonb) "
                f"ON CONFLICT (id) DO NOTHING RETURNING {_APP_COLUMNS}",
                app_id, name, json.dumps(tags or {}),
            )
            if row is None:
                raise AppExistsError(app_id)
            key = await self._insert_key(conn, app_id, APP_KEY_PREFIX)
        return _app(row), key

    async def get_app(self, app_id: str) -> App | None:
        row = await self._pool.fetchrow(f"SELECT {_APP_COLUMNS} FROM apps WHERE id = $1", app_id)
        return _app(row) if row else None

    async def app_exists(self, app_id: str) -> bool:
        return bool(await self._pool.fetchval("SELECT EXISTS (SELECT 1 FROM apps WHERE id = $1)",
                                              app_id))

    async def list_apps(self, limit: int, after: Cursor | None = None) -> list[App]:
        """Up to ``limit`` applications in creation order, after ``after``."""
        if after is None:
            rows = await self._pool.fetch(
                f"SELECT {_APP_COLUMNS} FROM apps ORDER BY created_at, id LIMIT $1", limit
            )
        else:
            rows = await self._pool.fetch(
                f"SELECT {_APP_COLUMNS} FROM apps WHERE (created_at, id) > ($1, $2) "
                "ORDER BY created_at, id LIMIT $3",
                after.created_at, after.app_id, limit,
            )
        return [_app(r) for r in rows]

    async def delete_app(self, app_id: str) -> App | None:
        """Delete an application (and its app keys); the deleted app, or None."""
        row = await self._pool.fetchrow(
            f"DELETE FROM apps WHERE id = $1 RETURNING {_APP_COLUMNS}", app_id
        )
        return _app(row) if row else None

    # -- keys -----------------------------------------------------------------

    async def create_key(self, app_id: str) -> ApiKey:
        """A new app key for ``app_id``; ``AppNotFoundError`` when there is no such app."""
        async with self._pool.acquire() as conn:
            try:
                return await self._insert_key(conn, app_id, APP_KEY_PREFIX)
            except asyncpg.ForeignKeyViolationError:
                raise AppNotFoundError(app_id) from None

    async def create_admin_key(self) -> ApiKey:
        """A new admin key (rotation: create one, move clients, revoke the old one)."""
        async with self._pool.acquire() as conn:
            return await self._insert_key(conn, None, ADMIN_KEY_PREFIX)

    async def ensure_admin_key(self) -> tuple[ApiKey, bool]:
        """The oldest active admin key, creating one if there is none; ``(key, created)``.

        Safe to call from several processes at once: they agree on one key.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _ADMIN_LOCK_ID)
            row = await conn.fetchrow(
                f"SELECT {_KEY_COLUMNS} FROM api_keys "
                "WHERE app_id IS NULL AND revoked_at IS NULL "
                "ORDER BY created_at, access_key_id LIMIT 1"
            )
            if row is not None:
                return _key(row), False
            return await self._insert_key(conn, None, ADMIN_KEY_PREFIX), True

    async def get_key(self, access_key_id: str) -> ApiKey | None:
        """The key with this id, revoked or not."""
        row = await self._pool.fetchrow(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE access_key_id = $1", access_key_id
        )
        return _key(row) if row else None

    async def list_keys(
        self, app_id: str | None = None, *, admin: bool = False, include_revoked: bool = False
    ) -> list[ApiKey]:
        """Keys of one application, or admin keys (``admin=True``), or all keys."""
        where: list[str] = []
        args: list[Any] = []
        if admin:
            where.append("app_id IS NULL")
        elif app_id is not None:
            args.append(app_id)
            where.append(f"app_id = ${len(args)}")
        if not include_revoked:
            where.append("revoked_at IS NULL")
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = await self._pool.fetch(
            f"SELECT {_KEY_COLUMNS} FROM api_keys {clause}ORDER BY created_at, access_key_id",
            *args,
        )
        return [_key(r) for r in rows]

    async def revoke_key(self, access_key_id: str) -> ApiKey | None:
        """Mark a key revoked (idempotent: the first revocation time stays); None if unknown."""
        row = await self._pool.fetchrow(
            f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) "
            f"WHERE access_key_id = $1 RETURNING {_KEY_COLUMNS}",
            access_key_id,
        )
        return _key(row) if row else None

    @staticmethod
    async def _insert_key(
        conn: asyncpg.Connection, app_id: str | None, prefix: str
    ) -> ApiKey:
        row = await conn.fetchrow(
            f"INSERT INTO api_keys (access_key_id, app_id, secret) VALUES ($1, $2, $3) "
            f"RETURNING {_KEY_COLUMNS}",
            new_access_key_id(prefix), app_id, new_secret(),
        )
        return _key(row)


async def missing_migrations(pool: asyncpg.Pool) -> list[str]:
    """Bundled control-plane migrations not yet applied to the database (empty when current)."""
    from lodestar.control.migrate import migration_files

    exists = await pool.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    done: set[str] = set()
    if exists:
        done = {r["version"] for r in await pool.fetch("SELECT version FROM schema_migrations")}
    return [v for v, _ in migration_files() if v not in done]
