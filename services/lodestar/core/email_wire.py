"""An email as the bytes of SMTP DATA, written directly instead of by ``email.message``.

Pure: no I/O. The stdlib's modern policies parse every header when it is set
and again when the generator folds it, which costs milliseconds per message.
This module writes the common cases itself, byte for byte as
``BytesGenerator`` with ``policy.SMTP`` writes them (CRLF, lines folded at
78), and hands everything else to the stdlib's own header classes:

- ``unstructured``: a printable-ASCII value that fits on its line is written
  as is; a non-ASCII value (outside SMTPUTF8) becomes RFC 2047 encoded words
  (``email.header.Header``, utf-8, folded at 78); long or odd values (control
  characters, ``=?`` sequences, RFC 6532 raw UTF-8, names the stdlib parses as
  structured such as ``Resent-Date``) are folded by the stdlib, as before.
- ``verbatim``: ids and URLs, folded only at spaces and never encoded.
- ``mailbox``/``address_header``: one address validated (the stdlib's
  ``Address`` rules, a fast regex for the plain ``Name <local@domain>`` forms)
  with its envelope addr-spec.
- ``text_body``: the Content-Transfer-Encoding and encoded body the stdlib's
  ``raw_data_manager`` picks for UTF-8 text (7bit, 8bit, quoted-printable or
  base64), plus a base64 variant of 8bit bodies for relays without 8BITMIME.
- ``assemble``: the whole message, single part or ``multipart/alternative``,
  into an ``OutgoingEmail`` (bytes plus envelope).

Stdlib results are cached per (name, value): a campaign's From, Reply-To and
repeated subjects are folded once.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from email import message_from_bytes, quoprimime
from email import policy as email_policy
from email.header import Header
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import EmailPolicy, Policy
from email.utils import getaddresses
from functools import lru_cache
from typing import Any, cast

CRLF = b"\r\n"
MAX_LINE = 78
"""Folding width (``policy.SMTP.max_line_length``)."""


class WireError(ValueError):
    """A value that cannot be written into a header or body."""


@dataclass(frozen=True)
class OutgoingEmail:
    """A message ready for SMTP DATA, with its envelope."""

    data: bytes
    """The message, CRLF line ends; body parts may be 8bit (UTF-8)."""
    mail_from: str
    """Envelope sender: the From addr-spec."""
    rcpt_to: tuple[str, ...]
    """Envelope recipients: the To addr-specs."""
    seven_bit: bytes | None = None
    """The same message with its 8bit parts as base64, for relays without 8BITMIME;
    ``None`` when ``data`` is 7-bit already."""

    @property
    def smtputf8(self) -> bool:
        """The envelope needs SMTPUTF8 (and the headers were written as RFC 6532 UTF-8)."""
        return not (self.mail_from + "".join(self.rcpt_to)).isascii()

    def parsed(self) -> EmailMessage:
        """``data`` parsed back with ``policy.default`` (tests, debugging)."""
        return message_from_bytes(self.data, policy=email_policy.default)


# ------------------------------------------------------------------ headers


class _VerbatimHeader(UnstructuredHeader):
    """An ASCII header folded only at its spaces and never turned into RFC 2047
    encoded words, whatever the generator's line length: a long URL or id in
    ``List-Unsubscribe``, ``Message-ID`` or ``X-Lodestar-Message-Id`` must reach the
    mail client as written."""

    name: str

    def fold(self, *, policy: Policy) -> str:
        value = str(self)
        if not value.isascii():
            return str(super().fold(policy=policy))  # type: ignore[misc]
        return _fold_at_spaces(self.name, value, policy.max_line_length or 998,
                               policy.linesep)


VERBATIM_HEADERS = frozenset({"list-unsubscribe", "x-lodestar-message-id", "message-id"})


def _message_policy() -> EmailPolicy[EmailMessage]:
    registry = HeaderRegistry()
    for name in VERBATIM_HEADERS:
        registry.map_to_type(name, cast("type[BaseHeader]", _VerbatimHeader))
    return email_policy.default.clone(header_factory=registry)


MESSAGE_POLICY = _message_policy()
"""``policy.default`` with headers whose URLs and ids are never encoded or split."""

_REGISTRY = cast(HeaderRegistry, MESSAGE_POLICY.header_factory)
STRUCTURED = frozenset(name for name, cls in _REGISTRY.registry.items()
                       if not issubclass(cls, UnstructuredHeader))
"""Header names the stdlib parses as dates, addresses or MIME fields."""
UNIQUE = frozenset(name for name, cls in _REGISTRY.registry.items()
                   if getattr(cls, "max_count", None) == 1)
"""Header names a message may hold once."""

_PLAIN = re.compile(r"[ -~]*")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_LINE_BREAKS = re.compile("[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_SMTP = email_policy.SMTP
_SMTPUTF8 = email_policy.SMTPUTF8


def has_line_break(value: str) -> bool:
    """Whether ``value`` holds anything ``str.splitlines`` breaks at."""
    return _LINE_BREAKS.search(value) is not None


def _plain(value: str) -> bool:
    """Printable ASCII that the stdlib would write back unchanged."""
    return _PLAIN.fullmatch(value) is not None and "=?" not in value


def _fold_at_spaces(name: str, value: str, limit: int, linesep: str) -> str:
    lines = [f"{name}:"]
    for word in value.split():
        if len(lines[-1]) + 1 + len(word) > limit and lines[-1] != f"{name}:":
            lines.append("")
        lines[-1] += " " + word
    return linesep.join(lines) + linesep


@lru_cache(maxsize=2048)
def stdlib_header(name: str, value: str, utf8: bool) -> bytes:
    """``name: value`` folded exactly as ``BytesGenerator`` with ``policy.SMTP``
    (``SMTPUTF8`` with ``utf8``) writes a header set on a ``MESSAGE_POLICY`` message."""
    if has_line_break(value):
        raise WireError("a header value may not hold line breaks")
    try:
        header = MESSAGE_POLICY.header_factory(name, value)
        return (_SMTPUTF8 if utf8 else _SMTP).fold_binary(name, header)
    except Exception as exc:  # the stdlib parser fails in more ways than it documents
        raise WireError(f"cannot be written: {exc}") from None


_LONGEST_ENCODED_NAME = MAX_LINE - 2 - 30
"""Longer names leave the first line no room for an encoded word: the stdlib folds those."""


def unstructured(name: str, value: str, *, utf8: bool) -> bytes:
    """An unstructured header (``Subject``, ``X-…``) as wire bytes."""
    structured = name.lower() in STRUCTURED
    if not structured and _plain(value):
        if not value:
            return f"{name}:\r\n".encode("ascii")
        if len(name) + 2 + len(value) <= MAX_LINE:
            return f"{name}: {value}\r\n".encode("ascii")
    elif (not structured and not utf8 and len(name) <= _LONGEST_ENCODED_NAME
          and not value.isascii() and "=?" not in value and _CONTROL.search(value) is None
          and value[0] != " " and value[-1] != " "):
        encoded = Header(value, "utf-8", maxlinelen=MAX_LINE, header_name=name).encode(
            linesep="\r\n")
        return f"{name}: {encoded}\r\n".encode("ascii")
    return stdlib_header(name, value, utf8)


def verbatim(name: str, value: str, *, utf8: bool) -> bytes:
    """An id or URL header: folded at spaces only, never encoded (when ASCII)."""
    if _plain(value):
        return _fold_at_spaces(name, value, MAX_LINE, "\r\n").encode("ascii")
    return stdlib_header(name, value, utf8)


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_ADDR_SPEC = rf"{_ATEXT}+(?:\.{_ATEXT}+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_PLAIN_MAILBOX = re.compile(
    rf"(?:{_ATEXT}+(?: {_ATEXT}+)* <(?P<named>{_ADDR_SPEC})>|(?P<bare>{_ADDR_SPEC}))")


@dataclass(frozen=True)
class Mailbox:
    """One validated address."""

    addr_spec: str
    """What the envelope uses (``local@domain``)."""
    plain: bool
    """ASCII ``local@domain`` or ``Words <local@domain>``: written as given."""


def mailbox(value: str) -> Mailbox | None:
    """``value`` as exactly one address without defects, or ``None``."""
    if "=?" not in value:
        found = _PLAIN_MAILBOX.fullmatch(value)
        if found is not None:
            return Mailbox(found.group("named") or found.group("bare"), True)
    return _stdlib_mailbox(value)


@lru_cache(maxsize=1024)
def _stdlib_mailbox(value: str) -> Mailbox | None:
    if not value or has_line_break(value):
        return None
    try:
        header: Any = MESSAGE_POLICY.header_factory("To", value)
        addresses = header.addresses
    except Exception:  # the stdlib parser fails in more ways than it documents
        return None
    if (len(addresses) != 1 or not addresses[0].username or not addresses[0].domain
            or header.defects):
        return None
    found = [addr for _, addr in getaddresses([str(header)]) if addr]
    return Mailbox(found[0], False) if len(found) == 1 else None


def address_header(name: str, value: str, *, plain: bool, utf8: bool) -> bytes:
    """``name: value`` for validated addresses (``plain`` when all of them are)."""
    if plain and len(name) + 2 + len(value) <= MAX_LINE:
        return f"{name}: {value}\r\n".encode("ascii")
    return stdlib_header(name, value, utf8)


# ------------------------------------------------------------------- bodies


@dataclass(frozen=True)
class TextBody:
    """One UTF-8 text part as the stdlib's ``set_content(text, charset="utf-8")``
    encodes it."""

    cte: str
    """7bit, 8bit, quoted-printable or base64."""
    body: bytes
    """The encoded body, CRLF line ends."""
    seven_bit: bytes | None
    """The body as base64 when ``cte`` is 8bit (a relay without 8BITMIME), else ``None``."""


def _crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("ascii")


def _base64(data: bytes) -> bytes:
    per_line = MAX_LINE // 4 * 3
    return b"".join(binascii.b2a_base64(data[i:i + per_line])
                    for i in range(0, len(data), per_line)).replace(b"\n", CRLF)


def text_body(text: str) -> TextBody:
    """Encode ``text`` (raises ``UnicodeEncodeError`` for lone surrogates)."""
    lines = text.encode("utf-8").splitlines()
    normal = b"\n".join(lines) + b"\n"
    if max((len(line) for line in lines), default=0) <= MAX_LINE:
        wire = CRLF.join(lines) + CRLF
        if normal.isascii():
            return TextBody("7bit", wire, None)
        return TextBody("8bit", wire, _base64(normal))
    sniff = b"\n".join(lines[:10]) + b"\n"
    sniff_qp = quoprimime.body_encode(sniff.decode("latin-1"), MAX_LINE)
    if len(sniff_qp) > len(binascii.b2a_base64(sniff)):
        return TextBody("base64", _base64(normal), None)
    if len(lines) <= 10:
        return TextBody("quoted-printable", _crlf(sniff_qp), None)
    return TextBody("quoted-printable",
                    _crlf(quoprimime.body_encode(normal.decode("latin-1"), MAX_LINE)), None)


def _part_head(subtype: str, cte: str) -> bytes:
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: {cte}\r\n").encode("ascii")


_MIME_VERSION = b"MIME-Version: 1.0\r\n"


def boundary_for(seed: str, bodies: Sequence[bytes]) -> str:
    """A ``multipart`` boundary in the stdlib's form, derived from ``seed`` and absent
    from ``bodies``."""
    token = int.from_bytes(hashlib.sha256(seed.encode("utf-8", "surrogatepass")).digest()[:8],
                           "big") % sys.maxsize
    base = "=" * 15 + f"{token:019d}" + "=="
    boundary, counter = base, 0
    while any(f"--{boundary}".encode("ascii") in body for body in bodies):
        boundary = f"{base}.{counter}"
        counter += 1
    return boundary


def _single(headers: bytes, subtype: str, body: TextBody, *, seven_bit: bool) -> bytes:
    cte, data = ("base64", body.seven_bit) if seven_bit and body.seven_bit else (
        body.cte, body.body)
    return headers + _part_head(subtype, cte) + _MIME_VERSION + CRLF + data


def _alternative(headers: bytes, parts: Sequence[tuple[str, TextBody]], boundary: str,
                 *, seven_bit: bool) -> bytes:
    delimiter = f"--{boundary}".encode("ascii")
    out = [headers, _MIME_VERSION,
           f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n'
           .encode("ascii")]
    for index, (subtype, body) in enumerate(parts):
        cte, data = ("base64", body.seven_bit) if seven_bit and body.seven_bit else (
            body.cte, body.body)
        out += [CRLF if index else b"", delimiter, CRLF, _part_head(subtype, cte),
                _MIME_VERSION if index else b"", CRLF, data]
    out += [CRLF, delimiter, b"--", CRLF]
    return b"".join(out)


def assemble(headers: Sequence[bytes], parts: Sequence[tuple[str, TextBody]], *,
             mail_from: str, rcpt_to: Sequence[str], boundary_seed: str) -> OutgoingEmail:
    """The message: ``headers`` (folded lines), then ``MIME-Version`` and one text part,
    or a ``multipart/alternative`` of ``parts`` (subtype, body) in order, laid out as the
    stdlib's ``set_content`` + ``add_alternative`` lay them out."""
    if not parts:
        raise WireError("a message needs a part")
    head = b"".join(headers)
    eight_bit = any(body.seven_bit is not None for _, body in parts)
    if len(parts) == 1:
        subtype, body = parts[0]
        data = _single(head, subtype, body, seven_bit=False)
        seven = _single(head, subtype, body, seven_bit=True) if eight_bit else None
    else:
        boundary = boundary_for(boundary_seed, [b for _, p in parts
                                                for b in (p.body, p.seven_bit) if b])
        data = _alternative(head, parts, boundary, seven_bit=False)
        seven = _alternative(head, parts, boundary, seven_bit=True) if eight_bit else None
    return OutgoingEmail(data, mail_from, tuple(rcpt_to), seven)
