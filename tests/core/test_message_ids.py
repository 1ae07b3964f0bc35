"""Deterministic message ids (lodestar.core.message_ids)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lodestar.core.message_ids import (
    ID_LENGTH,
    SourceKind,
    is_message_id,
    message_id,
    transactional_message_id,
)

URL_SAFE = re.compile(r"[A-Za-z0-9_-]{1,64}")

kinds = st.sampled_from(list(SourceKind))
texts = st.text(max_size=20)
opt_texts = st.none() | texts
send_inputs = st.tuples(kinds, texts, opt_texts, texts, opt_texts, opt_texts)
Inputs = tuple[str, str, str | None, str, str | None, str | None]


def make_id(a: Inputs) -> str:
    return message_id(a[0], a[1], a[2], a[3], a[4], activity_id=a[5])


def test_shape() -> None:
    mid = message_id(SourceKind.CAMPAIGN, "c1", "run-1", "ep-1", "0")
    assert URL_SAFE.fullmatch(mid)
    assert len(mid) == ID_LENGTH <= 64
    assert is_message_id(mid)
    assert not is_message_id("m-xyz")


def test_known_values_are_stable() -> None:
    # Changing these would re-send messages after an upgrade: bump the tag instead.
    assert (message_id("CAMPAIGN", "c1", "run-1", "ep-1", "0")
            == "m-b1c6b423463ead2fd0dc196d6980c759")
    assert (transactional_message_id("req-1", "EMAIL", address="a@example.com")
            == "m-12ab392fd4c47bc4c5edca8ceb045077")


def test_separators_inside_fields_do_not_collide() -> None:
    assert message_id("CAMPAIGN", "a|b", "c", "e") != message_id("CAMPAIGN", "a", "b|c", "e")
    assert message_id("CAMPAIGN", "a", "", "e") != message_id("CAMPAIGN", "a", None, "e")
    assert message_id("CAMPAIGN", "c", "r", "e", None) != message_id("CAMPAIGN", "c", "r", "e", "")


def test_journey_activity_matters() -> None:
    first = message_id("JOURNEY", "j", "run-1", "e", activity_id="welcome")
    second = message_id("JOURNEY", "j", "run-1", "e", activity_id="reminder")
    assert first != second
    assert first != message_id("JOURNEY", "j", "run-1", "e")


def test_kind_matters() -> None:
    assert message_id("CAMPAIGN", "x", "r", "e") != message_id("JOURNEY", "x", "r", "e")


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        message_id("BROADCAST", "x", "r", "e")


def test_transactional_ids() -> None:
    by_address = transactional_message_id("req-1", "EMAIL", address="a@example.com")
    by_endpoint = transactional_message_id("req-1", "EMAIL", endpoint_id="a@example.com")
    assert by_address != by_endpoint
    assert by_address == transactional_message_id("req-1", "EMAIL", address="a@example.com")
    assert by_address != transactional_message_id("req-1", "SMS", address="a@example.com")
    assert is_message_id(by_address)
    with pytest.raises(ValueError):
        transactional_message_id("req-1", "EMAIL")
    with pytest.raises(ValueError):
        transactional_message_id("req-1", "EMAIL", address="a", endpoint_id="b")


@given(send_inputs, send_inputs)
def test_distinct_inputs_distinct_ids(a: Inputs, b: Inputs) -> None:
    if a == b:
        assert make_id(a) == make_id(b)
    else:
        assert make_id(a) != make_id(b)


@given(send_inputs)
def test_same_inputs_same_id(a: Inputs) -> None:
    first = make_id(a)
    assert first == make_id(a)
    assert URL_SAFE.fullmatch(first)


txn_inputs = st.tuples(texts, texts, st.booleans(), texts)


@given(txn_inputs, txn_inputs)
def test_transactional_distinct(a: tuple[str, str, bool, str],
                                b: tuple[str, str, bool, str]) -> None:
    def make(t: tuple[str, str, bool, str]) -> str:
        request, channel, is_address, recipient = t
        if is_address:
            return transactional_message_id(request, channel, address=recipient)
        return transactional_message_id(request, channel, endpoint_id=recipient)

    assert (make(a) == make(b)) == (a == b)
