from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lodestar.core.user_index import apply_membership, membership_changes, user_key


def test_user_key() -> None:
    assert user_key("app", "u1") == "app/u1"


def test_changes_for_set_move_clear() -> None:
    assert membership_changes("a", "e", None, None, 1) == []
    assert membership_changes("a", "e", "u", "u", 1) == []
    assert [(c["user_id"], c["op"]) for c in membership_changes("a", "e", None, "u", 1)] == [
        ("u", "ADD")
    ]
    assert [(c["user_id"], c["op"]) for c in membership_changes("a", "e", "u", "v", 1)] == [
        ("u", "REMOVE"), ("v", "ADD")
    ]
    assert [(c["user_id"], c["op"]) for c in membership_changes("a", "e", "u", None, 1)] == [
        ("u", "REMOVE")
    ]


users = st.sampled_from([None, "u1", "u2", "u3"])


@given(st.lists(st.tuples(st.sampled_from(["e1", "e2", "e3"]), users), max_size=40))
def test_index_equals_the_final_user_of_each_endpoint(moves: list) -> None:
    """Folding every endpoint's user changes gives exactly the endpoints whose last user is u."""
    current: dict[str, str | None] = {}
    per_user: dict[str, list[dict]] = {}
    for endpoint, user in moves:
        for change in membership_changes("a", endpoint, current.get(endpoint), user, 1):
            per_user.setdefault(change["user_id"], []).append(change)
        current[endpoint] = user
    for user in ("u1", "u2", "u3"):
        expected = sorted(e for e, u in current.items() if u == user)
        assert apply_membership([], per_user.get(user, [])) == expected
        # replaying the same changes (a redelivered batch) changes nothing
        assert apply_membership(expected, per_user.get(user, [])) == expected


def test_attribute_changes_fan_out_to_the_other_endpoints_only() -> None:
    import json

    from lodestar.core.user_index import attributes_change, fan_out_commands

    change = attributes_change("a", "u", "e2", {"FirstName": ["Ana"]}, 5)
    assert apply_membership(["e1", "e2"], [change]) == ["e1", "e2"]  # not a membership change
    commands = fan_out_commands(["e3", "e1", "e2"], change, 9)
    assert [c["endpoint_id"] for c in commands] == ["e1", "e3"]
    assert all(c["kind"] == "SET_USER_ATTRIBUTES" for c in commands)
    assert json.loads(commands[0]["endpoint_request"]) == {
        "User": {"UserId": "u", "UserAttributes": {"FirstName": ["Ana"]}}
    }
    assert len({c["command_id"] for c in commands}) == 2
