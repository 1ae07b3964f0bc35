"""``POST /v1/apps/{id}/channels/email/feedback`` on the live API (real PostgreSQL and Kafka).

Each test reads back its own ``<prefix>.deliveries`` topic and checks the
suppression list through the API and in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from tests.api.live_api import ADMIN, Api, api_settings
from tests.api.test_openapi import _Checker
from tests.api.topic_records import topic_records
from tests.asgi_server import serve_asgi
from tests.sns_signer import CERT_URL, Signer

from lodestar.api import openapi
from lodestar.api.app import create_app
from lodestar.api.sns_verification import CertificateUnavailable, SnsVerifier, SnsVerifyConfig
from lodestar.contracts.codec import AvroCodec
from lodestar.core.topics import Topic
from lodestar.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN[0]}:{ADMIN[1]}"}
KNOWN_ID = "msg-known-0001"
FEEDBACK = "/v1/apps/{application-id}/channels/email/feedback"
SIGNER = Signer()  # SNS's signing key and certificate, as far as these tests know
SES_ID = "0102015fd91a5ca3-93c245fe-000000"


class CertificateServer:
    """The injected certificate fetcher: serves ``SIGNER``'s certificate at ``CERT_URL``."""

    def __init__(self) -> None:
        self.fetched: list[str] = []

    async def __call__(self, url: str) -> bytes:
        self.fetched.append(url)
        assert url == CERT_URL
        return SIGNER.pem


class SubscribeEndpoint:
    """The injected SubscribeURL fetcher: SNS confirming (or failing to confirm)."""

    def __init__(self) -> None:
        self.visited: list[str] = []
        self.failure: CertificateUnavailable | None = None

    async def __call__(self, url: str) -> bytes:
        self.visited.append(url)
        if self.failure is not None:
            raise self.failure
        return b"<ConfirmSubscriptionResponse/>"


SUBSCRIBE = SubscribeEndpoint()


def _serve(settings: Settings, verify: bool = True) -> Iterator[Api]:
    app = create_app(settings)
    app.state.sns_verifier = SnsVerifier(SnsVerifyConfig(enabled=verify), CertificateServer(),
                                         confirmer=SUBSCRIBE)
    with serve_asgi(app, lifespan="on") as url:
        yield Api(url, settings)


@pytest.fixture
def api(settings: Settings, control_dsn: str) -> Iterator[Api]:
    """The live API, checking SNS signatures with ``SIGNER``'s certificate."""
    yield from _serve(api_settings(settings, control_dsn))


def _create_app(api: Api, name: str = "Shop") -> tuple[str, dict[str, str]]:
    """A new application's id and Bearer headers of its own key."""
    answer = httpx.post(f"{api.url}/v1/apps", json={"Name": name}, headers=ADMIN_AUTH)
    assert answer.status_code == 201, answer.text
    key = (answer.headers["x-lodestar-access-key-id"],
           answer.headers["x-lodestar-secret-access-key"])
    return answer.json()["Id"], {"Authorization": f"Bearer {key[0]}:{key[1]}"}


def _seed_sent_message(dsn: str, app_id: str, provider_id: str | None = None,
                       message_id: str = KNOWN_ID) -> None:
    """What the email sender stores for a campaign send it delivered (``provider_id``:
    the relay's queued-as id)."""
    attrs = {"campaign_id": "cmp-1", "campaign_activity_id": "run-1", "treatment_id": "0",
             "region": "eu"}
    deliveries = [
        {"event_id": f"{KNOWN_ID}:_email.send", "app_id": app_id, "endpoint_id": "ep-1",
         "user_id": "user-1", "message_id": KNOWN_ID, "event_type": "_email.send",
         "channel": "EMAIL", "timestamp": 1, "attributes": attrs, "metrics": {}},
        {"event_id": f"{KNOWN_ID}:_email.delivered", "app_id": app_id, "endpoint_id": "ep-1",
         "user_id": "user-1", "message_id": KNOWN_ID, "event_type": "_email.delivered",
         "channel": "EMAIL", "timestamp": 2,
         "attributes": {**attrs, "smtp_status_code": "250"}, "metrics": {}},
    ]

    async def seed() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "INSERT INTO sent_messages (message_id, app_id, state, claimed_by, deliveries, "
                "provider_message_id) VALUES ($1, $2, 'SENT', 'email-test', $3::jsonb, $4)",
                message_id, app_id,
                json.dumps(deliveries).replace(KNOWN_ID, message_id), provider_id)
        finally:
            await conn.close()

    asyncio.run(seed())


