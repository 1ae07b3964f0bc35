from __future__ import annotations

import pytest

from lodestar.core.endpoint_request import EndpointRequestError
from lodestar.core.endpoint_rules import address_takeover, check_user_capacity


def test_user_capacity_counts_distinct_endpoints() -> None:
    check_user_capacity("u", [f"e{i}" for i in range(14)], ["e0", "e14"])  # 15: fine
    with pytest.raises(EndpointRequestError, match="at most 15 endpoints; user 'u' would have 16"):
        check_user_capacity("u", [f"e{i}" for i in range(15)], ["new"])


def test_address_takeover_deactivates_the_other_holders_only() -> None:
    commands = address_takeover("app", "e3", ["e1", "e3", "e2", "e1"], "r", 5)
    assert [(c["endpoint_id"], c["kind"]) for c in commands] == [
        ("e1", "DEACTIVATE"), ("e2", "DEACTIVATE")
    ]
    assert commands[0]["reason"] == "address taken by endpoint e3"
