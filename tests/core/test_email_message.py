from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import format_datetime
from io import BytesIO
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from lodestar.core.email_message import (
    EmailBuildError,
    LinkKind,
    TrackedLink,
    Tracking,
    Unsubscribe,
    build_email,
    list_unsubscribe_headers,
    make_token,
    message_id_header,
    rewrite_html,
    unsubscribe_url,
    verify_token,
)
from lodestar.core.email_wire import MESSAGE_POLICY, OutgoingEmail, stdlib_header, unstructured
from lodestar.core.templates import Rendered, TemplateType

SECRET = b"s" * 32
TRACKING = Tracking("https://t.example.test/", SECRET, "app-1", "ep-1")
NOW_MS = 1_700_000_000_000
TOKEN = re.compile(r"https://t\.example\.test/t/([cou])/([A-Za-z0-9_.-]+)")


def _rendered(**parts: str) -> Rendered:
    return Rendered(TemplateType.EMAIL, {"Subject": "Hello", **parts})


def _outgoing(rendered: Rendered, **kwargs: object) -> OutgoingEmail:
    args: dict[str, object] = {
        "from_address": "Lodestar <noreply@example.test>",
        "to_address": "ana@example.test",
        "message_id": "msg-1",
        "message_id_domain": "mail.example.test",
        "now_ms": NOW_MS,
    }
    args.update(kwargs)
    return build_email(rendered, **args)  # type: ignore[arg-type]


def _build(rendered: Rendered, **kwargs: object) -> Any:
    """The message as a recipient parses it."""
    return _outgoing(rendered, **kwargs).parsed()


def test_text_and_html_make_multipart_alternative_with_the_callers_headers() -> None:
    out = _outgoing(_rendered(TextPart="Hi Ana", HtmlPart="<p>Hi <b>Ana</b></p>"),
                    reply_to=["help@example.test", "Team <team@example.test>"])
    assert (out.mail_from, out.rcpt_to) == ("noreply@example.test", ("ana@example.test",))
    assert not out.smtputf8 and out.seven_bit is None
    assert b"\r\n" in out.data and b"\n" not in out.data.replace(b"\r\n", b"")
    msg = _build(_rendered(TextPart="Hi Ana", HtmlPart="<p>Hi <b>Ana</b></p>"),
                 reply_to=["help@example.test", "Team <team@example.test>"])
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in msg.iter_parts())
    assert msg["From"] == "Lodestar <noreply@example.test>"
    assert msg["To"] == "ana@example.test"
    assert msg["Reply-To"] == "help@example.test, Team <team@example.test>"
    assert msg["Subject"] == "Hello"
    assert msg["Date"] == "Tue, 14 Nov 2023 22:13:20 +0000"
    assert msg["Message-ID"] == "<msg-1.lodestar@mail.example.test>"
    assert msg["X-Lodestar-Message-Id"] == "msg-1"


def test_one_part_only() -> None:
    text = _build(_rendered(TextPart="only text"))
    assert text.get_content_type() == "text/plain"
    assert text.get_content().strip() == "only text"
    html = _build(_rendered(HtmlPart="<p>only html</p>"))
    assert html.get_content_type() == "text/html"


def test_message_id_is_deterministic_and_safe() -> None:
    assert message_id_header("abc", "d.test") == message_id_header("abc", "d.test")
    odd = message_id_header("campaign:1/run 2 <x>", "d.test")
    assert re.fullmatch(r"<h-[0-9a-f]{40}\.lodestar@d\.test>", odd)
    assert odd == message_id_header("campaign:1/run 2 <x>", "d.test")
    assert odd != message_id_header("campaign:1/run 3 <x>", "d.test")
    with pytest.raises(EmailBuildError, match="message_id_domain"):
        message_id_header("abc", "not a domain")


def test_custom_headers_kept_in_order_structural_ones_refused() -> None:
    rendered = Rendered(TemplateType.EMAIL, {"Subject": "s", "TextPart": "t"},
                        (("X-Campaign", "c1"), ("In-Reply-To", "<a@b>")))
    msg = _build(rendered, extra_headers=[("X-Extra", "e")])
    assert msg["X-Campaign"] == "c1" and msg["X-Extra"] == "e"
    assert msg["In-Reply-To"] == "<a@b>"
    for name in ("From", "message-id", "Content-Type", "List-Unsubscribe", "X-Lodestar-Message-Id"):
        bad = Rendered(TemplateType.EMAIL, {"Subject": "s", "TextPart": "t"}, ((name, "x"),))
        with pytest.raises(EmailBuildError, match="cannot be overridden") as info:
            _build(bad)
        assert info.value.field == f"Headers.{name}"
    with pytest.raises(EmailBuildError, match="line breaks"):
        _build(_rendered(TextPart="t"), extra_headers=[("X-Bad", "a\r\nBcc: x@y.test")])