def _deliveries(api: Api, expected: int, within: float = 10.0) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        records = await topic_records(api.settings, Topic.DELIVERIES, expected, within)
        codec = AvroCodec.default()
        return [{"key": r.key, **codec.decode(Topic.DELIVERIES, r.value)} for r in records]

    return asyncio.run(read())


def _ses_bounce(address: str, message_id: str | None, bounce_type: str = "Permanent",
               ses_id: str = SES_ID) -> dict[str, Any]:
    """An SNS Notification of an SES bounce, signed by ``SIGNER``; ``message_id`` None:
    the original headers were not included."""
    note = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type, "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": address, "action": "failed",
                                   "status": "5.1.1",
                                   "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
            "timestamp": "2026-05-01T12:00:02.000Z",
            "feedbackId": "0102015fd91a6479-ae22395c-000000",
            "reportingMTA": "dsn; a4-8.smtp-out.eu-west-1.amazonses.com",
        },
        "mail": {
            "timestamp": "2026-05-01T12:00:00.000Z", "source": "shop@example.com",
            "messageId": ses_id, "destination": [address],
            "headersTruncated": False,
            "headers": [{"name": "From", "value": "shop@example.com"},
                        {"name": "X-Lodestar-Message-Id", "value": message_id}],
        },
    }
    if message_id is None:
        del note["mail"]["headers"]  # type: ignore[attr-defined]
    return SIGNER.sign({
        "Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-feedback",
        "Message": json.dumps(note), "Timestamp": "2026-05-01T12:00:03.000Z"})


def _feedback(api: Api, app_id: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{api.url}/v1/apps/{app_id}/channels/email/feedback",
                      content=json.dumps(body), headers={**headers,
                                                         "Content-Type": "text/plain"})


def _suppressed(api: Api, app_id: str, headers: dict[str, str]) -> dict[str, str]:
    answer = httpx.get(f"{api.url}/v1/apps/{app_id}/suppressed-destinations", headers=headers)
    assert answer.status_code == 200, answer.text
    return {i["Address"]: i["Reason"]
            for i in answer.json()["SuppressedDestinationsResponse"]["Item"]}


