"""Baidu Cloud Push signing, request parameters and answer reading (pure)."""

from __future__ import annotations

import hashlib
import json

import pytest

from lodestar.core.baidu_message import (
    baidu_msg,
    baidu_outcome,
    baidu_sign,
    channel_id,
    msg_expires,
    php_urlencode,
    sign_base,
    signed,
    single_device_params,
)
from lodestar.core.provider_outcome import ProviderOutcomeKind
from lodestar.core.push_payloads import PushNotification

# The example of Baidu's "签名算法" section (push.baidu.com/doc/restapi/sdk_developer).
EXAMPLE_URL = "http://api.tuisong.baidu.com/rest/3.0/test/echo"
EXAMPLE_PARAMS = {"apikey": "Ljc710pzAa99GULCo8y48NvB", "expires": "1313293565",
                  "timestamp": "1427180905"}
EXAMPLE_SECRET = "87772555E1C16715EBA5C85341684C58"

NOTE = PushNotification(message_id="m-1", channel_type="BAIDU", title="你好", body="World",
                        data={"screen": "home"}, ttl_s=3600,
                        campaign={"campaign_id": "c-1"})


def test_php_urlencode() -> None:
    assert php_urlencode("a b~*-_.") == "a+b%7E%2A-_."
    assert php_urlencode("é/=&") == "%C3%A9%2F%3D%26"
    assert php_urlencode("AZaz09") == "AZaz09"


def test_the_documented_example() -> None:
    base = sign_base("post", EXAMPLE_URL, {**EXAMPLE_PARAMS, "sign": "ignored"},
                     EXAMPLE_SECRET)
    assert base == ("POSThttp://api.tuisong.baidu.com/rest/3.0/test/echo"
                    "apikey=Ljc710pzAa99GULCo8y48NvBexpires=1313293565"
                    "timestamp=142718090587772555E1C16715EBA5C85341684C58")
    encoded = ("POSThttp%3A%2F%2Fapi.tuisong.baidu.com%2Frest%2F3.0%2Ftest%2Fecho"
               "apikey%3DLjc710pzAa99GULCo8y48NvBexpires%3D1313293565"
               "timestamp%3D142718090587772555E1C16715EBA5C85341684C58")
    expected = hashlib.md5(encoded.encode()).hexdigest()
    assert baidu_sign("POST", EXAMPLE_URL, EXAMPLE_PARAMS, EXAMPLE_SECRET) == expected
    assert baidu_sign("POST", EXAMPLE_URL, EXAMPLE_PARAMS, "other") != expected


def test_signed_adds_one_sign_over_the_other_parameters() -> None:
    out = signed("POST", EXAMPLE_URL, {**EXAMPLE_PARAMS, "sign": "stale"}, EXAMPLE_SECRET)
    assert out["sign"] == baidu_sign("POST", EXAMPLE_URL, EXAMPLE_PARAMS, EXAMPLE_SECRET)
    assert {k: v for k, v in out.items() if k != "sign"} == EXAMPLE_PARAMS


def test_channel_id() -> None:
    assert channel_id("3748092266370017686") == "3748092266370017686"
    assert channel_id("1105115563847474869:3944730196422489622") == "3944730196422489622"
    assert channel_id(" 42 ") == "42"


def test_msg_expires() -> None:
    assert msg_expires(None) == 604800
    assert msg_expires(-5) == 0
    assert msg_expires(3600) == 3600
    assert msg_expires(10**7) == 604800


def test_single_device_params() -> None:
    params = single_device_params(NOTE, "u-1:chan-9", "api-key", 1_700_000_000,
                                  icon_reference="ic_bell")
    assert {k: v for k, v in params.items() if k != "msg"} == {
        "apikey": "api-key", "timestamp": "1700000000", "device_type": "3",
        "channel_id": "chan-9", "msg_type": "0", "msg_expires": "3600"}
    msg = json.loads(params["msg"])
    assert msg["pinpoint.notification.title"] == "你好"
    assert msg["pinpoint.notification.body"] == "World"
    assert msg["pinpoint.notification.icon"] == "ic_bell"
    assert msg["pinpoint.openApp"] == "true"
    assert msg["pinpoint.campaign.campaign_id"] == "c-1"
    assert msg["screen"] == "home"
    assert "你好" in params["msg"]  # UTF-8 as is, not \u escapes


def test_raw_content_is_the_message_as_given() -> None:
    raw = "{'pinpoint.openApp':true,'pinpoint.notification.title':'Hello'}"
    note = PushNotification(message_id="m", channel_type="BAIDU", raw_content=raw)
    assert baidu_msg(note) == raw
    assert single_device_params(note, "c", "k", 1)["msg"] == raw


@pytest.mark.parametrize(("status", "code", "kind"), [
    (404, 30607, ProviderOutcomeKind.DEAD_ADDRESS),
    (404, 30608, ProviderOutcomeKind.DEAD_ADDRESS),
    (500, 30600, ProviderOutcomeKind.RETRY),
    (503, 30699, ProviderOutcomeKind.RETRY),
    (400, 30602, ProviderOutcomeKind.PERMANENT),
    (401, 30603, ProviderOutcomeKind.PERMANENT),
    (403, 30604, ProviderOutcomeKind.PERMANENT),
    (404, 30605, ProviderOutcomeKind.PERMANENT),
    (401, 30606, ProviderOutcomeKind.PERMANENT),
    (403, 30612, ProviderOutcomeKind.PERMANENT),
    (200, 30602, ProviderOutcomeKind.PERMANENT),
    (500, 39999, ProviderOutcomeKind.PERMANENT),
])
def test_error_codes_decide(status: int, code: int, kind: ProviderOutcomeKind) -> None:
    outcome = baidu_outcome(status, {"request_id": 1, "error_code": code,
                                     "error_msg": "msg"}, retry_after_s=3.0)
    assert (outcome.kind, outcome.status_code) == (kind, status)
    assert outcome.message == f"{code} msg"
    assert outcome.throttled is (code == 30699)
    if kind is ProviderOutcomeKind.RETRY:
        assert outcome.retry_after_s == 3.0


def test_error_code_as_text_and_without_message() -> None:
    outcome = baidu_outcome(404, {"request_id": 1, "error_code": "30608"})
    assert outcome.kind is ProviderOutcomeKind.DEAD_ADDRESS
    assert outcome.message == "30608 Bind Relation Not Found"


def test_success_and_answers_without_an_error_code() -> None:
    ok = baidu_outcome(200, {"request_id": 123456789,
                             "response_params": {"msg_id": 24234532453245,
                                                 "send_time": 1427174155}})
    assert ok.accepted and ok.provider_message_id == "24234532453245"
    assert baidu_outcome(502, None).kind is ProviderOutcomeKind.RETRY
    assert baidu_outcome(429, {}, 5.0).retry_after_s == 5.0
    assert baidu_outcome(400, "bad").kind is ProviderOutcomeKind.PERMANENT
    odd = baidu_outcome(200, {"request_id": 1})
    assert odd.kind is ProviderOutcomeKind.RETRY and "unreadable" in odd.message
