"""Building one email from a rendered template, with signed tracking links.

Pure: no I/O. ``build_email(...)`` turns an EMAIL ``Rendered`` (Subject,
HtmlPart and/or TextPart, custom headers) into an ``OutgoingEmail``: the bytes
of SMTP DATA plus the envelope (From and To addr-specs), serialised once by
``lodestar.core.email_wire`` as the stdlib's ``EmailMessage`` + ``policy.SMTP``
generator wrote it (SMTPUTF8 headers when the envelope is not ASCII):

- ``multipart/alternative`` text + HTML, or a single ``text/plain`` or
  ``text/html`` part when the template has only one of them (UTF-8);
- From, To, Reply-To, Subject and Date from the caller (the clock is
  ``now_ms``); a deterministic ``Message-ID`` from the Lodestar message id and
  a configured domain; ``X-Lodestar-Message-Id`` carrying the id as is;
- the template's custom headers, in order, refusing any that would replace a
  header Lodestar sets itself (``STRUCTURAL_HEADERS``), a second one of a
  header allowed once (``Orig-Date``), NUL and line breaks of any kind;
- ``List-Unsubscribe`` (``<mailto:…>`` and/or ``<https://…>``) and, with an
  https URL, ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058).

With ``tracking``, every ``http(s)`` ``<a href>`` of the HTML part becomes
``{base}/t/c/{token}`` and a 1x1 pixel ``{base}/t/o/{token}`` is added before
``</body>``. A token is ``<payload>.<mac>``: the payload is the unpadded
base64url of a JSON array (version, kind, message id, app id, endpoint id,
target URL) and the mac is the unpadded base64url HMAC-SHA256 of the payload
text under the caller's secret. ``verify_token`` gives the ``TrackedLink``
back, or ``None`` for anything tampered with or malformed. ``mailto:``,
``tel:``, ``#anchors``, relative links and the unsubscribe link itself are
left untouched, and the HTML outside the rewritten ``href`` values is kept
character for character. Links are found with the stdlib ``html.parser``, so
tags inside comments, ``<script>`` or ``<style>`` are never rewritten.

Problems are raised as ``EmailBuildError`` whose ``field`` names the culprit
(``Headers.From``, ``from_address`` …); a sender reports them like a
rendering failure and sends nothing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from enum import StrEnum
from html import escape

from lodestar.core.email_wire import (
    UNIQUE,
    VERBATIM_HEADERS,
    Mailbox,
    OutgoingEmail,
    TextBody,
    WireError,
    address_header,
    assemble,
    has_line_break,
    mailbox,
    text_body,
    unstructured,
    verbatim,
)
from lodestar.core.html_links import find_links
from lodestar.core.templates import Rendered, TemplateType

TOKEN_VERSION = "1"
MAX_HEADER_VALUE = 998 - 80
"""Longest custom header value accepted (RFC 5322 line limit minus room for the name)."""

STRUCTURAL_HEADERS = frozenset({
    "from", "sender", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id",
    "mime-version", "content-type", "content-transfer-encoding", "content-disposition",
    "content-id", "return-path", "received", "dkim-signature", "list-unsubscribe",
    "list-unsubscribe-post", "x-lodestar-message-id",
})
"""Headers Lodestar sets (or that only relays set): a template may not supply them."""

_HEADER_NAME = re.compile(r"[!-9;-~]{1,126}")
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                     r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
_SIMPLE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_HTTP_URL = re.compile(r"https?://", re.IGNORECASE)
_BASE_URL = re.compile(r"https?://[^\s\"'<>]+", re.IGNORECASE)


class EmailBuildError(ValueError):
    """The message cannot be built; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class LinkKind(StrEnum):
    """What a tracking token stands for (the letter is the path segment: ``/t/<kind>/``)."""

    OPEN = "o"
    CLICK = "c"
    UNSUBSCRIBE = "u"


@dataclass(frozen=True)
class TrackedLink:
    """What a verified token says: which message, whose, and (clicks) where to."""

    kind: LinkKind
    message_id: str
    app_id: str
    endpoint_id: str | None
    url: str | None = None
    """The original target of a click; ``None`` for opens and unsubscribes."""


