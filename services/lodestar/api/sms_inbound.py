"""Twilio's webhooks: inbound SMS (``POST /sms/inbound/twilio/{application_id}``), SMS
delivery receipts (``POST /sms/status/twilio/{application_id}?m=``) and voice call
outcomes (``POST /voice/status/twilio/{application_id}?m=``, ``core.voice_receipts``);
and a generic SMS provider's delivery receipts
(``GET|POST /sms/status/generic/{application_id}?t=<token>[&m=]``).

Outside ``/v1`` (no SigV4): Twilio authenticates the request with
``X-Twilio-Signature``, base64 HMAC-SHA1 under the account's auth token over the
full URL Twilio requested followed by every form parameter, sorted by name, as
name + value (``twilio_signature``). A missing or wrong signature answers 403;
without a configured auth token the route answers 404.

The whole inbound message body is read by ``core.sms_keywords``:

- opt-out words (STOP, …): every live SMS endpoint of the application whose
  Address is the sender's number (``From``) gets an UPSERT endpoint command setting
  ``OptOut: ALL`` and an ``_SMS.OPTOUT`` delivery record (record_status OPTED_OUT,
  ``keyword``), as ``api.tracking``'s unsubscribe does for email;
- opt-in words (START, …): the same endpoints get ``OptOut: NONE``;
- HELP / INFO: answered with TwiML ``<Response><Message>help text</Message></Response>``.

Every other answer is an empty ``<Response/>``. Command ids and event ids derive
from Twilio's ``MessageSid``, so a webhook Twilio retries changes nothing twice.
A publishing failure answers 500 (Twilio shows it in its debugger).

The status callbacks publish the receipt of a final status (``core.sms_receipts``,
``core.voice_receipts``) about the original send, looked up in ``sent_messages``.

A generic provider's receipts are authenticated by the token of the ``receipt``
rules in ``LODESTAR_SMS_GENERIC_CONFIG`` (``?t=``; 403 when wrong, 404 without
rules). The receipt is a JSON object, a form, or (GET) the query string; the
message it is about is ``?m=`` (the per-message URL), else the message id the
receipt echoes, else the provider's message id the sender stored. A receipt about
no message this app sent answers 404 (the provider retries: its receipt may have
overtaken the sender's stored outcome).

Configuration (``app.state.sms_inbound``, a ``SmsInboundConfig``, shared by every
route here): the Twilio auth token, the help text, and ``public_base_url`` — the
scheme and host Twilio is told to call, when Lodestar sits behind a proxy that
changes them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit
from xml.sax.saxutils import escape

import asyncpg
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from lodestar.api.event_publisher import EventPublisher
from lodestar.core.delivery_events import (
    Channel,
    DeliverySubject,
    Record,
    RecordStatus,
    sms_outcome,
)
from lodestar.core.endpoint_commands import upsert_command
from lodestar.core.price_table import DEFAULT_PRICES, PriceTable
from lodestar.core.sms_keywords import (
    DEFAULT_HELP_TEXT,
    KeywordAction,
    keyword_reply,
    read_keyword,
)
from lodestar.core.sms_receipts import (
    ReceiptRules,
    generic_receipt_record,
    read_generic_receipt,
    receipt_record,
)
from lodestar.core.voice_receipts import CALL_ENDINGS
from lodestar.core.voice_receipts import receipt_record as voice_receipt_record

log = logging.getLogger(__name__)

_TWIML = '<?xml version="1.0" encoding="UTF-8"?>'


@dataclass(frozen=True)
class SmsInboundConfig:
    twilio_auth_token: str | None = field(default=None, repr=False)
    help_text: str = DEFAULT_HELP_TEXT
    public_base_url: str | None = None
    prices: PriceTable = DEFAULT_PRICES
    """What completed calls cost (call-status callbacks)."""
    generic_receipts: ReceiptRules | None = None
    """How the generic SMS provider's delivery receipts read (None: not accepted)."""

    @classmethod
    def from_settings(cls, settings: Any) -> SmsInboundConfig:
        """From ``LODESTAR_TWILIO_AUTH_TOKEN``, ``LODESTAR_SMS_HELP_TEXT``,
        ``LODESTAR_SMS_INBOUND_BASE_URL`` and ``LODESTAR_PRICE_TABLE``
        (``settings.channels``)."""
        from lodestar.channels.factory import price_table

        channels = settings.channels
        return cls(
            twilio_auth_token=channels.twilio_auth_token,
            help_text=channels.sms_help_text or DEFAULT_HELP_TEXT,
            public_base_url=channels.sms_inbound_base_url,
            prices=price_table(settings),
            generic_receipts=_generic_receipts(channels.sms_generic_config_file),
        )


