"""Compiling and running one Handlebars template part with pybars3.

``compile_part`` parses the source once (at validation) and keeps the compiled
function; ``run_part`` renders it against a ``TemplateData`` root. HTML parts
escape ``{{var}}`` (``{{{var}}}`` is raw); other parts never HTML-escape.

Beyond plain pybars:

- inline partials, which Pinpoint documents (``{{#* inline "name"}}…{{/inline}}``
  then ``{{> name}}``), are lifted out and compiled as partials;
- an unquoted time zone (``tz=America/Los_Angeles``, as Pinpoint's examples
  write it) is quoted, since Handlebars would read it as a path, and decimal
  literals (``{{add 5 2.3}}``), which pybars cannot parse, are passed as text
  (the math helpers read numeric text);
- ``{{else if …}}`` chains are not supported by pybars and are refused;
- path segments with quotes or backslashes are refused: pybars builds Python
  source from the template, and such a segment could break out of it.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pybars  # type: ignore[import-untyped]
from pybars._compiler import handlebars_grammar  # type: ignore[import-untyped]
from pymeta.grammar import OMeta  # type: ignore[import-untyped]

from lodestar.core.template_helpers import Helper, HelperError
from lodestar.core.template_values import TemplateData, to_text

_COMPILER = pybars.Compiler()
# pybars' grammar may stop early (an unclosed block renders as nothing); this one
# must consume the whole source.
_FULL_GRAMMAR = OMeta.makeGrammar(
    handlebars_grammar + "\nfull ::= <template>:t <end> => t\n", {}, "lodestar_handlebars"
)
_LOCK = threading.Lock()  # pybars' code builder is shared and not thread-safe
_INLINE = re.compile(
    r"\{\{#\*\s*inline\s+(?:\"([^\"]+)\"|'([^']+)')\s*\}\}(.*?)\{\{/inline\}\}", re.DOTALL
)
_MUSTACHE = re.compile(r"\{\{(?!!)(.*?)\}\}", re.DOTALL)
_QUOTED = re.compile(r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')")
_UNQUOTED_TZ = re.compile(r"(\btz=)([A-Za-z_][\w+\-]*(?:/[\w+\-]+)+)")
_DECIMAL = re.compile(r"(?<=[\s(=])(-?\d+\.\d+)(?=[\s)}]|$)")
_BAD_SEGMENT = re.compile(r"['\"\\\n\r]")
_ESCAPES = {"&": "&amp;", '"': "&quot;", "'": "&#x27;", "`": "&#x60;", "<": "&lt;", ">": "&gt;"}
_ESCAPE_RE = re.compile(r"[&\"'`<>]")

Renderer = Callable[..., Any]


class TemplateSyntaxError(ValueError):
    """A template part that does not compile; ``message`` is pybars' (or ours)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PartError(Exception):
    """Rendering a part failed; ``kind`` is a ``FailureKind`` value."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def escape_html(text: str) -> str:
    """Handlebars' HTML escaping (& " ' ` < >)."""
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], text)


def _prepare_html(value: object, should_escape: bool) -> Any:
    if type(value) is pybars.strlist:
        return value
    text = to_text(value)
    return escape_html(text) if should_escape else text


def _prepare_text(value: object, should_escape: bool) -> Any:
    if type(value) is pybars.strlist:
        return value
    return to_text(value)


@dataclass(frozen=True)
class CompiledPart:
    """One template part: its source and compiled function (compared by source).

    ``root_names``: every top-level name the part can read from the render root (the
    first segment of each variable path and block name, helpers' names included), or
    None when it may read the root as a whole (``this``, ``.``, ``../``, ``@root``,
    partials). A root holding at least these names renders the part exactly as the
    full root does."""

    source: str
    html: bool
    renderer: Renderer = field(compare=False, repr=False)
    partials: Mapping[str, Renderer] = field(compare=False, repr=False, default_factory=dict)
    root_names: frozenset[str] | None = field(compare=False, repr=False, default=None)
    literal: str | None = field(compare=False, repr=False, default=None)
    """The rendered text when the source holds no ``{{`` (checked against a render at
    compile time): ``run_part`` returns it without running the renderer."""


def _check_tree(node: object) -> None:
    if isinstance(node, tuple) and len(node) == 2 and node[0] == "path" and isinstance(
        node[1], list
    ):
        for segment in node[1]:
            if isinstance(segment, str) and _BAD_SEGMENT.search(segment):
                raise TemplateSyntaxError(
                    f"variable name segment {segment!r} may not contain quotes or backslashes"
                )
    if isinstance(node, (list, tuple)):
        for child in node:
            _check_tree(child)


_WHOLE_ROOT = frozenset({"", "this", "@root", "@_parent", "@@_parent"})


def _root_names(node: object, names: set[str]) -> bool:
    """Add the top-level names ``node`` reads to ``names``; False when it may read the
    root as a whole (see ``CompiledPart.root_names``)."""
    if isinstance(node, tuple) and node:
        kind = node[0]
        if kind == "partial":
            return False
        if kind == "path" and len(node) == 2 and isinstance(node[1], list):
            first = node[1][0] if node[1] else ""
            if not isinstance(first, str) or first in _WHOLE_ROOT:
                return False
            names.add(first)
            return True
        if kind in ("block", "invertedblock", "rawblock") and len(node) > 1:
            if not isinstance(node[1], str) or node[1] in _WHOLE_ROOT:
                return False
            names.add(node[1])
    if isinstance(node, (list, tuple)):
        return all(_root_names(child, names) for child in node)
    return True


def _compile_source(source: str, html: bool) -> tuple[Renderer, frozenset[str] | None]:
    if re.search(r"\{\{~?\s*else\s+if\b", source):
        raise TemplateSyntaxError("{{else if …}} is not supported; nest {{#if}} blocks instead")
    if "{{#*" in source:
        raise TemplateSyntaxError(
            "only {{#* inline \"name\"}}…{{/inline}} decorators are supported"
        )
    with _LOCK:
        try:
            code = _COMPILER.precompile(source)
            processed = _COMPILER.whitespace_control(source)
            try:
                tree, _ = _FULL_GRAMMAR(processed).apply("full")
            except Exception:
                raise TemplateSyntaxError(
                    "the template does not parse: an unclosed {{#block}}, an unmatched "
                    "{{/block}}, an {{else}} outside a block, or a malformed {{…}}"
                ) from None
            _check_tree(tree)
            found: set[str] = set()
            root_names = frozenset(found) if _root_names(tree, found) else None
        except TemplateSyntaxError:
            raise
        except Exception as exc:  # pybars/pymeta raise several types
            raise TemplateSyntaxError(str(exc) or type(exc).__name__) from None
    namespace: dict[str, Any] = {"__name__": "lodestar_template"}
    try:
        exec(compile(code, "<template>", "exec"), namespace)
    except (SyntaxError, ValueError) as exc:
        raise TemplateSyntaxError(f"the template holds characters it cannot use: {exc}") from None
    namespace["prepare"] = _prepare_html if html else _prepare_text
    renderer: Renderer = namespace["render"]
    return renderer, root_names


def _rewrite_expression(match: re.Match[str]) -> str:
    pieces = _QUOTED.split(match.group(1))
    for i in range(0, len(pieces), 2):  # even pieces are outside string literals
        piece = _UNQUOTED_TZ.sub(lambda m: f'{m.group(1)}"{m.group(2)}"', pieces[i])
        pieces[i] = _DECIMAL.sub(lambda m: f'"{m.group(1)}"', piece)
    return "{{" + "".join(pieces) + "}}"


def _rewrite(source: str) -> str:
    """Quote unquoted ``tz=`` zones and decimal literals inside ``{{…}}``."""
    return _MUSTACHE.sub(_rewrite_expression, source)


@functools.lru_cache(maxsize=4096)
def compile_part(source: str, *, html: bool) -> CompiledPart:
    """Compile ``source``; raises ``TemplateSyntaxError`` with pybars' message.

    Memoised on ``(source, html)``: compiling costs milliseconds (pybars' PEG parser)
    while rendering costs microseconds, and a send renders the same template parts for
    every recipient. A compiled part is immutable and its renderer holds no state."""
    partial_sources: dict[str, str] = {}

    def lift(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in partial_sources:
            raise TemplateSyntaxError(f"inline partial {name!r} is defined twice")
        partial_sources[name] = match.group(3)
        return ""

    body = _rewrite(_INLINE.sub(lift, source))
    partials = {}
    for name, text in partial_sources.items():
        try:
            partials[name], _ = _compile_source(_rewrite(text), html)
        except TemplateSyntaxError as exc:
            raise TemplateSyntaxError(f"in inline partial {name!r}: {exc.message}") from None
    renderer, root_names = _compile_source(body, html)
    literal: str | None = None
    if not partials and "{{" not in source:
        try:
            rendered = str(renderer(TemplateData(), helpers={}, partials=None))
        except Exception:  # pragma: no cover - a literal always renders
            rendered = None
        literal = source if rendered == source else None
    return CompiledPart(source, html, renderer, partials,
                        None if partials else root_names, literal)


def run_part(part: CompiledPart, data: TemplateData, helpers: Mapping[str, Helper]) -> str:
    """Render ``part``; raises ``PartError`` (kind UNKNOWN_HELPER, HELPER_ERROR or
    RENDER_ERROR) instead of returning anything partial."""
    if part.literal is not None:
        return part.literal
    try:
        # the compiled render copies ``helpers`` itself (pybars' builtins updated with them)
        return str(part.renderer(data, helpers=helpers,
                                 partials=dict(part.partials) if part.partials else None))
    except HelperError as exc:
        raise PartError("HELPER_ERROR", str(exc)) from None
    except pybars.PybarsError as exc:
        message = str(exc)
        if message.startswith("Could not find property"):
            name = message.removeprefix("Could not find property").strip()
            raise PartError("UNKNOWN_HELPER", f"unknown helper {name!r}") from None
        raise PartError("RENDER_ERROR", message) from None
    except RecursionError:
        raise PartError("RENDER_ERROR", "partials nest too deeply") from None
    except Exception as exc:  # a value the template treated as something it is not
        raise PartError("RENDER_ERROR", f"{type(exc).__name__}: {exc}") from None
