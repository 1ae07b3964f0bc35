"""Parsing bounce / complaint / delivery feedback (SES through SNS, SES direct, generic)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lodestar.core.delivery_events import Channel, DeliverySubject, EventType
from lodestar.core.email_feedback import (
    Accepted,
    Confirmation,
    Feedback,
    FeedbackKind,
    FeedbackSource,
    Ignored,
    Invalid,
    SuppressionReason,
    email_address,
    feedback_record,
    feedback_subject,
    lodestar_message_id,
    message_id_of,
    normalise_address,
    parse_feedback,
)

NOW = 1_780_000_000_000
LODESTAR_ID = "c0ffee0123456789c0ffee0123456789"
SES_ID = "0102015fd91a5ca3-93c245fe-e333-46ae-8fed-96160d20cfab-000000"


def _mail(headers: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "timestamp": "2026-05-01T12:00:00.000Z",
        "source": "shop@example.com",
        "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/example.com",
        "sourceIp": "192.0.2.10",
        "sendingAccountId": "123456789012",
        "messageId": SES_ID,
        "destination": ["Jane.Doe@Example.com"],
        "headersTruncated": False,
        "headers": headers if headers is not None else [
            {"name": "From", "value": "Shop <shop@example.com>"},
            {"name": "To", "value": "Jane.Doe@Example.com"},
            {"name": "Message-ID", "value": f"<{LODESTAR_ID}.lodestar@mail.example.com>"},
            {"name": "X-Lodestar-Message-Id", "value": LODESTAR_ID},
            {"name": "Subject", "value": "Hello"},
        ],
        "commonHeaders": {"from": ["Shop <shop@example.com>"], "to": ["Jane.Doe@Example.com"],
                          "subject": "Hello"},
    }


def _bounce(bounce_type: str = "Permanent", sub_type: str = "General") -> dict[str, Any]:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": sub_type,
            "bouncedRecipients": [{
                "emailAddress": "Jane.Doe@Example.com",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }],
            "timestamp": "2026-05-01T12:00:02.477Z",
            "feedbackId": "0102015fd91a6479-ae22395c-1f7d-4423-a9e5-e0715bffc731-000000",
            "remoteMtaIp": "198.51.100.7",
            "reportingMTA": "dsn; a4-8.smtp-out.eu-west-1.amazonses.com",
        },
        "mail": _mail(),
    }


def _complaint() -> dict[str, Any]:
    return {
        "notificationType": "Complaint",
        "complaint": {
            "userAgent": "ExampleCorp Feedback Loop (V0.01)",
            "complainedRecipients": [{"emailAddress": "jane.doe@example.com"},
                                     {"emailAddress": "Bob <BOB@example.org>"}],
            "complaintFeedbackType": "abuse",
            "arrivalDate": "2026-05-01T12:05:00.000Z",
            "timestamp": "2026-05-01T12:05:01.000Z",
            "feedbackId": "0102015fd91a7000-complaint-000000",
        },
        "mail": _mail(),
    }


def _delivery() -> dict[str, Any]:
    return {
        "notificationType": "Delivery",
        "mail": _mail(),
        "delivery": {
            "timestamp": "2026-05-01T12:00:01.000Z",
            "processingTimeMillis": 546,
            "recipients": ["jane.doe@example.com"],
            "smtpResponse": "250 ok:  Message 64111812 accepted",
            "remoteMtaIp": "198.51.100.7",
            "reportingMTA": "a8-70.smtp-out.amazonses.com",
        },
    }


def _sns(message: dict[str, Any] | str) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-feedback",
        "Message": message if isinstance(message, str) else json.dumps(message),
        "Timestamp": "2026-05-01T12:00:03.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQ",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&x=1",
    }


def _one(outcome: Any) -> Feedback:
    assert isinstance(outcome, Accepted), outcome
    [feedback] = outcome.feedback
    return feedback


def test_permanent_bounce_through_sns_is_a_suppressed_hard_bounce() -> None:
    [outcome] = parse_feedback(_sns(_bounce()), NOW)
    fb = _one(outcome)
    assert fb.kind is FeedbackKind.HARD_BOUNCE and fb.event_type is EventType.EMAIL_HARDBOUNCE
    assert fb.suppression_reason is SuppressionReason.BOUNCE
    assert fb.address == "jane.doe@example.com"
    assert (fb.message_id, fb.provider_message_id) == (LODESTAR_ID, SES_ID)
    assert fb.feedback_id == _bounce()["bounce"]["feedbackId"]
    assert fb.timestamp_ms == 1_777_636_802_477  # bounce.timestamp, not mail.timestamp
    assert (fb.bounce_type, fb.bounce_sub_type, fb.status) == ("Permanent", "General", "5.1.1")
    assert fb.detail == "smtp; 550 5.1.1 user unknown" and fb.source is FeedbackSource.SES
    # the SES object on its own parses the same
    assert parse_feedback(_bounce(), NOW) == [outcome]


@pytest.mark.parametrize("bounce_type", ["Transient", "Undetermined"])
def test_transient_and_undetermined_bounces_are_soft_and_never_suppressed(
    bounce_type: str,
) -> None:
    fb = _one(parse_feedback(_sns(_bounce(bounce_type, "MailboxFull")), NOW)[0])
    assert fb.kind is FeedbackKind.SOFT_BOUNCE and fb.event_type is EventType.EMAIL_SOFTBOUNCE
    assert fb.suppression_reason is None


def test_complaint_has_one_feedback_per_recipient_and_is_suppressed() -> None:
    [outcome] = parse_feedback(_sns(_complaint()), NOW)
    assert isinstance(outcome, Accepted)
    assert [f.address for f in outcome.feedback] == ["jane.doe@example.com", "bob@example.org"]
    for fb in outcome.feedback:
        assert fb.kind is FeedbackKind.COMPLAINT
        assert fb.suppression_reason is SuppressionReason.COMPLAINT
        assert fb.complaint_type == "abuse" and fb.message_id == LODESTAR_ID


def test_delivery_is_delivered_and_not_suppressed() -> None:
    fb = _one(parse_feedback(_sns(_delivery()), NOW)[0])
    assert fb.kind is FeedbackKind.DELIVERY and fb.event_type is EventType.EMAIL_DELIVERED
    assert fb.suppression_reason is None
    assert fb.detail == "250 ok:  Message 64111812 accepted"
    assert fb.feedback_id == "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"  # the SNS message id


def test_event_publishing_shape_and_other_event_types_are_ignored() -> None:
    published = _bounce()
    published["eventType"] = published.pop("notificationType")
    assert _one(parse_feedback(published, NOW)[0]).kind is FeedbackKind.HARD_BOUNCE
    opened = {"eventType": "Open", "mail": _mail(), "open": {"timestamp": "x"}}
    [outcome] = parse_feedback(_sns(opened), NOW)
    assert isinstance(outcome, Ignored) and "'Open'" in outcome.reason


def test_message_id_from_headers() -> None:
    assert lodestar_message_id(_mail()) == LODESTAR_ID
    only_message_id = [{"name": "message-id", "value": "<msg-42.lodestar@mail.example.com>"}]
    assert lodestar_message_id(_mail(only_message_id)) == "msg-42"
    hashed = [{"name": "Message-ID",
               "value": f"<h-{'ab' * 20}.lodestar@mail.example.com>"}]
    assert lodestar_message_id(_mail(hashed)) is None  # a hash cannot be turned back
    foreign = [{"name": "Message-ID", "value": "<abc@elsewhere.example>"}]
    assert lodestar_message_id(_mail(foreign)) is None
    common = _mail([])
    common["commonHeaders"]["messageId"] = "<m-7.lodestar@mail.example.com>"
    assert lodestar_message_id(common) == "m-7"


def test_sns_subscription_confirmation_is_answered_with_its_url() -> None:
    url = ("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn="
           "arn:aws:sns:eu-west-1:123456789012:ses-feedback&Token=2336412f37")
    [outcome] = parse_feedback({
        "Type": "SubscriptionConfirmation", "MessageId": "165545c9", "Token": "2336412f37",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-feedback",
        "Message": "You have chosen to subscribe to the topic ...", "SubscribeURL": url,
        "Timestamp": "2026-05-01T12:00:00.000Z",
    }, NOW)
    assert outcome == Confirmation(0, "SubscriptionConfirmation", url,
                                   "arn:aws:sns:eu-west-1:123456789012:ses-feedback")
    [bad] = parse_feedback({"Type": "SubscriptionConfirmation",
                            "SubscribeURL": "http://plain.example/"}, NOW)
    assert isinstance(bad, Invalid) and "SubscribeURL" in bad.message


def test_generic_form_single_and_list() -> None:
    [hard] = parse_feedback({"Type": "Bounce", "Address": "A@B.example", "MessageId": "m-1",
                             "BounceType": "Permanent", "Diagnostic": "550 no such user",
                             "Timestamp": "2026-05-01T12:00:00Z"}, NOW)
    fb = _one(hard)
    assert (fb.kind, fb.address, fb.message_id, fb.detail, fb.timestamp_ms) == (
        FeedbackKind.HARD_BOUNCE, "a@b.example", "m-1", "550 no such user", 1_777_636_800_000)
    assert fb.source is FeedbackSource.GENERIC and fb.provider_message_id is None

    outcomes = parse_feedback([
        {"Type": "Bounce", "Address": "soft@b.example", "BounceType": "Transient"},
        {"Type": "Complaint", "Address": "c@b.example", "MessageId": "m-2",
         "Timestamp": 1_700_000_000_000},
        {"Type": "Delivery", "Address": "d@b.example"},
    ], NOW)
    kinds = [(_one(o).kind, _one(o).timestamp_ms) for o in outcomes]
    assert kinds == [(FeedbackKind.SOFT_BOUNCE, NOW), (FeedbackKind.COMPLAINT, 1_700_000_000_000),
                     (FeedbackKind.DELIVERY, NOW)]
    assert [o.index for o in outcomes] == [0, 1, 2]


@pytest.mark.parametrize(("item", "fragment"), [
    ("just text", "is not a JSON object"),
    ({"Type": "Bounce", "Address": "a@b.example"}, "BounceType None"),
    ({"Type": "Bounce", "Address": "a@b.example", "BounceType": "Sometimes"}, "'Sometimes'"),
    ({"Type": "Complaint", "Address": "not an address"}, "Address 'not an address'"),
    ({"Type": "Complaint"}, "Address None"),
    ({"Type": "Delivery", "Address": "a@b.example", "Timestamp": "yesterday"}, "Timestamp"),
    ({"Type": "Delivery", "Address": "a@b.example", "MessageId": 7}, "MessageId"),
    ({"Type": "Open", "Address": "a@b.example"}, "Type 'Open'"),
    ({"Hello": "world"}, "is neither"),
    ({"Type": "Notification", "Message": "{not json"}, "Message is not JSON"),
    ({"Type": "Notification", "Message": "[1, 2]"}, "not a JSON object"),
    ({"Type": "Notification"}, "Message is not a string"),
    ({"notificationType": "Bounce", "bounce": {}}, "without a mail object"),
    ({"notificationType": "Bounce", "mail": {}}, "without a bounce object"),
    ({"notificationType": "Bounce", "mail": {},
      "bounce": {"bounceType": "Permanent", "bouncedRecipients": []}}, "bouncedRecipients"),
    ({"notificationType": "Bounce", "mail": {},
      "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "x"}]}},
     "bounce.bouncedRecipients[0].emailAddress 'x'"),
    ({"notificationType": "Complaint", "mail": {"timestamp": "nope"},
      "complaint": {"complainedRecipients": [{"emailAddress": "a@b.example"}]}},
     "bad timestamp"),
    ({"notificationType": "Delivery", "mail": {}, "delivery": {"recipients": []}},
     "delivery.recipients"),
    ({"notificationType": 5, "mail": {}}, "notificationType"),
])
def test_malformed_items_are_invalid_with_a_message(item: Any, fragment: str) -> None:
    [outcome] = parse_feedback(item, NOW)
    assert isinstance(outcome, Invalid), outcome
    assert outcome.message.startswith("Item 0 ") and fragment in outcome.message, outcome.message


def test_a_bad_item_does_not_spoil_the_others() -> None:
    outcomes = parse_feedback([_sns(_bounce()), {"Type": "Bounce"}, _delivery()], NOW)
    assert [type(o) for o in outcomes] == [Accepted, Invalid, Accepted]
    assert isinstance(outcomes[1], Invalid) and outcomes[1].message.startswith("Item 1 ")


def test_addresses() -> None:
    assert email_address(" Jane <Jane@Example.COM> ") == "jane@example.com"
    assert email_address("a b@example.com") is None and email_address(None) is None
    assert email_address("@example.com") is None and email_address("user@") is None
    assert normalise_address(Channel.EMAIL, " X@Y.Z ") == "x@y.z"
    assert normalise_address("SMS", " +81901234567 ") == "+81901234567"


def test_subject_from_the_senders_records() -> None:
    fb = _one(parse_feedback(_sns(_bounce()), NOW)[0])
    stored = [
        {"event_type": "_email.send", "endpoint_id": "ep-1", "user_id": "u-1",
         "attributes": {"campaign_id": "cmp", "campaign_activity_id": "run",
                        "treatment_id": "0", "shop": "eu"}},
        {"event_type": "_email.delivered", "endpoint_id": "ep-1", "user_id": "u-1",
         "attributes": {"campaign_id": "cmp", "smtp_status_code": "250"}},
    ]
    subject = feedback_subject("app-1", fb, stored)
    assert subject == DeliverySubject(
        "app-1", LODESTAR_ID, Channel.EMAIL, endpoint_id="ep-1", user_id="u-1",
        campaign_id="cmp", campaign_activity_id="run", treatment_id="0",
        context={"shop": "eu"})
    # only an outcome record stored: its outcome attributes are not Context
    rejected = [{"event_type": "_email.rejected", "endpoint_id": "ep-2", "user_id": None,
                 "attributes": {"journey_id": "j", "reject_reason": "OPT_OUT",
                                "error_message": "x", "k": "v"}}]
    subject = feedback_subject("app-1", fb, rejected)
    assert (subject.endpoint_id, subject.journey_id, dict(subject.context)) == (
        "ep-2", "j", {"k": "v"})
    bare = feedback_subject("app-1", fb, None)
    assert (bare.endpoint_id, bare.message_id, bare.campaign_id) == (None, LODESTAR_ID, None)


def test_message_id_fallbacks_are_stable() -> None:
    no_headers = _bounce()
    no_headers["mail"] = _mail([])
    fb = _one(parse_feedback(no_headers, NOW)[0])
    assert fb.message_id is None and message_id_of(fb) == f"ses:{SES_ID}"
    generic = _one(parse_feedback({"Type": "Complaint", "Address": "a@b.example"}, NOW)[0])
    first = message_id_of(generic)
    assert first.startswith("feedback:") and len(first) == len("feedback:") + 32
    assert message_id_of(_one(parse_feedback({"Type": "Complaint", "Address": "a@b.example"},
                                             NOW)[0])) == first
    other = _one(parse_feedback({"Type": "Complaint", "Address": "z@b.example"}, NOW)[0])
    assert message_id_of(other) != first


def test_records() -> None:
    [outcome] = parse_feedback(_sns(_bounce()), NOW)
    fb = _one(outcome)
    subject = DeliverySubject("app-1", LODESTAR_ID, Channel.EMAIL, endpoint_id="ep-1",
                              campaign_id="cmp")
    record = feedback_record(subject, fb)
    assert record["event_type"] == "_email.hardbounce" and record["endpoint_id"] == "ep-1"
    assert record["timestamp"] == fb.timestamp_ms and record["channel"] == "EMAIL"
    assert record["event_id"].startswith(f"{LODESTAR_ID}:_email.hardbounce:")
    attrs = record["attributes"]
    assert attrs["campaign_id"] == "cmp" and attrs["feedback"] == fb.detail
    assert (attrs["bounce_type"], attrs["bounce_status"], attrs["feedback_source"]) == (
        "Permanent", "5.1.1", "SES")
    assert attrs["destination_address"] == "jane.doe@example.com"
    assert attrs["provider_message_id"] == SES_ID
    assert feedback_record(subject, fb) == record  # a replay has the same event id

    complaint = _one(parse_feedback({"Type": "Complaint", "Address": "a@b.example",
                                     "FeedbackId": "f-1", "ComplaintFeedbackType": "abuse"},
                                    NOW)[0])
    crec = feedback_record(subject, complaint)
    assert crec["event_type"] == "_email.complaint"
    assert crec["attributes"]["complaint_feedback_type"] == "abuse"
    assert crec["event_id"] != record["event_id"]

    delivered = _one(parse_feedback(_delivery(), NOW)[0])
    drec = feedback_record(subject, delivered)
    assert drec["event_type"] == "_email.delivered"
    assert drec["attributes"]["smtp_response"] == "250 ok:  Message 64111812 accepted"
    assert "feedback" not in drec["attributes"]