def _generic_receipts(path: str | None) -> ReceiptRules | None:
    """The ``receipt`` rules of the generic SMS provider's configuration file, if any;
    ``ValueError`` naming the setting when the file cannot be read."""
    if not path:
        return None
    from lodestar.channels.sms import generic_config_from_mapping

    try:
        with open(path, encoding="utf-8") as handle:
            return generic_config_from_mapping(json.load(handle)).receipt
    except (OSError, ValueError) as exc:
        raise ValueError(f"LODESTAR_SMS_GENERIC_CONFIG ({path}): {exc}") from None


def twilio_signature(url: str, params: Iterable[tuple[str, str]], auth_token: str) -> str:
    """Twilio's X-Twilio-Signature of a form POST to ``url``."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _url_variants(url: str) -> list[str]:
    """The URL as given, and with its default port added or removed (Twilio's libraries
    accept both, since proxies differ on whether the port is kept)."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if default is None or not host:
        return [url]
    other = (f"{host}:{default}" if parts.port is None
             else host if parts.port == default else None)
    if other is None:
        return [url]
    return [url, urlunsplit(parts._replace(netloc=other))]


def signature_valid(url: str, params: list[tuple[str, str]], auth_token: str,
                    signature: str | None) -> bool:
    if not signature:
        return False
    return any(hmac.compare_digest(twilio_signature(candidate, params, auth_token), signature)
               for candidate in _url_variants(url))


def _request_url(request: Request, config: SmsInboundConfig) -> str:
    if config.public_base_url:
        query = f"?{request.url.query}" if request.url.query else ""
        return f"{config.public_base_url.rstrip('/')}{request.url.path}{query}"
    return str(request.url)


def _twiml(message: str | None) -> Response:
    body = (f"{_TWIML}<Response><Message>{escape(message)}</Message></Response>"
            if message is not None else f"{_TWIML}<Response/>")
    return Response(body, media_type="text/xml")


async def sms_endpoints_of(pool: asyncpg.Pool, app_id: str, number: str) -> list[str]:
    """Ids of the app's live SMS endpoints whose Address is ``number``."""
    rows = await pool.fetch(
        "SELECT endpoint_id FROM endpoint_read_model WHERE app_id = $1 AND address = $2"
        " AND channel_type = 'SMS' AND NOT deleted ORDER BY endpoint_id",
        app_id, number,
    )
    return [r["endpoint_id"] for r in rows]


def _command_id(message_sid: str | None, endpoint_id: str) -> str:
    if not message_sid:
        return uuid.uuid4().hex
    return hashlib.sha256(f"sms-inbound\0{message_sid}\0{endpoint_id}".encode()).hexdigest()[:32]