def test_bad_addresses_and_missing_parts_are_refused() -> None:
    with pytest.raises(EmailBuildError) as info:
        _build(_rendered(TextPart="t"), to_address="not an address")
    assert info.value.field == "to_address"
    with pytest.raises(EmailBuildError):
        _build(_rendered(TextPart="t"), from_address="a@b.test\r\nBcc: c@d.test")
    with pytest.raises(EmailBuildError, match="HtmlPart or a TextPart"):
        _build(_rendered())
    with pytest.raises(EmailBuildError, match="not an email"):
        _build(Rendered(TemplateType.SMS, {"Body": "x"}))


def test_list_unsubscribe_pair() -> None:
    url = unsubscribe_url(TRACKING, "msg-1")
    msg = _build(_rendered(TextPart="t"),
                 unsubscribe=Unsubscribe(mailto="unsub@example.test", url=url))
    assert msg["List-Unsubscribe"] == (
        f"<mailto:unsub@example.test?subject=unsubscribe%20msg-1>, <{url}>")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = verify_token(url.rsplit("/", 1)[1], SECRET)
    assert link == TrackedLink(LinkKind.UNSUBSCRIBE, "msg-1", "app-1", "ep-1")
    mail_only = _build(_rendered(TextPart="t"), unsubscribe=Unsubscribe(mailto="u@example.test"))
    assert mail_only["List-Unsubscribe"].startswith("<mailto:u@example.test")
    assert mail_only["List-Unsubscribe-Post"] is None
    with pytest.raises(EmailBuildError, match="https"):
        _build(_rendered(TextPart="t"), unsubscribe=Unsubscribe(url="http://plain.test/u"))


HTML = (
    "<!doctype html>\n<html><head><style>a{color:red}</style></head>\n<body>\n"
    "<!-- <a href=\"https://comment.test/\">c</a> -->\n"
    "<p>Hi&nbsp;Ana, <A class=btn TITLE=' href=https://fake.test/' "
    "HREF='https://shop.test/?a=1&amp;b=2'>shop</A>\n"
    "<a href=\"mailto:help@example.test\">mail</a> <a href=\"tel:+15551234\">call</a>\n"
    "<a href=\"#top\">top</a> <a href=\"/relative\">rel</a> <a name=anchor>x</a>\n"
    "<a href=http://plain.test/x>plain</a> <a href=\"https://u.test/unsub\">unsubscribe</a>\n"
    "<script>var s = '<a href=\"https://script.test/\">';</script>\n"
    "</p>\n</body>\n</html>\n"
)


def _tokens(html: str) -> list[tuple[str, TrackedLink | None]]:
    return [(kind, verify_token(token, SECRET)) for kind, token in TOKEN.findall(html)]


def test_rewrite_tracks_http_links_and_adds_the_pixel() -> None:
    out = rewrite_html(HTML, TRACKING, "msg-1", keep=frozenset({"https://u.test/unsub"}))
    found = _tokens(out)
    clicks = [link.url for kind, link in found if kind == "c" and link is not None]
    assert clicks == ["https://shop.test/?a=1&b=2", "http://plain.test/x"]
    opens = [link for kind, link in found if kind == "o"]
    assert opens == [TrackedLink(LinkKind.OPEN, "msg-1", "app-1", "ep-1")]
    assert re.search(r'<img src="https://t\.example\.test/t/o/[^"]+" width="1" height="1"'
                     r'[^>]*/>\n?</body>', out)
    for untouched in ('href="mailto:help@example.test"', 'href="tel:+15551234"', 'href="#top"',
                      'href="/relative"', 'href="https://u.test/unsub"',
                      '<!-- <a href="https://comment.test/">c</a> -->',
                      "<a href=\"https://script.test/\">", "TITLE=' href=https://fake.test/'"):
        assert untouched in out, untouched
    # Everything outside the rewritten href values and the pixel is unchanged.
    restored = re.sub(r'"https://t\.example\.test/t/c/[^"]+"', "HREF", out)
    restored = re.sub(r'<img src="https://t\.example\.test/t/o/[^>]+/>', "", restored)
    original = HTML.replace("'https://shop.test/?a=1&amp;b=2'", "HREF").replace(
        "http://plain.test/x", "HREF")
    assert restored == original


