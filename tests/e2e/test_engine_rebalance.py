"""Two workers share the engine: the second takes partitions with their state.

``lodestar worker`` A folds two purchases per endpoint; a second ``lodestar
worker`` B (same LODESTAR_WORKER_ID, its own data directory) joins; A flushes
and commits the partitions it gives up and B restores them from the changelog.
A third purchase then makes every endpoint enter "three purchases", whichever
worker owns it now: the counts came across, nothing was applied twice, and no
change was published twice.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import free_port
from tests.e2e.conftest import ADMIN_KEY
from tests.e2e.processes import Processes
from tests.e2e.test_endpoints_boto3 import client
from tests.e2e.test_segments_live import _create
from tests.e2e.topic_reader import TopicReader

from lodestar.contracts.codec import AvroCodec
from lodestar.core.topics import Topic
from lodestar.engine.profile_agent import partition_of
from lodestar.settings import Settings

pytestmark = pytest.mark.e2e

PARTITIONS = 4
OWNED = re.compile(r"profile partitions now \[([0-9, ]*)\]")


def _performed(count: int) -> dict[str, Any]:
    return {"Name": f"purchased-{count}", "Dimensions": {"Behavioral": {"Performed": [{
        "EventType": "purchase", "Operator": "AT_LEAST", "Count": count, "WithinHours": 24}]}}}


def _endpoint_ids() -> list[str]:
    """Three endpoint ids on each partition."""
    ids: list[str] = []
    for partition in range(PARTITIONS):
        ids += [e for e in (f"rb-{i}" for i in range(400))
                if partition_of(e, PARTITIONS) == partition][:3]
    return ids


def _owned(log: Path) -> set[int] | None:
    found = OWNED.findall(log.read_text(errors="replace")) if log.exists() else []
    return None if not found else {int(p) for p in found[-1].split(",") if p.strip()}


def _entered(records: list[dict[str, Any]], segment_id: str) -> list[str]:
    return [r["endpoint_id"] for r in records
            if r["segment_id"] == segment_id and r["change"] == "ENTER"]


def test_a_second_worker_takes_partitions_with_their_state(
    lodestar: tuple[Processes, dict], lodestar_env: dict[str, str], settings: Settings,
    tmp_path: Path, unique: str,
) -> None:
    procs, urls = lodestar
    admin = client(urls["api"], *ADMIN_KEY)
    app_id = admin.create_app(CreateApplicationRequest={"Name": f"rebalance-{unique}"})[
        "ApplicationResponse"]["Id"]
    twice, thrice = (_create(urls["api"], app_id, _performed(n)) for n in (2, 3))
    ids = _endpoint_ids()

    def purchase(n: int) -> None:
        admin.put_events(ApplicationId=app_id, EventsRequest={"BatchItem": {
            e: {"Endpoint": {"ChannelType": "EMAIL", "Address": f"{e}@example.com"},
                "Events": {f"{e}-{n}": {"EventType": "purchase",
                                        "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                   time.gmtime())}}}
            for e in ids}})

    with TopicReader(settings.kafka_bootstrap, settings.topic(Topic.SEGMENT_MEMBERSHIP),
                     Topic.SEGMENT_MEMBERSHIP, AvroCodec.default()) as reader:
        purchase(1)
        purchase(2)
        reader.wait_for(lambda rs: set(_entered(rs, twice)) == set(ids), "two purchases each")
        assert _owned(tmp_path / "worker.log") == set(range(PARTITIONS))

        second = {**lodestar_env, "LODESTAR_DATA_DIR": str(tmp_path / "worker-b"),
                  "LODESTAR_WORKER_WEB_PORT": str(free_port())}
        procs.start("worker-b", "worker", "--without-analytics", "--without-projections",
                    env=second)
        deadline = time.monotonic() + 90
        while True:
            procs.assert_alive()
            a, b = _owned(tmp_path / "worker.log"), _owned(tmp_path / "worker-b.log")
            if a and b and a | b == set(range(PARTITIONS)) and not a & b:
                break
            assert time.monotonic() < deadline, f"no split of the partitions: A {a}, B {b}"
            time.sleep(0.2)
        print(f"\npartitions: worker A {sorted(a)}, worker B {sorted(b)}")
        moved = [e for e in ids if partition_of(e, PARTITIONS) in b]
        assert moved

        purchase(3)
        reader.wait_for(lambda rs: set(_entered(rs, thrice)) == set(ids),
                        "three purchases each, on both workers", timeout=30)
        time.sleep(1.0)  # anything published twice would show up by now
        records = reader.records()
    assert sorted(_entered(records, twice)) == sorted(ids)
    assert sorted(_entered(records, thrice)) == sorted(ids)
    assert {r["cause"] for r in records} == {"event"}
