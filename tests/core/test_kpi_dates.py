from __future__ import annotations

import pytest

from lodestar.core.kpi_dates import DateRangeError, KpiDateRange, day_of, kpi_date_range

DAY = 86_400_000
NOW = 1_780_000_000_000


def test_date_range_defaults_and_limits() -> None:
    both = kpi_date_range("2026-05-01T00:00:00Z", "2026-05-31T23:59:59Z", NOW)
    assert day_of(both.start_ms) == "2026-05-01" and day_of(both.end_ms) == "2026-05-31"
    default = kpi_date_range(None, None, NOW)
    assert (default.start_ms, default.end_ms) == (NOW - 31 * DAY, NOW)
    only_end = kpi_date_range(None, "2026-05-31T00:00:00+00:00", NOW)
    assert only_end.end_ms - only_end.start_ms == 31 * DAY
    with pytest.raises(DateRangeError, match="31 days or fewer"):
        kpi_date_range("2026-05-01T00:00:00Z", "2026-06-01T00:00:01Z", NOW)
    with pytest.raises(DateRangeError, match="not be after"):
        kpi_date_range("2026-05-02T00:00:00Z", "2026-05-01T00:00:00Z", NOW)
    with pytest.raises(DateRangeError, match="start-time"):
        kpi_date_range("yesterday", None, NOW)


def test_whole_days() -> None:
    assert KpiDateRange(0, DAY - 1).whole_days and KpiDateRange(DAY, 3 * DAY - 1).whole_days
    assert not KpiDateRange(1, DAY - 1).whole_days and not KpiDateRange(0, DAY).whole_days