def test_rewrite_without_body_appends_the_pixel_and_respects_switches() -> None:
    out = rewrite_html('<a href="https://x.test">x</a>', TRACKING, "m")
    assert out.startswith('<a href="https://t.example.test/t/c/')
    assert out.endswith("/>")
    no_clicks = Tracking(TRACKING.base_url, SECRET, "app-1", clicks=False)
    assert 'href="https://x.test"' in rewrite_html('<a href="https://x.test">x</a>', no_clicks, "m")
    nothing = Tracking(TRACKING.base_url, SECRET, "app-1", clicks=False, opens=False)
    assert rewrite_html("<p>x</p>", nothing, "m") == "<p>x</p>"


def test_build_email_tracks_the_html_part_only() -> None:
    msg = _build(_rendered(TextPart="See https://shop.test/", HtmlPart=HTML),
                 tracking=TRACKING, unsubscribe=Unsubscribe(url="https://u.test/unsub"))
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "https://t.example.test/t/c/" in html and "/t/o/" in html
    assert 'href="https://u.test/unsub"' in html
    assert "https://shop.test/" in text and "/t/" not in text


def test_tokens_refuse_wrong_secret_and_garbage() -> None:
    link = TrackedLink(LinkKind.CLICK, "m", "a", None, "https://x.test/")
    token = make_token(link, SECRET)
    assert verify_token(token, SECRET) == link
    assert verify_token(token, b"other" * 8) is None
    for garbage in ("", ".", "abc", "abc.def", token + "x", token.replace(".", ""), "é.é"):
        assert verify_token(garbage, SECRET) is None
    with pytest.raises(EmailBuildError):
        make_token(link, b"")


_URL = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}.test/{path}",
    st.sampled_from(["http", "https", "HTTPS"]),
    st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\"'<>&\x00\r\n \t\x0c"),
            max_size=40),
)


@settings(max_examples=150, deadline=None)
@given(urls=st.lists(_URL, max_size=8), message_id=st.text(min_size=1, max_size=40))
def test_any_url_set_round_trips_through_rewrite_and_verify(
    urls: list[str], message_id: str
) -> None:
    html = "<html><body>" + "".join(
        f'<p><a href="{u}">link {i}</a></p>' for i, u in enumerate(urls)) + "</body></html>"
    out = rewrite_html(html, TRACKING, message_id)
    found = _tokens(out)
    assert [link.url for kind, link in found if kind == "c" and link] == [u.strip() for u in urls]
    assert all(link is not None and link.message_id == message_id for _, link in found)
    assert [kind for kind, _ in found].count("o") == 1


@settings(max_examples=300, deadline=None)
@given(url=_URL, endpoint=st.none() | st.text(max_size=20), data=st.data())
def test_a_flipped_byte_never_verifies(url: str, endpoint: str | None, data: st.DataObject) -> None:
    token = make_token(TrackedLink(LinkKind.CLICK, "m-1", "app", endpoint, url), SECRET)
    raw = bytearray(token.encode("ascii"))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    assert verify_token(raw.decode("latin-1"), SECRET) is None


def test_long_unsubscribe_urls_and_ids_survive_smtp_folding() -> None:
    long_id = "run-" + "x" * 150
    url = unsubscribe_url(TRACKING, long_id)
    out = _outgoing(_rendered(TextPart="t"), message_id=long_id,
                    unsubscribe=Unsubscribe(mailto="unsub@example.test", url=url))
    raw = out.data
    assert b"=?" not in raw.split(b"\r\n\r\n", 1)[0]  # no RFC 2047 encoded words
    assert url.encode() in raw
    back = message_from_bytes(raw, policy=email_policy.default)
    assert back["X-Lodestar-Message-Id"] == long_id
    assert back["List-Unsubscribe"].endswith(f", <{url}>")
    assert back["Message-ID"].startswith("<h-")


# ---------------------------------------------------------------------------
# The serialiser against the stdlib: the builder used to assemble an
# ``EmailMessage`` (modern policies) and flatten it with ``policy.SMTP``. That
# path is kept here as the oracle: what a recipient parses out of the new bytes
# must be what it parsed out of the old ones.


