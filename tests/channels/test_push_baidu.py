"""The Baidu Cloud Push sender against a local REST-3.0-shaped server on 127.0.0.1.

``BaiduPeer`` serves ``POST /rest/3.0/push/single_device``: it requires the
form content type and a ``BCCS_SDK/3.0`` User-Agent (30602 otherwise), the api key
(30603), a timestamp within ten minutes (30606) and a ``sign`` it recomputes from
the URL it was called at and the form it received, with its own byte-wise
PHP-``urlencode`` (30603 on a mismatch); then it answers by the channel id's prefix:
``expired`` 30607, ``unbound`` 30608, ``busy`` 30699 (HTTP 503, Retry-After 4),
``boom`` 30600 (HTTP 500), ``quota`` 30604, ``gateway`` a bare HTTP 502, else 200 with
``response_params.msg_id``. Error answers are ``{"request_id", "error_code",
"error_msg"}``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from tests.channels.push_peers import serve_app
from tests.conftest import free_port

from lodestar.channels.push_baidu import BaiduConfig, BaiduSender
from lodestar.core.provider_outcome import ProviderOutcomeKind
from lodestar.core.push_payloads import PushNotification

API_KEY = "Ljc710pzAa99GULCo8y48NvB"
SECRET = "87772555E1C16715EBA5C85341684C58"
NOTE = PushNotification(message_id="m-1", channel_type="BAIDU", title="Grüße ~ 100% *",
                        body="你好 world", data={"screen": "home&more=1"}, ttl_s=3600,
                        campaign={"campaign_id": "c-1"})
UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


def _urlencode(text: str) -> str:
    out = []
    for byte in text.encode("utf-8"):
        if byte in UNRESERVED:
            out.append(chr(byte))
        elif byte == 0x20:
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def _error(status: int, code: int, message: str, **headers: str) -> Response:
    return JSONResponse({"request_id": 987654321, "error_code": code, "error_msg": message},
                        status, headers=headers or None)


@dataclass
class BaiduPeer:
    requests: list[dict[str, str]] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    url: str = ""

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/rest/3.0/push/single_device", self._single, methods=["POST"])])

    async def _single(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"):
            return _error(400, 30602, "Request Params Not Valid, content type")
        agent = request.headers.get("user-agent", "")
        self.agents.append(agent)
        if not agent.startswith("BCCS_SDK/3.0"):
            return _error(400, 30602, "Request Params Not Valid, user agent")
        parsed = parse_qs((await request.body()).decode("ascii"), keep_blank_values=True)
        form = {k: v[0] for k, v in parsed.items()}
        self.requests.append(form)
        if form.get("apikey") != API_KEY:
            return _error(401, 30603, "Authentication Failed")
        if abs(time.time() - int(form.get("timestamp", "0"))) > 600:
            return _error(401, 30606, "Request Time Expires Timeout")
        base = "POST" + f"{self.url}/rest/3.0/push/single_device" + "".join(
            f"{k}={form[k]}" for k in sorted(form) if k != "sign") + SECRET
        if form.get("sign") != hashlib.md5(_urlencode(base).encode()).hexdigest():
            return _error(401, 30603, "Authentication Failed, sign")
        channel = form.get("channel_id", "")
        if not channel or "msg" not in form:
            return _error(400, 30602, "Request Params Not Valid")
        for prefix, status, code, message, extra in (
                ("expired", 404, 30607, "Channel Token Timeout", {}),
                ("unbound", 404, 30608, "Bind Relation Not Found", {}),
                ("busy", 503, 30699, "Requests Are Too Frequent", {"Retry-After": "4"}),
                ("boom", 500, 30600, "Internal Server Error", {}),
                ("quota", 403, 30604, "Quota Use Up Payment Required", {})):
            if channel.startswith(prefix):
                return _error(status, code, message, **extra)
        if channel.startswith("gateway"):
            return PlainTextResponse("Bad Gateway", 502)
        return JSONResponse({"request_id": 123456789, "response_params": {
            "msg_id": f"{len(self.requests)}00", "send_time": int(time.time())}})


@pytest.fixture(scope="module")
def server() -> Iterator[BaiduPeer]:
    peer = BaiduPeer()
    with serve_app(peer.app()) as url:
        peer.url = url
        yield peer


@pytest.fixture
def peer(server: BaiduPeer) -> BaiduPeer:
    server.requests.clear()
    server.agents.clear()
    return server


def _sender(peer: BaiduPeer, secret: str = SECRET,
            clock: Callable[[], float] = time.time) -> BaiduSender:
    return BaiduSender(BaiduConfig(API_KEY, secret, base_url=f"{peer.url}/rest/3.0"),
                       clock=clock)


async def test_accepted_with_a_valid_signature_and_pinpoints_message(peer: BaiduPeer) -> None:
    async with _sender(peer) as sender:
        outcome = await sender.send(NOTE, "1105115563847474869:3944730196422489622",
                                    icon_reference="ic_bell")
    assert outcome.kind is ProviderOutcomeKind.ACCEPTED, outcome.message
    assert outcome.provider_message_id == "100"
    [form] = peer.requests
    assert {k: v for k, v in form.items() if k not in ("msg", "timestamp", "sign")} == {
        "apikey": API_KEY, "device_type": "3", "channel_id": "3944730196422489622",
        "msg_type": "0", "msg_expires": "3600"}
    assert abs(int(form["timestamp"]) - time.time()) < 60
    msg = json.loads(form["msg"])
    assert msg["pinpoint.notification.title"] == "Grüße ~ 100% *"
    assert msg["pinpoint.notification.body"] == "你好 world"
    assert msg["pinpoint.notification.icon"] == "ic_bell"
    assert msg["pinpoint.campaign.campaign_id"] == "c-1"
    assert msg["screen"] == "home&more=1"
    assert peer.agents[0].startswith("BCCS_SDK/3.0 (")


async def test_each_send_is_signed_with_its_own_timestamp(peer: BaiduPeer) -> None:
    now = [time.time()]
    async with _sender(peer, clock=lambda: now[0]) as sender:
        assert (await sender.send(NOTE, "ok-1")).accepted
        now[0] += 30
        assert (await sender.send(NOTE, "ok-2")).accepted
    first, second = peer.requests
    assert int(second["timestamp"]) - int(first["timestamp"]) == 30
    assert first["sign"] != second["sign"]


async def test_a_stale_clock_is_refused_permanently(peer: BaiduPeer) -> None:
    async with _sender(peer, clock=lambda: time.time() - 3600) as sender:
        outcome = await sender.send(NOTE, "ok-1")
    assert (outcome.kind, outcome.status_code) == (ProviderOutcomeKind.PERMANENT, 401)
    assert outcome.message.startswith("30606")


async def test_a_wrong_secret_fails_the_signature(peer: BaiduPeer) -> None:
    async with _sender(peer, secret="not-the-secret") as sender:
        outcome = await sender.send(NOTE, "ok-1")
    assert (outcome.kind, outcome.status_code) == (ProviderOutcomeKind.PERMANENT, 401)
    assert outcome.message.startswith("30603")


@pytest.mark.parametrize(("channel", "kind", "status", "code"), [
    ("expired-1", ProviderOutcomeKind.DEAD_ADDRESS, 404, "30607"),
    ("unbound-1", ProviderOutcomeKind.DEAD_ADDRESS, 404, "30608"),
    ("boom-1", ProviderOutcomeKind.RETRY, 500, "30600"),
    ("quota-1", ProviderOutcomeKind.PERMANENT, 403, "30604"),
    ("gateway-1", ProviderOutcomeKind.RETRY, 502, "HTTP 502"),
])
async def test_error_answers(peer: BaiduPeer, channel: str, kind: ProviderOutcomeKind,
                             status: int, code: str) -> None:
    async with _sender(peer) as sender:
        outcome = await sender.send(NOTE, channel)
    assert (outcome.kind, outcome.status_code) == (kind, status)
    assert outcome.message.startswith(code)


async def test_too_frequent_is_throttled_and_honours_retry_after(peer: BaiduPeer) -> None:
    async with _sender(peer) as sender:
        outcome = await sender.send(NOTE, "busy-1")
    assert (outcome.kind, outcome.throttled, outcome.retry_after_s) == (
        ProviderOutcomeKind.RETRY, True, 4.0)


async def test_raw_content_is_sent_as_the_message(peer: BaiduPeer) -> None:
    raw = json.dumps({"pinpoint.openApp": True, "pinpoint.notification.title": "Hi"})
    note = PushNotification(message_id="m", channel_type="BAIDU", raw_content=raw)
    async with _sender(peer) as sender:
        assert (await sender.send(note, "ok-1")).accepted
    assert peer.requests[0]["msg"] == raw
    assert peer.requests[0]["msg_expires"] == "604800"


async def test_an_address_without_a_channel_id_is_not_sent(peer: BaiduPeer) -> None:
    async with _sender(peer) as sender:
        outcome = await sender.send(NOTE, "user-1:")
    assert outcome.kind is ProviderOutcomeKind.PERMANENT and peer.requests == []


async def test_network_failure_is_retry() -> None:
    url = f"http://127.0.0.1:{free_port()}/rest/3.0"
    async with httpx.AsyncClient(timeout=2.0) as client:
        sender = BaiduSender(BaiduConfig(API_KEY, SECRET, base_url=url), client=client)
        outcome = await sender.send(NOTE, "ok-1")
    assert outcome.kind is ProviderOutcomeKind.RETRY and outcome.status_code is None


async def test_default_url() -> None:
    async with httpx.AsyncClient() as client:
        sender = BaiduSender(BaiduConfig(API_KEY, SECRET), client=client)
    assert sender.send_url == "https://api.tuisong.baidu.com/rest/3.0/push/single_device"
