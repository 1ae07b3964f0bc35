"""Preparing and serialising emails: µs per message, pure CPU (no Kafka, SMTP or database).

Builds ``--messages`` messages of the sender benchmark's shape
(``bench/senders.py`` ``email_requests``: Handlebars in subject, text and HTML,
an endpoint snapshot, tracking links, the List-Unsubscribe pair) with
``prepare_email``, which renders, builds and serialises them to the bytes of
SMTP DATA (``OutgoingEmail``).

For comparison, the same run times the previous path: the stdlib
``EmailMessage`` builder (modern policies; kept here only as a reference) in
``prepare_email``, then the flattening the SMTP sender used to do per send
(``BytesGenerator`` with ``policy.SMTP``). Both paths are checked to give a
recipient the same headers and parts for the first message.

Target (issue #5): prepare + serialise <= 250 µs per message, for >= 2,000
emails/s per sender process.

Example: ``.venv/bin/python bench/email_build.py --messages 5000``
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import format_datetime
from io import BytesIO
from typing import Any

import lodestar.core.email_sending as email_sending
from lodestar.core.email_message import (
    Tracking,
    Unsubscribe,
    list_unsubscribe_headers,
    message_id_header,
    rewrite_html,
)
from lodestar.core.email_sending import EmailDefaults, Prepared, prepare_email
from lodestar.core.email_wire import MESSAGE_POLICY
from lodestar.core.templates import Rendered
from senders import email_requests

TARGET_US = 250.0
DEFAULTS = EmailDefaults("shop@example.test", "mail.example.test", "https://t.example.test",
                         b"bench-secret-bench-secret!!")


def stdlib_build(rendered: Rendered, *, from_address: str, to_address: str, message_id: str,
                 message_id_domain: str, now_ms: int, reply_to: Sequence[str] = (),
                 extra_headers: Sequence[tuple[str, str]] = (),
                 unsubscribe: Unsubscribe | None = None,
                 tracking: Tracking | None = None) -> EmailMessage:
    """The previous builder (stdlib ``EmailMessage``), as a reference point."""
    subject, html = rendered.parts["Subject"], rendered.parts.get("HtmlPart")
    text = rendered.parts.get("TextPart")
    list_headers = list_unsubscribe_headers(unsubscribe, message_id) if unsubscribe else []
    if html is not None and tracking is not None:
        keep = frozenset({unsubscribe.url}) if unsubscribe and unsubscribe.url else frozenset()
        html = rewrite_html(html, tracking, message_id, keep=keep)
    msg = EmailMessage(policy=MESSAGE_POLICY)
    for name, value in (("From", from_address), ("To", to_address)):
        probe = EmailMessage(policy=policy.default)  # the old address validation
        probe["To"] = value
        assert len(probe["To"].addresses) == 1
        msg[name] = value
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


def stdlib_flatten(msg: EmailMessage) -> bytes:
    out = BytesIO()
    BytesGenerator(out, policy=policy.SMTP).flatten(msg)
    return out.getvalue()


def _per_message_us(fn: Callable[[], object], n: int) -> float:
    gc.collect()
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) / n * 1e6


def _seen(raw: bytes) -> tuple[list[tuple[str, str]], list[tuple[str, Any]]]:
    msg = message_from_bytes(raw, policy=policy.default)
    headers = [(name, str(value)) for part in msg.walk() for name, value in part.items()
               if name.lower() != "content-type" or not part.is_multipart()]
    leaves = [(part.get_content_type(), part.get_payload(decode=True))
              for part in msg.walk() if not part.is_multipart()]
    return headers, leaves


def run(n: int, rounds: int, stdlib: bool) -> dict[str, Any]:
    requests = email_requests(n, "bench")
    now = int(time.time() * 1000)
    result: dict[str, Any] = {"messages": n, "target_us": TARGET_US}
    best = float("inf")
    prepared: list[Prepared] = []
    for _ in range(rounds):
        def prepare_all() -> None:
            prepared[:] = [p for p in (prepare_email(r, None, DEFAULTS, now) for r in requests)
                           if isinstance(p, Prepared)]
        best = min(best, _per_message_us(prepare_all, n))
    assert len(prepared) == n
    result["prepare_and_serialise_us"] = best
    result["bytes_per_message"] = sum(len(p.message.data) for p in prepared) / n
    if stdlib:
        original = email_sending.build_email  # type: ignore[attr-defined]
        email_sending.build_email = stdlib_build  # type: ignore[attr-defined,assignment]
        try:
            old: list[Any] = []

            def old_prepare() -> None:
                old[:] = [prepare_email(r, None, DEFAULTS, now) for r in requests]
            result["stdlib_prepare_us"] = _per_message_us(old_prepare, n)
            flat: list[bytes] = []

            def old_flatten() -> None:
                flat[:] = [stdlib_flatten(p.message) for p in old]
            result["stdlib_flatten_us"] = _per_message_us(old_flatten, n)
        finally:
            email_sending.build_email = original  # type: ignore[attr-defined]
        result["stdlib_total_us"] = result["stdlib_prepare_us"] + result["stdlib_flatten_us"]
        result["speedup"] = result["stdlib_total_us"] / best
        result["same_for_recipient"] = _seen(prepared[0].message.data) == _seen(flat[0])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5_000, help="messages (default 5,000)")
    parser.add_argument("--rounds", type=int, default=3, help="best of N rounds (default 3)")
    parser.add_argument("--no-stdlib", action="store_true",
                        help="skip the previous (stdlib EmailMessage) path")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    result = run(args.messages, args.rounds, not args.no_stdlib)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"messages: {result['messages']:,}  ({result['bytes_per_message']:.0f} bytes each)")
    print(f"prepare + serialise (OutgoingEmail): {result['prepare_and_serialise_us']:8.1f} µs"
          f"  (target <= {TARGET_US:.0f} µs)")
    if "stdlib_total_us" in result:
        print(f"previous: stdlib prepare {result['stdlib_prepare_us']:8.1f} µs + flatten "
              f"{result['stdlib_flatten_us']:.1f} µs = {result['stdlib_total_us']:.1f} µs"
              f"  ({result['speedup']:.1f}x slower)")
        print(f"same headers and parts for a recipient: {result['same_for_recipient']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
