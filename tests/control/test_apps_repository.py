"""The applications and API-keys repository against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import asyncpg
import pytest

from lodestar.control.apps import (
    AppExistsError,
    AppNotFoundError,
    AppsRepository,
    Cursor,
    missing_migrations,
    new_access_key_id,
    new_app_id,
    new_secret,
)
from lodestar.control.migrate import migrate

pytestmark = pytest.mark.postgres


@pytest.fixture
async def repo(postgres_dsn: str) -> AsyncIterator[AppsRepository]:
    await migrate(postgres_dsn)
    pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=4)
    try:
        yield AppsRepository(pool)
    finally:
        await pool.close()


def test_generated_ids_and_secrets_have_aws_shapes() -> None:
    ids = {new_app_id() for _ in range(100)}
    assert len(ids) == 100 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    akid = new_access_key_id()
    assert re.fullmatch(r"LSK[A-Z0-9]{17}", akid)
    assert re.fullmatch(r"LSA[A-Z0-9]{17}", new_access_key_id("LSA"))
    assert re.fullmatch(r"[A-Za-z0-9]{40}", new_secret())
    assert len({new_secret() for _ in range(100)}) == 100


async def test_create_get_list_delete_an_app(repo: AppsRepository) -> None:
    app, key = await repo.create_app("Shop", {"team": "growth"})
    assert re.fullmatch(r"[0-9a-f]{32}", app.id)
    assert app.name == "Shop" and app.tags == {"team": "growth"}
    assert app.created_at.tzinfo is not None
    assert key.app_id == app.id and key.active and not key.is_admin
    assert await repo.get_app(app.id) == app
    assert await repo.app_exists(app.id)
    assert await repo.get_key(key.access_key_id) == key

    deleted = await repo.delete_app(app.id)
    assert deleted == app
    assert await repo.get_app(app.id) is None
    assert not await repo.app_exists(app.id)
    assert await repo.get_key(key.access_key_id) is None  # keys go with their app
    assert await repo.delete_app(app.id) is None


async def test_an_app_may_keep_a_chosen_id_once(repo: AppsRepository) -> None:
    pinpoint_id = "0123456789abcdef0123456789abcdef"
    app, _ = await repo.create_app("From Pinpoint", app_id=pinpoint_id)
    assert app.id == pinpoint_id and app.tags == {}
    with pytest.raises(AppExistsError):
        await repo.create_app("Again", app_id=pinpoint_id)
    with pytest.raises(ValueError, match="application id"):
        await repo.create_app("Bad", app_id="has/slash")


async def test_list_apps_pages_in_creation_order(repo: AppsRepository) -> None:
    created = [(await repo.create_app(f"app {i}"))[0] for i in range(7)]
    seen, after = [], None
    while True:
        page = await repo.list_apps(3, after)
        seen += page
        if len(page) < 3:
            break
        after = Cursor(page[-1].created_at, page[-1].id)
    assert [a.id for a in seen] == [a.id for a in created]


async def test_keys_create_list_revoke(repo: AppsRepository) -> None:
    app, first = await repo.create_app("Shop")
    second = await repo.create_key(app.id)
    assert second.access_key_id != first.access_key_id and second.secret != first.secret
    assert [k.access_key_id for k in await repo.list_keys(app.id)] == [
        first.access_key_id, second.access_key_id]

    revoked = await repo.revoke_key(first.access_key_id)
    assert revoked is not None and revoked.revoked_at is not None and not revoked.active
    again = await repo.revoke_key(first.access_key_id)
    assert again is not None and again.revoked_at == revoked.revoked_at  # idempotent
    assert [k.access_key_id for k in await repo.list_keys(app.id)] == [second.access_key_id]
    assert len(await repo.list_keys(app.id, include_revoked=True)) == 2
    assert (await repo.get_key(first.access_key_id)).revoked_at is not None  # type: ignore[union-attr]
    assert await repo.revoke_key("LSKNOSUCHKEY00000000") is None

    with pytest.raises(AppNotFoundError):
        await repo.create_key("no-such-app")


async def test_admin_key_is_created_once_even_concurrently(repo: AppsRepository) -> None:
    results = await asyncio.gather(*(repo.ensure_admin_key() for _ in range(5)))
    keys = {k.access_key_id for k, _ in results}
    assert len(keys) == 1 and sum(created for _, created in results) == 1
    admin, _ = results[0]
    assert admin.is_admin and admin.access_key_id.startswith("LSA")
    assert (await repo.ensure_admin_key()) == (admin, False)

    # rotation: a new admin key, then the old one revoked; ensure returns the survivor
    newer = await repo.create_admin_key()
    assert [k.access_key_id for k in await repo.list_keys(admin=True)] == [
        admin.access_key_id, newer.access_key_id]
    await repo.revoke_key(admin.access_key_id)
    assert (await repo.ensure_admin_key())[0].access_key_id == newer.access_key_id
    app, _ = await repo.create_app("Shop")
    assert {k.access_key_id for k in await repo.list_keys()} >= {newer.access_key_id}
    assert all(not k.is_admin for k in await repo.list_keys(app.id))


async def test_missing_migrations_are_reported(postgres_dsn: str) -> None:
    pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=1)
    try:
        assert "0002_admin_keys" in await missing_migrations(pool)
        await migrate(postgres_dsn)
        assert await missing_migrations(pool) == []
    finally:
        await pool.close()
