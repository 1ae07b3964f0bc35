"""ADM request bodies, checksums, token answers and answer reading (pure)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from lodestar.core.adm_message import (
    MAX_DATA_BYTES,
    AdmOptions,
    AdmPayloadError,
    adm_md5,
    adm_message,
    adm_options,
    adm_outcome,
    canonical_registration_id,
    data_size,
    token_form,
)
from lodestar.core.provider_outcome import ProviderOutcomeKind
from lodestar.core.push_payloads import PushNotification
from lodestar.core.templates import PushAction

NOTE = PushNotification(message_id="m-1", channel_type="ADM", title="Hello", body="World",
                        action=PushAction.URL, url="https://example.com/x",
                        image_url="https://example.com/i.png", sound="chime",
                        data={"screen": "home"}, ttl_s=3600,
                        campaign={"campaign_id": "c-1", "treatment_id": "0"})


def _b64md5(text: str) -> str:
    return base64.b64encode(hashlib.md5(text.encode("utf-8")).digest()).decode()


def test_token_form_is_the_documented_client_credentials_grant() -> None:
    assert token_form("amzn1.application-oa2-client.x", "s3cret") == {
        "grant_type": "client_credentials", "scope": "messaging:push",
        "client_id": "amzn1.application-oa2-client.x", "client_secret": "s3cret"}


def test_md5_is_over_sorted_key_value_pairs() -> None:
    assert adm_md5({"b": "2", "a": "1"}) == _b64md5("a:1,b:2")
    assert adm_md5({"ü": "x", "z": "é"}) == _b64md5("z:é,ü:x")
    assert adm_md5({}) == _b64md5("")
    assert adm_md5({"a": "1"}) != adm_md5({"a": "2"})


def test_built_message_carries_pinpoints_keys_in_data() -> None:
    body = adm_message(NOTE, AdmOptions(consolidation_key="news", icon_reference="ic_bell"))
    data = body["data"]
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in data.items())
    assert data["pinpoint.notification.title"] == "Hello"
    assert data["pinpoint.notification.body"] == "World"
    assert data["pinpoint.notification.imageUrl"] == "https://example.com/i.png"
    assert data["pinpoint.notification.sound"] == "chime"
    assert data["pinpoint.notification.icon"] == "ic_bell"
    assert data["pinpoint.notification.silentPush"] == "0"
    assert data["pinpoint.url"] == "https://example.com/x"
    assert "pinpoint.openApp" not in data
    assert data["pinpoint.campaign.campaign_id"] == "c-1"
    assert data["screen"] == "home"
    assert json.loads(data["pinpoint.jsonBody"]) == {"screen": "home"}
    assert body["consolidationKey"] == "news"
    assert body["expiresAfter"] == 3600
    assert body["md5"] == adm_md5(data)
    assert set(body) == {"data", "consolidationKey", "expiresAfter", "md5"}


def test_silent_and_direct_sends() -> None:
    note = PushNotification(message_id="m-2", channel_type="ADM", body="", silent=True)
    body = adm_message(note)
    assert body["data"]["pinpoint.notification.silentPush"] == "1"
    assert body["data"]["pinpoint.openApp"] == "true"
    assert body["data"]["pinpoint.campaign.campaign_id"] == "_DIRECT"
    assert "expiresAfter" not in body and "consolidationKey" not in body


@pytest.mark.parametrize(("ttl", "expected"), [(0, 60), (59, 60), (60, 60), (86400, 86400),
                                               (2_678_400, 2_678_400), (10**9, 2_678_400)])
def test_expires_after_is_clamped_into_adms_range(ttl: int, expected: int) -> None:
    note = PushNotification(message_id="m", channel_type="ADM", body="b", ttl_s=ttl)
    assert adm_message(note)["expiresAfter"] == expected
    assert adm_message(NOTE, AdmOptions(expires_after_s=ttl))["expiresAfter"] == expected


def test_collapse_id_is_the_consolidation_key_and_a_given_md5_is_kept() -> None:
    note = PushNotification(message_id="m", channel_type="ADM", body="b", collapse_id="sync")
    assert adm_message(note)["consolidationKey"] == "sync"
    assert adm_message(note, AdmOptions(md5="given=="))["md5"] == "given=="


def test_flat_raw_content_is_the_data_map() -> None:
    raw = ("{\"pinpoint.campaign.campaign_id\":\"_DIRECT\","
           "\"pinpoint.notification.silentPush\":0,\"pinpoint.openApp\":true,"
           "\"pinpoint.notification.title\":\"Hello\",\"n\":{\"a\":1}}")
    note = PushNotification(message_id="m", channel_type="ADM", raw_content=raw, ttl_s=120)
    body = adm_message(note)
    assert body["data"] == {"pinpoint.campaign.campaign_id": "_DIRECT",
                            "pinpoint.notification.silentPush": "0",
                            "pinpoint.openApp": "true",
                            "pinpoint.notification.title": "Hello", "n": "{\"a\":1}"}
    assert body["md5"] == adm_md5(body["data"])
    assert body["expiresAfter"] == 120


def test_raw_content_with_a_data_object_is_the_whole_message() -> None:
    raw = json.dumps({"data": {"k": "v"}, "consolidationKey": "Sync", "expiresAfter": 86400})
    note = PushNotification(message_id="m", channel_type="ADM", raw_content=raw)
    assert adm_message(note) == {"data": {"k": "v"}, "consolidationKey": "Sync",
                                 "expiresAfter": 86400, "md5": _b64md5("k:v")}


def test_unusable_raw_content_and_oversized_data_are_refused() -> None:
    for raw in ("[1]", "not json"):
        with pytest.raises(AdmPayloadError):
            adm_message(PushNotification(message_id="m", channel_type="ADM",
                                         raw_content=raw))
    big = PushNotification(message_id="m", channel_type="ADM", body="x",
                           data={"blob": "é" * 3100})
    with pytest.raises(AdmPayloadError, match="MessageTooLarge"):
        adm_message(big)
    fits = {"k": "x" * (MAX_DATA_BYTES - len('{"k":""}'))}
    assert data_size(fits) == MAX_DATA_BYTES
    raw = json.dumps({"data": fits})
    assert adm_message(PushNotification(message_id="m", channel_type="ADM",
                                        raw_content=raw))["data"] == fits


def test_canonical_registration_id() -> None:
    assert canonical_registration_id({"registrationID": "new"}, "old") == "new"
    assert canonical_registration_id({"registrationID": "same"}, "same") is None
    assert canonical_registration_id(None, "x") is None


@pytest.mark.parametrize(("status", "reason", "kind"), [
    (400, "InvalidRegistrationId", ProviderOutcomeKind.DEAD_ADDRESS),
    (400, "Unregistered", ProviderOutcomeKind.DEAD_ADDRESS),
    (410, "Unregistered", ProviderOutcomeKind.DEAD_ADDRESS),
    (400, "InvalidData", ProviderOutcomeKind.PERMANENT),
    (400, "InvalidConsolidationKey", ProviderOutcomeKind.PERMANENT),
    (400, "InvalidExpiration", ProviderOutcomeKind.PERMANENT),
    (400, "InvalidChecksum", ProviderOutcomeKind.PERMANENT),
    (400, "InvalidType", ProviderOutcomeKind.PERMANENT),
    (401, "AccessTokenExpired", ProviderOutcomeKind.PERMANENT),
    (413, "MessageTooLarge", ProviderOutcomeKind.PERMANENT),
    (429, "MaxRateExceeded", ProviderOutcomeKind.RETRY),
    (500, None, ProviderOutcomeKind.RETRY),
    (503, None, ProviderOutcomeKind.RETRY),
])
def test_answers(status: int, reason: str | None, kind: ProviderOutcomeKind) -> None:
    body = {"reason": reason} if reason else None
    outcome = adm_outcome(status, body, retry_after_s=4.0)
    assert (outcome.kind, outcome.status_code) == (kind, status)
    if reason:
        assert reason in outcome.message
    if kind is ProviderOutcomeKind.RETRY:
        assert outcome.retry_after_s == 4.0
        assert outcome.throttled is (status == 429)


def test_accepted_answer() -> None:
    outcome = adm_outcome(200, {"registrationID": "amzn1.adm-registration.v3.A"},
                          sent_registration_id="amzn1.adm-registration.v3.A",
                          request_id="d917ceac")
    assert outcome.accepted and outcome.provider_message_id == "d917ceac"
    assert outcome.message == "accepted"
    assert outcome.updated_address is None
    moved = adm_outcome(200, {"registrationID": "new-id"}, sent_registration_id="old-id")
    assert moved.accepted and "new-id" in moved.message
    assert moved.updated_address == "new-id"  # the sender updates the endpoint's Address


def test_options_from_send_request_content() -> None:
    content = {"consolidation_key": "news", "expires_after": "86400", "md5": "abc==",
               "icon_reference": "ic_bell", "title": "ignored"}
    assert adm_options(content) == AdmOptions("news", 86400, "abc==", "ic_bell")
    assert adm_options({"expires_after": 60}) == AdmOptions(expires_after_s=60)
    assert adm_options({"expires_after": "soon", "md5": "", "consolidation_key": 3}) == \
        AdmOptions()
