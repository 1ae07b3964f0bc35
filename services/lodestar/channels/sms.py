"""SMS providers over HTTP: Twilio's Messages API and a configurable generic HTTP API.

Each provider has ``async def send(message: OutboundSms) -> ProviderOutcome`` and
never raises for a provider's answer or a network failure (``core.provider_outcome``).
One ``httpx.AsyncClient`` per provider, made at start-up (or passed in) and reused
for every message; ``aclose()`` closes a client the provider made itself.

Twilio (``TwilioProvider``): ``POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json``,
form-encoded ``To``, ``From`` (or ``MessagingServiceSid`` when one is configured),
``Body`` and ``StatusCallback`` (when configured), HTTP Basic ``AccountSid:AuthToken``.
A 2xx answer is ACCEPTED with the message ``sid``. An error answer is JSON
``{code, message, more_info, status}``; ``twilio_outcome`` reads its ``code``
(``TWILIO_ERRORS``: e.g. 21211/21614/21635 → DEAD_ADDRESS INVALID, 21610 → PERMANENT
OPTED_OUT, 21408 → PERMANENT BLOCKED, 21612 → PERMANENT UNREACHABLE, 20429/21611 →
RETRY throttled) and otherwise the HTTP status (429 and 5xx RETRY honouring
Retry-After, other 4xx PERMANENT).

Generic (``GenericHttpProvider``): ``GenericHttpConfig`` says the URL, method, the
JSON field names of ``to``/``from``/``body``/``message_id`` (a name ``""`` leaves
the field out), constant ``extra`` fields, headers (e.g. ``Authorization``), which
statuses mean success and the dotted JSON path of the provider's message id
(``data.messages.0.id``). Another 2xx is PERMANENT (unexpected); anything else is
read by ``from_http_status``. With a ``receipt`` object (``core.sms_receipts.ReceiptRules``)
the provider's delivery receipts are accepted at ``/sms/status/generic/<app>?t=<token>``
(``api.sms_inbound``); a ``status_callback`` field name sends each message's own receipt
URL (``generic_status_callback_url``) when ``LODESTAR_SMS_STATUS_CALLBACK_URL`` is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from lodestar.channels.http_answers import answer_json, retry_after
from lodestar.core.delivery_events import RecordStatus
from lodestar.core.provider_outcome import (
    ProviderOutcome,
    ProviderOutcomeKind,
    accepted,
    from_http_status,
    network_failure,
)
from lodestar.core.sms_receipts import ReceiptRules, receipt_rules_from_mapping, value_at
from lodestar.core.sms_sending import OutboundSms

MAX_ERROR_TEXT = 300


class SmsProvider(Protocol):
    name: str

    async def send(self, message: OutboundSms) -> ProviderOutcome: ...

    async def aclose(self) -> None: ...


def status_callback_url(base: str, app_id: str, message_id: str) -> str:
    """Where Twilio reports the delivery status of ``message_id``."""
    return (f"{base.rstrip('/')}/sms/status/twilio/{quote(app_id, safe='')}"
            f"?m={quote(message_id, safe='')}")


def generic_status_callback_url(base: str, app_id: str, token: str,
                                message_id: str | None = None) -> str:
    """Where a generic provider reports delivery: per message (``message_id``) or, without
    one, the account-wide receipt URL to configure at the provider."""
    url = f"{base.rstrip('/')}/sms/status/generic/{quote(app_id, safe='')}?t={token}"
    return url if message_id is None else f"{url}&m={quote(message_id, safe='')}"


async def _post(
    client: httpx.AsyncClient, request: httpx.Request, auth: httpx.Auth | None = None
) -> httpx.Response | ProviderOutcome:
    """The response, or a RETRY outcome for a network failure or timeout."""
    try:
        return await client.send(request, auth=auth)
    except httpx.TimeoutException as exc:
        return network_failure(f"timeout: {type(exc).__name__}")
    except httpx.HTTPError as exc:
        return network_failure(f"{type(exc).__name__}: {exc}")


class _OwnedClient:
    def __init__(self, client: httpx.AsyncClient | None, timeout_s: float) -> None:
        self._owns = client is None
        self.client = client or httpx.AsyncClient(
            timeout=timeout_s, limits=httpx.Limits(max_keepalive_connections=20))

    async def aclose(self) -> None:
        if self._owns:
            await self.client.aclose()


# -- Twilio -------------------------------------------------------------------------


@dataclass(frozen=True)
class TwilioError:
    kind: ProviderOutcomeKind
    record_status: RecordStatus | None
    throttled: bool = False


_K = ProviderOutcomeKind
_R = RecordStatus
TWILIO_ERRORS: Mapping[int, TwilioError] = {
    21211: TwilioError(_K.DEAD_ADDRESS, _R.INVALID),  # invalid 'To' number
    21614: TwilioError(_K.DEAD_ADDRESS, _R.INVALID),  # 'To' is not a mobile number
    21635: TwilioError(_K.DEAD_ADDRESS, _R.INVALID),  # 'To' is a landline
    21610: TwilioError(_K.PERMANENT, _R.OPTED_OUT),  # recipient replied STOP
    21408: TwilioError(_K.PERMANENT, _R.BLOCKED),  # region disabled (geo permissions)
    21612: TwilioError(_K.PERMANENT, _R.UNREACHABLE),  # no route between From and To
    21608: TwilioError(_K.PERMANENT, _R.BLOCKED),  # trial account, unverified 'To'
    21606: TwilioError(_K.PERMANENT, _R.BLOCKED),  # 'From' cannot send SMS
    21268: TwilioError(_K.PERMANENT, _R.BLOCKED),  # premium-rate destination
    21602: TwilioError(_K.PERMANENT, _R.INVALID_MESSAGE),  # Body required
    21617: TwilioError(_K.PERMANENT, _R.INVALID_MESSAGE),  # Body over 1600 characters
    20003: TwilioError(_K.PERMANENT, None),  # authentication failed
    20429: TwilioError(_K.RETRY, None, throttled=True),  # too many requests
    21611: TwilioError(_K.RETRY, None, throttled=True),  # 'From' queue is full
}
"""Twilio error codes (twilio.com/docs/api/errors) that decide more than the status."""


def twilio_outcome(status: int, body: Any, retry_after_s: float | None) -> ProviderOutcome:
    """The outcome of one Twilio Messages API answer (pure)."""
    data = body if isinstance(body, Mapping) else {}
    if 200 <= status <= 299:
        sid = data.get("sid")
        return accepted(status, sid if isinstance(sid, str) else None,
                        f"twilio status {data.get('status', 'unknown')}")
    code = data.get("code")
    text = str(data.get("message") or f"HTTP {status}")[:MAX_ERROR_TEXT]
    message = f"twilio error {code}: {text}" if code is not None else f"twilio: {text}"
    known = TWILIO_ERRORS.get(code) if isinstance(code, int) else None
    if known is None:
        return from_http_status(status, message, retry_after_s=retry_after_s)
    return ProviderOutcome(
        known.kind, status, message,
        retry_after_s=retry_after_s if known.kind is _K.RETRY else None,
        record_status=None if known.record_status is None else known.record_status.value,
        throttled=known.throttled or status == 429,
    )


@dataclass(frozen=True)
class TwilioConfig:
    account_sid: str
    auth_token: str = field(repr=False)
    base_url: str = "https://api.twilio.com"
    messaging_service_sid: str | None = None
    """When set, messages go out through this Messaging Service (no ``From``)."""
    status_callback: str | None = None
    """Public base URL of Lodestar's API: each message asks Twilio to report its status
    to ``<base>/sms/status/twilio/<app>?m=<message id>`` (``api.sms_inbound``)."""
    timeout_s: float = 10.0


class TwilioProvider:
    """Twilio's Messages API."""

    name = "twilio"

    def __init__(self, config: TwilioConfig, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._client = _OwnedClient(client, config.timeout_s)
        self._auth = httpx.BasicAuth(config.account_sid, config.auth_token)
        self.url = (f"{config.base_url.rstrip('/')}/2010-04-01/Accounts/"
                    f"{config.account_sid}/Messages.json")

    def form(self, message: OutboundSms) -> dict[str, str]:
        """The form fields of ``message``."""
        out = {"To": message.to, "Body": message.body}
        if self.config.messaging_service_sid:
            out["MessagingServiceSid"] = self.config.messaging_service_sid
        else:
            out["From"] = message.origination
        if self.config.status_callback and message.app_id:
            out["StatusCallback"] = status_callback_url(self.config.status_callback,
                                                        message.app_id, message.message_id)
        return out

    async def send(self, message: OutboundSms) -> ProviderOutcome:
        client = self._client.client
        request = client.build_request(
            "POST", self.url, data=self.form(message), headers={"Accept": "application/json"})
        response = await _post(client, request, self._auth)
        if isinstance(response, ProviderOutcome):
            return response
        return twilio_outcome(response.status_code, answer_json(response), retry_after(response))

    async def aclose(self) -> None:
        await self._client.aclose()


# -- generic HTTP -----------------------------------------------------------------


DEFAULT_FIELDS: Mapping[str, str] = {
    "to": "to", "from": "from", "body": "body", "message_id": "message_id",
    "status_callback": ""}


@dataclass(frozen=True)
class GenericHttpConfig:
    url: str
    method: str = "POST"
    fields: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_FIELDS))
    """Our name (to, from, body, message_id, status_callback) → the provider's JSON field
    ("" omits it; status_callback is omitted unless named)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Constant fields added to every body."""
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    success_statuses: frozenset[int] = frozenset({200, 201, 202})
    message_id_path: str | None = "id"
    """Dotted path of the provider's message id in the JSON answer (list items by index)."""
    timeout_s: float = 10.0
    receipt: ReceiptRules | None = None
    """How the provider's delivery receipts read; None: they are not accepted."""
    status_callback: str | None = None
    """Public base URL of Lodestar's API, for the per-message receipt URL."""

    def __post_init__(self) -> None:
        unknown = set(self.fields) - set(DEFAULT_FIELDS)
        if unknown:
            raise ValueError(f"unknown SMS field(s) {sorted(unknown)}; "
                             f"expected {sorted(DEFAULT_FIELDS)}")


