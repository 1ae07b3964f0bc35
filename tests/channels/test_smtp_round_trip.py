"""An email sent with aiosmtplib reaches a real SMTP server (aiosmtpd) intact."""

from __future__ import annotations

import asyncio
import socket
from email import message_from_bytes, policy
from email.message import EmailMessage

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    inbox = _Inbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


async def test_multipart_email_round_trip(smtp_server) -> None:
    controller, inbox = smtp_server
    msg = EmailMessage()
    msg["From"] = "Lodestar <noreply@example.test>"
    msg["To"] = "ana@example.test"
    msg["Subject"] = "Olá, Ana"
    msg["List-Unsubscribe"] = "<https://lodestar.example.test/u/abc>"
    msg.set_content("Plain body")
    msg.add_alternative("<p>HTML <b>body</b></p>", subtype="html")

    await aiosmtplib.send(msg, hostname="127.0.0.1", port=controller.port)
    for _ in range(50):
        if inbox.messages:
            break
        await asyncio.sleep(0.02)

    assert len(inbox.messages) == 1
    mail_from, rcpts, raw = inbox.messages[0]
    assert mail_from == "noreply@example.test"
    assert rcpts == ["ana@example.test"]
    received = message_from_bytes(raw, policy=policy.default)
    assert received["Subject"] == "Olá, Ana"
    assert received["List-Unsubscribe"] == "<https://lodestar.example.test/u/abc>"
    parts = {p.get_content_type(): p.get_payload(decode=True) for p in received.walk()}
    assert parts["text/plain"].strip() == b"Plain body"
    assert b"<b>body</b>" in parts["text/html"]


async def test_prepared_bytes_round_trip_with_dots_and_non_ascii(smtp_server) -> None:
    """``build_email``'s bytes go out as they are (aiosmtplib dot-stuffs them) and come
    back byte for byte, non-ASCII and lines that start with a dot included."""
    from lodestar.core.email_message import build_email
    from lodestar.core.templates import Rendered, TemplateType

    controller, inbox = smtp_server
    text = ".\n.leading dot\nOlá, Ana\n" + "long line " * 20 + "\n."
    email = build_email(
        Rendered(TemplateType.EMAIL, {"Subject": "Olá, Ana", "TextPart": text,
                                      "HtmlPart": "<p>.é</p>\n.\n"}),
        from_address="Zoë <noreply@example.test>", to_address="ana@example.test",
        message_id="m-dots", message_id_domain="mail.example.test", now_ms=0)
    await aiosmtplib.send(email.data, sender=email.mail_from, recipients=list(email.rcpt_to),
                          hostname="127.0.0.1", port=controller.port)
    for _ in range(50):
        if inbox.messages:
            break
        await asyncio.sleep(0.02)
    [(mail_from, rcpts, raw)] = inbox.messages
    assert (mail_from, rcpts, raw) == ("noreply@example.test", ["ana@example.test"], email.data)
    received = message_from_bytes(raw, policy=policy.default)
    assert received["From"] == "Zoë <noreply@example.test>"
    plain = received.get_body(("plain",))
    assert plain is not None
    assert plain.get_content().replace("\r\n", "\n") == text + "\n"
