"""What an inbound SMS asks for: opt out, opt in, help, or nothing.

Contract:

- ``read_keyword(body)`` looks at the whole message, trimmed, case-insensitive,
  inner whitespace collapsed and trailing punctuation (``. ! ?``) dropped: a body
  equal to an opt-out word (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT,
  also written "STOP ALL" / "OPT OUT") is ``OPT_OUT``; START, UNSTOP, YES is
  ``OPT_IN``; HELP, INFO is ``HELP``; anything else (including "please stop
  texting me") is ``NONE`` — carriers and Twilio match the message as a whole too.
- The answer is a ``KeywordMatch``: the action and the normalised keyword.
- ``keyword_reply(action, help_text)``: the text to answer with (only HELP has one
  here; opt-out and opt-in confirmations are the carrier's or provider's job), or None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class KeywordAction(StrEnum):
    OPT_OUT = "OPT_OUT"
    OPT_IN = "OPT_IN"
    HELP = "HELP"
    NONE = "NONE"


OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})

_SPACES = re.compile(r"\s+")
_TRAILING = re.compile(r"[.!?]+$")


@dataclass(frozen=True)
class KeywordMatch:
    action: KeywordAction
    keyword: str | None = None
    """The matched keyword, upper case without spaces (``STOPALL`` for "stop all")."""


def _normalise(body: str) -> str:
    text = _TRAILING.sub("", _SPACES.sub(" ", body).strip()).strip()
    return text.upper()


def read_keyword(body: str | None) -> KeywordMatch:
    """The keyword the whole of ``body`` is, if any."""
    text = _normalise(body or "")
    for candidate in (text, text.replace(" ", "")):
        for words, action in ((OPT_OUT_WORDS, KeywordAction.OPT_OUT),
                              (OPT_IN_WORDS, KeywordAction.OPT_IN),
                              (HELP_WORDS, KeywordAction.HELP)):
            if candidate in words:
                return KeywordMatch(action, candidate)
    return KeywordMatch(KeywordAction.NONE)


def keyword_reply(action: KeywordAction, help_text: str) -> str | None:
    """What to answer the sender: the help text for HELP, else nothing."""
    return help_text if action is KeywordAction.HELP else None


DEFAULT_HELP_TEXT = (
    "Reply STOP to unsubscribe, START to subscribe again. Msg&data rates may apply.")
"""The reply to an inbound HELP when ``LODESTAR_SMS_HELP_TEXT`` is not set."""