async def twilio_inbound(request: Request) -> Response:
    """``POST /sms/inbound/twilio/{application_id}``: Twilio's incoming-message webhook."""
    config: SmsInboundConfig = request.app.state.sms_inbound
    if not config.twilio_auth_token:
        return PlainTextResponse("Not found.", status_code=404)
    raw = (await request.body()).decode("utf-8", "replace")
    params = parse_qsl(raw, keep_blank_values=True)
    if not signature_valid(_request_url(request, config), params, config.twilio_auth_token,
                           request.headers.get("x-twilio-signature")):
        return PlainTextResponse("Invalid X-Twilio-Signature.", status_code=403)
    form = dict(params)
    app_id = request.path_params["application_id"]
    sender, ours = form.get("From", ""), form.get("To")
    message_sid = form.get("MessageSid") or form.get("SmsSid")
    match = read_keyword(form.get("Body"))
    if match.action in (KeywordAction.OPT_OUT, KeywordAction.OPT_IN) and sender:
        endpoint_ids = await sms_endpoints_of(request.app.state.pool, app_id, sender)
        await _apply(request.app.state.publisher, app_id, endpoint_ids, match.action,
                     match.keyword or "", sender, ours, message_sid)
        log.info("inbound %s from %s: %s on %d endpoint(s) of app %s", match.keyword,
                 sender, match.action.value, len(endpoint_ids), app_id)
    return _twiml(keyword_reply(match.action, config.help_text))


async def _apply(publisher: EventPublisher, app_id: str, endpoint_ids: list[str],
                 action: KeywordAction, keyword: str, sender: str, ours: str | None,
                 message_sid: str | None) -> None:
    now = int(time.time() * 1000)
    opt_out = "ALL" if action is KeywordAction.OPT_OUT else "NONE"
    await publisher.publish_commands([
        upsert_command(app_id, endpoint_id, {"OptOut": opt_out},
                       _command_id(message_sid, endpoint_id), now)
        for endpoint_id in endpoint_ids])
    if action is not KeywordAction.OPT_OUT:
        return
    message_id = message_sid or f"sms-inbound-{uuid.uuid4().hex}"
    records = []
    for endpoint_id in endpoint_ids:
        subject = DeliverySubject(app_id, message_id, Channel.SMS, endpoint_id)
        record = sms_outcome(subject, now, record_status=RecordStatus.OPTED_OUT,
                             destination_phone_number=sender, origination_phone_number=ours,
                             number_of_message_parts=0, provider_event_id=endpoint_id)
        record["attributes"].update(keyword=keyword, inbound="true")
        records.append(record)
    await publisher.publish_deliveries(records)


async def _signed_form(request: Request) -> list[tuple[str, str]] | Response:
    """The form of a Twilio webhook whose X-Twilio-Signature is good, or the answer:
    404 without a configured auth token, 403 for a missing or wrong signature."""
    config: SmsInboundConfig = request.app.state.sms_inbound
    if not config.twilio_auth_token:
        return PlainTextResponse("Not found.", status_code=404)
    raw = (await request.body()).decode("utf-8", "replace")
    params = parse_qsl(raw, keep_blank_values=True)
    if not signature_valid(_request_url(request, config), params, config.twilio_auth_token,
                           request.headers.get("x-twilio-signature")):
        return PlainTextResponse("Invalid X-Twilio-Signature.", status_code=403)
    return params


async def stored_records(pool: asyncpg.Pool, app_id: str, message_id: str, channel: str
                         ) -> list[dict[str, Any]]:
    """The delivery records the ``channel`` sender stored for ``message_id`` (this app's)."""
    stored = await pool.fetchval(
        "SELECT deliveries FROM sent_messages WHERE app_id = $1 AND message_id = $2"
        " AND channel = $3", app_id, message_id, channel)
    if stored is None:
        return []
    records = json.loads(stored) if isinstance(stored, str) else stored
    return [r for r in records or () if isinstance(r, dict)]


ReceiptRecord = Callable[[str, str, dict[str, str], list[dict[str, Any]], int],
                         Record | None]
"""(app id, message id, callback form, the send's stored records, now) → the record."""


async def _status_callback(request: Request, channel: str, receipt: ReceiptRecord
                           ) -> Response:
    """A signed Twilio status callback about message ``?m=`` of ``channel``: its record
    (``receipt``, about the original send) published, or nothing for an interim status."""
    params = await _signed_form(request)
    if isinstance(params, Response):
        return params
    message_id = request.query_params.get("m")
    if not message_id:
        return PlainTextResponse("The callback URL lacks ?m=<message id>.", status_code=400)
    app_id = request.path_params["application_id"]
    stored = await stored_records(request.app.state.pool, app_id, message_id, channel)
    record = receipt(app_id, message_id, dict(params), stored, int(time.time() * 1000))
    if record is not None:
        publisher: EventPublisher = request.app.state.publisher
        await publisher.publish_deliveries([record])
    return PlainTextResponse("", status_code=204)


