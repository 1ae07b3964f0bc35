"""Provider payloads for one rendered push notification, as values.

Pure: no I/O. ``PushNotification`` is what ``push_message.prepare_push``
renders; the builders turn it into what each provider takes:

- ``fcm_message(n, token)``: the FCM HTTP v1 body ``{"message": {...}}`` with
  ``token``, ``notification{title, body, image}``, ``android{ttl "Ns",
  priority, notification{sound, …}}`` and a ``data`` map of strings holding
  the custom data, ``pinpoint.jsonBody`` and Pinpoint's ``pinpoint.*`` keys
  (``pinpoint.openApp`` / ``pinpoint.deeplink`` / ``pinpoint.url``,
  ``pinpoint.notification.*``, ``pinpoint.campaign.*``, ``pinpoint.journey``)
  that the Pinpoint/Amplify Android SDKs read. A silent notification is
  data-only with normal priority.
- ``apns_request(n, token, topic)``: an ``ApnsRequest`` (``:path``, headers,
  JSON payload ``{"aps": {...}, "data": {"pinpoint": {...}, "jsonBody": …},
  <custom keys>}``). Silent → ``apns-push-type: background``, priority 5,
  ``{"content-available": 1}``.
- ``webpush_payload(n)``: the JSON bytes a service worker receives.

``raw_content`` (Pinpoint RawContent) replaces the built payload: for FCM a
``{"message": {...}}`` or a bare message object (the token is set, data values
are made strings); for APNs the payload object as given; for Web Push the
bytes as given.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lodestar.core.templates import PushAction

DIRECT_CAMPAIGN_ID = "_DIRECT"
"""``pinpoint.campaign.campaign_id`` of a send that no campaign made (Pinpoint's value)."""


@dataclass(frozen=True)
class PushNotification:
    """A fully rendered push notification for one recipient.

    ``pinpoint`` holds the tracking context (``campaign`` / ``journey`` maps and the
    send's Context keys); ``created_ms`` is when it was rendered (APNs expiration is
    ``created_ms / 1000 + ttl_s``); ``raw_content`` is parsed-valid JSON text or None.
    """

    message_id: str
    channel_type: str
    title: str | None = None
    body: str | None = None
    action: PushAction = PushAction.OPEN_APP
    url: str | None = None
    image_url: str | None = None
    image_icon_url: str | None = None
    small_image_icon_url: str | None = None
    media_url: str | None = None
    sound: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)
    silent: bool = False
    ttl_s: int | None = None
    raw_content: str | None = None
    campaign: Mapping[str, str] = field(default_factory=dict)
    journey: Mapping[str, str] = field(default_factory=dict)
    context: Mapping[str, str] = field(default_factory=dict)
    collapse_id: str | None = None
    created_ms: int = 0

    @property
    def voip(self) -> bool:
        return self.channel_type in ("APNS_VOIP", "APNS_VOIP_SANDBOX")


_COMPACT = json.JSONEncoder(separators=(",", ":"))
"""``json.dumps(value, separators=(",", ":"))`` without building an encoder per call."""


def compact_json(value: Any) -> str:
    """``value`` as compact JSON text (ASCII, as ``json.dumps`` writes it)."""
    return _COMPACT.encode(value)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _raw_object(notification: PushNotification) -> dict[str, Any] | None:
    if notification.raw_content is None:
        return None
    value = json.loads(notification.raw_content)
    if not isinstance(value, dict):
        raise ValueError("RawContent must be a JSON object")
    return value


def _action_keys(notification: PushNotification) -> dict[str, str]:
    if notification.action is PushAction.URL and notification.url:
        return {"pinpoint.url": notification.url}
    if notification.action is PushAction.DEEP_LINK and notification.url:
        return {"pinpoint.deeplink": notification.url}
    return {"pinpoint.openApp": "true"}


# ------------------------------------------------------------------------- FCM


def fcm_data(notification: PushNotification) -> dict[str, str]:
    """The FCM ``data`` map: custom data, then Pinpoint's keys (which win)."""
    data = dict(notification.data)
    for key, value in notification.context.items():
        data[f"pinpoint.{key}"] = value
    if notification.data:
        data["pinpoint.jsonBody"] = compact_json(dict(notification.data))
    data.update(_action_keys(notification))
    fields: tuple[tuple[str, str | None], ...] = (
        ("title", notification.title), ("body", notification.body),
        ("imageUrl", notification.image_url), ("imageIconUrl", notification.image_icon_url),
        ("imageSmallIconUrl", notification.small_image_icon_url),
        ("sound", notification.sound),
    )
    for key, item in fields:
        if item is not None:
            data[f"pinpoint.notification.{key}"] = item
    data["pinpoint.notification.silentPush"] = "1" if notification.silent else "0"
    campaign = dict(notification.campaign) or (
        {} if notification.journey else {"campaign_id": DIRECT_CAMPAIGN_ID})
    for key, value in campaign.items():
        data[f"pinpoint.campaign.{key}"] = value
    if notification.journey:
        data["pinpoint.journey"] = compact_json(dict(notification.journey))
    return data


