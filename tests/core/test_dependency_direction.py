"""lodestar.core imports nothing from the adapters and no I/O library (DESIGN §3)."""

from __future__ import annotations

import ast
from pathlib import Path

import lodestar.core

CORE = Path(lodestar.core.__file__).parent
ADAPTERS = {"api", "engine", "channels", "analytics", "control", "contracts", "settings", "cli"}
IO_LIBRARIES = {
    "aiokafka", "faust", "mode", "asyncpg", "clickhouse_connect", "chdb", "aiosmtplib",
    "httpx", "starlette", "uvicorn", "socket", "asyncio", "subprocess", "requests", "urllib",
    "fastavro",
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_imports_no_adapter_and_no_io_library() -> None:
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] in IO_LIBRARIES:
                offenders.append(f"{path.name}: {name}")
            if parts[0] == "lodestar" and len(parts) > 1 and parts[1] in ADAPTERS:
                offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_the_check_sees_core_modules() -> None:
    assert len(list(CORE.rglob("*.py"))) >= 4
