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
