"""The direct serialiser against the stdlib ``email`` package it replaces."""

from __future__ import annotations

import base64
from email import message_from_bytes
from email import policy as email_policy
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import getaddresses
from io import BytesIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lodestar.core.email_wire import (
    MESSAGE_POLICY,
    TextBody,
    WireError,
    address_header,
    assemble,
    boundary_for,
    mailbox,
    stdlib_header,
    text_body,
    unstructured,
    verbatim,
)

_NO_BREAKS = st.characters(exclude_categories=("Cs",), exclude_characters=(
    "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"))
_VALUES = st.one_of(
    st.text(_NO_BREAKS, max_size=200),
    st.lists(st.sampled_from(["a", "é", " ", "  ", "\t", "€uro", "x" * 40, "😀", "=?", "?=",
                              "Olá", ",", '"', "ü" * 30]), max_size=30).map("".join),
)


def _read(header: bytes, name: str) -> str:
    return str(message_from_bytes(header + b"\r\n", policy=email_policy.default)[name])


@settings(max_examples=400, deadline=None)
@given(value=_VALUES, utf8=st.booleans(), name=st.sampled_from(
    ["Subject", "X-Campaign", "Keywords", "X-" + "n" * 44, "X-" + "n" * 45, "X-" + "n" * 120]))
def test_unstructured_reads_back_as_the_stdlib_fold_does(value: str, name: str,
                                                         utf8: bool) -> None:
    ours = unstructured(name, value, utf8=utf8)
    assert ours.endswith(b"\r\n") and (utf8 or ours.isascii())
    try:
        theirs = stdlib_header(name, value, utf8)
    except WireError:  # the stdlib's folder crashes on a few (long name, value) pairs
        assert _read(ours, name) == value.lstrip(" ")
        return
    if ours == theirs:
        return
    # Written anew (RFC 2047 words of a non-ASCII value): it reads back as exactly the
    # value, where the stdlib's folder sometimes loses a space between words.
    assert not value.isascii() and not utf8
    assert _read(ours, name) == value
    assert all(len(line) <= 78 for line in ours.split(b"\r\n"))
    assert b"=?utf-8?" in ours


def test_plain_values_are_written_as_is_and_others_encoded() -> None:
    assert unstructured("Subject", "Hello", utf8=False) == b"Subject: Hello\r\n"
    assert unstructured("Subject", "", utf8=False) == b"Subject:\r\n"
    assert unstructured("Subject", "Olá", utf8=False).startswith(b"Subject: =?utf-8?")
    assert unstructured("Subject", "Olá", utf8=True) == "Subject: Olá\r\n".encode()
    folded = unstructured("Subject", "word " * 30, utf8=False)
    assert folded.count(b"\r\n ") >= 1 and folded == stdlib_header("Subject", "word " * 30,
                                                                    False)
    assert unstructured("Resent-Date", "x", utf8=False) == stdlib_header("Resent-Date", "x",
                                                                         False)
    with pytest.raises(WireError, match="line breaks"):
        unstructured("Subject", "a\x0cb", utf8=False)


def test_verbatim_headers_fold_only_at_spaces() -> None:
    url = "<https://t.example.test/t/u/" + "x" * 150 + ">"
    assert verbatim("List-Unsubscribe", url, utf8=False) == f"List-Unsubscribe: {url}\r\n".encode()
    two = verbatim("List-Unsubscribe", f"<mailto:a@b.test>, {url}", utf8=False)
    assert two == f"List-Unsubscribe: <mailto:a@b.test>,\r\n {url}\r\n".encode()
    for value in (url, f"<mailto:a@b.test>, {url}", "m-1", "id with  spaces", "ïd-" * 40):
        assert verbatim("X-Lodestar-Message-Id", value, utf8=False) == stdlib_header(
            "X-Lodestar-Message-Id", value, False)


_ATOM = st.text(st.sampled_from("abcXYZ019!#$%&'*+/=?^_`{|}~-"), min_size=1, max_size=8)
_ADDRESS_LIKE = st.one_of(
    st.emails(),
    st.builds(lambda words, addr: f"{' '.join(words)} <{addr}>",
              st.lists(_ATOM, min_size=1, max_size=3), st.emails()),
    st.text(st.sampled_from("ab@.<> \"'é,()=?-"), max_size=30),
)


