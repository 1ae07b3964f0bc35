from __future__ import annotations

import pytest

from lodestar.core.sms_keywords import KeywordAction, keyword_reply, read_keyword


@pytest.mark.parametrize(("body", "action", "keyword"), [
    ("STOP", KeywordAction.OPT_OUT, "STOP"),
    ("  stop \n", KeywordAction.OPT_OUT, "STOP"),
    ("Stop.", KeywordAction.OPT_OUT, "STOP"),
    ("stopall", KeywordAction.OPT_OUT, "STOPALL"),
    ("Stop  All", KeywordAction.OPT_OUT, "STOPALL"),
    ("unsubscribe", KeywordAction.OPT_OUT, "UNSUBSCRIBE"),
    ("Cancel", KeywordAction.OPT_OUT, "CANCEL"),
    ("end!", KeywordAction.OPT_OUT, "END"),
    ("QUIT", KeywordAction.OPT_OUT, "QUIT"),
    ("opt out", KeywordAction.OPT_OUT, "OPTOUT"),
    ("OptOut", KeywordAction.OPT_OUT, "OPTOUT"),
    ("start", KeywordAction.OPT_IN, "START"),
    ("UNSTOP", KeywordAction.OPT_IN, "UNSTOP"),
    ("Yes", KeywordAction.OPT_IN, "YES"),
    ("help", KeywordAction.HELP, "HELP"),
    ("\tInfo?", KeywordAction.HELP, "INFO"),
])
def test_keywords(body: str, action: KeywordAction, keyword: str) -> None:
    match = read_keyword(body)
    assert (match.action, match.keyword) == (action, keyword)


@pytest.mark.parametrize("body", [
    "", None, "please stop texting me", "stopping by later", "STOP IT", "yes please",
    "helpful", "ST OP NOW", "🛑",
])
def test_other_messages_are_no_keyword(body: str | None) -> None:
    match = read_keyword(body)
    assert match.action is KeywordAction.NONE and match.keyword is None


def test_only_help_has_a_reply() -> None:
    assert keyword_reply(KeywordAction.HELP, "Shop: help at example.com") == (
        "Shop: help at example.com")
    for action in (KeywordAction.OPT_OUT, KeywordAction.OPT_IN, KeywordAction.NONE):
        assert keyword_reply(action, "x") is None