async def twilio_status(request: Request) -> Response:
    """``POST /sms/status/twilio/{application_id}?m=<message id>``: Twilio's status
    callback for a message the SMS sender sent (``core.sms_receipts``)."""
    return await _status_callback(request, "SMS", receipt_record)


async def twilio_call_status(request: Request) -> Response:
    """``POST /voice/status/twilio/{application_id}?m=<message id>``: Twilio's status
    callback for a call the voice sender placed (``core.voice_receipts``), priced with
    the price table (``LODESTAR_PRICE_TABLE``)."""
    prices = request.app.state.sms_inbound.prices
    return await _status_callback(
        request, "VOICE",
        lambda app, mid, form, stored, now: voice_receipt_record(app, mid, form, stored, now,
                                                                 prices))


async def _receipt_body(request: Request) -> dict[str, Any] | None:
    """A generic receipt's fields: the JSON object, the form, or (GET) the query string
    without ``t`` and ``m``; None when a POST body is neither."""
    if request.method == "GET":
        return {k: v for k, v in request.query_params.items() if k not in ("t", "m")}
    raw = await request.body()
    if "json" in request.headers.get("content-type", ""):
        try:
            body = json.loads(raw)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


async def _message_of(pool: asyncpg.Pool, app_id: str, provider_id: str) -> str | None:
    """Lodestar's id of the SMS this app sent that the provider calls ``provider_id``."""
    found: str | None = await pool.fetchval(
        "SELECT message_id FROM sent_messages WHERE app_id = $1 AND provider_message_id = $2"
        " AND channel = 'SMS' ORDER BY claimed_at DESC LIMIT 1", app_id, provider_id)
    return found


async def generic_status(request: Request) -> Response:
    """``GET|POST /sms/status/generic/{application_id}?t=<token>[&m=<message id>]``: a
    generic SMS provider's delivery receipt (``core.sms_receipts.ReceiptRules``)."""
    rules: ReceiptRules | None = request.app.state.sms_inbound.generic_receipts
    if rules is None:
        return PlainTextResponse("No generic SMS provider receipts are configured (the "
                                 "receipt object of LODESTAR_SMS_GENERIC_CONFIG).", 404)
    if not hmac.compare_digest(request.query_params.get("t", "").encode(),
                               rules.token.encode()):
        return PlainTextResponse("Missing or wrong receipt token ?t=.", status_code=403)
    body = await _receipt_body(request)
    if body is None:
        return PlainTextResponse("The receipt must be a JSON object or a form.", 400)
    receipt = read_generic_receipt(body, rules)
    app_id = request.path_params["application_id"]
    pool = request.app.state.pool
    message_id = request.query_params.get("m") or receipt.message_id
    if not message_id and receipt.provider_id:
        message_id = await _message_of(pool, app_id, receipt.provider_id)
    if not message_id:
        return PlainTextResponse(
            f"No SMS of this app matches the receipt (message id at "
            f"{rules.message_id_path!r}, provider id {receipt.provider_id!r} at "
            f"{rules.provider_id_path!r}).", status_code=404)
    stored = await stored_records(pool, app_id, message_id, "SMS")
    record = generic_receipt_record(app_id, message_id, receipt, rules, stored,
                                    int(time.time() * 1000))
    if record is not None:
        publisher: EventPublisher = request.app.state.publisher
        await publisher.publish_deliveries([record])
    return PlainTextResponse("", status_code=204)