@settings(max_examples=400, deadline=None)
@given(value=_ADDRESS_LIKE)
def test_mailboxes_are_validated_and_written_as_the_stdlib_did(value: str) -> None:
    found = mailbox(value)
    probe = EmailMessage(policy=email_policy.default)
    try:
        probe["To"] = value
        addresses = probe["To"].addresses
        accepted = (len(addresses) == 1 and bool(addresses[0].username)
                    and bool(addresses[0].domain) and not probe["To"].defects)
    except Exception:
        accepted = False
    assert (found is not None) == accepted
    if found is None:
        return
    assert [found.addr_spec] == [a for _, a in getaddresses([str(probe["To"])]) if a]
    ours = address_header("To", value, plain=found.plain, utf8=False)
    assert ours == stdlib_header("To", value, False)
    if found.plain:
        assert value.isascii()


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(
    st.text(max_size=600),
    st.lists(st.sampled_from(["a", "é", " ", "\r\n", "\n", "\r", "x" * 90, "ü" * 50, "=",
                              "\t", " \n", "\x0c", "\x85", "€" * 30]),
             max_size=80).map("".join)))
def test_text_bodies_are_encoded_as_set_content_encodes_them(text: str) -> None:
    body = text_body(text)
    part = EmailMessage(policy=MESSAGE_POLICY)
    part.set_content(text, charset="utf-8")
    assert body.cte == part["Content-Transfer-Encoding"]
    for seven_bit in (False, True):
        out = BytesIO()
        out_policy = email_policy.SMTP.clone(cte_type="7bit" if seven_bit else "8bit")
        BytesGenerator(out, policy=out_policy).flatten(part)
        expected = out.getvalue().split(b"\r\n\r\n", 1)[1]
        assert (body.seven_bit if seven_bit and body.seven_bit else body.body) == expected
    if body.seven_bit is not None:
        assert body.cte == "8bit"
        assert base64.b64decode(body.seven_bit) == b"\n".join(text.encode().splitlines()) + b"\n"


def test_the_boundary_is_stable_and_never_inside_a_part() -> None:
    first = boundary_for("msg-1", [b"hello"])
    assert first == boundary_for("msg-1", [b"other"]) != boundary_for("msg-2", [b"hello"])
    assert first.startswith("=" * 15) and first.endswith("==") and len(first) == 36
    assert boundary_for("msg-1", [f"x\r\n--{first}\r\n".encode()]) == f"{first}.0"


def test_assemble_single_and_alternative() -> None:
    head = [b"Subject: s\r\n"]
    plain = text_body("hi")
    single = assemble(head, [("plain", plain)], mail_from="a@b.test", rcpt_to=["c@d.test"],
                      boundary_seed="m")
    assert single.data == (b'Subject: s\r\nContent-Type: text/plain; charset="utf-8"\r\n'
                           b"Content-Transfer-Encoding: 7bit\r\nMIME-Version: 1.0\r\n\r\nhi\r\n")
    assert single.seven_bit is None and single.rcpt_to == ("c@d.test",)
    both = assemble(head, [("plain", plain), ("html", text_body("<p>é</p>"))],
                    mail_from="a@b.test", rcpt_to=["c@d.test"], boundary_seed="m")
    parsed = both.parsed()
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert both.seven_bit is not None and both.seven_bit.isascii()
    seven = message_from_bytes(both.seven_bit, policy=email_policy.default)
    assert [p.get_content().replace("\r\n", "\n") for p in seven.iter_parts()] == [
        "hi\n", "<p>é</p>\n"]
    assert [p["Content-Transfer-Encoding"] for p in seven.iter_parts()] == ["7bit", "base64"]
    with pytest.raises(WireError):
        assemble(head, [], mail_from="a@b.test", rcpt_to=[], boundary_seed="m")
    assert isinstance(plain, TextBody)
