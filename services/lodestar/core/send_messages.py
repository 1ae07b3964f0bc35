"""SendMessages and SendUsersMessages as values: the request checked, one SendRequest per
recipient, and Pinpoint's per-recipient result.

Contract:

- ``parse_message_request(body)`` / ``parse_users_request(body)`` check the
  shape (``MessageConfiguration`` required; ``Addresses`` / ``Endpoints`` /
  ``Users`` objects of ``EndpointSendConfiguration``; each address has a
  known ``ChannelType``). Every problem is collected and raised together as
  ``SendRequestError`` (the API answers 400 with all of them).
- ``plan_sends(...)`` turns a parsed request, the resolved endpoints and a
  request id into ``Planned`` items: a ``SendRequest`` record to queue, or a
  result that ends the recipient now — the same statuses Pinpoint answers:
  OPT_OUT (endpoint ``OptOut: ALL``), PERMANENT_FAILURE (no such endpoint,
  INACTIVE endpoint, no address, no message configured for the channel, a
  channel SendMessages cannot use), DUPLICATE (the same channel and address
  already planned earlier in this request). A queued item's result is
  SUCCESSFUL with status 200 and message "Queued": the answer does not wait for
  the provider; the outcome follows on ``lodestar.deliveries`` under the same
  ``MessageId``.
- Message ids are ``message_ids.transactional_message_id(request_id, …)``, so a
  request replayed with the same RequestId maps to the same ids and senders
  deliver each at most once.
- Content per channel comes from ``MessageConfiguration``: ``EmailMessage``
  (SimpleEmail parts or Body/HtmlBody/Title), ``SMSMessage``, ``VoiceMessage``,
  and for push the ChannelType's own message (``GCMMessage``, ``APNSMessage``,
  ``ADMMessage``, ``BaiduMessage``) else ``DefaultPushNotificationMessage``.
  ``DefaultMessage.Body`` fills a missing body. Substitutions: the channel
  message's (or ``DefaultMessage``'s) overridden per name by the recipient's;
  ``Context`` likewise; ``BodyOverride``/``TitleOverride`` replace body/title.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lodestar.core.endpoint_view import endpoint_record
from lodestar.core.message_ids import transactional_message_id
from lodestar.core.provider_outcome import DeliveryStatus

PUSH_TYPES = frozenset({"GCM", "APNS", "APNS_SANDBOX", "APNS_VOIP", "APNS_VOIP_SANDBOX",
                        "ADM", "BAIDU", "PUSH"})
CHANNEL_OF_TYPE: Mapping[str, str] = {
    "EMAIL": "EMAIL", "SMS": "SMS", "VOICE": "VOICE", **{t: "PUSH" for t in PUSH_TYPES},
}
_PUSH_MESSAGE = {"GCM": "GCMMessage", "APNS": "APNSMessage", "APNS_SANDBOX": "APNSMessage",
                 "APNS_VOIP": "APNSMessage", "APNS_VOIP_SANDBOX": "APNSMessage",
                 "ADM": "ADMMessage", "BAIDU": "BaiduMessage"}
_TEMPLATE_KEY = {"EMAIL": "EmailTemplate", "SMS": "SMSTemplate", "PUSH": "PushTemplate",
                 "VOICE": "VoiceTemplate"}
_MESSAGE_KEYS = {"EmailMessage", "SMSMessage", "VoiceMessage", "GCMMessage", "APNSMessage",
                 "ADMMessage", "BaiduMessage", "DefaultPushNotificationMessage",
                 "DefaultMessage"}
_CONFIG_KEYS = {"BodyOverride", "Context", "RawContent", "Substitutions", "TitleOverride"}
MAX_RECIPIENTS = 100
"""Pinpoint's limit of addresses + endpoints (or users) in one request."""


class SendRequestError(ValueError):
    """The request cannot be accepted; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class MessageRequest:
    """A checked SendMessages (``users`` empty) or SendUsersMessages (``users`` set) body."""

    configuration: Mapping[str, Any]
    templates: Mapping[str, Any]
    context: Mapping[str, str]
    trace_id: str | None
    addresses: Mapping[str, Mapping[str, Any]]
    endpoints: Mapping[str, Mapping[str, Any]]
    users: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Result:
    """Pinpoint's MessageResult / EndpointMessageResult."""

    status: DeliveryStatus
    status_code: int
    message: str
    message_id: str | None = None
    address: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"DeliveryStatus": self.status.value,
                               "StatusCode": self.status_code, "StatusMessage": self.message}
        if self.message_id is not None:
            out["MessageId"] = self.message_id
        if self.address is not None:
            out["Address"] = self.address
        return out


@dataclass(frozen=True)
class Planned:
    """One recipient: the result to answer and, when queued, the SendRequest to publish."""

    result: Result
    send: dict[str, Any] | None = None


