"""The engine table's value for one endpoint: its ``EndpointState`` and segment memberships.

The value is ``EndpointState.to_dict()`` plus, once the endpoint has been
evaluated against its application's segments, a ``memberships`` key holding
``EndpointMemberships.to_dict()``. ``None`` memberships means never evaluated
(so the first evaluation considers every segment).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lodestar.core.endpoint_state import EndpointState
from lodestar.core.segment_control import AppSegments
from lodestar.core.segment_membership import EndpointMemberships, Outcome, created, reevaluate

MEMBERSHIPS = "memberships"


def read_entry(raw: Mapping[str, Any] | None) -> tuple[EndpointState | None,
                                                      EndpointMemberships | None]:
    """The state and memberships stored in a table value (``None``: no entry)."""
    if not raw:
        return None, None
    held = raw.get(MEMBERSHIPS)
    return EndpointState.from_dict(raw), (
        None if held is None else EndpointMemberships.from_dict(held)
    )


def entry(state: EndpointState, memberships: EndpointMemberships | None) -> dict[str, Any]:
    """The table value for ``state`` and ``memberships``."""
    value = state.to_dict()
    if memberships is not None:
        value[MEMBERSHIPS] = memberships.to_dict()
    return value


def next_due_ms(raw: Mapping[str, Any] | None) -> int | None:
    """The earliest segment due time in a table value, without decoding the state."""
    return EndpointMemberships.next_due_of((raw or {}).get(MEMBERSHIPS))


def after_change(
    segments: AppSegments,
    memberships: EndpointMemberships | None,
    state: EndpointState | None,
    touched: Iterable[str],
    now_ms: int,
    previous: EndpointState | None = None,
    baseline: Callable[[EndpointState], tuple[EndpointState, EndpointMemberships]] | None = None,
) -> Outcome | None:
    """Membership after a profile change that touched ``touched`` (``state`` None:
    deleted; ``previous``: the state before, which lets unaffected segments be
    skipped — see ``reevaluate``); ``None`` when there is nothing to evaluate or store.
    For an endpoint created by this change, ``baseline(state)`` gives the blank
    endpoint with its CreationDate and that blank's membership (see ``created``)."""
    names = frozenset(touched)
    if state is None:
        return None if memberships is None else reevaluate(
            segments.catalog, memberships, None, names, now_ms)
    if memberships is None:
        if not segments.catalog.entries:
            return None
        if previous is None and baseline is not None:
            blank, members = baseline(state)
            return created(segments.catalog, state, names, now_ms, blank, members)
        return reevaluate(segments.catalog, None, state, names, now_ms)
    if not names:
        return None
    return reevaluate(segments.catalog, memberships, state, names, now_ms, previous)