def test_feedback_publishes_records_tied_to_the_send_and_suppresses(api: Api) -> None:
    app_id, app_auth = _create_app(api)
    _seed_sent_message(api.settings.postgres_dsn, app_id)
    confirm_url = ("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
                   "&TopicArn=arn:aws:sns:eu-west-1:123456789012:ses-feedback&Token=abc")
    body = [
        _ses_bounce("Jane@Example.com", KNOWN_ID),
        {"Type": "Complaint", "Address": "angry@example.com", "MessageId": "msg-unknown",
         "FeedbackId": "fbl-1", "ComplaintFeedbackType": "abuse"},
        {"Type": "Bounce", "Address": "full@example.com", "BounceType": "Transient",
         "Diagnostic": "452 mailbox full", "Timestamp": "2026-05-01T13:00:00Z"},
        {"Type": "Delivery", "Address": "fine@example.com", "MessageId": KNOWN_ID},
        SIGNER.sign({"Type": "SubscriptionConfirmation", "MessageId": "165545c9",
                     "Token": "abc", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-feedback",
                     "Message": "You have chosen to subscribe to the topic.",
                     "Timestamp": "2026-05-01T12:00:00.000Z", "SubscribeURL": confirm_url},
                    "2"),
    ]
    answer = _feedback(api, app_id, body, app_auth)  # the app's own key
    assert answer.status_code == 200, answer.text
    results = answer.json()["EmailFeedbackResponse"]["Results"]
    assert [(r["Index"], r["Status"]) for r in results] == [
        (0, "PROCESSED"), (1, "PROCESSED"), (2, "PROCESSED"), (3, "PROCESSED"),
        (4, "CONFIRMED")]
    assert SUBSCRIBE.visited[-1] == confirm_url  # the verified subscription is confirmed
    assert results[4]["TopicArn"] == "arn:aws:sns:eu-west-1:123456789012:ses-feedback"
    [bounced] = results[0]["Recipients"]
    assert bounced == {"Address": "jane@example.com", "EventType": "_email.hardbounce",
                       "MessageId": KNOWN_ID, "MessageFound": True, "Suppressed": True,
                       "SuppressionReason": "BOUNCE", "EndpointId": "ep-1"}
    assert results[1]["Recipients"][0]["MessageFound"] is False
    assert results[2]["Recipients"][0]["Suppressed"] is False
    _Checker(openapi.document())(answer, "POST", FEEDBACK)

    records = {r["event_type"]: r for r in _deliveries(api, 4)}
    assert set(records) == {"_email.hardbounce", "_email.complaint", "_email.softbounce",
                            "_email.delivered"}
    hard = records["_email.hardbounce"]
    assert (hard["app_id"], hard["message_id"], hard["endpoint_id"], hard["user_id"]) == (
        app_id, KNOWN_ID, "ep-1", "user-1")
    assert hard["key"] == b"ep-1"
    attrs = hard["attributes"]
    assert (attrs["campaign_id"], attrs["campaign_activity_id"], attrs["treatment_id"],
            attrs["region"]) == ("cmp-1", "run-1", "0", "eu")
    assert attrs["feedback"] == "smtp; 550 5.1.1 user unknown"
    assert "smtp_status_code" not in attrs
    assert hard["timestamp"] == 1_777_636_802_000
    complaint = records["_email.complaint"]  # unknown message: what the feedback carries
    assert (complaint["message_id"], complaint["endpoint_id"]) == ("msg-unknown", None)
    assert complaint["key"] == b"msg-unknown"
    assert complaint["attributes"]["complaint_feedback_type"] == "abuse"
    soft = records["_email.softbounce"]
    assert soft["message_id"].startswith("feedback:") and soft["timestamp"] == 1_777_640_400_000
    assert records["_email.delivered"]["endpoint_id"] == "ep-1"

    assert _suppressed(api, app_id, ADMIN_AUTH) == {"jane@example.com": "BOUNCE",
                                                    "angry@example.com": "COMPLAINT"}
    one = httpx.get(f"{api.url}/v1/apps/{app_id}/suppressed-destinations/EMAIL/"
                    "JANE@example.com", headers=app_auth)
    assert one.status_code == 200
    assert one.json()["SuppressedDestination"]["Attributes"] == {
        "MessageId": KNOWN_ID, "FeedbackId": "0102015fd91a6479-ae22395c-000000"}

    # a replay changes nothing: same suppressions, same event ids
    again = _feedback(api, app_id, body[:2], app_auth)
    assert again.status_code == 200
    replayed = _deliveries(api, 6)
    assert len({r["event_id"] for r in replayed}) == 4
    assert _suppressed(api, app_id, ADMIN_AUTH) == {"jane@example.com": "BOUNCE",
                                                    "angry@example.com": "COMPLAINT"}


