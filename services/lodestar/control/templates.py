"""Message templates and their versions, in PostgreSQL (issue 5).

Plain SQL over an asyncpg pool that the caller owns; every write is one
transaction. Templates are account-wide, as in Pinpoint: a template is named
by (type, name) — EMAIL ``welcome`` and SMS ``welcome`` are two templates —
and belongs to no application.

A template has versions 1, 2, 3, …: a create writes version 1; an update
overwrites the latest existing version, or writes ``last_version + 1`` when it
asks for a new version. Version numbers are never reused, even after the
highest one was deleted. One version is *active*: the one read without a
version and used by sends. A create makes version 1 active; a new version
does not become active by itself (``set_active``). The active version cannot
be deleted while the template has other versions (``ActiveVersionInUse``);
deleting the only version deletes the template.

The definition (the template request as given, without ``tags``) is validated
by the caller (``lodestar.core.templates.parse_template``). Tags are the
template's, set when it is created (Pinpoint ignores tags on updates).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

TEMPLATE_TYPES = ("EMAIL", "SMS", "PUSH", "VOICE", "INAPP")
MAX_NAME_LENGTH = 128
MAX_VERSIONS = 5000  # Pinpoint's quota of versions per template
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


class TemplateError(Exception):
    """A write the templates' state refuses; the message says why."""


class TemplateExists(TemplateError):
    pass


class VersionNotFound(TemplateError):
    pass


class NotLatestVersion(TemplateError):
    pass


class ActiveVersionInUse(TemplateError):
    pass


class TooManyVersions(TemplateError):
    pass


def valid_name(name: str) -> bool:
    """Pinpoint's rule: 1 to 128 characters, alphanumeric, ``-`` or ``_``, starting alphanumeric."""
    return NAME_PATTERN.fullmatch(name) is not None


@dataclass(frozen=True)
class Template:
    """One version of a template, with what the template as a whole holds."""

    template_type: str
    name: str
    version: int
    definition: dict[str, Any]
    tags: dict[str, str]
    created_at: datetime  # when the template was created
    version_created_at: datetime  # when this version was created
    modified_at: datetime  # when this version was last written
    active_version: int
    last_version: int  # the highest version number issued (never decreases)

    @property
    def is_active(self) -> bool:
        return self.version == self.active_version


@dataclass(frozen=True)
class Deleted:
    """What a delete did: ``template`` is the active version as it now is, or, when the
    whole template went, the active version as it was."""

    template: Template
    all_versions: bool


_SELECT = (
    "SELECT t.template_type, t.name, v.version, v.definition, t.tags, t.created_at, "
    "v.created_at AS version_created_at, v.modified_at, t.active_version, t.last_version "
    "FROM templates t JOIN template_versions v "
    "ON v.template_type = t.template_type AND v.name = t.name "
)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _template(row: asyncpg.Record) -> Template:
    return Template(
        template_type=row["template_type"],
        name=row["name"],
        version=row["version"],
        definition=dict(_json(row["definition"])),
        tags=dict(_json(row["tags"])),
        created_at=row["created_at"],
        version_created_at=row["version_created_at"],
        modified_at=row["modified_at"],
        active_version=row["active_version"],
        last_version=row["last_version"],
    )


