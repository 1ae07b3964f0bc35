"""The Twilio voice transport against a local server speaking Twilio's Calls API
(uvicorn + Starlette in a thread, real socket on 127.0.0.1)."""

from __future__ import annotations

import base64
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.asgi_server import serve_asgi
from tests.conftest import free_port

from lodestar.channels.voice_twilio import TwilioVoice, TwilioVoiceConfig, status_callback_url
from lodestar.core.provider_outcome import ProviderOutcomeKind
from lodestar.core.voice_message import VoiceCall, VoiceDefaults, prepare_call

SID, AUTH = "AC" + "0123456789abcdef" * 2, "s3cr3t-auth-token"


@dataclass
class Scripted:
    status: int
    code: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class TwilioServer:
    url: str = ""
    calls: list[dict[str, str]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    scripted: dict[str, Scripted] = field(default_factory=dict)


def _error(status: int, code: int, message: str, headers: dict[str, str] | None = None
           ) -> JSONResponse:
    body = {"code": code, "message": message, "status": status,
            "more_info": f"https://www.twilio.com/docs/errors/{code}"}
    return JSONResponse(body, status_code=status, headers=headers)


def _app(state: TwilioServer) -> Starlette:
    async def calls(request: Request) -> JSONResponse:
        if request.path_params["sid"] != SID:
            return _error(404, 20404, "The requested resource was not found")
        expected = "Basic " + base64.b64encode(f"{SID}:{AUTH}".encode()).decode()
        if request.headers.get("authorization") != expected:
            state.refusals.append("auth")
            return _error(401, 20003, "Authenticate")
        if not request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"):
            state.refusals.append("content-type")
            return _error(400, 20001, "Expected a form-encoded body")
        fields = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True,
                           strict_parsing=True)
        form = dict(fields)
        if len(form) != len(fields):
            return _error(400, 20001, "A parameter was repeated")
        if not form.get("To") or not form.get("From"):
            return _error(400, 21201, "No 'To' or 'From' number is specified")
        if sum(1 for k in ("Url", "Twiml", "ApplicationSid") if form.get(k)) != 1:
            return _error(400, 21205, "Url, Twiml or ApplicationSid is required")
        try:
            ET.fromstring(str(form["Twiml"]))
        except ET.ParseError:
            return _error(400, 12100, "Document parse failure")
        state.calls.append(form)
        scripted = state.scripted.get(str(form["To"]))
        if scripted is not None:
            return _error(scripted.status, scripted.code, scripted.message, scripted.headers)
        call_sid = "CA" + uuid.uuid4().hex
        return JSONResponse({
            "sid": call_sid, "account_sid": SID, "to": form["To"], "from": form["From"],
            "status": "queued", "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{SID}/Calls/{call_sid}.json"}, status_code=201)

    return Starlette(routes=[Route("/2010-04-01/Accounts/{sid}/Calls.json", calls,
                                   methods=["POST"])])


@pytest.fixture(scope="module")
def twilio() -> Iterator[TwilioServer]:
    state = TwilioServer()
    with serve_asgi(_app(state)) as state.url:
        yield state


def _call(to: str = "+14155550199") -> VoiceCall:
    request = {"message_id": "m-1", "app_id": "app", "address": to, "channel": "VOICE",
               "content": {"body": "Hello <you> & welcome", "language_code": "en-GB",
                           "voice_id": "Amy"}}
    call = prepare_call(request, None, VoiceDefaults(origination_number="+14155550100"), 0)
    assert isinstance(call, VoiceCall)
    return call


def _transport(server: TwilioServer, **changes: Any) -> TwilioVoice:
    config = TwilioVoiceConfig(**{"account_sid": SID, "auth_token": AUTH,
                                  "base_url": server.url, "timeout_s": 5, **changes})
    return TwilioVoice(config)


