"""Named analytics queries: one registry serves the worker (embedded engine) and the API.

A query is a function ``fn(client, params) -> JSON-able value`` registered
under a name with ``@analytics_query("name")``. ``params`` are the request's
query-string parameters (strings); a query that cannot use them raises
``QueryParameterError`` with a message saying what to send, which both
callers answer as 400 ``BadRequestException``.

The modules that register queries are listed in ``QUERY_MODULES`` and
imported by ``load_queries()``; add a module there when it registers some.
``run_query(client, name, params)`` runs one (``UnknownQuery`` when the name
is not registered).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from clickhouse_connect.driver.client import Client

QueryFn = Callable[[Client, Mapping[str, str]], Any]

QUERY_MODULES: tuple[str, ...] = (
    "lodestar.analytics.queries",
    "lodestar.analytics.kpis",
    "lodestar.analytics.product",
    "lodestar.analytics.dashboard_queries",
)

_QUERIES: dict[str, QueryFn] = {}


class QueryParameterError(ValueError):
    """The parameters cannot answer the query; the message says what to send."""


class UnknownQuery(LookupError):
    """No query is registered under the name."""


def analytics_query(name: str) -> Callable[[QueryFn], QueryFn]:
    """Register ``fn`` under ``name`` (names are unique)."""

    def register(fn: QueryFn) -> QueryFn:
        if name in _QUERIES and _QUERIES[name] is not fn:
            raise ValueError(f"analytics query {name!r} is registered twice")
        _QUERIES[name] = fn
        return fn

    return register


def load_queries() -> list[str]:
    """Import every module of ``QUERY_MODULES``; return the registered names, sorted."""
    for module in QUERY_MODULES:
        importlib.import_module(module)
    return sorted(_QUERIES)


def run_query(client: Client, name: str, params: Mapping[str, str]) -> Any:
    """Run the query registered as ``name``."""
    load_queries()
    fn = _QUERIES.get(name)
    if fn is None:
        known = ", ".join(sorted(_QUERIES))
        raise UnknownQuery(f"no analytics query named {name!r}; known: {known}")
    return fn(client, params)