@dataclass(frozen=True)
class Tracking:
    """Open/click tracking for one message. ``base_url`` is where the API's
    ``/t/…`` routes are reachable from the recipient's mail client."""

    base_url: str
    secret: bytes
    app_id: str
    endpoint_id: str | None = None
    opens: bool = True
    clicks: bool = True


@dataclass(frozen=True)
class Unsubscribe:
    """Where a recipient unsubscribes: a mailbox, a one-click https URL, or both."""

    mailto: str | None = None
    """Address that receives unsubscribe mail (``unsubscribe@example.com``)."""
    url: str | None = None
    """https URL accepting RFC 8058 one-click POSTs (see ``unsubscribe_url``)."""


# ------------------------------------------------------------------ tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_TOKEN_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
"""``json.dumps(body, separators=(",", ":"), ensure_ascii=False)``, without building an
encoder per call."""


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(payload: str, secret: bytes) -> str:
    return _b64(hmac.digest(secret, payload.encode("ascii"), "sha256"))


def make_token(link: TrackedLink, secret: bytes) -> str:
    """A URL-safe token for ``link`` signed with ``secret`` (HMAC-SHA256)."""
    if not secret:
        raise EmailBuildError("tracking.secret", "must not be empty")
    body = [TOKEN_VERSION, link.kind.value, link.message_id, link.app_id,
            link.endpoint_id, link.url]
    payload = _b64(_TOKEN_JSON(body).encode())
    return f"{payload}.{_mac(payload, secret)}"


def verify_token(token: str, secret: bytes) -> TrackedLink | None:
    """The link ``token`` was made for, or ``None`` if it is not one we signed."""
    if not secret or not token.isascii():
        return None
    payload, dot, mac = token.partition(".")
    if not dot or not _B64URL.fullmatch(payload) or not _B64URL.fullmatch(mac):
        return None
    # The mac is compared as text: a changed character never passes, even one
    # that only flips base64's unused trailing bits.
    if not hmac.compare_digest(mac, _mac(payload, secret)):
        return None
    try:
        body = json.loads(_unb64(payload).decode("utf-8"))
        version, kind, message_id, app_id, endpoint_id, url = body
        link_kind = LinkKind(kind)
    except (ValueError, TypeError):
        return None
    if (version != TOKEN_VERSION or not isinstance(message_id, str)
            or not isinstance(app_id, str)
            or not (endpoint_id is None or isinstance(endpoint_id, str))
            or not (url is None or isinstance(url, str))):
        return None
    return TrackedLink(link_kind, message_id, app_id, endpoint_id, url)


def tracking_url(tracking: Tracking, link: TrackedLink) -> str:
    """``{base}/t/{kind}/{token}`` for ``link``."""
    base = _base_url(tracking.base_url)
    return f"{base}/t/{link.kind.value}/{make_token(link, tracking.secret)}"


def unsubscribe_url(tracking: Tracking, message_id: str) -> str:
    """A signed one-click unsubscribe URL (``{base}/t/u/{token}``) for ``message_id``."""
    link = TrackedLink(LinkKind.UNSUBSCRIBE, message_id, tracking.app_id, tracking.endpoint_id)
    return tracking_url(tracking, link)


@functools.lru_cache(maxsize=64)
def _base_url(base: str) -> str:
    if not _BASE_URL.fullmatch(base):
        raise EmailBuildError("tracking.base_url", f"{base!r} is not an http(s) URL")
    return base.rstrip("/")


# ------------------------------------------------------------- HTML rewrite


def rewrite_html(html: str, tracking: Tracking, message_id: str,
                 *, keep: frozenset[str] = frozenset()) -> str:
    """``html`` with its http(s) links sent through click tracking and an open
    pixel added (as ``tracking`` asks); URLs in ``keep`` are left alone."""
    base = _base_url(tracking.base_url)
    finder = find_links(html)
    edits: list[tuple[int, int, str]] = []
    if tracking.clicks:
        for start, end, url in finder.hrefs:
            target = url.strip()
            if (not _HTTP_URL.match(target) or target in keep
                    or target.startswith(f"{base}/t/")):
                continue
            link = TrackedLink(LinkKind.CLICK, message_id, tracking.app_id,
                               tracking.endpoint_id, target)
            edits.append((start, end, f'"{escape(tracking_url(tracking, link))}"'))
    if tracking.opens:
        pixel_link = TrackedLink(LinkKind.OPEN, message_id, tracking.app_id,
                                 tracking.endpoint_id)
        pixel = (f'<img src="{escape(tracking_url(tracking, pixel_link))}" width="1" '
                 'height="1" alt="" style="border:0;width:1px;height:1px" />')
        at = finder.body_end if finder.body_end is not None else len(html)
        edits.append((at, at, pixel))
    out: list[str] = []
    cursor = 0
    for start, end, replacement in sorted(edits):
        out.append(html[cursor:start])
        out.append(replacement)
        cursor = end
    out.append(html[cursor:])
    return "".join(out)


