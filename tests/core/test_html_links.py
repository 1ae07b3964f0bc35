"""The link scanner answers exactly what html.parser finds (hypothesis), and is used
for the common shapes of email HTML rather than falling back."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lodestar.core.html_links import _scan, find_links, find_links_reference

_NAMES = st.sampled_from(["a", "A", "p", "td", "img", "body", "BODY", "script", "style",
                          "Script", "title", "br", "a1", "x-y"])
_ATTR_NAMES = st.sampled_from(["href", "HREF", "class", "style", "alt", "data-x", "/", "=",
                               "h"])
_VALUES = st.sampled_from([
    '"https://shop.example.test/sale?a=1&amp;b=2"', "'https://x.test/q'", "https://bare.test",
    '"mailto:help@example.test"', '""', "''", '"a>b"', "'it''s'", '"&#104;ttps://e.test"',
    "x/", '"unterminated', "'", "=", "a=b", '"{{Url}}"', '"  https://space.test  "'])
_TEXT = st.sampled_from(["Hi Ana", "a < b", "x > y", "&amp; &nbsp", "<3", " ", "\n", "--",
                         "é", "a\r\nb", "", "&", "<", ">", "'", '"', "/", "="])


@st.composite
def _start_tag(draw: st.DrawFn) -> str:
    name = draw(_NAMES)
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        attr = draw(_ATTR_NAMES)
        if draw(st.booleans()):
            attr += draw(st.sampled_from(["=", " = ", "=="])) + draw(_VALUES)
        parts.append(attr)
    sep = draw(st.sampled_from([" ", "  ", "\n", "/", " /"]))
    end = draw(st.sampled_from([">", "/>", " >", "", " / >"]))
    return "<" + name + "".join(sep + p for p in parts) + end


_PIECES = st.one_of(
    _start_tag(),
    _NAMES.map(lambda n: f"</{n}>"),
    _NAMES.map(lambda n: f"</ {n} >"),
    st.sampled_from(["<!-- c -->", "<!-- <a href=\"https://in.comment\"> -->", "<!--",
                     "<!-- x --!>", "<!DOCTYPE html>", "<!doctype", "<!x>", "<![CDATA[x]]>",
                     "<?xml version=1?>", "<?", "</>", "</", "</ >", "</1>", "</body",
                     "</script >", "</style>", "<script>var a = '<a href=\"x\">';</script>",
                     "<style>p{}</style >", "<a href=https://x.test/a>", "</body></html>"]),
    _TEXT,
)


@given(st.lists(_PIECES, max_size=25))
@settings(max_examples=3000, deadline=None)
def test_the_scanner_agrees_with_html_parser(pieces: list[str]) -> None:
    html = "".join(pieces)
    fast = _scan(html)
    if fast is not None:
        assert fast == find_links_reference(html), html
    assert find_links(html) == find_links_reference(html)


def test_common_email_html_takes_the_fast_path() -> None:
    newsletter = (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>p{color:red}</style>"
        "<!--[if mso]><xml>o</xml><![endif]--></head><body>"
        + "".join(f'<table><tr><td class="c{i}"><p>Line {i} &amp; more</p>'
                  f'<img src="https://x.test/{i}.png" alt=""></td></tr></table>'
                  f'<a href="https://s.test/{i}?a=1&amp;b=2">l{i}</a>' for i in range(50))
        + "<script>if (a<b) {}</script></body></html>")
    spans = _scan(newsletter)
    assert spans is not None and spans == find_links_reference(newsletter)
    assert len(spans.hrefs) == 50
    assert spans.hrefs[0][2] == "https://s.test/0?a=1&b=2"
    assert spans.body_end == newsletter.rindex("</body>")


def test_what_the_scanner_does_not_model_falls_back() -> None:
    for html in ("<p>open <a href=\"x", "<!-- never closed <a href='https://x.test'>",
                 "<![CDATA[ <a href='https://x.test'> ]]><a href='https://y.test'>"):
        assert _scan(html) is None
        assert find_links(html) == find_links_reference(html)
