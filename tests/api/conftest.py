"""Fixtures of the API tests: a migrated control-plane database and the live API on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from tests.api.live_api import Api, api_settings, serve

from lodestar.control.migrate import migrate
from lodestar.settings import Settings


@pytest.fixture
async def control_dsn(postgres_dsn: str) -> AsyncIterator[str]:
    """This test's own PostgreSQL database, with every migration applied."""
    await migrate(postgres_dsn)
    yield postgres_dsn


@pytest.fixture
def api(settings: Settings, control_dsn: str) -> Iterator[Api]:
    """The API in-process on a real port, with the test admin key (``Api.admin()``)."""
    configured = api_settings(settings, control_dsn)
    for url in serve(configured):
        yield Api(url, configured)
