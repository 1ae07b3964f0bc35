"""``lodestar segments status`` against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from lodestar.cli import main
from lodestar.control.endpoint_read_model import ReadModelRow, apply_changes
from lodestar.control.segment_membership import (
    apply_membership_changes,
    record_backfill_progress,
)
from lodestar.control.segments import SegmentsRepository

pytestmark = pytest.mark.postgres

DIMS = {"Dimensions": {"Demographic": {"Platform": {"Values": ["ios"]}}}}


@pytest.fixture
def cli(postgres_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("LODESTAR_POSTGRES_DSN", postgres_dsn)
    monkeypatch.setenv("LODESTAR_PARTITIONS", "2")

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def on_db(dsn: str, work: Callable[[asyncpg.Pool], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        try:
            return await work(pool)
        finally:
            await pool.close()

    return asyncio.run(run())


def enter(app_id: str, segment_id: str, endpoint_id: str) -> dict[str, Any]:
    return {"app_id": app_id, "segment_id": segment_id, "segment_version": 1,
            "endpoint_id": endpoint_id, "user_id": None, "change": "ENTER",
            "cause": "segment", "event_id": None, "timestamp": 1_780_000_000_000}


@pytest.fixture
def segment(cli, postgres_dsn: str) -> tuple[str, str]:
    """(app id, segment id) of a segment with 3 members, 2 of them EMAIL endpoints."""
    assert cli("migrate")[0] == 0
    code, out, _ = cli("apps", "create", "--name", "Shop", "--json")
    assert code == 0
    app_id = json.loads(out)["Id"]

    async def work(pool: asyncpg.Pool) -> str:
        segment_id = (await SegmentsRepository(pool).create(app_id, "iOS", DIMS)).id
        await apply_changes(pool, [
            ReadModelRow(app_id=app_id, endpoint_id=eid, user_id=None, address=None,
                         channel_type="EMAIL", endpoint={"Id": eid}, deleted=False, change_ts=1)
            for eid in ("e1", "e2")
        ])
        await apply_membership_changes(pool, [enter(app_id, segment_id, e)
                                              for e in ("e1", "e2", "x")])
        return segment_id

    return app_id, on_db(postgres_dsn, work)


def test_status(cli, segment: tuple[str, str], postgres_dsn: str) -> None:
    app_id, segment_id = segment
    code, out, _ = cli("segments", "status", app_id, segment_id)
    assert code == 0
    lines = dict(line.split(None, 1) for line in out.splitlines())
    assert lines == {
        "Segment": segment_id, "Application": app_id, "Version": "1", "Size": "3",
        "ChannelCounts": "EMAIL 2", "Backfill": "PENDING",
        "Progress": "version 1, 0/0 endpoints evaluated, 0/2 partitions done, 3 members",
    }

    on_db(postgres_dsn, lambda pool: record_backfill_progress(
        pool, app_id, segment_id, 1, 1, 1, 4, False))
    code, out, _ = cli("segments", "status", app_id, segment_id, "--json")
    assert code == 0
    status = json.loads(out)["SegmentMembershipResponse"]
    assert status == {
        "ApplicationId": app_id, "SegmentId": segment_id, "Version": 1, "Size": 3,
        "ChannelCounts": {"EMAIL": 2},
        "Backfill": {"Version": 1, "State": "IN_PROGRESS", "EndpointsEvaluated": 1,
                     "EndpointsTotal": 4, "PartitionsCompleted": 0, "Partitions": 2},
    }
    code, out, _ = cli("segments", "status", app_id, segment_id)
    assert "Progress       version 1, 1/4 endpoints evaluated (25.0%), 0/2 partitions done" in out

    code, out, err = cli("segments", "status", app_id, "0" * 32)
    assert code == 1 and out == "" and f"segment {'0' * 32} does not exist" in err


def test_watch_follows_the_backfill_until_completed(
    cli, segment: tuple[str, str], postgres_dsn: str
) -> None:
    app_id, segment_id = segment
    steps = [(0, 2, 4, False), (1, 3, 3, True), (0, 4, 4, True)]

    def backfill() -> None:
        for n, step in enumerate(steps):
            time.sleep(1.0 if n == 0 else 0.4)  # first, let the CLI show PENDING
            on_db(postgres_dsn, lambda pool, step=step: record_backfill_progress(
                pool, app_id, segment_id, 1, *step))

    worker = threading.Thread(target=backfill)
    worker.start()
    try:
        code, out, _ = cli("segments", "status", app_id, segment_id, "--watch",
                           "--interval", "0.05")
    finally:
        worker.join(30)
    assert code == 0
    progress = [line for line in out.splitlines() if line.startswith(("PENDING", "IN_", "COMP"))]
    # one line per change, each shown once, in order
    assert progress == [
        "PENDING: version 1, 0/0 endpoints evaluated, 0/2 partitions done, 3 members",
        "IN_PROGRESS: version 1, 2/4 endpoints evaluated (50.0%), 0/2 partitions done, "
        "3 members",
        "IN_PROGRESS: version 1, 5/7 endpoints evaluated (71.4%), 1/2 partitions done, "
        "3 members",
        "COMPLETED: version 1, 7/7 endpoints evaluated (100.0%), 2/2 partitions done, "
        "3 members",
    ]
    assert "Backfill       COMPLETED" in out and "ChannelCounts  EMAIL 2" in out

    code, out, _ = cli("segments", "status", app_id, segment_id, "--watch", "--json")
    assert code == 0  # already completed: one line, then done
    [line] = out.splitlines()
    assert json.loads(line)["SegmentMembershipResponse"]["Backfill"]["State"] == "COMPLETED"


def test_watch_stops_when_the_segment_is_deleted(
    cli, segment: tuple[str, str], postgres_dsn: str
) -> None:
    app_id, segment_id = segment

    def delete() -> None:
        time.sleep(1.0)
        on_db(postgres_dsn, lambda pool: SegmentsRepository(pool).delete(app_id, segment_id))

    worker = threading.Thread(target=delete)
    worker.start()
    try:
        code, out, err = cli("segments", "status", app_id, segment_id, "--watch",
                             "--interval", "0.05")
    finally:
        worker.join(30)
    assert code == 1 and out.startswith("PENDING") and "does not exist" in err


def test_errors_and_help(cli, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli("segments", "status", "a", "b")
    assert code == 1 and "lodestar migrate" in err  # not migrated yet
    assert cli("migrate")[0] == 0
    assert cli("segments", "status", "a", "b", "--watch", "--interval", "0")[0] == 2
    with pytest.raises(SystemExit) as exit_:
        main(["segments", "status", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for word in ("APP_ID", "SEGMENT_ID", "--watch", "--json", "COMPLETED", "membership"):
        assert word in text
