"""The SMS providers against a real local HTTP server speaking Twilio's Messages API
(and a generic JSON API): exact form fields and auth received, success and error
answers, 429 with Retry-After, 5xx, timeouts, refused connections, connection reuse."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.asgi_server import serve_asgi
from tests.conftest import free_port

from lodestar.channels.sms import (
    GenericHttpConfig,
    GenericHttpProvider,
    TwilioConfig,
    TwilioProvider,
    generic_config_from_mapping,
    twilio_outcome,
)
from lodestar.core.provider_outcome import DeliveryStatus, ProviderOutcomeKind
from lodestar.core.sms_routing import OriginationKind
from lodestar.core.sms_sending import OutboundSms

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-auth-token-0123456789abcdef"
FROM = "+14155550100"


def _error(code: int, message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "status": status,
                         "more_info": f"https://www.twilio.com/docs/errors/{code}"},
                        status_code=status)


# Twilio's answers, chosen by the destination number
TWILIO_ANSWERS: dict[str, Any] = {
    "+15005550006": lambda: JSONResponse(
        {"sid": "SM" + "a" * 32, "status": "queued", "to": "+15005550006"}, status_code=201),
    "+15005550001": lambda: _error(21211, "The 'To' number +15005550001 is not a valid "
                                          "phone number."),
    "+15005550009": lambda: _error(21614, "'To' number is not a valid mobile number"),
    "+15005550004": lambda: _error(21610, "Attempt to send to unsubscribed recipient"),
    "+15005550011": lambda: _error(21408, "Permission to send an SMS has not been enabled "
                                          "for the region indicated by the 'To' number"),
    "+15005550012": lambda: _error(21612, "The 'To' phone number is not currently reachable"),
    "+15005550429": lambda: Response(
        '{"code": 20429, "message": "Too Many Requests", "status": 429}', status_code=429,
        headers={"Retry-After": "7", "Content-Type": "application/json"}),
    "+15005550500": lambda: Response("<html>Internal Server Error</html>", status_code=500),
    "+15005550401": lambda: _error(20003, "Authenticate", 401),
}


@dataclass
class Peer:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)


def _peer_app(peer_log: list[dict[str, Any]]) -> Starlette:
    async def twilio(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        entry = {
            "path": request.url.path, "form": form,
            "authorization": request.headers.get("authorization"),
            "content_type": request.headers.get("content-type"),
            "client": request.client.port if request.client else None,
        }
        peer_log.append(entry)
        if form.get("To") == "+15005550999":
            await asyncio.sleep(2)  # longer than the client's timeout
        answer = TWILIO_ANSWERS.get(str(form.get("To")))
        if answer is None:
            return _error(21211, "unknown test number")
        response: Response = answer()
        return response

    async def generic(request: Request) -> Response:
        body = await request.json()
        peer_log.append({"path": request.url.path, "json": body,
                         "authorization": request.headers.get("authorization"),
                         "method": request.method})
        to = body.get("recipient")
        if to == "+15005550500":
            return JSONResponse({"error": "down"}, status_code=503,
                                headers={"Retry-After": "3"})
        if to == "+15005550001":
            return JSONResponse({"error": "bad number"}, status_code=422)
        if to == "+15005550204":
            return Response(status_code=204)
        return JSONResponse({"data": {"messages": [{"id": f"gen-{body['ref']}"}]}},
                            status_code=202)

    return Starlette(routes=[
        Route("/2010-04-01/Accounts/{sid}/Messages.json", twilio, methods=["POST"]),
        Route("/sms/send", generic, methods=["POST", "PUT"]),
    ])


@pytest.fixture(scope="module")
def peer() -> Iterator[Peer]:
    log: list[dict[str, Any]] = []
    with serve_asgi(_peer_app(log)) as url:
        yield Peer(url, log)


@pytest.fixture
def received(peer: Peer) -> list[dict[str, Any]]:
    peer.received.clear()
    return peer.received


def _sms(to: str, body: str = "Your code is 481516", origination: str = FROM) -> OutboundSms:
    return OutboundSms("m-0123", to, body, origination, OriginationKind.TEN_DLC)


def _twilio(peer: Peer, **kw: Any) -> TwilioProvider:
    return TwilioProvider(TwilioConfig(ACCOUNT, TOKEN, base_url=peer.url, **kw))


async def test_twilio_success_sends_the_exact_form_and_basic_auth(
        peer: Peer, received: list[dict[str, Any]]) -> None:
    provider = _twilio(peer, status_callback="https://lodestar.example/")
    try:
        outcome = await provider.send(dataclasses.replace(
            _sms("+15005550006", "Hé {ok} & more"), app_id="app 1"))
    finally:
        await provider.aclose()
    assert outcome.kind is ProviderOutcomeKind.ACCEPTED
    assert outcome.status_code == 201 and outcome.provider_message_id == "SM" + "a" * 32
    assert outcome.delivery_status is DeliveryStatus.SUCCESSFUL
    [seen] = received
    assert seen["path"] == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert seen["content_type"] == "application/x-www-form-urlencoded"
    message_id = _sms("+15005550006", "x").message_id
    assert seen["form"] == {"To": "+15005550006", "From": FROM, "Body": "Hé {ok} & more",
                            "StatusCallback": "https://lodestar.example/sms/status/twilio/"
                                              f"app%201?m={message_id}"}
    scheme, _, credentials = seen["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(credentials).decode() == f"{ACCOUNT}:{TOKEN}"


async def test_twilio_messaging_service_replaces_from(
        peer: Peer, received: list[dict[str, Any]]) -> None:
    provider = _twilio(peer, messaging_service_sid="MG" + "1" * 32)
    try:
        outcome = await provider.send(_sms("+15005550006"))
    finally:
        await provider.aclose()
    assert outcome.accepted
    assert received[0]["form"] == {"To": "+15005550006", "Body": "Your code is 481516",
                                   "MessagingServiceSid": "MG" + "1" * 32}


@pytest.mark.parametrize(("to", "kind", "record_status", "status"), [
    ("+15005550001", ProviderOutcomeKind.DEAD_ADDRESS, "INVALID", 400),
    ("+15005550009", ProviderOutcomeKind.DEAD_ADDRESS, "INVALID", 400),
    ("+15005550004", ProviderOutcomeKind.PERMANENT, "OPTED_OUT", 400),
    ("+15005550011", ProviderOutcomeKind.PERMANENT, "BLOCKED", 400),
    ("+15005550012", ProviderOutcomeKind.PERMANENT, "UNREACHABLE", 400),
    ("+15005550401", ProviderOutcomeKind.PERMANENT, None, 401),
])
async def test_twilio_error_answers(peer: Peer, received: list[dict[str, Any]], to: str,
                                    kind: ProviderOutcomeKind, record_status: str | None,
                                    status: int) -> None:
    provider = _twilio(peer)
    try:
        outcome = await provider.send(_sms(to))
    finally:
        await provider.aclose()
    assert (outcome.kind, outcome.record_status, outcome.status_code) == (
        kind, record_status, status)
    assert outcome.delivery_status is DeliveryStatus.PERMANENT_FAILURE
    assert outcome.retry_after_s is None
    assert outcome.message.startswith("twilio error ")
    assert len(received) == 1 and received[0]["form"]["To"] == to


async def test_twilio_429_is_throttled_and_honours_retry_after(
        peer: Peer, received: list[dict[str, Any]]) -> None:
    provider = _twilio(peer)
    try:
        outcome = await provider.send(_sms("+15005550429"))
    finally:
        await provider.aclose()
    assert outcome.kind is ProviderOutcomeKind.RETRY and outcome.throttled
    assert outcome.retry_after_s == 7.0 and outcome.status_code == 429
    assert outcome.delivery_status is DeliveryStatus.THROTTLED


async def test_twilio_500_without_json_is_retried(
        peer: Peer, received: list[dict[str, Any]]) -> None:
    provider = _twilio(peer)
    try:
        outcome = await provider.send(_sms("+15005550500"))
    finally:
        await provider.aclose()
    assert outcome.kind is ProviderOutcomeKind.RETRY and not outcome.throttled
    assert outcome.status_code == 500
    assert outcome.delivery_status is DeliveryStatus.TEMPORARY_FAILURE


async def test_timeout_and_refused_connection_are_retries(
        peer: Peer, received: list[dict[str, Any]]) -> None:
    provider = _twilio(peer, timeout_s=0.3)
    try:
        started = time.monotonic()
        outcome = await provider.send(_sms("+15005550999"))
        assert time.monotonic() - started < 1.5
    finally:
        await provider.aclose()
    assert outcome.kind is ProviderOutcomeKind.RETRY and outcome.status_code is None
    assert "timeout" in outcome.message
    closed = TwilioProvider(TwilioConfig(ACCOUNT, TOKEN, base_url=f"http://127.0.0.1:{free_port()}"))
    try:
        outcome = await closed.send(_sms("+15005550006"))
    finally:
        await closed.aclose()
    assert outcome.kind is ProviderOutcomeKind.RETRY and outcome.status_code is None


async def test_one_connection_serves_many_messages(
        peer: Peer, received: list[dict[str, Any]]) -> None:
    provider = _twilio(peer)
    try:
        for _ in range(3):
            assert (await provider.send(_sms("+15005550006"))).accepted
    finally:
        await provider.aclose()
    ports = {entry["client"] for entry in received}
    assert len(received) == 3 and len(ports) == 1


async def test_a_shared_client_is_not_closed_by_the_provider(peer: Peer) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        shared = TwilioProvider(TwilioConfig(ACCOUNT, TOKEN, base_url=peer.url), client)
        await shared.aclose()
        assert not client.is_closed
        assert (await shared.send(_sms("+15005550006"))).accepted


def test_twilio_outcome_reads_codes_before_statuses() -> None:
    # an unknown code falls back to the status
    assert twilio_outcome(400, {"code": 12345, "message": "x"}, None).kind is (
        ProviderOutcomeKind.PERMANENT)
    assert twilio_outcome(503, {"code": 12345}, 2.0).retry_after_s == 2.0
    # a known code decides even on an odd status
    queue_full = twilio_outcome(400, {"code": 21611, "message": "queue full"}, None)
    assert queue_full.kind is ProviderOutcomeKind.RETRY and queue_full.throttled
    assert twilio_outcome(201, None, None).accepted


# -- generic ----------------------------------------------------------------------------


def _generic(peer: Peer, **kw: Any) -> GenericHttpProvider:
    config = GenericHttpConfig(
        url=f"{peer.url}/sms/send",
        fields={"to": "recipient", "from": "sender", "body": "text", "message_id": "ref"},
        extra={"channel": "sms"},
        headers={"Authorization": "Bearer gen-key"},
        message_id_path="data.messages.0.id",
        **kw,
    )
    return GenericHttpProvider(config)


async def test_generic_provider_sends_the_configured_json(
        peer: Peer, received: list[dict[str, Any]]) -> None:
    provider = _generic(peer)
    try:
        outcome = await provider.send(_sms("+15005550006"))
    finally:
        await provider.aclose()
    assert outcome.accepted and outcome.status_code == 202
    assert outcome.provider_message_id == "gen-m-0123"
    [seen] = received
    assert seen["json"] == {"recipient": "+15005550006", "sender": FROM,
                            "text": "Your code is 481516", "ref": "m-0123", "channel": "sms"}
    assert seen["authorization"] == "Bearer gen-key" and seen["method"] == "POST"


async def test_generic_provider_errors(peer: Peer, received: list[dict[str, Any]]) -> None:
    provider = _generic(peer, method="put")
    try:
        down = await provider.send(_sms("+15005550500"))
        bad = await provider.send(_sms("+15005550001"))
        odd = await provider.send(_sms("+15005550204"))  # 2xx, but not a success status
    finally:
        await provider.aclose()
    assert down.kind is ProviderOutcomeKind.RETRY and down.retry_after_s == 3.0
    assert bad.kind is ProviderOutcomeKind.PERMANENT and "bad number" in bad.message
    assert odd.kind is ProviderOutcomeKind.PERMANENT and odd.status_code == 204
    assert {entry["method"] for entry in received} == {"PUT"}


async def test_generic_field_left_out(peer: Peer, received: list[dict[str, Any]]) -> None:
    provider = GenericHttpProvider(GenericHttpConfig(
        url=f"{peer.url}/sms/send", fields={"to": "recipient", "message_id": "ref",
                                            "from": ""}, message_id_path=None))
    try:
        outcome = await provider.send(_sms("+15005550006"))
    finally:
        await provider.aclose()
    assert outcome.accepted and outcome.provider_message_id is None
    assert received[0]["json"] == {"recipient": "+15005550006", "ref": "m-0123",
                                   "body": "Your code is 481516"}
    with pytest.raises(ValueError, match="unknown SMS field"):
        GenericHttpConfig(url="http://127.0.0.1:1/", fields={"subject": "s"})


async def test_generic_provider_asks_for_receipts_per_message(
        peer: Peer, received: list[dict[str, Any]]) -> None:
    """With receipt rules, a named status_callback field carries the message's own
    receipt URL (token and message id); without a base URL it is left out."""
    rules = generic_config_from_mapping({
        "url": "http://x", "receipt": {"token": "tok0123456789abcd"}}).receipt
    assert rules is not None and rules.token == "tok0123456789abcd"
    fields = {"to": "recipient", "message_id": "ref", "status_callback": "dlr_url"}
    with_base = GenericHttpProvider(GenericHttpConfig(
        url=f"{peer.url}/sms/send", fields=fields, receipt=rules,
        status_callback="https://lodestar.example/"))
    without_base = GenericHttpProvider(GenericHttpConfig(
        url=f"{peer.url}/sms/send", fields=fields, receipt=rules))
    message = dataclasses.replace(_sms("+15005550006"), app_id="app-1")
    try:
        await with_base.send(message)
        await without_base.send(message)
    finally:
        await with_base.aclose()
        await without_base.aclose()
    assert received[0]["json"]["dlr_url"] == (
        "https://lodestar.example/sms/status/generic/app-1?t=tok0123456789abcd&m=m-0123")
    assert "dlr_url" not in received[1]["json"]
    with pytest.raises(ValueError, match=r"receipt\.token"):
        generic_config_from_mapping({"url": "http://x", "receipt": {"token": "short"}})


def test_generic_config_from_its_json_form() -> None:
    config = generic_config_from_mapping({
        "url": "https://sms.example/v1/send", "method": "put", "fields": {"to": "msisdn"},
        "headers": {"Authorization": "Bearer k"}, "success_statuses": [200],
        "message_id_path": "data.id", "extra": {"route": "premium"}, "timeout_s": 3})
    assert config.method == "PUT" and config.fields == {"to": "msisdn"}
    assert config.success_statuses == frozenset({200}) and config.timeout_s == 3.0
    assert config.message_id_path == "data.id" and config.extra == {"route": "premium"}
    assert generic_config_from_mapping({"url": "http://127.0.0.1:9/x"}).success_statuses == (
        frozenset({200, 201, 202}))
    for bad, field_name in (
        ([], "object"), ({"url": "ftp://x"}, "url"), ({"url": "http://x", "verb": "POST"},
                                                       "unknown"),
        ({"url": "http://x", "fields": {"to": 1}}, "fields"),
        ({"url": "http://x", "fields": {"subject": "s"}}, "unknown SMS field"),
        ({"url": "http://x", "method": "GET"}, "method"),
        ({"url": "http://x", "success_statuses": [404]}, "success_statuses"),
        ({"url": "http://x", "success_statuses": []}, "success_statuses"),
        ({"url": "http://x", "timeout_s": 0}, "timeout_s"),
        ({"url": "http://x", "message_id_path": 3}, "message_id_path"),
    ):
        with pytest.raises(ValueError, match=field_name):
            generic_config_from_mapping(bad)
