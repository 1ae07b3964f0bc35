"""bench/analytics_queries.py keeps working: a 50,000-event run in a subprocess generates
its data set, measures every registered analytics query and every KPI in each scope, and
prints its table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lodestar.analytics.registry import load_queries
from lodestar.core.kpi_catalog import KPIS

pytestmark = pytest.mark.clickhouse

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "analytics_queries.py"


def test_a_small_run_measures_every_query(tmp_path: Path) -> None:
    out = tmp_path / "timings.json"
    args = [sys.executable, str(SCRIPT), "--events", "50000", "--runs", "2", "--kpi-runs", "1",
            "--keep", str(tmp_path / "db"), "--json", str(out)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "events: 50,000 rows" in done.stderr
    assert "| active-users | 30 days | 2 |" in done.stdout

    timings = json.loads(out.read_text())
    names = {t["name"] for t in timings}
    assert set(load_queries()) - {"kpi"} <= names  # every registered query is measured
    kpi_cases = [t for t in timings if t["name"].startswith("kpi ")]
    per_range = sum(len(kpi.scopes) for kpi in KPIS.values())
    assert len(kpi_cases) == 2 * per_range  # each KPI and scope, whole and partial days
    assert all(0 < t["p50_ms"] <= t["p95_ms"] <= t["max_ms"] for t in timings)

    # a second run reuses the kept database instead of generating again
    again = subprocess.run([*args, "--only", "^top-events"], capture_output=True, text=True,
                           timeout=120, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reusing" in again.stderr and "source rows" not in again.stderr
