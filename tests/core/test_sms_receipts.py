from __future__ import annotations

import pytest

from lodestar.core.sms_receipts import (
    GenericReceipt,
    ReceiptEnding,
    ReceiptRules,
    generic_receipt_record,
    read_generic_receipt,
    receipt_record,
    receipt_rules_from_mapping,
    value_at,
)

SENT = {"app_id": "a", "message_id": "m-1", "channel": "SMS", "event_type": "_SMS.SUCCESS",
        "endpoint_id": "e-1", "user_id": None,
        "attributes": {"journey_id": "j-1", "journey_activity_id": "act", "journey_run_id": "r",
                       "record_status": "SUCCESSFUL", "iso_country_code": "JP",
                       "number_of_message_parts": "3", "message_type": "Promotional"}}
FORM = {"MessageSid": "SM1", "To": "+819012345678", "From": "Lodestar"}


def test_delivered_is_success_with_the_sends_subject() -> None:
    record = receipt_record("a", "m-1", {**FORM, "MessageStatus": "delivered"}, [SENT], 5)
    assert record is not None
    assert (record["event_type"], record["endpoint_id"]) == ("_SMS.SUCCESS", "e-1")
    attrs = record["attributes"]
    assert attrs["record_status"] == "DELIVERED" and attrs["journey_id"] == "j-1"
    assert attrs["iso_country_code"] == "JP" and attrs["number_of_message_parts"] == "3"
    assert attrs["message_type"] == "Promotional" and attrs["sender_request_id"] == "SM1"


def test_failures_map_twilio_error_codes() -> None:
    for code, status in (("30007", "SPAM"), ("30003", "UNREACHABLE"), ("30034",
                         "CARRIER_BLOCKED"), ("99999", "UNKNOWN"), (None, "UNKNOWN")):
        form = {**FORM, "MessageStatus": "undelivered"}
        if code:
            form["ErrorCode"] = code
        record = receipt_record("a", "m-1", form, [SENT], 5)
        assert record is not None and record["event_type"] == "_SMS.FAILURE"
        assert record["attributes"]["record_status"] == status


def test_interim_statuses_publish_nothing_and_repeats_share_an_event_id() -> None:
    for status in ("queued", "sending", "sent", "accepted", "scheduled", ""):
        assert receipt_record("a", "m-1", {**FORM, "MessageStatus": status}, [SENT], 5) is None
    one = receipt_record("a", "m-1", {**FORM, "MessageStatus": "delivered"}, [SENT], 5)
    two = receipt_record("a", "m-1", {**FORM, "MessageStatus": "delivered"}, [SENT], 9)
    failed = receipt_record("a", "m-1", {**FORM, "MessageStatus": "failed"}, [SENT], 9)
    assert one and two and failed
    assert one["event_id"] == two["event_id"] != failed["event_id"]


def test_an_unknown_send_still_yields_a_receipt() -> None:
    record = receipt_record("a", "m-9", {**FORM, "MessageStatus": "delivered"}, [], 5)
    assert record is not None and record["endpoint_id"] is None
    assert record["message_id"] == "m-9"
    assert record["attributes"]["destination_phone_number"] == "+819012345678"


# -- a generic provider's receipts ---------------------------------------------------------

def _rules(**overrides: object) -> ReceiptRules:
    rules = receipt_rules_from_mapping({
        "token": "t0ken0123456789abc", "status_path": "data.state",
        "delivered": ["DELIVRD"], "failed": ["UNDELIV", "REJECTD", "EXPIRED"],
        "error_code_path": "data.err", "error_statuses": {"1": "INVALID", "12": "SPAM"},
        "message_id_path": "ref", "provider_id_path": "data.id", **overrides})
    assert isinstance(rules, ReceiptRules)
    return rules


def test_generic_receipts_read_with_the_configured_paths() -> None:
    rules = _rules()
    body = {"ref": "m-1", "data": {"id": "p-77", "state": "delivrd"}}
    receipt = read_generic_receipt(body, rules)
    assert receipt == GenericReceipt(ReceiptEnding.DELIVERED, "delivrd", None, "m-1", "p-77")
    record = generic_receipt_record("a", "m-1", receipt, rules, [SENT], 5)
    assert record is not None and record["event_type"] == "_SMS.SUCCESS"
    assert record["attributes"]["record_status"] == "DELIVERED"
    assert record["attributes"]["journey_id"] == "j-1"  # the send's subject
    assert record["attributes"]["sender_request_id"] == "p-77"
    for err, status in (("12", "SPAM"), ("1", "INVALID"), ("7", "UNKNOWN"), (None, "UNKNOWN")):
        failed = read_generic_receipt({"data": {"state": "UNDELIV", "err": err}}, rules)
        assert failed.ending is ReceiptEnding.FAILED
        out = generic_receipt_record("a", "m-1", failed, rules, [SENT], 5)
        assert out is not None and out["event_type"] == "_SMS.FAILURE"
        assert out["attributes"]["record_status"] == status
    for interim in ({"data": {"state": "ENROUTE"}}, {"data": {}}, {}):
        got = read_generic_receipt(interim, rules)
        assert got.ending is ReceiptEnding.INTERIM
        assert generic_receipt_record("a", "m-1", got, rules, [SENT], 5) is None
    # the same receipt twice is the same event; another status is another
    again = generic_receipt_record("a", "m-1", receipt, rules, [SENT], 9)
    assert again is not None and again["event_id"] == record["event_id"]


def test_generic_receipt_rules_name_the_bad_field() -> None:
    assert receipt_rules_from_mapping({"token": "a" * 16}) == ReceiptRules("a" * 16)
    for bad, message in (
            ([], "receipt: a JSON object"),
            ({"token": "short"}, "receipt.token: at least 16"),
            ({"token": "has spaces in it ok?"}, "receipt.token"),
            ({"token": "a" * 16, "colour": 1}, "unknown field(s) ['colour']"),
            ({"token": "a" * 16, "status_path": None}, "receipt.status_path: a dotted path"),
            ({"token": "a" * 16, "delivered": []}, "receipt.delivered: a non-empty list"),
            ({"token": "a" * 16, "failed": ["delivered"]}, "both delivered and failed"),
            ({"token": "a" * 16, "error_statuses": {"4": "GONE"}},
             "receipt.error_statuses.4: 'GONE' is not a record_status")):
        with pytest.raises(ValueError) as caught:
            receipt_rules_from_mapping(bad)
        assert message in str(caught.value), (bad, str(caught.value))


def test_value_at() -> None:
    data = {"a": [{"b": 5}, {"b": "x"}], "c": {"d": None}}
    assert value_at(data, "a.1.b") == "x"
    assert value_at(data, "a.0.b") == "5"
    assert value_at(data, "a.2.b") is None
    assert value_at(data, "c.d") is None
    assert value_at(data, "a") is None
    assert value_at(data, None) is None
