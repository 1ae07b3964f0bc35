"""The engine's RocksDB table store: no write-ahead log, nothing lost on a clean stop."""

from __future__ import annotations

import gc
from pathlib import Path

import faust
from faust.types import TP

from lodestar.engine.table_store import STORE_URL, Store


def _store(tmp_path: Path) -> Store:
    app = faust.App("table-store-test", broker="kafka://127.0.0.1:1", store=STORE_URL,
                    datadir=str(tmp_path))
    table = app.Table("profiles", partitions=1, key_type=str)
    store = table.data
    assert isinstance(store, Store)
    return store


def _wal_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*.log"))


def test_writes_skip_the_write_ahead_log_and_survive_a_clean_close(tmp_path: Path) -> None:
    store = _store(tmp_path)
    db = store._open_for_partition(0)
    for i in range(200):
        db.put(f"app/{i}".encode(), b"x" * 1000)
    db.put(store.offset_key, b"199")
    path = store.partition_path(0)
    assert _wal_bytes(path) == 0  # with the log: ≥ 200 KB
    del db
    gc.collect()  # as Faust's stop and revoke do: drop the database, which flushes it

    reopened = _store(tmp_path)
    assert reopened.persisted_offset(TP(reopened.table.changelog_topic.get_topic_name(), 0)) == 199
    db = reopened._db_for_partition(0)
    assert db.get(b"app/7") == b"x" * 1000
    assert sum(1 for key in db.keys() if key.startswith(b"app/")) == 200  # noqa: SIM118


def test_the_plain_rocksdb_store_does_log(tmp_path: Path) -> None:
    """The measurement above can fail: Faust's own store writes the log."""
    app = faust.App("table-store-test", broker="kafka://127.0.0.1:1", store="rocksdb://",
                    datadir=str(tmp_path))
    store = app.Table("profiles", partitions=1, key_type=str).data
    db = store._open_for_partition(0)
    for i in range(200):
        db.put(f"app/{i}".encode(), b"x" * 1000)
    assert _wal_bytes(store.partition_path(0)) >= 200 * 1000
