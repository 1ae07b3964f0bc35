from lodestar.core.sms_receipts import receipt_record

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
