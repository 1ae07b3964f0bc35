"""Lodestar processes for benchmarks, started the way a user starts them.

- ``fresh_database(admin_dsn)``: a new PostgreSQL database, migrated with
  ``lodestar.control.migrate.migrate``, dropped (``WITH (FORCE)``) on exit;
- ``LodestarProcess``: ``python -m lodestar <command>`` as a subprocess in its
  own session, output to a log file, stopped with SIGTERM to its process
  group (SIGKILL after a grace period);
- ``lodestar_env``: the ``LODESTAR_*`` environment of one benchmark run;
- ``cancel_on_sigterm``: SIGTERM cancels the run, so its cleanup runs.

Used by ``ingest.py`` and ``profile_updates.py``; mirrors ``tests/e2e``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx

from lodestar.control.migrate import migrate

T = TypeVar("T")


def cancel_on_sigterm() -> None:
    """Make SIGTERM cancel the calling task (the run), so its cleanup still runs.

    asyncio.run already turns Ctrl-C into a cancellation; this does the same
    for ``kill``. Call it first thing in the run's main coroutine.
    """
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def fresh_database(admin_dsn: str, prefix: str = "bench") -> AsyncIterator[str]:
    """The DSN of a new, migrated database next to ``admin_dsn``'s; dropped on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = admin_dsn.rpartition("/")
    dsn = f"{base}/{name}"
    try:
        await migrate(dsn)
        yield dsn
    finally:
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def lodestar_env(
    *,
    kafka_bootstrap: str,
    postgres_dsn: str,
    topic_prefix: str,
    data_dir: Path,
    partitions: int,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """This process's environment with the ``LODESTAR_*`` settings of one run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LODESTAR_")}
    env.update(
        LODESTAR_KAFKA_BOOTSTRAP=kafka_bootstrap,
        LODESTAR_POSTGRES_DSN=postgres_dsn,
        LODESTAR_TOPIC_PREFIX=topic_prefix,
        LODESTAR_DATA_DIR=str(data_dir),
        LODESTAR_CLICKHOUSE_DSN=f"chdb://{data_dir / 'clickhouse'}",
        LODESTAR_PARTITIONS=str(partitions),
        LODESTAR_LOG_LEVEL=os.environ.get("LODESTAR_LOG_LEVEL", "INFO"),
    )
    env.update(extra or {})
    return env


class LodestarProcess:
    """One ``python -m lodestar …`` subprocess and its log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        out = self.log.open("wb")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "lodestar", *self.args,
                env=self.env, stdout=out, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            out.close()  # the child keeps its own descriptor

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    async def wait_healthy(self, url: str, timeout_s: float, *, analytics: bool = False) -> None:
        """Poll ``url`` until it answers 200 (and ``"analytics": true`` when asked)."""
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if not self.alive():
                    raise RuntimeError(f"`lodestar {self.name}` exited:\n{self.log_tail()}")
                try:
                    response = await client.get(url)
                    if response.status_code == 200 and (
                        not analytics or response.json().get("analytics")
                    ):
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"`lodestar {self.name}` not healthy in {timeout_s:.0f} s:\n"
                           f"{self.log_tail()}")

    async def stop(self, grace_s: float = 40.0) -> int | None:
        """SIGTERM the process group, SIGKILL after ``grace_s``; the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        return proc.returncode


def run_measurement(
    settings: Any,
    measure: Callable[[], Coroutine[Any, Any, T]],
    workdir: Path,
    *,
    keep_logs: bool,
    discard: Sequence[Path] = (),
) -> T | int:
    """Run ``measure()``; on failure report why and return the exit code (1, or 130 when
    interrupted). Afterwards delete ``discard`` and, unless ``keep_logs``, ``workdir``."""
    from aiokafka.errors import KafkaConnectionError

    from baselines import BenchError, report

    try:
        return asyncio.run(measure())
    except (BenchError, RuntimeError, ValueError) as exc:
        report(f"FAILED: {exc}")
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        report("interrupted (what the run created was deleted)")
        return 130
    except KafkaConnectionError as exc:
        report(f"FAILED: cannot reach Kafka at {settings.kafka_bootstrap}: {exc}")
        return 1
    finally:
        for path in discard:
            shutil.rmtree(path, ignore_errors=True)
        if keep_logs:
            report(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