def test_mixed_batch_answers_400_naming_bad_items_and_processes_the_good(api: Api) -> None:
    app_id, _ = _create_app(api)
    body = [
        {"Type": "Bounce", "Address": "gone@example.com", "BounceType": "Permanent"},
        {"Type": "Bounce", "Address": "gone2@example.com"},  # no BounceType
        "not an object",
        {"eventType": "Open", "mail": {}, "open": {}},  # not feedback: ignored
    ]
    answer = _feedback(api, app_id, body, ADMIN_AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.headers["x-amzn-ErrorType"] == "BadRequestException"
    out = answer.json()
    assert out["Message"].startswith("2 of 4 feedback items were refused: Item 1 ")
    assert "Item 2 is not a JSON object" in out["Message"]
    assert "other 2 items were processed" in out["Message"]
    statuses = [(r["Index"], r["StatusCode"], r["Status"])
                for r in out["EmailFeedbackResponse"]["Results"]]
    assert statuses == [(0, 200, "PROCESSED"), (1, 400, "INVALID"), (2, 400, "INVALID"),
                        (3, 200, "IGNORED")]
    _Checker(openapi.document())(answer, "POST", FEEDBACK)
    [record] = _deliveries(api, 1)
    assert record["event_type"] == "_email.hardbounce"
    assert record["attributes"]["destination_address"] == "gone@example.com"
    assert _suppressed(api, app_id, ADMIN_AUTH) == {"gone@example.com": "BOUNCE"}


def test_bad_bodies_credentials_and_unknown_apps(api: Api) -> None:
    app_id, app_auth = _create_app(api)
    other_id, other_auth = _create_app(api, "Other")
    url = f"{api.url}/v1/apps/{app_id}/channels/email/feedback"
    item = {"Type": "Complaint", "Address": "a@example.com"}

    not_json = httpx.post(url, content=b"{nope", headers=app_auth)
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["Message"]
    empty = httpx.post(url, json=[], headers=app_auth)
    assert empty.status_code == 400 and "list of 0 items" in empty.json()["Message"]
    assert httpx.post(url, json=item).status_code == 403  # no credentials
    assert httpx.post(url, json=item, headers=other_auth).status_code == 403  # another app
    missing = httpx.post(f"{api.url}/v1/apps/{'0' * 32}/channels/email/feedback", json=item,
                         headers=ADMIN_AUTH)
    assert missing.status_code == 404
    assert _deliveries(api, 1, within=3) == []
    assert _suppressed(api, app_id, app_auth) == {}
    assert _suppressed(api, other_id, other_auth) == {}


def test_unsigned_or_forged_sns_messages_are_refused_and_nothing_happens(api: Api) -> None:
    app_id, app_auth = _create_app(api)
    generic = {"Type": "Complaint", "Address": "angry@example.com"}
    signed = _ses_bounce("jane@example.com", KNOWN_ID)
    unsigned = {k: v for k, v in signed.items()
                if k not in ("Signature", "SignatureVersion", "SigningCertURL")}
    forged = {**signed, "Message": signed["Message"].replace("Permanent", "Transient")}
    elsewhere = SIGNER.sign({k: signed[k] for k in ("Type", "MessageId", "TopicArn", "Message",
                                                    "Timestamp")},
                            cert_url="https://sns.eu-west-1.amazonaws.com.evil.example/c.pem")
    for bad, reason in ((unsigned, "UNSIGNED"), (forged, "MISMATCH"), (elsewhere, "CERT_URL")):
        answer = _feedback(api, app_id, [generic, bad], app_auth)
        assert answer.status_code == 403, answer.text
        assert answer.headers["x-amzn-ErrorType"] == "ForbiddenException"
        message = answer.json()["Message"]
        assert message.startswith(f"Item 1 is an SNS message whose signature is refused "
                                  f"({reason})"), message
        assert "Nothing was processed" in message
        _Checker(openapi.document())(answer, "POST", FEEDBACK)
    assert _deliveries(api, 1, within=3) == []
    assert _suppressed(api, app_id, app_auth) == {}
    # the same body with the genuine signature goes through
    answer = _feedback(api, app_id, [generic, signed], app_auth)
    assert answer.status_code == 200, answer.text
    assert len(_deliveries(api, 2)) == 2


def test_with_checks_off_unsigned_sns_messages_are_processed(settings: Settings,
                                                             control_dsn: str) -> None:
    for api in _serve(api_settings(settings, control_dsn), verify=False):
        app_id, app_auth = _create_app(api)
        signed = _ses_bounce("jane@example.com", None)
        unsigned = {k: v for k, v in signed.items() if k != "Signature"}
        answer = _feedback(api, app_id, unsigned, app_auth)
        assert answer.status_code == 200, answer.text
        [record] = _deliveries(api, 1)
        assert record["event_type"] == "_email.hardbounce"


def test_reports_without_headers_are_matched_by_the_ses_message_id(api: Api) -> None:
    app_id, app_auth = _create_app(api)
    other_id, _ = _create_app(api, "Other")
    _seed_sent_message(api.settings.postgres_dsn, app_id, provider_id=SES_ID)
    # another application's send with the same relay id never matches
    _seed_sent_message(api.settings.postgres_dsn, other_id, provider_id="0102-other",
                       message_id="msg-other-app")
    body = [
        _ses_bounce("jane@example.com", None),  # SNS envelope, no original headers
        json.loads(_ses_bounce("bob@example.com", None, "Transient", "0102-unknown")["Message"]),
        json.loads(_ses_bounce("eve@example.com", None, "Transient", "0102-other")["Message"]),
    ]
    answer = _feedback(api, app_id, body, app_auth)
    assert answer.status_code == 200, answer.text
    results = answer.json()["EmailFeedbackResponse"]["Results"]
    [jane], [bob], [eve] = (r["Recipients"] for r in results)
    assert (jane["MessageId"], jane["MessageFound"], jane["EndpointId"]) == (
        KNOWN_ID, True, "ep-1")
    assert (bob["MessageId"], bob["MessageFound"]) == ("ses:0102-unknown", False)
    assert "EndpointId" not in bob
    assert (eve["MessageId"], eve["MessageFound"]) == ("ses:0102-other", False)

    records = {r["attributes"]["destination_address"]: r for r in _deliveries(api, 3)}
    hard = records["jane@example.com"]
    assert (hard["message_id"], hard["endpoint_id"], hard["user_id"]) == (
        KNOWN_ID, "ep-1", "user-1")
    assert hard["attributes"]["campaign_id"] == "cmp-1"
    assert hard["attributes"]["provider_message_id"] == SES_ID
    assert records["bob@example.com"]["endpoint_id"] is None
    one = httpx.get(f"{api.url}/v1/apps/{app_id}/suppressed-destinations/EMAIL/"
                    "jane@example.com", headers=app_auth)
    assert one.json()["SuppressedDestination"]["Attributes"]["MessageId"] == KNOWN_ID


def test_a_subscription_that_cannot_be_confirmed_is_answered_for_an_operator(api: Api) -> None:
    app_id, app_auth = _create_app(api)
    confirm_url = ("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
                   "&TopicArn=arn:aws:sns:eu-west-1:123456789012:t&Token=t1")
    elsewhere = "https://attacker.example.com/?Action=ConfirmSubscription"
    confirmations = [SIGNER.sign({"Type": kind, "MessageId": f"m-{i}", "Token": "t1",
                                  "TopicArn": "arn:aws:sns:eu-west-1:123456789012:t",
                                  "Message": "confirm", "Timestamp": "2026-05-01T12:00:00.000Z",
                                  "SubscribeURL": url}, "2")
                     for i, (kind, url) in enumerate([
                         ("SubscriptionConfirmation", confirm_url),
                         ("SubscriptionConfirmation", elsewhere),
                         ("UnsubscribeConfirmation", confirm_url)])]
    SUBSCRIBE.failure = CertificateUnavailable("SubscribeURL answered HTTP 503",
                                               transient=True)
    before = len(SUBSCRIBE.visited)
    try:
        answer = _feedback(api, app_id, confirmations, app_auth)
    finally:
        SUBSCRIBE.failure = None
    assert answer.status_code == 200, answer.text
    results = answer.json()["EmailFeedbackResponse"]["Results"]
    assert [r["Status"] for r in results] == ["SUBSCRIPTION_CONFIRMATION"] * 3
    assert "SubscribeURL answered HTTP 503" in results[0]["Message"]
    assert "not on an SNS host" in results[1]["Message"]
    assert "not undone automatically" in results[2]["Message"]
    assert [r["SubscribeURL"] for r in results] == [confirm_url, elsewhere, confirm_url]
    assert SUBSCRIBE.visited[before:] == [confirm_url]  # never the other host, never unsubscribe
