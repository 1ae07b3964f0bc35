"""Properties of rendering."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lodestar.core.template_context import RecipientContext
from lodestar.core.template_values import ValueList, split_path
from lodestar.core.templates import Rendered, parse_template, render

plain_text = st.text(max_size=200).filter(lambda s: "{{" not in s)


@settings(max_examples=40, deadline=None)
@given(plain_text)
def test_text_without_handlebars_renders_unchanged(text: str) -> None:
    for kind, field in (("SMS", "Body"), ("VOICE", "Body")):
        template = parse_template(kind, {field: text})
        result = render(template, RecipientContext({}), None, 0)  # type: ignore[arg-type]
        assert isinstance(result, Rendered) and result.parts[field] == text


_HTML = parse_template("EMAIL", {"Subject": "s", "HtmlPart": "<p>{{v}} {{v.[0]}} {{upper v}}</p>"})


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=3))
def test_escaped_output_never_holds_a_raw_angle_bracket_from_a_variable(values: list[str]) -> None:
    result = render(_HTML, RecipientContext({}), {"v": values}, 0)  # type: ignore[arg-type]
    assert isinstance(result, Rendered)
    inner = result.parts["HtmlPart"][len("<p>") : -len("</p>")]
    assert "<" not in inner and ">" not in inner and '"' not in inner


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_characters=".[]"), min_size=1,
                        max_size=10), min_size=1, max_size=4))
def test_split_path_reads_bracketed_segments(segments: list[str]) -> None:
    path = ".".join(f"[{s}]" for s in segments)
    assert split_path(path) == tuple(segments)


@given(st.lists(st.text(max_size=10), max_size=5))
def test_value_list_renders_like_a_javascript_array(items: list[str]) -> None:
    assert str(ValueList(items)) == ",".join(items)