# ------------------------------------------------------------------ headers


def message_id_header(message_id: str, domain: str) -> str:
    """The RFC 5322 ``Message-ID`` for a Lodestar message id: the id itself when
    it is a plain token, else a hash of it, ``@domain``."""
    if not _DOMAIN.fullmatch(domain) or len(domain) > 253:
        raise EmailBuildError("message_id_domain", f"{domain!r} is not a domain name")
    if _SIMPLE_ID.fullmatch(message_id):
        local = message_id
    else:
        local = "h-" + hashlib.sha256(message_id.encode()).hexdigest()[:40]
    return f"<{local}.lodestar@{domain}>"


def _mailbox(value: str, field: str) -> Mailbox:
    if not value or "\r" in value or "\n" in value:
        raise EmailBuildError(field, "must be one address without line breaks")
    found = mailbox(value)
    if found is None:
        raise EmailBuildError(field, f"{value!r} is not one email address")
    return found


def _address(value: str, field: str) -> str:
    _mailbox(value, field)
    return value


def _percent(text: str) -> str:
    safe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    return "".join(c if c in safe else "".join(f"%{b:02X}" for b in c.encode())
                   for c in text)


def list_unsubscribe_headers(unsubscribe: Unsubscribe, message_id: str) -> list[tuple[str, str]]:
    """``List-Unsubscribe`` (and ``List-Unsubscribe-Post`` with an https URL)."""
    uris = []
    if unsubscribe.mailto is not None:
        address = _address(unsubscribe.mailto, "unsubscribe.mailto")
        if "<" in address or "?" in address:
            raise EmailBuildError("unsubscribe.mailto", "must be a bare address")
        uris.append(f"<mailto:{address}?subject={_percent('unsubscribe ' + message_id)}>")
    if unsubscribe.url is not None:
        url = unsubscribe.url
        if not url.lower().startswith("https://") or any(c in url for c in " <>\r\n\t,"):
            raise EmailBuildError("unsubscribe.url", "must be an https URL (RFC 8058)")
        uris.append(f"<{url}>")
    if not uris:
        return []
    headers = [("List-Unsubscribe", ", ".join(uris))]
    if unsubscribe.url is not None:
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return headers


def _custom_header(name: str, value: str, field: str) -> tuple[str, str]:
    if not _HEADER_NAME.fullmatch(name):
        raise EmailBuildError(field, f"{name!r} is not a header name")
    if name.lower() in STRUCTURAL_HEADERS:
        raise EmailBuildError(field, f"{name} is set by Lodestar and cannot be overridden")
    if "\0" in value or has_line_break(value):
        raise EmailBuildError(field, "a header value may not hold line breaks")
    if len(value) > MAX_HEADER_VALUE:
        raise EmailBuildError(field, f"at most {MAX_HEADER_VALUE} characters")
    return name, value


# -------------------------------------------------------------------- build


