from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lodestar.core.email_message import (
    EmailBuildError,
    LinkKind,
    TrackedLink,
    Tracking,
    Unsubscribe,
    build_email,
    make_token,
    message_id_header,
    rewrite_html,
    unsubscribe_url,
    verify_token,
)
from lodestar.core.templates import Rendered, TemplateType

SECRET = b"s" * 32
TRACKING = Tracking("https://t.example.test/", SECRET, "app-1", "ep-1")
NOW_MS = 1_700_000_000_000
TOKEN = re.compile(r"https://t\.example\.test/t/([cou])/([A-Za-z0-9_.-]+)")


def _rendered(**parts: str) -> Rendered:
    return Rendered(TemplateType.EMAIL, {"Subject": "Hello", **parts})


def _build(rendered: Rendered, **kwargs: object) -> object:
    args: dict[str, object] = {
        "from_address": "Lodestar <noreply@example.test>",
        "to_address": "ana@example.test",
        "message_id": "msg-1",
        "message_id_domain": "mail.example.test",
        "now_ms": NOW_MS,
    }
    args.update(kwargs)
    return build_email(rendered, **args)  # type: ignore[arg-type]


def test_text_and_html_make_multipart_alternative_with_the_callers_headers() -> None:
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
    from email import message_from_bytes
    from email import policy as email_policy

    long_id = "run-" + "x" * 150
    url = unsubscribe_url(TRACKING, long_id)
    msg = _build(_rendered(TextPart="t"), message_id=long_id,
                 unsubscribe=Unsubscribe(mailto="unsub@example.test", url=url))
    raw = msg.as_bytes(policy=email_policy.SMTP)
    assert b"=?" not in raw.split(b"\r\n\r\n", 1)[0]  # no RFC 2047 encoded words
    assert url.encode() in raw
    back = message_from_bytes(raw, policy=email_policy.default)
    assert back["X-Lodestar-Message-Id"] == long_id
    assert back["List-Unsubscribe"].endswith(f", <{url}>")
    assert back["Message-ID"].startswith("<h-")