def _string_map(value: object, path: str, problems: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        problems.append(f"{path} must be an object of strings")
        return {}
    return dict(value)


def _substitutions(value: object, path: str, problems: list[str]) -> dict[str, list[str]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in value.values()):
        problems.append(f"{path} must map names to lists of strings")
        return {}
    return {str(k): list(v) for k, v in value.items()}


def _configs(value: object, path: str, problems: list[str]) -> dict[str, Mapping[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(f"{path} must be an object")
        return {}
    out: dict[str, Mapping[str, Any]] = {}
    for key, config in value.items():
        where = f"{path}.{key}"
        if not isinstance(config, Mapping):
            problems.append(f"{where} must be an object")
            continue
        unknown = set(config) - _CONFIG_KEYS - {"ChannelType"}
        if unknown:
            problems.append(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        _string_map(config.get("Context"), f"{where}.Context", problems)
        _substitutions(config.get("Substitutions"), f"{where}.Substitutions", problems)
        for name in ("BodyOverride", "TitleOverride", "RawContent"):
            if config.get(name) is not None and not isinstance(config[name], str):
                problems.append(f"{where}.{name} must be a string")
        out[str(key)] = config
    return out


def _common(body: object, problems: list[str]) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise SendRequestError(["the request body must be a JSON object"])
    configuration = body.get("MessageConfiguration")
    if not isinstance(configuration, Mapping) or not configuration:
        problems.append("MessageConfiguration is required and must name at least one "
                        f"channel message ({', '.join(sorted(_MESSAGE_KEYS))})")
    else:
        unknown = set(configuration) - _MESSAGE_KEYS
        if unknown:
            problems.append(f"MessageConfiguration: unsupported message(s) "
                            f"{', '.join(sorted(unknown))}")
        for key, message in configuration.items():
            if not isinstance(message, Mapping):
                problems.append(f"MessageConfiguration.{key} must be an object")
    templates = body.get("TemplateConfiguration")
    if templates is not None:
        if not isinstance(templates, Mapping):
            problems.append("TemplateConfiguration must be an object")
        else:
            for key, ref in templates.items():
                if not isinstance(ref, Mapping) or not isinstance(ref.get("Name"), str):
                    problems.append(f"TemplateConfiguration.{key} needs a Name")
    if body.get("TraceId") is not None and not isinstance(body["TraceId"], str):
        problems.append("TraceId must be a string")
    return body


def parse_message_request(body: object) -> MessageRequest:
    """A checked SendMessages body (``MessageRequest``)."""
    problems: list[str] = []
    data = _common(body, problems)
    addresses = _configs(data.get("Addresses"), "Addresses", problems)
    endpoints = _configs(data.get("Endpoints"), "Endpoints", problems)
    for address, config in addresses.items():
        kind = config.get("ChannelType")
        if kind not in CHANNEL_OF_TYPE:
            problems.append(f"Addresses.{address}.ChannelType must be one of "
                            f"{', '.join(sorted(CHANNEL_OF_TYPE))}")
    if not addresses and not endpoints:
        problems.append("give at least one recipient in Addresses or Endpoints")
    if len(addresses) + len(endpoints) > MAX_RECIPIENTS:
        problems.append(f"at most {MAX_RECIPIENTS} recipients (Addresses + Endpoints) "
                        "per request")
    return _request(data, problems, addresses, endpoints, {})


def parse_users_request(body: object) -> MessageRequest:
    """A checked SendUsersMessages body (``SendUsersMessageRequest``)."""
    problems: list[str] = []
    data = _common(body, problems)
    users = _configs(data.get("Users"), "Users", problems)
    if not users:
        problems.append("Users is required and must name at least one user")
    if len(users) > MAX_RECIPIENTS:
        problems.append(f"at most {MAX_RECIPIENTS} users per request")
    return _request(data, problems, {}, {}, users)


def _request(data: Mapping[str, Any], problems: list[str],
             addresses: dict[str, Mapping[str, Any]], endpoints: dict[str, Mapping[str, Any]],
             users: dict[str, Mapping[str, Any]]) -> MessageRequest:
    context = _string_map(data.get("Context"), "Context", problems)
    if problems:
        raise SendRequestError(problems)
    return MessageRequest(
        configuration=data["MessageConfiguration"],
        templates=data.get("TemplateConfiguration") or {},
        context=context, trace_id=data.get("TraceId"),
        addresses=addresses, endpoints=endpoints, users=users)


# -- planning ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """One address to message: a raw address, or an endpoint (its EndpointResponse)."""

    channel_type: str
    address: str
    config: Mapping[str, Any]
    endpoint: Mapping[str, Any] | None = None
    user_id: str | None = None


def _channel_message(configuration: Mapping[str, Any], channel: str, channel_type: str
                     ) -> Mapping[str, Any] | None:
    if channel == "EMAIL":
        found = configuration.get("EmailMessage")
    elif channel == "SMS":
        found = configuration.get("SMSMessage")
    elif channel == "VOICE":
        found = configuration.get("VoiceMessage")
    else:
        found = (configuration.get(_PUSH_MESSAGE.get(channel_type, ""))
                 or configuration.get("DefaultPushNotificationMessage"))
    if found is None and configuration.get("DefaultMessage") and channel != "EMAIL":
        return {}
    return found


def _content(channel: str, message: Mapping[str, Any], default_body: str | None,
             config: Mapping[str, Any]) -> dict[str, Any]:
    body = config.get("BodyOverride")
    title = config.get("TitleOverride")
    if channel == "EMAIL":
        simple = message.get("SimpleEmail") or {}

        def part(name: str) -> str | None:
            value = (simple.get(name) or {}).get("Data")
            return value if isinstance(value, str) else None

        headers = [{"name": h.get("Name"), "value": h.get("Value")}
                   for h in (simple.get("Headers") or message.get("Headers") or [])
                   if isinstance(h, Mapping)]
        return {
            "from_address": message.get("FromAddress"),
            "reply_to": list(message.get("ReplyToAddresses") or []),
            "subject": title or part("Subject") or message.get("Title"),
            "html_body": part("HtmlPart") or message.get("HtmlBody"),
            "text_body": body or part("TextPart") or message.get("Body") or default_body,
            "headers": headers,
        }
    if channel == "SMS":
        return {
            "body": body or message.get("Body") or default_body,
            "message_type": message.get("MessageType"),
            "origination_number": message.get("OriginationNumber"),
            "sender_id": message.get("SenderId"),
            "entity_id": message.get("EntityId"),
            "template_id": message.get("TemplateId"),
        }
    if channel == "VOICE":
        return {
            "body": body or message.get("Body") or default_body,
            "language_code": message.get("LanguageCode"),
            "voice_id": message.get("VoiceId"),
            "origination_number": message.get("OriginationNumber"),
        }
    ttl = message.get("TimeToLive")
    return {
        "title": title or message.get("Title"),
        "body": body or message.get("Body") or default_body,
        "action": message.get("Action"),
        "url": message.get("Url"),
        "image_url": message.get("ImageUrl"),
        "image_icon_url": message.get("ImageIconUrl"),
        "sound": message.get("Sound"),
        "data": {str(k): str(v) for k, v in (message.get("Data") or {}).items()},
        "silent": bool(message.get("SilentPush")),
        "ttl": int(ttl) if isinstance(ttl, int | float) else None,
        "raw_content": config.get("RawContent") or message.get("RawContent"),
        "consolidation_key": message.get("ConsolidationKey"),
        "expires_after": _seconds(message.get("ExpiresAfter")),
        "md5": message.get("MD5"),
        "icon_reference": message.get("IconReference"),
    }


def _seconds(value: object) -> int | None:
    """Pinpoint's string-typed seconds (ADMMessage ExpiresAfter) as an int; None if unset or
    not a whole number."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def plan_recipient(request: MessageRequest, recipient: Recipient, *, app_id: str,
                   request_id: str, endpoint_id: str | None, now_ms: int,
                   planned_addresses: set[tuple[str, str]]) -> Planned:
    """The result for one recipient and, when it is queued, its SendRequest record."""
    channel = CHANNEL_OF_TYPE.get(recipient.channel_type)
    if endpoint_id is None:
        message_id = transactional_message_id(request_id, recipient.channel_type,
                                              address=recipient.address)
    else:
        message_id = transactional_message_id(request_id, recipient.channel_type,
                                              endpoint_id=endpoint_id)
    where = recipient.address or None
    if channel is None:
        return Planned(Result(DeliveryStatus.PERMANENT_FAILURE, 400,
                              f"SendMessages cannot send to ChannelType "
                              f"{recipient.channel_type}", message_id, where))
    endpoint = recipient.endpoint
    if endpoint is not None:
        if endpoint.get("OptOut") == "ALL":
            return Planned(Result(DeliveryStatus.OPT_OUT, 400,
                                  "The endpoint opted out of all messages (OptOut ALL)",
                                  message_id, where))
        if endpoint.get("EndpointStatus") == "INACTIVE":
            return Planned(Result(DeliveryStatus.PERMANENT_FAILURE, 400,
                                  "The endpoint is INACTIVE", message_id, where))
    if not recipient.address:
        return Planned(Result(DeliveryStatus.PERMANENT_FAILURE, 400,
                              "The endpoint has no Address", message_id, None))
    message = _channel_message(request.configuration, channel, recipient.channel_type)
    if message is None:
        return Planned(Result(DeliveryStatus.PERMANENT_FAILURE, 400,
                              f"MessageConfiguration has no message for {channel} "
                              f"({recipient.channel_type})", message_id, where))
    key = (channel, recipient.address)
    if key in planned_addresses:
        return Planned(Result(DeliveryStatus.DUPLICATE, 400,
                              "The same address already receives this message in this "
                              "request", message_id, where))
    planned_addresses.add(key)
    default = request.configuration.get("DefaultMessage") or {}
    substitutions = dict(_substitutions(default.get("Substitutions"), "", []))
    substitutions.update(_substitutions(message.get("Substitutions"), "", []))
    substitutions.update(_substitutions(recipient.config.get("Substitutions"), "", []))
    context = {**request.context, **_string_map(recipient.config.get("Context"), "", [])}
    template = request.templates.get(_TEMPLATE_KEY[channel])
    user_id = recipient.user_id or ((endpoint or {}).get("User") or {}).get("UserId")
    send = {
        "message_id": message_id,
        "app_id": app_id,
        "endpoint_id": endpoint_id,
        "user_id": user_id,
        "channel": channel,
        "channel_type": recipient.channel_type,
        "address": recipient.address,
        "source": "TRANSACTIONAL",
        "campaign_id": None, "treatment_id": None, "journey_id": None,
        "activity_id": None, "run_id": request_id,
        "template": None if template is None else {
            "name": template["Name"],
            "version": None if template.get("Version") is None else str(template["Version"]),
        },
        "content": _content(channel, message, default.get("Body"), recipient.config),
        "substitutions": substitutions,
        "context": context,
        "endpoint": None if endpoint is None else endpoint_record(endpoint),
        "trace_id": request.trace_id,
        "timestamp": now_ms,
    }
    return Planned(Result(DeliveryStatus.SUCCESSFUL, 200, "Queued", message_id, where), send)


def plan_message_request(request: MessageRequest, endpoints: Mapping[str, Mapping[str, Any]],
                         *, app_id: str, request_id: str, now_ms: int
                         ) -> tuple[dict[str, Planned], dict[str, Planned]]:
    """SendMessages: ``(Result by address, EndpointResult by endpoint id)``.

    ``endpoints`` holds the EndpointResponses found for ``request.endpoints``; an id
    missing from it answers PERMANENT_FAILURE (404)."""
    seen: set[tuple[str, str]] = set()
    by_address: dict[str, Planned] = {}
    for address, config in request.addresses.items():
        recipient = Recipient(str(config["ChannelType"]), address, config)
        by_address[address] = plan_recipient(request, recipient, app_id=app_id,
                                             request_id=request_id, endpoint_id=None,
                                             now_ms=now_ms, planned_addresses=seen)
    by_endpoint: dict[str, Planned] = {}
    for endpoint_id, config in request.endpoints.items():
        found = endpoints.get(endpoint_id)
        if found is None:
            by_endpoint[endpoint_id] = Planned(Result(
                DeliveryStatus.PERMANENT_FAILURE, 404,
                f"Endpoint {endpoint_id} does not exist in application {app_id}"))
            continue
        by_endpoint[endpoint_id] = plan_recipient(
            request, _endpoint_recipient(found, config), app_id=app_id,
            request_id=request_id, endpoint_id=endpoint_id, now_ms=now_ms,
            planned_addresses=seen)
    return by_address, by_endpoint


def plan_users_request(request: MessageRequest,
                       user_endpoints: Mapping[str, list[Mapping[str, Any]]], *, app_id: str,
                       request_id: str, now_ms: int) -> dict[str, dict[str, Planned]]:
    """SendUsersMessages: ``{user id: {endpoint id: Planned}}`` over each user's endpoints
    (a user without endpoints maps to an empty object, as Pinpoint answers)."""
    seen: set[tuple[str, str]] = set()
    out: dict[str, dict[str, Planned]] = {}
    for user_id, config in request.users.items():
        per_endpoint: dict[str, Planned] = {}
        for endpoint in user_endpoints.get(user_id, []):
            per_endpoint[str(endpoint["Id"])] = plan_recipient(
                request, _endpoint_recipient(endpoint, config, user_id), app_id=app_id,
                request_id=request_id, endpoint_id=str(endpoint["Id"]), now_ms=now_ms,
                planned_addresses=seen)
        out[user_id] = per_endpoint
    return out


def _endpoint_recipient(endpoint: Mapping[str, Any], config: Mapping[str, Any],
                        user_id: str | None = None) -> Recipient:
    return Recipient(str(endpoint.get("ChannelType") or ""), str(endpoint.get("Address") or ""),
                     config, endpoint, user_id)