def _stdlib_build(rendered: Rendered, *, from_address: str, to_address: str, message_id: str,
                  message_id_domain: str, now_ms: int, reply_to: Sequence[str] = (),
                  extra_headers: Sequence[tuple[str, str]] = (),
                  unsubscribe: Unsubscribe | None = None,
                  tracking: Tracking | None = None) -> EmailMessage:
    """The previous ``build_email`` (validation left to the new one)."""
    subject, html = rendered.parts["Subject"], rendered.parts.get("HtmlPart")
    text = rendered.parts.get("TextPart")
    list_headers = list_unsubscribe_headers(unsubscribe, message_id) if unsubscribe else []
    if html is not None and tracking is not None:
        keep = frozenset({unsubscribe.url}) if unsubscribe and unsubscribe.url else frozenset()
        html = rewrite_html(html, tracking, message_id, keep=keep)
    msg = EmailMessage(policy=MESSAGE_POLICY)
    msg["From"] = from_address
    msg["To"] = to_address
    if reply_to:
        msg["Reply-To"] = ", ".join(reply_to)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.fromtimestamp(now_ms / 1000, UTC))
    msg["Message-ID"] = message_id_header(message_id, message_id_domain)
    msg["X-Lodestar-Message-Id"] = message_id
    for name, value in (*list_headers, *rendered.headers, *extra_headers):
        msg[name] = value
    if text is not None:
        msg.set_content(text, subtype="plain", charset="utf-8")
        if html is not None:
            msg.add_alternative(html, subtype="html", charset="utf-8")
    else:
        assert html is not None
        msg.set_content(html, subtype="html", charset="utf-8")
    return msg


def _stdlib_bytes(msg: EmailMessage, new: OutgoingEmail, *, seven_bit: bool = False) -> bytes:
    """``msg`` flattened as the old SmtpSender did, with the new message's boundary."""
    found = re.search(rb'boundary="([^"]+)"', new.data)
    if found:
        msg.set_boundary(found.group(1).decode())
    out_policy = email_policy.SMTPUTF8 if new.smtputf8 else email_policy.SMTP
    if seven_bit:
        out_policy = out_policy.clone(cte_type="7bit")
    out = BytesIO()
    BytesGenerator(out, policy=out_policy).flatten(msg)
    return out.getvalue()


def _seen(raw: bytes, skip: frozenset[str] = frozenset()
          ) -> tuple[list[tuple[str, str]], list[tuple[str, str | None, bytes]]]:
    """What a mail client reads: decoded headers of every entity (but those named in
    ``skip``), and each leaf's type, transfer encoding and decoded content."""
    msg = message_from_bytes(raw, policy=email_policy.default)
    headers = [(f"{i}:{name}", str(value))
               for i, part in enumerate(msg.walk()) for name, value in part.items()
               if name.lower() not in skip]
    leaves = [(part.get_content_type(), part["Content-Transfer-Encoding"],
               part.get_payload(decode=True))
              for part in msg.walk() if not part.is_multipart()]
    return headers, leaves


def _equivalent(rendered: Rendered, **kwargs: Any) -> OutgoingEmail:
    new = _outgoing(rendered, **kwargs)
    old = _stdlib_build(rendered, **kwargs)
    assert _seen(new.data) == _seen(_stdlib_bytes(old, new))
    seven = new.seven_bit if new.seven_bit is not None else new.data
    assert seven.isascii() or new.smtputf8
    assert _seen(seven) == _seen(_stdlib_bytes(old, new, seven_bit=True))
    return new


def test_same_bytes_as_the_stdlib_for_the_senders_shape() -> None:
    url = unsubscribe_url(TRACKING, "msg-1")
    kwargs: dict[str, Any] = dict(
        from_address="Lodestar <noreply@example.test>", to_address="ana@example.test",
        message_id="msg-1", message_id_domain="mail.example.test", now_ms=NOW_MS,
        reply_to=["help@example.test", "Team <team@example.test>"],
        extra_headers=[("X-Campaign", "c1")], tracking=TRACKING,
        unsubscribe=Unsubscribe(mailto="unsub@example.test", url=url))
    for parts in ({"TextPart": "Hi Ana", "HtmlPart": HTML}, {"TextPart": "Hi"},
                  {"HtmlPart": "<p>" + "x" * 300 + "</p>"}, {"TextPart": ""},
                  {"TextPart": "Olá Ana\nçà", "HtmlPart": "é" * 300}):
        rendered = Rendered(TemplateType.EMAIL, {"Subject": "Hello", **parts},
                            (("X-Template", ""),))
        new = build_email(rendered, **kwargs)
        assert new.data == _stdlib_bytes(_stdlib_build(rendered, **kwargs), new)
        if new.seven_bit is not None:
            assert new.seven_bit == _stdlib_bytes(_stdlib_build(rendered, **kwargs), new,
                                                  seven_bit=True)


