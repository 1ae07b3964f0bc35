"""Read the SQL migration files bundled in a package's ``migrations/`` folder."""

from __future__ import annotations

from importlib import resources


def bundled_migrations(package: str) -> list[tuple[str, str]]:
    """``(version, sql)`` for each ``<package>/migrations/*.sql``, in name order.

    The version is the file name without ``.sql`` (``0001_events``).
    """
    folder = resources.files(package) / "migrations"
    found = sorted(
        (entry.name, entry.read_text("utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )
    return [(name.removesuffix(".sql"), sql) for name, sql in found]
