from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest

from lodestar.control.endpoint_read_model import (
    apply_changes,
    endpoint_ids_of_users,
    get_endpoint,
    holders_of_addresses,
    newest_per_endpoint,
    row_from_change,
    user_endpoints,
)
from lodestar.control.migrate import migrate

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples" / "endpoint_change"
CREATED = json.loads((EXAMPLES / "amplify-js-created.json").read_text())


def change(endpoint_id: str, ts: int, *, user: str | None = "u1", kind: str = "UPSERTED",
           plan: str = "free") -> dict:
    c = json.loads(json.dumps(CREATED))
    c.update(endpoint_id=endpoint_id, timestamp=ts, kind=kind)
    if kind == "DELETED":
        c["endpoint"] = None
    else:
        c["endpoint"].update(id=endpoint_id, attributes={"plan": [plan]}, user={"user_id": user},
                             address=f"{endpoint_id}@example.com", endpoint_status="ACTIVE")
    return c


def test_newest_change_per_endpoint_wins() -> None:
    rows = [row_from_change(change("a", 2, plan="p2")), row_from_change(change("a", 1)),
            row_from_change(change("b", 5))]
    newest = {r.endpoint_id: r for r in newest_per_endpoint(rows)}
    assert newest["a"].change_ts == 2 and newest["a"].endpoint["Attributes"]["plan"] == ["p2"]


@pytest.mark.postgres
async def test_read_model_upserts_orders_and_keeps_tombstones(postgres_dsn: str) -> None:
    await migrate(postgres_dsn)
    pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=2)
    app = CREATED["app_id"]
    try:
        await apply_changes(pool, [row_from_change(change(e, 10)) for e in ("a", "b", "c")])
        await apply_changes(pool, [row_from_change(change("c", 11, user="u2"))])
        assert (await get_endpoint(pool, app, "a"))["User"] == {"UserId": "u1"}
        assert [e["Id"] for e in await user_endpoints(pool, app, "u1")] == ["a", "b"]

        # an older change replayed after a newer one changes nothing
        await apply_changes(pool, [row_from_change(change("a", 20, plan="pro"))])
        await apply_changes(pool, [row_from_change(change("a", 15, plan="old"))])
        assert (await get_endpoint(pool, app, "a"))["Attributes"]["plan"] == ["pro"]

        # deleted endpoints disappear and a replayed upsert does not resurrect them
        await apply_changes(pool, [row_from_change(change("b", 30, kind="DELETED"))])
        await apply_changes(pool, [row_from_change(change("b", 12))])
        assert await get_endpoint(pool, app, "b") is None
        assert [e["Id"] for e in await user_endpoints(pool, app, "u1")] == ["a"]
        assert await get_endpoint(pool, "other-app", "a") is None

        # batch lookups for the cross-endpoint rules
        assert await endpoint_ids_of_users(pool, app, ["u1", "u2", "nobody"]) == {
            "u1": ["a"], "u2": ["c"]
        }
        assert await holders_of_addresses(pool, app, ["a@example.com", "b@example.com"]) == {
            "a@example.com": ["a"]  # b is deleted
        }
    finally:
        await pool.close()