async def test_a_call_is_placed_with_form_fields_auth_and_twiml(twilio: TwilioServer) -> None:
    transport = _transport(twilio, status_callback_url="https://lodestar.example/")
    try:
        outcome = await transport.send(_call())
    finally:
        await transport.aclose()
    assert outcome.kind is ProviderOutcomeKind.ACCEPTED, outcome
    assert outcome.status_code == 201
    assert outcome.provider_message_id and outcome.provider_message_id.startswith("CA")
    form = twilio.calls[-1]
    assert (form["To"], form["From"]) == ("+14155550199", "+14155550100")
    assert form["StatusCallback"] == "https://lodestar.example/voice/status/twilio/app?m=m-1"
    assert (form["StatusCallbackEvent"], form["StatusCallbackMethod"]) == ("completed", "POST")
    root = ET.fromstring(form["Twiml"])
    [say] = list(root)
    assert (root.tag, say.tag) == ("Response", "Say")
    assert say.attrib == {"language": "en-GB", "voice": "Polly.Amy"}
    assert say.text == "Hello <you> & welcome"


@pytest.mark.parametrize(("scripted", "kind", "record_status"), [
    (Scripted(400, 21211, "Invalid 'To' Phone Number"), ProviderOutcomeKind.DEAD_ADDRESS,
     "INVALID"),
    (Scripted(400, 21215, "Account not authorized to call +8869"),
     ProviderOutcomeKind.PERMANENT, "BLOCKED"),
    (Scripted(400, 21216, "Account not allowed to call this number"),
     ProviderOutcomeKind.PERMANENT, "BLOCKED"),
    (Scripted(400, 21210, "'From' phone number not verified"), ProviderOutcomeKind.PERMANENT,
     None),
    (Scripted(503, 20500, "Service unavailable"), ProviderOutcomeKind.RETRY, None),
])
async def test_twilio_errors_are_mapped(twilio: TwilioServer, scripted: Scripted,
                                        kind: ProviderOutcomeKind,
                                        record_status: str | None) -> None:
    to = f"+1500555{scripted.code:04d}"[-12:]
    twilio.scripted[to] = scripted
    transport = _transport(twilio)
    try:
        outcome = await transport.send(_call(to))
    finally:
        await transport.aclose()
    assert outcome.kind is kind, outcome
    assert outcome.status_code == scripted.status
    assert outcome.record_status == record_status
    assert str(scripted.code) in outcome.message


@pytest.mark.parametrize("status", [429, 400])
async def test_rate_limits_are_retried_after_retry_after(twilio: TwilioServer,
                                                         status: int) -> None:
    to = f"+1415555{status:04d}"
    twilio.scripted[to] = Scripted(status, 20429, "Too Many Requests", {"Retry-After": "3"})
    transport = _transport(twilio)
    try:
        outcome = await transport.send(_call(to))
    finally:
        await transport.aclose()
    assert outcome.kind is ProviderOutcomeKind.RETRY
    assert outcome.throttled and outcome.retry_after_s == 3


async def test_wrong_credentials_are_permanent(twilio: TwilioServer) -> None:
    transport = _transport(twilio, auth_token="wrong")
    try:
        outcome = await transport.send(_call())
    finally:
        await transport.aclose()
    assert outcome.kind is ProviderOutcomeKind.PERMANENT and outcome.status_code == 401
    assert "20003" in outcome.message
    assert twilio.refusals[-1] == "auth"


async def test_no_answer_is_a_retry() -> None:
    transport = TwilioVoice(TwilioVoiceConfig(SID, AUTH, f"http://127.0.0.1:{free_port()}",
                                              timeout_s=2))
    try:
        outcome = await transport.send(_call())
    finally:
        await transport.aclose()
    assert outcome.kind is ProviderOutcomeKind.RETRY and outcome.status_code is None


async def test_without_a_callback_base_no_status_is_asked(twilio: TwilioServer) -> None:
    transport = _transport(twilio)
    try:
        outcome = await transport.send(_call())
    finally:
        await transport.aclose()
    assert outcome.kind is ProviderOutcomeKind.ACCEPTED
    assert "StatusCallback" not in twilio.calls[-1]
    assert "StatusCallbackEvent" not in twilio.calls[-1]


def test_callback_urls_quote_the_ids() -> None:
    assert status_callback_url("https://api.example/base/", "app 1", "m/1+2") == (
        "https://api.example/base/voice/status/twilio/app%201?m=m%2F1%2B2")