def build_email(
    rendered: Rendered,
    *,
    from_address: str,
    to_address: str,
    message_id: str,
    message_id_domain: str,
    now_ms: int,
    reply_to: Sequence[str] = (),
    extra_headers: Sequence[tuple[str, str]] = (),
    unsubscribe: Unsubscribe | None = None,
    tracking: Tracking | None = None,
) -> OutgoingEmail:
    """The email to send for ``rendered`` (an EMAIL render) to ``to_address``, as the
    bytes of SMTP DATA with its envelope (From and To addr-specs).

    ``extra_headers`` come after the template's headers (e.g. the send request's
    own Headers). Raises ``EmailBuildError``.
    """
    if rendered.template_type is not TemplateType.EMAIL:
        raise EmailBuildError("rendered", f"{rendered.template_type.value} is not an email")
    subject = rendered.parts.get("Subject")
    html = rendered.parts.get("HtmlPart")
    text = rendered.parts.get("TextPart")
    if subject is None:
        raise EmailBuildError("Subject", "an email needs a Subject")
    if has_line_break(subject):
        raise EmailBuildError("Subject", "may not hold line breaks")
    if html is None and text is None:
        raise EmailBuildError("HtmlPart", "an email needs an HtmlPart or a TextPart")
    if not message_id or has_line_break(message_id) or len(message_id) > 512:
        raise EmailBuildError("message_id", "must be 1-512 characters without line breaks")

    custom = [_custom_header(name, value, f"Headers.{name}")
              for name, value in (*rendered.headers, *extra_headers)]
    unique = [name.lower() for name, _ in custom if name.lower() in UNIQUE]
    if len(unique) != len(set(unique)):
        name = next(n for n in unique if unique.count(n) > 1)
        raise EmailBuildError(f"Headers.{name}", "may appear only once")
    list_headers = list_unsubscribe_headers(unsubscribe, message_id) if unsubscribe else []

    if html is not None and tracking is not None:
        keep = frozenset({unsubscribe.url}) if unsubscribe and unsubscribe.url else frozenset()
        html = rewrite_html(html, tracking, message_id, keep=keep)

    sender = _mailbox(from_address, "from_address")
    recipient = _mailbox(to_address, "to_address")
    replies = [_mailbox(a, f"reply_to[{i}]") for i, a in enumerate(reply_to)]
    utf8 = not (sender.addr_spec + recipient.addr_spec).isascii()

    headers: list[bytes] = []
    wanted: list[tuple[str, str, Callable[[], bytes]]] = [
        ("from_address", "From", lambda: address_header(
            "From", from_address, plain=sender.plain, utf8=utf8)),
        ("to_address", "To", lambda: address_header(
            "To", to_address, plain=recipient.plain, utf8=utf8)),
    ]
    if reply_to:
        wanted.append(("reply_to", "Reply-To", lambda: address_header(
            "Reply-To", ", ".join(reply_to), plain=all(r.plain for r in replies), utf8=utf8)))
    wanted += [
        ("Subject", "Subject", lambda: unstructured("Subject", subject, utf8=utf8)),
        ("now_ms", "Date", lambda: _date_header(now_ms)),
        ("message_id", "Message-ID", lambda: verbatim(
            "Message-ID", message_id_header(message_id, message_id_domain), utf8=utf8)),
        ("message_id", "X-Lodestar-Message-Id", lambda: verbatim(
            "X-Lodestar-Message-Id", message_id, utf8=utf8)),
    ]
    for field, name, write in wanted:
        try:
            headers.append(write())
        except (WireError, UnicodeError) as exc:
            raise EmailBuildError(field, f"{name}: {exc}") from None
    for field, pairs in (("unsubscribe", list_headers), ("Headers", custom)):
        for name, value in pairs:
            try:
                headers.append(verbatim(name, value, utf8=utf8)
                               if name.lower() in VERBATIM_HEADERS
                               else unstructured(name, value, utf8=utf8))
            except (WireError, UnicodeError) as exc:
                raise EmailBuildError(f"{field}.{name}", str(exc)) from None

    parts: list[tuple[str, TextBody]] = []
    for subtype, part, field in (("plain", text, "TextPart"), ("html", html, "HtmlPart")):
        if part is not None:
            try:
                parts.append((subtype, text_body(part)))
            except UnicodeError:
                raise EmailBuildError(field, "is not valid Unicode text") from None
    return assemble(headers, parts, mail_from=sender.addr_spec,
                    rcpt_to=[recipient.addr_spec], boundary_seed=message_id)


def _date_header(now_ms: int) -> bytes:
    return _date_line(now_ms // 1000)


@functools.lru_cache(maxsize=4)
def _date_line(seconds: int) -> bytes:
    """The ``Date`` line for a second (it carries no finer time): made once per second."""
    value = format_datetime(datetime.fromtimestamp(seconds, UTC))
    return f"Date: {value}\r\n".encode("ascii")
