"""SmtpSender over implicit TLS and STARTTLS with AUTH, against aiosmtpd speaking TLS
with a certificate from a test CA; with and without PIPELINING (the pipelined
channel takes over the TLS transport after AUTH)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from tests.channels.apns_peer import TlsMaterial, tls_material

from lodestar.channels.email import OutcomeKind, SmtpConfig, SmtpSender, Stage, TlsMode
from lodestar.core.email_wire import OutgoingEmail


class _Relay:
    def __init__(self, pipelining: bool) -> None:
        self.pipelining = pipelining
        self.messages: list[bytes] = []
        self.logins: list[tuple[bytes, bool]] = []
        self.secure_sessions = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_DATA(self, server, session, envelope):
        if server.transport.get_extra_info("ssl_object") is not None:
            self.secure_sessions += 1
        self.messages.append(envelope.content)
        return "250 2.0.0 Ok: queued as 4ZtestQueueId"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        ok = (auth_data.login, auth_data.password) == (b"lodestar", b"s3cret")
        self.logins.append((auth_data.login, ok))
        return AuthResult(success=ok)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return tls_material(Path(tmp_path_factory.mktemp("smtp-tls")))


@pytest.fixture(params=[False, True], ids=["sequential", "pipelined"])
def pipelining(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def _controller(relay: _Relay, tls: TlsMaterial, mode: TlsMode) -> Controller:
    server_ctx = tls.server_context()
    if mode is TlsMode.TLS:
        # aiosmtpd only knows STARTTLS as "TLS" for AUTH; the whole session is TLS here.
        return Controller(relay, hostname="127.0.0.1", port=_free_port(),
                          ssl_context=server_ctx, server_hostname="localhost",
                          authenticator=relay.authenticate, auth_require_tls=False)
    return Controller(relay, hostname="127.0.0.1", port=_free_port(), tls_context=server_ctx,
                      require_starttls=True, authenticator=relay.authenticate,
                      auth_require_tls=True)


@pytest.fixture(params=[TlsMode.TLS, TlsMode.STARTTLS], ids=["tls", "starttls"])
def relay(request: pytest.FixtureRequest, tls: TlsMaterial,
          pipelining: bool) -> Iterator[tuple[Controller, _Relay, TlsMode]]:
    handler = _Relay(pipelining)
    controller = _controller(handler, tls, request.param)
    controller.start()
    try:
        yield controller, handler, request.param
    finally:
        controller.stop()


def _email(i: int) -> OutgoingEmail:
    data = (f"From: a@example.test\r\nTo: user{i}@example.test\r\nSubject: {i}\r\n"
            f"X-Lodestar-Message-Id: m-{i}\r\n\r\nhello {i}\r\n").encode()
    return OutgoingEmail(data=data, mail_from="a@example.test", rcpt_to=(f"user{i}@example.test",))


def _config(port: int, mode: TlsMode, password: str = "s3cret") -> SmtpConfig:
    return SmtpConfig("localhost", port, tls=mode, username="lodestar", password=password,
                      timeout_seconds=1.5)


async def test_messages_go_over_tls_after_auth(relay, tls: TlsMaterial, pipelining: bool) -> None:
    controller, handler, mode = relay
    async with SmtpSender(_config(controller.port, mode),
                          tls_context=tls.client_context()) as sender:
        outcomes = [await sender.send(_email(i)) for i in range(3)]
        assert sender.pipelining is pipelining
        assert sender.connections_opened == 1
    assert [(o.kind, o.code) for o in outcomes] == [(OutcomeKind.DELIVERED, 250)] * 3
    assert outcomes[0].message == "2.0.0 Ok: queued as 4ZtestQueueId"
    assert handler.logins == [(b"lodestar", True)]
    assert handler.secure_sessions == 3
    assert [m.split(b"X-Lodestar-Message-Id: ")[1][:3] for m in handler.messages] == [
        b"m-0", b"m-1", b"m-2"]


async def test_a_wrong_password_is_an_auth_failure(relay, tls: TlsMaterial) -> None:
    controller, handler, mode = relay
    sender = SmtpSender(_config(controller.port, mode, password="wrong"),
                        tls_context=tls.client_context())
    outcome = await sender.send(_email(0))
    await sender.close()
    # aiosmtplib answers 535 as a hard failure; after a refused mechanism it may also
    # try the next one, which aiosmtpd can leave unanswered (a timeout: soft).
    assert outcome.stage is Stage.AUTH and outcome.kind is not OutcomeKind.DELIVERED
    assert outcome.code in (535, None) and not outcome.recipient_refused
    assert handler.messages == [] and (b"lodestar", False) in handler.logins


async def test_an_untrusted_certificate_is_refused(relay) -> None:
    controller, handler, mode = relay
    sender = SmtpSender(_config(controller.port, mode),
                        tls_context=ssl.create_default_context())  # does not know the test CA
    outcome = await sender.send(_email(0))
    await sender.close()
    assert outcome.kind is OutcomeKind.SOFT_BOUNCE and outcome.stage is Stage.CONNECT
    assert "certificate" in outcome.message.lower()
    assert handler.messages == [] and handler.logins == []