def test_non_ascii_headers_are_encoded_words_folded_at_78() -> None:
    subject = "Olá Ana, " + "ünïcödé " * 20
    new = _equivalent(Rendered(TemplateType.EMAIL, {"Subject": subject, "TextPart": "t"},
                               (("X-Note", "ção " * 30),)),
                      from_address="Zoë Ünïcode <z@example.test>", to_address="a@example.test",
                      message_id="m", message_id_domain="d.test", now_ms=NOW_MS)
    head = new.data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    assert b"=?utf-8?" in head
    parsed = new.parsed()
    assert parsed["Subject"] == subject and parsed["X-Note"] == "ção " * 30
    assert parsed["From"] == "Zoë Ünïcode <z@example.test>"


def test_an_internationalised_envelope_gets_utf8_headers() -> None:
    new = _equivalent(Rendered(TemplateType.EMAIL, {"Subject": "Olá", "TextPart": "t"}),
                      from_address="Lodestar <noreply@example.test>",
                      to_address="jose@exämple.test", message_id="m",
                      message_id_domain="d.test", now_ms=NOW_MS)
    assert new.smtputf8 and new.rcpt_to == ("jose@exämple.test",)
    assert "Olá".encode() in new.data  # RFC 6532: raw UTF-8, as policy.SMTPUTF8 wrote it


def test_line_breaks_of_any_kind_are_refused_in_headers() -> None:
    for breaking in ("\x0b", "\x0c", "\x1c", "\x85", "\u2028"):
        with pytest.raises(EmailBuildError, match="line breaks"):
            _outgoing(Rendered(TemplateType.EMAIL, {"Subject": f"a{breaking}b", "TextPart": "t"}))
        with pytest.raises(EmailBuildError, match="line breaks"):
            _outgoing(_rendered(TextPart="t"), extra_headers=[("X-A", f"a{breaking}b")])
    with pytest.raises(EmailBuildError, match="once"):
        _outgoing(_rendered(TextPart="t"), extra_headers=[("Orig-Date", "x"), ("orig-date", "y")])


def _written_anew(name: str, value: str, utf8: bool) -> bool:
    return unstructured(name, value, utf8=utf8) != stdlib_header(name, value, utf8)


def _read_back(name: str, value: str, utf8: bool) -> str:
    """What a recipient reads: the value itself for RFC 2047 words written anew, else
    what the stdlib's folding gave."""
    if _written_anew(name, value, utf8):
        return value
    folded = stdlib_header(name, value, utf8) + b"\r\n"
    return str(message_from_bytes(folded, policy=email_policy.default)[name])


def _stdlib_accepts(address: str) -> bool:
    """The previous validation: one address with a user and a domain, no defects."""
    try:
        probe = EmailMessage(policy=email_policy.default)
        probe["To"] = address
        found = probe["To"].addresses
        return (len(found) == 1 and bool(found[0].username) and bool(found[0].domain)
                and not probe["To"].defects)
    except Exception:
        return False


_NO_BREAKS = st.characters(exclude_categories=("Cs",), exclude_characters=(
    "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"))
_HEADER_TEXT = st.one_of(
    st.text(_NO_BREAKS, max_size=120),
    st.text(st.sampled_from("ab =?é€😀\t,;\"<>"), max_size=120),
    st.sampled_from(["Hello", "Olá, Ana", "=?utf-8?q?x?=", "  lead", "trail  ", "a" * 100,
                     "€" * 40, "x " * 60]),
)
_BODY = st.one_of(
    st.none(),
    st.text(max_size=400),
    st.lists(st.sampled_from(["a", "é", " ", "\r\n", "\n", "\r", "x" * 90, "ü" * 50, "=",
                              "--===============", "\t"]), max_size=60).map("".join),
)
_NAME = st.one_of(
    st.text(st.sampled_from("AZaz09 éü€"), min_size=1, max_size=40).map(str.strip).filter(bool),
    st.text(st.sampled_from("AZaz09 .'é€-\"(),"), min_size=1, max_size=30),
)