def fcm_message(notification: PushNotification, token: str) -> dict[str, Any]:
    """The FCM HTTP v1 ``messages:send`` body for ``token``."""
    raw = _raw_object(notification)
    if raw is not None:
        given = dict(raw["message"]) if isinstance(raw.get("message"), dict) else dict(raw)
        given.pop("topic", None)
        given.pop("condition", None)
        given["token"] = token
        if isinstance(given.get("data"), dict):
            given["data"] = {str(k): v if isinstance(v, str) else json.dumps(v)
                             for k, v in given["data"].items()}
        return {"message": given}
    android: dict[str, Any] = {"priority": "normal" if notification.silent else "high"}
    if notification.ttl_s is not None:
        android["ttl"] = f"{max(notification.ttl_s, 0)}s"
    if notification.collapse_id is not None:
        android["collapse_key"] = notification.collapse_id
    message: dict[str, Any] = {"token": token, "data": fcm_data(notification)}
    if not notification.silent:
        shown = {k: v for k, v in (("title", notification.title), ("body", notification.body),
                                   ("image", notification.image_url)) if v is not None}
        if shown:
            message["notification"] = shown
        android_notification = {}
        if notification.sound is not None:
            android_notification["sound"] = notification.sound
        if android_notification:
            android["notification"] = android_notification
    message["android"] = android
    return {"message": message}


# ------------------------------------------------------------------------ APNs


@dataclass(frozen=True)
class ApnsRequest:
    """One APNs HTTP/2 request: POST ``path`` with ``headers`` and ``body``."""

    path: str
    headers: Mapping[str, str]
    payload: Mapping[str, Any]

    @property
    def body(self) -> bytes:
        return _json_bytes(self.payload)


def apns_id(message_id: str) -> str:
    """A UUID (APNs ``apns-id``) derived from the message id: the same id on a retry."""
    return str(uuid.UUID(bytes=hashlib.sha256(message_id.encode("utf-8")).digest()[:16],
                         version=4))


def apns_payload(notification: PushNotification) -> dict[str, Any]:
    """The APNs JSON payload (see the module docstring)."""
    raw = _raw_object(notification)
    if raw is not None:
        return raw
    aps: dict[str, Any]
    if notification.silent:
        aps = {"content-available": 1}
    else:
        alert = {k: v for k, v in (("title", notification.title), ("body", notification.body))
                 if v is not None}
        aps = {"alert": alert}
        if notification.sound is not None:
            aps["sound"] = notification.sound
        if notification.media_url is not None or notification.image_url is not None:
            aps["mutable-content"] = 1
    pinpoint: dict[str, Any] = dict(notification.context)
    if notification.action is not PushAction.OPEN_APP and notification.url:
        pinpoint["deeplink"] = notification.url
    pinpoint["campaign"] = dict(notification.campaign) or (
        {} if notification.journey else {"campaign_id": DIRECT_CAMPAIGN_ID})
    if notification.journey:
        pinpoint["journey"] = dict(notification.journey)
    if not pinpoint["campaign"]:
        del pinpoint["campaign"]
    data: dict[str, Any] = {"pinpoint": pinpoint}
    media = notification.media_url or notification.image_url
    if media is not None:
        data["media-url"] = media
    if notification.data:
        data["jsonBody"] = dict(notification.data)
    payload: dict[str, Any] = {k: v for k, v in notification.data.items()
                               if k not in ("aps", "data")}
    payload["aps"] = aps
    payload["data"] = data
    return payload


def _silent_raw(payload: Mapping[str, Any]) -> bool:
    aps = payload.get("aps")
    if not isinstance(aps, Mapping):
        return False
    return aps.get("content-available") == 1 and not any(
        key in aps for key in ("alert", "sound", "badge"))


def apns_request(notification: PushNotification, token: str, topic: str) -> ApnsRequest:
    """The APNs request for device ``token`` of the app ``topic`` (its bundle id).

    Headers: ``apns-push-type`` alert | background | voip (APNS_VOIP* channel types,
    topic gets ``.voip``), ``apns-priority`` 10 (alert, voip) or 5 (background),
    ``apns-topic``, ``apns-id`` (from the message id), ``apns-expiration`` when the
    notification has a TTL (``0`` for a TTL of 0: deliver now or never) and
    ``apns-collapse-id`` when it has one.
    """
    payload = apns_payload(notification)
    silent = notification.silent if notification.raw_content is None else _silent_raw(payload)
    if notification.voip:
        push_type, priority = "voip", "10"
        if not topic.endswith(".voip"):
            topic = f"{topic}.voip"
    elif silent:
        push_type, priority = "background", "5"
    else:
        push_type, priority = "alert", "10"
    headers = {
        "apns-push-type": push_type,
        "apns-priority": priority,
        "apns-topic": topic,
        "apns-id": apns_id(notification.message_id),
    }
    if notification.ttl_s is not None:
        ttl = max(notification.ttl_s, 0)
        headers["apns-expiration"] = "0" if ttl == 0 else str(notification.created_ms // 1000
                                                               + ttl)
    if notification.collapse_id is not None:
        headers["apns-collapse-id"] = notification.collapse_id
    return ApnsRequest(f"/3/device/{token}", headers, payload)


# -------------------------------------------------------------------- Web Push


def webpush_payload(notification: PushNotification) -> bytes:
    """The JSON a service worker gets in its ``push`` event (``event.data.json()``):
    ``title``, ``body``, ``icon``, ``image``, ``sound``, ``action``, ``url``, ``silent``,
    ``data`` (custom) and ``pinpoint`` (campaign/journey/context); None values are left
    out. RawContent is sent as given."""
    if notification.raw_content is not None:
        return notification.raw_content.encode("utf-8")
    pinpoint: dict[str, Any] = dict(notification.context)
    if notification.campaign:
        pinpoint["campaign"] = dict(notification.campaign)
    if notification.journey:
        pinpoint["journey"] = dict(notification.journey)
    out: dict[str, Any] = {
        "title": notification.title, "body": notification.body,
        "icon": notification.image_icon_url, "image": notification.image_url,
        "sound": notification.sound, "action": notification.action.value,
        "url": notification.url, "silent": notification.silent or None,
        "data": dict(notification.data) or None, "pinpoint": pinpoint or None,
    }
    return _json_bytes({k: v for k, v in out.items() if v is not None})
