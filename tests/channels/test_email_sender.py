"""Emails built by lodestar.core.email_message and sent by SmtpSender reach a
real SMTP server (aiosmtpd on 127.0.0.1) intact, and every answer is classified."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from lodestar.channels.email import OutcomeKind, SmtpConfig, SmtpSender, Stage
from lodestar.core.email_message import (
    LinkKind,
    Tracking,
    Unsubscribe,
    build_email,
    unsubscribe_url,
    verify_token,
)
from lodestar.core.email_wire import OutgoingEmail
from lodestar.core.templates import Rendered, TemplateType
from lodestar.settings import Settings

SECRET = b"tracking-secret-of-at-least-32-bytes!"
BASE = "https://track.example.test"
HTML = (
    "<html><body><p>Olá {name}, see <a href=\"https://shop.example.test/sale?x=1&amp;y=2\">"
    "the sale</a> or <a href=\"mailto:help@example.test\">write</a>.</p>"
    "<p><a href=\"{unsub}\">unsubscribe</a></p></body></html>"
)


class _Server:
    """aiosmtpd handler: records messages and connections; answers by local part."""

    def __init__(self, pipelining: bool = False) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.sessions: list[Any] = []
        self.pipelining = pipelining

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    def _seen(self, session: Any) -> None:
        if not any(s is session for s in self.sessions):
            self.sessions.append(session)

    async def handle_MAIL(self, server, session, envelope, address, options):
        self._seen(session)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        local = address.split("@", 1)[0]
        if local == "busy":
            return "451 4.2.1 Mailbox busy, try again later"
        if local == "nobody":
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(r.startswith("spamtrap@") for r in envelope.rcpt_tos):
            return "554 5.7.1 Message rejected as spam"
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=[False, True], ids=["sequential", "pipelined"])
def pipelining(request: pytest.FixtureRequest) -> bool:
    """Whether the relay advertises PIPELINING (RFC 2920): each test runs both ways."""
    return bool(request.param)


@pytest.fixture
def server(pipelining: bool) -> Iterator[tuple[Controller, _Server]]:
    handler = _Server(pipelining)
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def _config(port: int) -> SmtpConfig:
    return SmtpConfig(host="127.0.0.1", port=port, timeout_seconds=3.0)


def _email(to: str, message_id: str, *, tracked: bool = True) -> OutgoingEmail:
    tracking = Tracking(BASE, SECRET, app_id="app-1", endpoint_id="ep-1")
    unsub = unsubscribe_url(tracking, message_id)
    rendered = Rendered(
        TemplateType.EMAIL,
        {"Subject": "Olá, Ana", "TextPart": "Olá Ana, the sale: https://shop.example.test/sale",
         "HtmlPart": HTML.replace("{name}", "Ana").replace("{unsub}", unsub)},
        (("X-Campaign-Id", "camp-1"),),
    )
    return build_email(
        rendered,
        from_address="Lodestar <noreply@example.test>",
        to_address=to,
        message_id=message_id,
        message_id_domain="mail.example.test",
        now_ms=1_700_000_000_000,
        reply_to=["support@example.test"],
        unsubscribe=Unsubscribe(mailto="unsubscribe@example.test", url=unsub),
        tracking=tracking if tracked else None,
    )


async def test_the_received_mime_structure_headers_and_tracking(server) -> None:
    controller, inbox = server
    async with SmtpSender(_config(controller.port)) as sender:
        outcome = await sender.send(_email("ana@example.test", "msg-1"))
    assert outcome.kind is OutcomeKind.DELIVERED and outcome.code == 250
    assert "accepted" in outcome.message and outcome.stage is Stage.DATA

    [(mail_from, rcpts, raw)] = inbox.messages
    assert mail_from == "noreply@example.test" and rcpts == ["ana@example.test"]
    got = message_from_bytes(raw, policy=policy.default)
    assert got.get_content_type() == "multipart/alternative"
    parts = list(got.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert [p.get_content_charset() for p in parts] == ["utf-8", "utf-8"]
    assert got["Subject"] == "Olá, Ana"
    assert got["From"] == "Lodestar <noreply@example.test>"
    assert got["Reply-To"] == "support@example.test"
    assert got["Message-ID"] == "<msg-1.lodestar@mail.example.test>"
    assert got["X-Lodestar-Message-Id"] == "msg-1"
    assert got["X-Campaign-Id"] == "camp-1"
    assert got["Date"] == "Tue, 14 Nov 2023 22:13:20 +0000"
    unsubscribe = re.fullmatch(r"<mailto:unsubscribe@example\.test\?subject=unsubscribe%20msg-1>,"
                               r" <(https://track\.example\.test/t/u/[A-Za-z0-9_.-]+)>",
                               got["List-Unsubscribe"])
    assert unsubscribe is not None
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsub_link = verify_token(unsubscribe.group(1).rsplit("/", 1)[1], SECRET)
    assert unsub_link is not None and unsub_link.kind is LinkKind.UNSUBSCRIBE
    assert unsub_link.message_id == "msg-1" and unsub_link.endpoint_id == "ep-1"

    html = parts[1].get_content()
    text = parts[0].get_content()
    assert "Olá Ana" in html and "Olá Ana" in text
    assert "https://shop.example.test/sale" in text  # the text part is not rewritten
    clicks = re.findall(r'href="https://track\.example\.test/t/c/([^"]+)"', html)
    assert len(clicks) == 1
    click = verify_token(clicks[0], SECRET)
    assert click is not None and click.url == "https://shop.example.test/sale?x=1&y=2"
    assert (click.message_id, click.app_id, click.endpoint_id) == ("msg-1", "app-1", "ep-1")
    assert 'href="mailto:help@example.test"' in html
    assert f'href="{unsubscribe.group(1)}"' in html  # the unsubscribe link is untouched
    pixel = re.search(r'<img src="https://track\.example\.test/t/o/([^"]+)" width="1" '
                      r'height="1"[^>]*/></body>', html)
    assert pixel is not None
    opened = verify_token(pixel.group(1), SECRET)
    assert opened is not None and opened.kind is LinkKind.OPEN and opened.url is None


async def test_the_relay_receives_the_prepared_bytes_unchanged(server) -> None:
    controller, inbox = server
    email = _email("ana@example.test", "msg-bytes")
    assert email.seven_bit is not None  # "Olá" in a short-lined body: an 8bit part
    async with SmtpSender(_config(controller.port)) as sender:
        outcome = await sender.send(email)
    assert outcome.kind is OutcomeKind.DELIVERED
    [(mail_from, rcpts, raw)] = inbox.messages
    assert (mail_from, rcpts) == (email.mail_from, list(email.rcpt_to))
    assert raw == email.data  # 8BITMIME relay: the 8bit bytes as prepared


async def test_a_relay_without_8bitmime_gets_the_7bit_variant(pipelining: bool) -> None:
    handler = _Server(pipelining)
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port(), decode_data=True)
    controller.start()
    try:
        email = _email("ana@example.test", "msg-7bit")
        async with SmtpSender(_config(controller.port)) as sender:
            assert (await sender.send(email)).kind is OutcomeKind.DELIVERED
    finally:
        controller.stop()
    [(_, _, content)] = handler.messages
    assert isinstance(content, str) and content.isascii()
    got = message_from_bytes(content.encode("ascii"), policy=policy.default)
    want = email.parsed()
    for received, prepared in zip(got.iter_parts(), want.iter_parts(), strict=True):
        assert received.get_content().replace("\r\n", "\n") == prepared.get_content().replace(
            "\r\n", "\n")
    assert [p["Content-Transfer-Encoding"] for p in got.iter_parts()] == [
        "base64", "quoted-printable"]
    assert got["Subject"] == "Olá, Ana"


async def test_a_stdlib_message_is_still_accepted(server) -> None:
    controller, inbox = server
    msg = _email("ana@example.test", "msg-stdlib").parsed()
    async with SmtpSender(_config(controller.port)) as sender:
        assert (await sender.send(msg)).kind is OutcomeKind.DELIVERED
    [(mail_from, rcpts, raw)] = inbox.messages
    assert (mail_from, rcpts) == ("noreply@example.test", ["ana@example.test"])
    assert message_from_bytes(raw, policy=policy.default)["X-Lodestar-Message-Id"] == "msg-stdlib"


async def test_one_connection_serves_many_sends(server, pipelining: bool) -> None:
    controller, inbox = server
    async with SmtpSender(_config(controller.port)) as sender:
        outcomes = [await sender.send(_email(f"user{i}@example.test", f"m-{i}", tracked=False))
                    for i in range(5)]
        assert sender.connections_opened == 1
        assert sender.pipelining is pipelining
    assert [o.kind for o in outcomes] == [OutcomeKind.DELIVERED] * 5
    assert len(inbox.messages) == 5
    assert len(inbox.sessions) == 1  # the server saw one connection


async def test_4xx_is_a_soft_bounce_and_5xx_a_hard_bounce(server) -> None:
    controller, inbox = server
    async with SmtpSender(_config(controller.port)) as sender:
        busy = await sender.send(_email("busy@example.test", "m-busy"))
        nobody = await sender.send(_email("nobody@example.test", "m-nobody"))
        spam = await sender.send(_email("spamtrap@example.test", "m-spam"))
        fine = await sender.send(_email("ana@example.test", "m-fine"))
        assert sender.connections_opened == 1  # refusals do not cost the connection
    assert (busy.kind, busy.code, busy.stage) == (OutcomeKind.SOFT_BOUNCE, 451, Stage.RCPT)
    assert "try again later" in busy.message and busy.transient
    assert not busy.recipient_refused
    assert (nobody.kind, nobody.code, nobody.stage) == (OutcomeKind.HARD_BOUNCE, 550, Stage.RCPT)
    assert "No such user" in nobody.message and nobody.recipient_refused
    assert (spam.kind, spam.code, spam.stage) == (OutcomeKind.HARD_BOUNCE, 554, Stage.DATA)
    assert fine.kind is OutcomeKind.DELIVERED
    assert [m[1] for m in inbox.messages] == [["ana@example.test"]]


async def test_a_server_that_goes_away_and_comes_back(pipelining: bool) -> None:
    port = _free_port()
    first, second = _Server(pipelining), _Server(pipelining)
    controller = Controller(first, hostname="127.0.0.1", port=port)
    controller.start()
    sender = SmtpSender(_config(port))
    try:
        assert (await sender.send(_email("a@example.test", "m-a"))).kind is OutcomeKind.DELIVERED
        controller.stop()
        down = await sender.send(_email("b@example.test", "m-b"))
        assert down.kind is OutcomeKind.SOFT_BOUNCE and down.code is None and down.transient
        assert down.stage is Stage.CONNECT
        controller = Controller(second, hostname="127.0.0.1", port=port)
        controller.start()
        back = await sender.send(_email("c@example.test", "m-c"))
        assert back.kind is OutcomeKind.DELIVERED
        again = await sender.send(_email("d@example.test", "m-d"))
        assert again.kind is OutcomeKind.DELIVERED
    finally:
        await sender.close()
        controller.stop()
    assert [m[1] for m in first.messages] == [["a@example.test"]]
    assert [m[1] for m in second.messages] == [["c@example.test"], ["d@example.test"]]
    assert len(second.sessions) == 1
    assert sender.connections_opened == 2


async def test_nothing_listening_is_a_soft_bounce() -> None:
    sender = SmtpSender(_config(_free_port()))
    outcome = await sender.send(_email("a@example.test", "m-a"))
    assert (outcome.kind, outcome.stage, outcome.code) == (
        OutcomeKind.SOFT_BOUNCE, Stage.CONNECT, None)
    await sender.close()


def test_config_from_settings() -> None:
    settings = Settings.from_env({
        "LODESTAR_SMTP_HOST": "smtp.example.test", "LODESTAR_SMTP_PORT": "587",
        "LODESTAR_SMTP_TLS": "starttls", "LODESTAR_SMTP_USERNAME": "u",
        "LODESTAR_SMTP_PASSWORD": "p", "LODESTAR_SMTP_TIMEOUT_SECONDS": "2.5",
    })
    config = SmtpConfig.from_settings(settings)
    assert (config.host, config.port, config.tls.value, config.username, config.password,
            config.timeout_seconds) == ("smtp.example.test", 587, "starttls", "u", "p", 2.5)


def test_smtp_settings_defaults_validation_and_masking() -> None:
    from lodestar.settings import SettingsError

    defaults = Settings.from_env({})
    assert (defaults.smtp_host, defaults.smtp_port) == ("127.0.0.1", 1025)
    assert defaults.smtp_tls == "none"
    assert defaults.smtp_message_id_domain == "lodestar.localhost"
    assert defaults.smtp_tracking_base_url == "http://127.0.0.1:8080"
    assert defaults.smtp_tracking_secret is None
    configured = Settings.from_env({
        "LODESTAR_SMTP_FROM_ADDRESS": "Acme <news@acme.test>",
        "LODESTAR_SMTP_TRACKING_BASE_URL": "https://t.acme.test/",
        "LODESTAR_SMTP_TRACKING_SECRET": "k" * 32,
        "LODESTAR_SMTP_USERNAME": "u", "LODESTAR_SMTP_PASSWORD": "hunter2",
    })
    assert configured.smtp_message_id_domain == "acme.test"
    assert configured.smtp_tracking_base_url == "https://t.acme.test"
    described = configured.describe()
    assert described["smtp_password"] == "***" and described["smtp_tracking_secret"] == "***"
    for env, message in (
        ({"LODESTAR_SMTP_TLS": "ssl"}, "LODESTAR_SMTP_TLS must be one of"),
        ({"LODESTAR_SMTP_USERNAME": "u"}, "must be set together"),
        ({"LODESTAR_SMTP_TRACKING_SECRET": "short"}, "at least 32 characters"),
        ({"LODESTAR_SMTP_TRACKING_BASE_URL": "ftp://x"}, "http\\(s\\) URL"),
        ({"LODESTAR_SMTP_FROM_ADDRESS": "nobody"}, "LODESTAR_SMTP_FROM_ADDRESS"),
        ({"LODESTAR_SMTP_PORT": "0"}, "LODESTAR_SMTP_PORT must be positive"),
    ):
        with pytest.raises(SettingsError, match=message):
            Settings.from_env(env)


async def test_a_connection_closed_while_idle_is_replaced_without_a_bounce(
        pipelining: bool) -> None:
    port = _free_port()
    first, second = _Server(pipelining), _Server(pipelining)
    controller = Controller(first, hostname="127.0.0.1", port=port)
    controller.start()
    sender = SmtpSender(_config(port))
    try:
        assert (await sender.send(_email("a@example.test", "m-a"))).kind is OutcomeKind.DELIVERED
        controller.stop()  # drops the idle connection
        controller = Controller(second, hostname="127.0.0.1", port=port)
        controller.start()
        outcome = await sender.send(_email("b@example.test", "m-b"))
        assert outcome.kind is OutcomeKind.DELIVERED
    finally:
        await sender.close()
        controller.stop()
    assert [m[1] for m in second.messages] == [["b@example.test"]]
    assert sender.connections_opened == 2
