"""Fixtures for the real parts: Kafka, PostgreSQL, ClickHouse, SMTP.

Each service comes, in order of preference, from:
1. the environment (``LODESTAR_KAFKA_BOOTSTRAP``, ``LODESTAR_POSTGRES_DSN``,
   ``LODESTAR_CLICKHOUSE_DSN`` with an ``http(s)://`` server);
2. testcontainers, when a Docker daemon answers;
3. the local stack of ``deploy/stack.py`` (started here if it is not running,
   and stopped at the end only if this session started it).

A service that cannot be had fails the tests that need it, saying which and
why; nothing is skipped silently. Every test gets its own topic prefix,
PostgreSQL database and ClickHouse database.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import uuid
import warnings
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from lodestar.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
STACK = ROOT / "deploy" / "stack.py"


def _answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


class _LocalStack:
    """Starts ``deploy/stack.py up`` at most once per session; stops it if it started it."""

    def __init__(self) -> None:
        self.started = False

    def ensure_up(self, what: str) -> None:
        if self.started:
            return
        result = subprocess.run(
            [sys.executable, str(STACK), "up"], capture_output=True, text=True, timeout=900
        )
        if result.returncode != 0:
            pytest.fail(
                f"{what} is needed and could not be started with `deploy/stack.py up` "
                f"(exit {result.returncode}):\n{result.stdout}\n{result.stderr}",
                pytrace=False,
            )
        self.started = True

    def down(self) -> None:
        if self.started:
            subprocess.run([sys.executable, str(STACK), "down"], capture_output=True, timeout=300)


@pytest.fixture(scope="session")
def local_stack() -> Iterator[_LocalStack]:
    stack = _LocalStack()
    yield stack
    if os.environ.get("LODESTAR_TEST_KEEP_STACK") != "1":
        stack.down()


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def kafka_bootstrap(base_settings: Settings, local_stack: _LocalStack) -> Iterator[str]:
    if os.environ.get("LODESTAR_KAFKA_BOOTSTRAP"):
        yield base_settings.kafka_bootstrap
        return
    if _docker_available():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    host, _, port = base_settings.kafka_bootstrap.partition(",")[0].rpartition(":")
    if not _answers(host, int(port)):
        local_stack.ensure_up("Kafka")
    if not _answers(host, int(port)):
        pytest.fail(f"Kafka does not answer at {base_settings.kafka_bootstrap}", pytrace=False)
    yield base_settings.kafka_bootstrap


@pytest.fixture(scope="session")
def postgres_admin_dsn(base_settings: Settings, local_stack: _LocalStack) -> Iterator[str]:
    if os.environ.get("LODESTAR_POSTGRES_DSN"):
        yield base_settings.postgres_dsn
        return
    if _docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver=None) as pg:
            yield pg.get_connection_url()
        return
    host_port = base_settings.postgres_dsn.rsplit("@", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    if not _answers(host, int(port)):
        local_stack.ensure_up("PostgreSQL")
    if not _answers(host, int(port)):
        pytest.fail(f"PostgreSQL does not answer at {host_port}", pytrace=False)
    yield base_settings.postgres_dsn


@pytest.fixture
async def postgres_dsn(postgres_admin_dsn: str) -> AsyncIterator[str]:
    """A fresh database for one test, dropped afterwards."""
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = postgres_admin_dsn.rpartition("/")
    yield f"{base}/{name}"
    admin = await asyncpg.connect(postgres_admin_dsn)
    try:
        for attempt in range(5):
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except asyncpg.PostgresError as exc:
                # A session of another role (a process the test started, still exiting)
                # can hold the database for a moment; a leftover test database is
                # harmless, so warn rather than fail the test that used it.
                if attempt == 4:
                    warnings.warn(f"test database {name} not dropped: {exc}", stacklevel=1)
                await asyncio.sleep(0.5)
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def clickhouse_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A ClickHouse server from the environment, else this process's own chdb engine."""
    dsn = os.environ.get("LODESTAR_CLICKHOUSE_DSN", "")
    if dsn.startswith(("http://", "https://")):
        return dsn
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture
def clickhouse_database() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def settings(
    base_settings: Settings, kafka_bootstrap: str, tmp_path: Path, unique: str
) -> Iterator[Settings]:
    """Settings for one test: its own topic prefix, worker id and data directory.

    The test's topics (``t<unique>.*``, and Faust's ``lodestar-test-<unique>-*``)
    are deleted afterwards, so a broker that runs many test sessions does not
    pile up partitions (each holds open files).
    """
    configured = base_settings.with_changes(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"t{unique}",
        worker_id=f"lodestar-test-{unique}",
        data_dir=tmp_path / "data",
        partitions=4,
    )
    yield configured
    _in_thread(_delete_topics(kafka_bootstrap, (f"t{unique}.", f"lodestar-test-{unique}")))


def _in_thread(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` to completion on a fresh loop, whatever loop this thread has."""
    worker = threading.Thread(target=asyncio.run, args=(coro,))
    worker.start()
    worker.join(60)


async def _delete_topics(bootstrap: str, prefixes: tuple[str, ...]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        doomed = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        if doomed:
            await admin.delete_topics(doomed)
    except Exception as exc:  # cleanup must not fail the test that used the topics
        print(f"could not delete test topics {prefixes}: {exc}")
    finally:
        await admin.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