class TemplatesRepository:
    """Every template of the account. Every method is one statement or one transaction."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(
        self, template_type: str, name: str, definition: dict[str, Any],
        tags: dict[str, str] | None = None,
    ) -> Template:
        """A new template at version 1, active. Raises ``TemplateExists``."""
        async with self._pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                "INSERT INTO templates (template_type, name, last_version, active_version, tags) "
                "VALUES ($1, $2, 1, 1, $3::jsonb) ON CONFLICT DO NOTHING RETURNING 1",
                template_type, name, json.dumps(tags or {}),
            )
            if inserted is None:
                raise TemplateExists(f"Template {name} of type {template_type} already exists.")
            await conn.execute(
                "INSERT INTO template_versions (template_type, name, version, definition) "
                "VALUES ($1, $2, 1, $3::jsonb)",
                template_type, name, json.dumps(definition),
            )
            return await self._read(conn, template_type, name, 1)  # type: ignore[return-value]

    async def update(
        self, template_type: str, name: str, definition: dict[str, Any], *,
        new_version: bool = False, version: int | None = None,
    ) -> Template | None:
        """Write ``definition``: as a new version (``new_version``), else over the latest
        existing version, which ``version`` (when given) must be. The version written, or
        None when the template does not exist.

        Raises ``NotLatestVersion``, ``VersionNotFound``, ``TooManyVersions``.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT last_version FROM templates WHERE template_type = $1 AND name = $2 "
                "FOR UPDATE",
                template_type, name,
            )
            if row is None:
                return None
            latest, count = await self._latest(conn, template_type, name)
            if new_version:
                if count >= MAX_VERSIONS:
                    raise TooManyVersions(
                        f"Template {name} has {count} versions, the most a template may have; "
                        "delete old versions first.")
                written = row["last_version"] + 1
                await conn.execute(
                    "UPDATE templates SET last_version = $3 "
                    "WHERE template_type = $1 AND name = $2",
                    template_type, name, written,
                )
                await conn.execute(
                    "INSERT INTO template_versions (template_type, name, version, definition) "
                    "VALUES ($1, $2, $3, $4::jsonb)",
                    template_type, name, written, json.dumps(definition),
                )
            else:
                if version is not None and version != latest:
                    exists = await conn.fetchval(
                        "SELECT EXISTS (SELECT 1 FROM template_versions WHERE template_type = $1 "
                        "AND name = $2 AND version = $3)",
                        template_type, name, version,
                    )
                    if not exists:
                        raise VersionNotFound(f"Template {name} has no version {version}.")
                    raise NotLatestVersion(
                        f"version {version} is not the latest version of template {name} "
                        f"({latest}); only the latest version can be overwritten, or pass "
                        "create-new-version=true.")
                written = latest
                await conn.execute(
                    "UPDATE template_versions SET definition = $4::jsonb, modified_at = now() "
                    "WHERE template_type = $1 AND name = $2 AND version = $3",
                    template_type, name, written, json.dumps(definition),
                )
            return await self._read(conn, template_type, name, written)

    async def get(
        self, template_type: str, name: str, version: int | None = None
    ) -> Template | None:
        """The active version (or ``version``) of a template, or None."""
        async with self._pool.acquire() as conn:
            return await self._read(conn, template_type, name, version)

    async def set_active(
        self, template_type: str, name: str, version: int | None
    ) -> Template | None:
        """Make ``version`` (None: the latest existing) the active version; the template's
        new active version, or None when the template does not exist. Raises
        ``VersionNotFound``."""
        async with self._pool.acquire() as conn, conn.transaction():
            exists = await conn.fetchval(
                "SELECT 1 FROM templates WHERE template_type = $1 AND name = $2 FOR UPDATE",
                template_type, name,
            )
            if exists is None:
                return None
            if version is None:
                version, _ = await self._latest(conn, template_type, name)
            found = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM template_versions WHERE template_type = $1 "
                "AND name = $2 AND version = $3)",
                template_type, name, version,
            )
            if not found:
                raise VersionNotFound(f"Template {name} has no version {version}.")
            await conn.execute(
                "UPDATE templates SET active_version = $3 WHERE template_type = $1 AND name = $2",
                template_type, name, version,
            )
            return await self._read(conn, template_type, name, None)

    async def delete(
        self, template_type: str, name: str, version: int | None = None
    ) -> Deleted | None:
        """Delete every version (``version`` None) or one version; None when the template
        does not exist. Raises ``VersionNotFound``, ``ActiveVersionInUse``."""
        async with self._pool.acquire() as conn, conn.transaction():
            active = await self._read(conn, template_type, name, None, lock=True)
            if active is None:
                return None
            _, count = await self._latest(conn, template_type, name)
            if version is None or (version == active.version and count == 1):
                await conn.execute(
                    "DELETE FROM templates WHERE template_type = $1 AND name = $2",
                    template_type, name,
                )
                return Deleted(active, all_versions=True)
            if version == active.version:
                raise ActiveVersionInUse(
                    f"Version {version} is the active version of template {name}; make another "
                    "version active (UpdateTemplateActiveVersion) before deleting it, or delete "
                    "the whole template.")
            done = await conn.execute(
                "DELETE FROM template_versions WHERE template_type = $1 AND name = $2 "
                "AND version = $3",
                template_type, name, version,
            )
            if done == "DELETE 0":
                raise VersionNotFound(f"Template {name} has no version {version}.")
            return Deleted(active, all_versions=False)

    async def list_templates(
        self, limit: int, after: tuple[str, str] | None = None, *,
        prefix: str | None = None, template_type: str | None = None,
    ) -> list[Template]:
        """Up to ``limit`` templates (their active versions) by name then type, after
        ``after`` = (name, type); only names starting with ``prefix``, only one type."""
        where = ["v.version = t.active_version"]
        args: list[Any] = []
        if after is not None:
            args += list(after)
            where.append(f"(t.name, t.template_type) > (${len(args) - 1}, ${len(args)})")
        if prefix:
            args.append(prefix)
            where.append(f"starts_with(t.name, ${len(args)})")
        if template_type is not None:
            args.append(template_type)
            where.append(f"t.template_type = ${len(args)}")
        args.append(limit)
        rows = await self._pool.fetch(
            f"{_SELECT}WHERE {' AND '.join(where)} "
            f"ORDER BY t.name, t.template_type LIMIT ${len(args)}",
            *args,
        )
        return [_template(r) for r in rows]

    async def list_versions(
        self, template_type: str, name: str, limit: int, after_version: int = 0
    ) -> list[Template] | None:
        """Up to ``limit`` versions, oldest first, above ``after_version``; None if unknown."""
        async with self._pool.acquire() as conn, conn.transaction():
            exists = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM templates WHERE template_type = $1 AND name = $2)",
                template_type, name,
            )
            if not exists:
                return None
            rows = await conn.fetch(
                f"{_SELECT}WHERE t.template_type = $1 AND t.name = $2 AND v.version > $3 "
                "ORDER BY v.version LIMIT $4",
                template_type, name, after_version, limit,
            )
        return [_template(r) for r in rows]

    @staticmethod
    async def _latest(conn: asyncpg.Connection, template_type: str, name: str) -> tuple[int, int]:
        row = await conn.fetchrow(
            "SELECT max(version) AS latest, count(*) AS n FROM template_versions "
            "WHERE template_type = $1 AND name = $2",
            template_type, name,
        )
        return int(row["latest"]), int(row["n"])

    @staticmethod
    async def _read(
        conn: asyncpg.Connection, template_type: str, name: str, version: int | None,
        lock: bool = False,
    ) -> Template | None:
        which = "t.active_version" if version is None else "$3"
        args: list[Any] = [template_type, name] + ([] if version is None else [version])
        row = await conn.fetchrow(
            f"{_SELECT}WHERE t.template_type = $1 AND t.name = $2 AND v.version = {which}"
            + (" FOR UPDATE OF t" if lock else ""),
            *args,
        )
        return _template(row) if row else None
