"""Lodestar processes of one end-to-end test: started, watched, stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest


class Processes:
    """Lodestar processes of one test, with their logs, stopped at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        """Start ``lodestar *args`` as ``name`` (``env``: instead of the shared one)."""
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        self.running[name] = subprocess.Popen(
            [sys.executable, "-m", "lodestar", *args],
            env=self.env if env is None else env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, name: str, lines: int = 40) -> str:
        text = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def assert_alive(self) -> None:
        for name, proc in self.running.items():
            if proc.poll() is not None:
                tail = self.log_tail(name)
                pytest.fail(f"`lodestar {name}` exited with {proc.returncode}:\n{tail}")

    def stop_all(self) -> dict[str, int]:
        codes = {}
        for proc in self.running.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in self.running.items():
            try:
                codes[name] = proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                codes[name] = proc.wait(timeout=10)
        return codes

    def kill(self, name: str) -> int:
        """SIGKILL ``name`` (a crash: no shutdown of any kind); its exit code."""
        proc = self.running.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=10)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lodestar", *args],
            env=self.env, capture_output=True, text=True, timeout=60,
        )


