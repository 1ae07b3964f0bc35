"""End-to-end fixtures: Lodestar's processes started as a user would start them.

``lodestar`` migrates a fresh PostgreSQL database, starts ``lodestar api`` and
``lodestar worker`` as subprocesses (own topic prefix, data directory and
ports; an admin key in their environment) and waits until both are healthy.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import free_port
from tests.e2e.processes import Processes

from lodestar.settings import Settings

ADMIN_KEY = ("LSAE2EADMIN000000001", "E2eAdminSecret000000000000000000000000x1")


@pytest.fixture
def lodestar_env(settings: Settings, tmp_path: Path, postgres_dsn: str) -> dict[str, str]:
    """The environment of this test's Lodestar processes (own prefix, ports, data dir)."""
    api_port, web_port = free_port(), free_port()
    return {
        **os.environ,
        "LODESTAR_POSTGRES_DSN": postgres_dsn,
        "LODESTAR_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LODESTAR_TOPIC_PREFIX": settings.topic_prefix,
        "LODESTAR_WORKER_ID": settings.worker_id,
        "LODESTAR_DATA_DIR": str(tmp_path / "lodestar"),
        "LODESTAR_PARTITIONS": "4",
        "LODESTAR_API_PORT": str(api_port),
        "LODESTAR_WORKER_WEB_PORT": str(web_port),
        "LODESTAR_WORKER_URL": f"http://127.0.0.1:{web_port}",
        "LODESTAR_SINK_FLUSH_SECONDS": "0.5",
        "LODESTAR_ADMIN_ACCESS_KEY_ID": ADMIN_KEY[0],
        "LODESTAR_ADMIN_SECRET_ACCESS_KEY": ADMIN_KEY[1],
    }


def launch(env: dict[str, str], logs: Path, *worker_args: str,
           projections: bool = False) -> tuple[Processes, dict[str, str]]:
    """Migrate, start ``lodestar api`` and ``lodestar worker *worker_args`` (and
    ``lodestar projections``), wait until healthy; the caller stops them."""
    procs = Processes(env, logs)
    migrated = procs.cli("migrate")
    assert migrated.returncode == 0, migrated.stderr
    procs.start("api", "api")
    procs.start("worker", "worker", *worker_args)
    if projections:
        procs.start("projections", "projections")
    urls = {"api": f"http://127.0.0.1:{env['LODESTAR_API_PORT']}",
            "worker": env["LODESTAR_WORKER_URL"]}
    try:
        _wait_healthy(procs, urls)
    except BaseException:
        procs.stop_all()
        raise
    return procs, urls


@pytest.fixture
def lodestar(
    lodestar_env: dict[str, str], tmp_path: Path, unique: str
) -> Iterator[tuple[Processes, dict]]:
    procs, urls = launch(lodestar_env, tmp_path)
    try:
        yield procs, urls
    finally:
        procs.stop_all()


def _wait_healthy(procs: Processes, urls: dict[str, str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    pending = {"api": f"{urls['api']}/healthz", "worker": f"{urls['worker']}/healthz"}
    while pending and time.monotonic() < deadline:
        procs.assert_alive()
        for name, url in list(pending.items()):
            try:
                response = httpx.get(url, timeout=2)
                if response.status_code == 200 and response.json().get("analytics", True):
                    del pending[name]
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    if pending:
        tails = "\n\n".join(f"--- {n} ---\n{procs.log_tail(n)}" for n in pending)
        pytest.fail(f"not healthy within {timeout:.0f}s: {', '.join(pending)}\n{tails}")


