"""OAuth2 token answers."""

from __future__ import annotations

import pytest

from lodestar.core.oauth2 import read_token


def test_read_token() -> None:
    assert read_token({"access_token": "Atc|abc", "expires_in": 3600, "scope":
                       "messaging:push", "token_type": "bearer"}) == ("Atc|abc", 3600.0)
    assert read_token({"access_token": "Atc|abc"}) == ("Atc|abc", 3600.0)
    for bad in ({}, None, {"access_token": ""}, {"access_token": "a\r\nX: y"},
                {"access_token": "a", "expires_in": True},
                {"access_token": "a", "expires_in": "soon"}):
        with pytest.raises(ValueError):
            read_token(bad)