class GenericHttpProvider:
    """A JSON-over-HTTP SMS API described by ``GenericHttpConfig``."""

    name = "generic"

    def __init__(self, config: GenericHttpConfig,
                 client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._client = _OwnedClient(client, config.timeout_s)

    def body(self, message: OutboundSms) -> dict[str, Any]:
        """The JSON body of ``message``."""
        fields = {**DEFAULT_FIELDS, **self.config.fields}
        callback = None
        if self.config.receipt is not None and self.config.status_callback and message.app_id:
            callback = generic_status_callback_url(self.config.status_callback, message.app_id,
                                                   self.config.receipt.token, message.message_id)
        values = {"to": message.to, "from": message.origination, "body": message.body,
                  "message_id": message.message_id, "status_callback": callback}
        out = dict(self.config.extra)
        for ours, theirs in fields.items():
            if theirs and values[ours] is not None:
                out[theirs] = values[ours]
        return out

    async def send(self, message: OutboundSms) -> ProviderOutcome:
        client = self._client.client
        request = client.build_request(
            self.config.method.upper(), self.config.url, json=self.body(message),
            headers=dict(self.config.headers),
        )
        response = await _post(client, request)
        if isinstance(response, ProviderOutcome):
            return response
        status = response.status_code
        if status in self.config.success_statuses:
            return accepted(status, value_at(answer_json(response), self.config.message_id_path))
        text = f"HTTP {status}: {response.text[:MAX_ERROR_TEXT]}"
        if 200 <= status <= 299:
            return ProviderOutcome(_K.PERMANENT, status, f"unexpected success status; {text}")
        return from_http_status(status, text, retry_after_s=retry_after(response))

    async def aclose(self) -> None:
        await self._client.aclose()


_GENERIC_KEYS = {"url", "method", "fields", "extra", "headers", "success_statuses",
                 "message_id_path", "timeout_s", "receipt"}


def generic_config_from_mapping(data: object) -> GenericHttpConfig:
    """A ``GenericHttpConfig`` from its JSON form (the dataclass's field names), e.g.
    ``{"url": "https://sms.example/v1/send", "fields": {"to": "msisdn"},
    "headers": {"Authorization": "Bearer …"}, "success_statuses": [200, 202],
    "message_id_path": "data.id"}``; ``ValueError`` naming the field when malformed."""
    if not isinstance(data, Mapping):
        raise ValueError("the generic SMS provider configuration is a JSON object")
    unknown = set(data) - _GENERIC_KEYS
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}; expected {sorted(_GENERIC_KEYS)}")
    url = data.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError("url: an http(s) URL is required")
    kwargs: dict[str, Any] = {"url": url}
    for name in ("fields", "headers"):
        value = data.get(name, {})
        if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ValueError(f"{name}: an object of strings")
        kwargs[name] = dict(value)
    extra = data.get("extra", {})
    if not isinstance(extra, Mapping):
        raise ValueError("extra: an object")
    kwargs["extra"] = dict(extra)
    method = data.get("method", "POST")
    if not isinstance(method, str) or method.upper() not in ("POST", "PUT", "PATCH"):
        raise ValueError("method: POST, PUT or PATCH")
    kwargs["method"] = method.upper()
    statuses = data.get("success_statuses", [200, 201, 202])
    if not isinstance(statuses, list) or not statuses or not all(
            isinstance(s, int) and not isinstance(s, bool) and 200 <= s <= 299
            for s in statuses):
        raise ValueError("success_statuses: a non-empty list of 2xx statuses")
    kwargs["success_statuses"] = frozenset(statuses)
    path = data.get("message_id_path", "id")
    if path is not None and not isinstance(path, str):
        raise ValueError("message_id_path: a dotted path or null")
    kwargs["message_id_path"] = path
    timeout = data.get("timeout_s", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError("timeout_s: a number of seconds > 0")
    kwargs["timeout_s"] = float(timeout)
    if data.get("receipt") is not None:
        kwargs["receipt"] = receipt_rules_from_mapping(data["receipt"])
    return GenericHttpConfig(**kwargs)