def sms_inbound_routes() -> list[Route]:
    """The SMS and voice webhooks, served without SigV4 (the provider's signature or
    token is the credential): Twilio's inbound messages, SMS delivery and voice call
    status callbacks; a generic SMS provider's delivery receipts."""
    return [Route("/sms/inbound/twilio/{application_id}", twilio_inbound, methods=["POST"]),
            Route("/sms/status/twilio/{application_id}", twilio_status, methods=["POST"]),
            Route("/voice/status/twilio/{application_id}", twilio_call_status,
                  methods=["POST"]),
            Route("/sms/status/generic/{application_id}", generic_status,
                  methods=["GET", "POST"])]


def openapi_paths() -> tuple[dict[str, Any], dict[str, Any]]:
    """This route's OpenAPI path item and component schemas (read by ``api.openapi``)."""
    callback_parameters = [
        {"name": "application-id", "in": "path", "required": True,
         "schema": {"type": "string"}},
        {"name": "m", "in": "query", "required": True,
         "description": "Lodestar's message id.", "schema": {"type": "string"}},
        {"name": "X-Twilio-Signature", "in": "header", "required": True,
         "schema": {"type": "string"}},
    ]
    twiml = {"text/xml": {"schema": {"type": "string"}}}
    text = {"text/plain": {"schema": {"type": "string"}}}

    def twilio_form(properties: dict[str, Any]) -> dict[str, Any]:
        """A Twilio webhook's form body with these documented fields."""
        return {"required": True, "content": {"application/x-www-form-urlencoded": {
            "schema": {"type": "object", "properties": properties,
                       "additionalProperties": {"type": "string"}}}}}

    def twilio_answers(recorded: str) -> dict[str, Any]:
        """A signed Twilio status callback's answers."""
        return {"204": {"description": recorded},
                "4XX": {"description": "400: no ?m=; 403: missing or invalid "
                                       "X-Twilio-Signature; 404: no Twilio auth token is "
                                       "configured.", "content": text}}
    item = {"post": {
        "operationId": "TwilioInboundSms",
        "tags": ["Lodestar"],
        "summary": "Inbound SMS webhook (Twilio): STOP / START / HELP keywords",
        "description": (
            "Lodestar extension (docs/sms.md). Configure it as the Twilio number's "
            "incoming-message webhook. Authenticated by `X-Twilio-Signature` (HMAC-SHA1 "
            "under the Twilio auth token), not SigV4. An opt-out keyword (STOP, STOPALL, "
            "UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT) sets `OptOut: ALL` on every SMS "
            "endpoint of the application whose Address is `From` and publishes "
            "`_SMS.OPTOUT`; START, UNSTOP, YES set `OptOut: NONE`; HELP and INFO are "
            "answered with the configured help text."),
        "security": [],
        "parameters": [
            {"name": "application-id", "in": "path", "required": True,
             "schema": {"type": "string"}},
            {"name": "X-Twilio-Signature", "in": "header", "required": True,
             "schema": {"type": "string"}},
        ],
        "requestBody": twilio_form({name: {"type": "string"} for name in (
            "MessageSid", "AccountSid", "From", "To", "Body")}),
        "responses": {
            "200": {"description": "TwiML: `<Response/>`, or `<Response><Message>help "
                                   "text</Message></Response>` for HELP.", "content": twiml},
            "4XX": {"description": "403: missing or invalid X-Twilio-Signature; 404: no "
                                   "Twilio auth token is configured.", "content": text},
        },
    }}
    status = {"post": {
        "operationId": "TwilioSmsStatus",
        "tags": ["Lodestar"],
        "summary": "SMS status callback (Twilio): delivery receipts",
        "description": (
            "Lodestar extension (docs/sms.md). The SMS sender sets each message's "
            "StatusCallback to this URL when LODESTAR_SMS_STATUS_CALLBACK_URL is set. "
            "Authenticated by `X-Twilio-Signature`. `delivered` publishes `_SMS.SUCCESS` "
            "with record_status DELIVERED; `undelivered`/`failed` publish `_SMS.FAILURE` "
            "with the record_status of Twilio's ErrorCode; interim statuses publish "
            "nothing. The record carries the original send's endpoint, campaign or journey."),
        "security": [],
        "parameters": callback_parameters,
        "requestBody": twilio_form({name: {"type": "string"} for name in (
            "MessageSid", "MessageStatus", "ErrorCode", "From", "To")}),
        "responses": twilio_answers("Recorded (or an interim status, ignored)."),
    }}
    call_status = {"post": {
        "operationId": "TwilioVoiceStatus",
        "tags": ["Lodestar"],
        "summary": "Voice call status callback (Twilio): how a call ended",
        "description": (
            "Lodestar extension (docs/voice-and-custom.md). The voice sender sets each "
            "call's StatusCallback to this URL (StatusCallbackEvent `completed`) when "
            "LODESTAR_VOICE_STATUS_CALLBACK_URL is set. Authenticated by "
            "`X-Twilio-Signature`. CallStatus `completed` publishes `_voice.success`; "
            "`busy`, `no-answer`, `failed`, `canceled` publish `_voice.failure` (Lodestar's "
            "event names: Pinpoint documents no voice delivery events), with `call_status`, "
            "the call sid and the metric `call_duration_seconds`; other statuses publish "
            "nothing. The record carries the original send's endpoint, campaign or journey "
            "and Context; a repeated callback has the same event id."),
        "security": [],
        "parameters": callback_parameters,
        "requestBody": twilio_form({
            **{name: {"type": "string"} for name in (
                "CallSid", "From", "To", "CallDuration", "AnsweredBy", "SipResponseCode",
                "Timestamp")},
            "CallStatus": {"type": "string", "description": "Final: "
                           + ", ".join(CALL_ENDINGS) + "; others are ignored."},
        }),
        "responses": twilio_answers("Recorded (or a status that is not final, ignored)."),
    }}
    generic_parameters = [
        callback_parameters[0],
        {"name": "t", "in": "query", "required": True,
         "description": "The receipt token of LODESTAR_SMS_GENERIC_CONFIG.",
         "schema": {"type": "string"}},
        {**callback_parameters[1], "required": False,
         "description": "Lodestar's message id (the per-message receipt URL)."},
    ]
    generic_description = (
        "Lodestar extension (docs/sms.md). A generic SMS provider's delivery receipt, read "
        "with the `receipt` rules of LODESTAR_SMS_GENERIC_CONFIG (status, error code and "
        "message id paths; delivered and failed status values; error code → "
        "record_status). Authenticated by the rules' token in `?t=`. The message is `?m=`, "
        "else the id the receipt echoes, else the provider's id the sender stored. A "
        "delivered status publishes `_SMS.SUCCESS` (record_status DELIVERED), a failed one "
        "`_SMS.FAILURE`; other statuses publish nothing.")
    generic_responses = {
        "204": {"description": "Recorded (or a status that is not final, ignored)."},
        "4XX": {"description": "400: the body is not a JSON object or form; 403: missing "
                               "or wrong token; 404: no receipt rules are configured, or "
                               "no SMS of the app matches the receipt.", "content": text},
    }
    generic = {
        "get": {"operationId": "GenericSmsStatusGet", "tags": ["Lodestar"],
                "summary": "SMS delivery receipt (generic provider), as query parameters",
                "description": generic_description, "security": [],
                "parameters": generic_parameters, "responses": generic_responses},
        "post": {"operationId": "GenericSmsStatus", "tags": ["Lodestar"],
                 "summary": "SMS delivery receipt (generic provider)",
                 "description": generic_description, "security": [],
                 "parameters": generic_parameters,
                 "requestBody": {"required": True, "content": {
                     "application/json": {"schema": {"type": "object"}},
                     "application/x-www-form-urlencoded": {"schema": {
                         "type": "object", "additionalProperties": {"type": "string"}}},
                 }},
                 "responses": generic_responses},
    }
    return {"/sms/inbound/twilio/{application-id}": item,
            "/sms/status/twilio/{application-id}": status,
            "/voice/status/twilio/{application-id}": call_status,
            "/sms/status/generic/{application-id}": generic}, {}