@settings(max_examples=250, deadline=None)
@given(subject=_HEADER_TEXT, text=_BODY, html=_BODY, name=_NAME, to=st.emails(),
       custom=st.lists(st.tuples(st.sampled_from(["X-Campaign", "X-A", "Resent-Date",
                                                   "Keywords", "X-Long-Header-Name"]),
                                 _HEADER_TEXT), max_size=3),
       message_id=st.text(_NO_BREAKS, min_size=1, max_size=80), tracked=st.booleans())
def test_recipients_read_what_the_stdlib_builder_gave_them(
    subject: str, text: str | None, html: str | None, name: str, to: str,
    custom: list[tuple[str, str]], message_id: str, tracked: bool,
) -> None:
    if text is None and html is None:
        text = ""
    parts = {"Subject": subject} | ({"TextPart": text} if text is not None else {}) | (
        {"HtmlPart": html} if html is not None else {})
    rendered = Rendered(TemplateType.EMAIL, parts, tuple(custom))
    from_address = f"{name} <noreply@example.test>"
    kwargs: dict[str, Any] = dict(
        from_address=from_address, to_address=to, message_id=message_id,
        message_id_domain="mail.example.test", now_ms=NOW_MS, reply_to=[from_address, to],
        tracking=TRACKING if tracked else None,
        unsubscribe=Unsubscribe(url=unsubscribe_url(TRACKING, message_id)) if tracked else None)
    try:
        new = _outgoing(rendered, **kwargs)
    except EmailBuildError as exc:
        if exc.field in ("from_address", "to_address") or exc.field.startswith("reply_to"):
            assert not (_stdlib_accepts(from_address) and _stdlib_accepts(to))
        else:  # NUL or a line break in a header value
            assert exc.field.startswith("Headers.") and "line breaks" in exc.message
            assert any("\0" in value for _, value in custom)
        event("refused")
        return
    try:
        old = _stdlib_build(rendered, **kwargs)
        old_bytes: bytes | None = _stdlib_bytes(old, new)
    except Exception:
        old_bytes = None  # the old builder crashed on this input
    event("compared" if old_bytes is not None else "the stdlib builder failed")
    # Non-ASCII unstructured values are now RFC 2047 words of their own: they must read
    # back as the value itself (the stdlib's folder sometimes lost a space there).
    own = [("Subject", subject), *custom]
    anew = [name for name, value in own if _written_anew(name, value, new.smtputf8)]
    skip = frozenset(name.lower() for name in anew)
    if skip:
        event("non-ASCII header written as RFC 2047 words")
    back = new.parsed()
    for name in skip:
        assert [str(v) for v in back.get_all(name, [])] == [
            _read_back(n, value, new.smtputf8) for n, value in own if n.lower() == name]
    if old_bytes is not None:
        assert _seen(new.data, skip) == _seen(old_bytes, skip)
        seven = new.seven_bit if new.seven_bit is not None else new.data
        assert seven.isascii() or new.smtputf8
        assert _seen(seven, skip) == _seen(_stdlib_bytes(old, new, seven_bit=True), skip)
    assert back["X-Lodestar-Message-Id"] is not None
    head = new.data.split(b"\r\n\r\n", 1)[0]
    assert new.smtputf8 or head.isascii()


def test_tokens_and_the_date_header_are_written_as_the_reference_writes_them() -> None:
    """The fast paths (one shared JSON encoder, one-shot HMAC, a Date line per second)
    write exactly what the straightforward code wrote."""
    import base64
    import hashlib
    import hmac
    import json
    from datetime import UTC, datetime
    from email.utils import format_datetime

    from lodestar.core.email_message import LinkKind, TrackedLink, _date_header, make_token

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    secret = b"k" * 32
    for link in (TrackedLink(LinkKind.CLICK, "m-1", "app", "ep", "https://x.test/ü?a=1&b=\"2\""),
                 TrackedLink(LinkKind.OPEN, "m-2", "app", None)):
        body = ["1", link.kind.value, link.message_id, link.app_id, link.endpoint_id, link.url]
        payload = b64(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
        mac = b64(hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest())
        assert make_token(link, secret) == f"{payload}.{mac}"
    for now_ms in (0, 999, 1_000, 1_777_628_160_999, 1_777_628_161_000):
        value = format_datetime(datetime.fromtimestamp(now_ms / 1000, UTC))
        assert _date_header(now_ms) == f"Date: {value}\r\n".encode("ascii")
