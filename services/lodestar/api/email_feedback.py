"""``POST /v1/apps/{application-id}/channels/email/feedback``: bounce, complaint and delivery
feedback (Lodestar extension; docs/feedback-and-suppression.md).

Authenticated like every ``/v1`` route (an admin key or a key of the application).
The body is SES notifications as SNS posts them (the envelope, or the SES object
itself) or Lodestar's generic form, one object or a list (``core.email_feedback``).

Every SNS-shaped item (``Type`` Notification, SubscriptionConfirmation or
UnsubscribeConfirmation) must carry a valid SNS signature (``api.sns_verification``)
unless ``LODESTAR_SNS_VERIFY_SIGNATURES`` is false: one refused item answers 403 and
nothing of the body is processed (500 when the signing certificate could not be
fetched: SNS retries). Per good item:

1. the original send is looked up in ``sent_messages`` (what the email sender stored:
   its delivery records name the endpoint, user, campaign/journey and Context) by
   Lodestar's message id, or, when the report lacks it (no original headers), by SES's
   ``mail.messageId`` as the ``provider_message_id`` the sender stored (the relay's
   queued-as id); when unknown, records carry only what the feedback does;
2. hard bounces and complaints are added to the application's suppression list
   (``control.suppression``), soft bounces and deliveries never;
3. ``_email.hardbounce|softbounce|complaint|delivered`` records are published on
   ``<prefix>.deliveries`` (acknowledged by Kafka before the answer).

An SNS ``SubscriptionConfirmation`` whose signature verified is confirmed: the API
GETs its ``SubscribeURL`` — only an https URL on an SNS host, the same rule as the
certificate's — and answers ``CONFIRMED``. With signature checks off, for an
``UnsubscribeConfirmation``, or when the GET fails, it logs the ``SubscribeURL``
(WARNING) and answers it in the item's result, for an operator to visit. Other SES
notification types are answered ``IGNORED`` with 200, so SNS does not retry them.

Answer: 200 ``{"EmailFeedbackResponse": {"Results": [...]}}``, one result per item;
when any item is malformed, 400 with Pinpoint's error shape whose ``Message`` names
each bad item, plus the same ``EmailFeedbackResponse``: the good items of the batch
were processed all the same (nothing is lost, and resending the batch is harmless:
suppressions are idempotent and event ids deterministic).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lodestar.api.errors import ErrorType, error_response, new_request_id
from lodestar.api.event_publisher import EventPublisher
from lodestar.api.sns_verification import ItemRefused, SnsVerifier
from lodestar.control.suppression import SuppressionRepository
from lodestar.core.delivery_events import Channel
from lodestar.core.email_feedback import (
    MAX_ITEMS,
    Accepted,
    Confirmation,
    Feedback,
    Ignored,
    Invalid,
    ItemOutcome,
    feedback_record,
    feedback_subject,
    parse_feedback,
)

log = logging.getLogger(__name__)

MAX_FEEDBACK_BYTES = 4 * 1024 * 1024


async def sent_deliveries(pool: asyncpg.Pool, app_id: str, message_ids: Sequence[str]
                          ) -> dict[str, list[dict[str, Any]]]:
    """The delivery records the email sender stored per message id (this app's email
    sends only)."""
    if not message_ids:
        return {}
    rows = await pool.fetch(
        "SELECT message_id, deliveries FROM sent_messages "
        "WHERE app_id = $1 AND channel = 'EMAIL' AND message_id = ANY($2::text[])",
        app_id, sorted(set(message_ids)),
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        stored = row["deliveries"]
        records = json.loads(stored) if isinstance(stored, str) else stored
        out[row["message_id"]] = [r for r in records or () if isinstance(r, dict)]
    return out


async def sent_by_provider_id(pool: asyncpg.Pool, app_id: str, provider_ids: Sequence[str]
                              ) -> dict[str, str]:
    """Lodestar's message id per provider message id (the relay's queued-as id, which for
    SES is ``mail.messageId``), among this app's email sends; the latest send wins."""
    if not provider_ids:
        return {}
    rows = await pool.fetch(
        "SELECT DISTINCT ON (provider_message_id) provider_message_id, message_id "
        "FROM sent_messages WHERE app_id = $1 AND channel = 'EMAIL' "
        "AND provider_message_id = ANY($2::text[]) "
        "ORDER BY provider_message_id, claimed_at DESC",
        app_id, sorted(set(provider_ids)),
    )
    return {row["provider_message_id"]: row["message_id"] for row in rows}


def _matched(outcome: ItemOutcome, by_provider_id: Mapping[str, str]) -> ItemOutcome:
    """``outcome`` with Lodestar's message id filled in where only the provider's was
    known (the original headers were not in the report) and a send matches it."""
    if not isinstance(outcome, Accepted) or not by_provider_id:
        return outcome

    def matched(f: Feedback) -> Feedback:
        found = None if f.message_id else by_provider_id.get(f.provider_message_id or "")
        return f if found is None else replace(f, message_id=found)

    return replace(outcome, feedback=tuple(matched(f) for f in outcome.feedback))


def _refused(refused: ItemRefused, request_id: str) -> Response:
    where = f"Item {refused.index} is an SNS message"
    if refused.transient:
        return error_response(
            ErrorType.INTERNAL, f"{where} whose signing certificate could not be fetched "
            f"({refused.refused.message}). Nothing was processed; retry the request.",
            request_id)
    return error_response(
        ErrorType.FORBIDDEN, f"{where} whose signature is refused "
        f"({refused.refused.reason.value}): {refused.refused.message}. Nothing was processed. "
        "SNS signatures are checked unless LODESTAR_SNS_VERIFY_SIGNATURES is false.",
        request_id)


async def _confirmation(request: Request, app_id: str, outcome: Confirmation
                        ) -> dict[str, Any]:
    """A verified SubscriptionConfirmation is confirmed (GET SubscribeURL on the SNS
    host); an UnsubscribeConfirmation, or one that could not be confirmed, is answered
    with its SubscribeURL for an operator."""
    verifier: SnsVerifier = request.app.state.sns_verifier
    why = "an unsubscription is not undone automatically"
    if outcome.sns_type == "SubscriptionConfirmation":
        failed = await verifier.confirm(outcome.subscribe_url)
        if failed is None:
            log.info("SNS subscription of app %s to %s confirmed", app_id, outcome.topic_arn)
            return {"StatusCode": 200, "Status": "CONFIRMED",
                    "Message": "SNS SubscriptionConfirmation: the subscription is confirmed."}
        why = failed
    log.warning("SNS %s for app %s (topic %s): not confirmed (%s); visit %s to confirm",
                outcome.sns_type, app_id, outcome.topic_arn, why, outcome.subscribe_url)
    return {"StatusCode": 200, "Status": "SUBSCRIPTION_CONFIRMATION",
            "Message": f"SNS {outcome.sns_type}: not confirmed by Lodestar ({why}); visit "
                       "SubscribeURL to confirm.",
            "SubscribeURL": outcome.subscribe_url}


def _recipient_result(feedback: Feedback, record: dict[str, Any], known: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Address": feedback.address,
        "EventType": record["event_type"],
        "MessageId": record["message_id"],
        "MessageFound": known,
        "Suppressed": feedback.suppression_reason is not None,
    }
    if feedback.suppression_reason is not None:
        out["SuppressionReason"] = feedback.suppression_reason.value
    if record.get("endpoint_id"):
        out["EndpointId"] = record["endpoint_id"]
    return out


async def post_email_feedback(request: Request) -> Response:
    """Process the feedback items of the body; see the module doc."""
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    raw = await request.body()
    if len(raw) > MAX_FEEDBACK_BYTES:
        return error_response(
            ErrorType.PAYLOAD_TOO_LARGE,
            f"A feedback body is at most {MAX_FEEDBACK_BYTES // (1024 * 1024)} MB; this one "
            f"is {len(raw)} bytes. Send fewer items per request.", request_id)
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return error_response(ErrorType.BAD_REQUEST, f"The body is not valid JSON: {exc}",
                              request_id)
    if isinstance(body, list) and not 0 < len(body) <= MAX_ITEMS:
        return error_response(
            ErrorType.BAD_REQUEST,
            f"The body is a list of {len(body)} items; send 1 to {MAX_ITEMS}.", request_id)
    verifier: SnsVerifier = request.app.state.sns_verifier
    refused = await verifier.check(body if isinstance(body, list) else [body])
    if refused is not None:
        return _refused(refused, request_id)
    now_ms = int(time.time() * 1000)
    outcomes = parse_feedback(body, now_ms)

    pool: asyncpg.Pool = request.app.state.pool
    by_provider_id = await sent_by_provider_id(pool, app_id, [
        f.provider_message_id for o in outcomes if isinstance(o, Accepted) for f in o.feedback
        if not f.message_id and f.provider_message_id])
    outcomes = [_matched(o, by_provider_id) for o in outcomes]
    accepted = [o for o in outcomes if isinstance(o, Accepted)]
    feedback = [f for o in accepted for f in o.feedback]
    stored = await sent_deliveries(pool, app_id, [f.message_id for f in feedback
                                                  if f.message_id])
    records = {id(f): feedback_record(
        feedback_subject(app_id, f, stored.get(f.message_id or "")), f) for f in feedback}

    suppressions = SuppressionRepository(pool)
    for f in feedback:
        reason = f.suppression_reason
        if reason is not None:
            await suppressions.add(app_id, Channel.EMAIL, f.address, reason,
                                   source_message_id=records[id(f)]["message_id"],
                                   feedback_id=f.feedback_id)
    publisher: EventPublisher = request.app.state.publisher
    try:
        await publisher.publish_deliveries(list(records.values()))
    except Exception:
        log.exception("publishing %d feedback records of app %s failed", len(records), app_id)
        return error_response(
            ErrorType.INTERNAL,
            "The feedback's delivery records could not be stored in Kafka (suppressions were "
            "recorded). Retry the request: it is safe to resend.", request_id)

    results: list[dict[str, Any]] = []
    for outcome in outcomes:
        result: dict[str, Any] = {"Index": outcome.index}
        if isinstance(outcome, Accepted):
            result.update(StatusCode=200, Status="PROCESSED", Recipients=[
                _recipient_result(f, records[id(f)], f.message_id in stored)
                for f in outcome.feedback])
        elif isinstance(outcome, Confirmation):
            result.update(await _confirmation(request, app_id, outcome))
            if outcome.topic_arn:
                result["TopicArn"] = outcome.topic_arn
        elif isinstance(outcome, Ignored):
            result.update(StatusCode=200, Status="IGNORED", Message=outcome.reason + ".")
        else:
            assert isinstance(outcome, Invalid)
            result.update(StatusCode=400, Status="INVALID", Message=outcome.message)
        results.append(result)
    log.info("email feedback for app %s: %d items, %d reports, %d suppressions", app_id,
             len(outcomes), len(feedback),
             sum(f.suppression_reason is not None for f in feedback))

    answer = {"EmailFeedbackResponse": {"Results": results}}
    bad = [o for o in outcomes if isinstance(o, Invalid)]
    if not bad:
        return JSONResponse(answer, headers={"x-amzn-RequestId": request_id})
    done = len(outcomes) - len(bad)
    message = (f"{len(bad)} of {len(outcomes)} feedback items were refused: "
               + " ".join(o.message for o in bad)
               + f" The other {done} item{'s were' if done != 1 else ' was'} processed; "
               "see EmailFeedbackResponse.Results.")
    return JSONResponse(
        {"Message": message, "RequestID": request_id, **answer}, status_code=400,
        headers={"x-amzn-ErrorType": ErrorType.BAD_REQUEST.value, "x-amzn-RequestId": request_id})


def openapi_paths() -> tuple[dict[str, Any], dict[str, Any]]:
    """This route's OpenAPI path item and component schemas (read by ``api.openapi``)."""
    refs = "#/components/responses/"
    results = {"type": "object", "required": ["Results"], "properties": {"Results": {
        "type": "array", "description": "One result per item of the body, in order.",
        "items": {"$ref": "#/components/schemas/EmailFeedbackResult"}}}}
    schemas: dict[str, Any] = {
        "EmailFeedbackResult": {
            "description": "Lodestar extension. What became of one feedback item.",
            "type": "object",
            "required": ["Index", "StatusCode", "Status"],
            "properties": {
                "Index": {"type": "integer", "minimum": 0,
                          "description": "The item's position in the body (0 for an object)."},
                "StatusCode": {"type": "integer", "enum": [200, 400]},
                "Status": {"type": "string", "enum": [
                    "PROCESSED", "CONFIRMED", "SUBSCRIPTION_CONFIRMATION", "IGNORED",
                    "INVALID"],
                    "description": "PROCESSED: records published and suppressions added; "
                    "CONFIRMED: a verified SNS SubscriptionConfirmation, confirmed by "
                    "Lodestar; SUBSCRIPTION_CONFIRMATION: an SNS (un)subscription "
                    "confirmation Lodestar did not confirm (Message says why; visit "
                    "SubscribeURL); IGNORED: an SES notification type that is "
                    "not feedback (Send, Open, Click …); INVALID: malformed (Message says "
                    "how)."},
                "Message": {"type": "string"},
                "SubscribeURL": {"type": "string", "format": "uri"},
                "TopicArn": {"type": "string"},
                "Recipients": {"type": "array",
                               "items": {"$ref": "#/components/schemas/EmailFeedbackRecipient"}},
            },
        },
        "EmailFeedbackRecipient": {
            "description": "Lodestar extension. One recipient's report in a processed item.",
            "type": "object",
            "required": ["Address", "EventType", "MessageId", "MessageFound", "Suppressed"],
            "properties": {
                "Address": {"type": "string", "description": "The address, lower-cased."},
                "EventType": {"type": "string", "enum": [
                    "_email.hardbounce", "_email.softbounce", "_email.complaint",
                    "_email.delivered"], "description": "The record published."},
                "MessageId": {"type": "string", "description": "The record's message id: "
                              "Lodestar's when the feedback carries it, else `ses:<SES id>` "
                              "or `feedback:<hash>`."},
                "MessageFound": {"type": "boolean", "description": "Whether the message was "
                                 "found among this application's sends (then the record "
                                 "names its endpoint, user, campaign or journey)."},
                "EndpointId": {"type": "string"},
                "Suppressed": {"type": "boolean", "description": "Whether the address was "
                               "added to the EMAIL suppression list (hard bounces and "
                               "complaints)."},
                "SuppressionReason": {"type": "string", "enum": ["BOUNCE", "COMPLAINT"]},
            },
        },
    }
    item = {"post": {
        "operationId": "PutEmailFeedback",
        "tags": ["Suppression"],
        "summary": "Email bounce, complaint and delivery feedback (Lodestar extension)",
        "description": "Lodestar extension, not a Pinpoint operation. The body is an SES "
        "notification as SNS posts it (the envelope with `Type: Notification`, or the SES "
        "object with `notificationType` Bounce, Complaint or Delivery), or the generic form "
        "`{\"Type\": \"Bounce\"|\"Complaint\"|\"Delivery\", \"Address\", \"MessageId\", "
        "\"BounceType\": \"Permanent\"|\"Transient\"|\"Undetermined\", \"Diagnostic\", "
        "\"Timestamp\", \"FeedbackId\"}`; one object or a list of up to "
        f"{MAX_ITEMS}. Publishes `_email.hardbounce`, `_email.softbounce`, `_email.complaint` "
        "or `_email.delivered` on the deliveries topic, tied to the original send when its "
        "message id is known (Lodestar's, from the original headers, else SES's "
        "mail.messageId as the relay's queued-as id the sender stored), and adds hard "
        "bounces (Permanent) and complaints to the "
        "application's suppression list. SNS messages must carry a valid SNS signature "
        "(SignatureVersion 1 or 2, certificate from sns.<region>.amazonaws.com). An SNS "
        "SubscriptionConfirmation that verified is confirmed (GET SubscribeURL on the SNS "
        "host); otherwise it is answered with its SubscribeURL and logged. See "
        "docs/feedback-and-suppression.md. Who may call it: an admin key, or a key of this "
        "application.",
        "x-lodestar-extension": True,
        "parameters": [{"name": "application-id", "in": "path", "required": True,
                        "description": "The application (project) id.",
                        "schema": {"type": "string"}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "oneOf": [{"type": "object"},
                      {"type": "array", "items": {"type": "object"}, "minItems": 1,
                       "maxItems": MAX_ITEMS}]}}}},
        "responses": {
            "200": {
                "description": "Every item was processed, confirmed or ignored.",
                "headers": {"x-amzn-RequestId": {"$ref": "#/components/headers/RequestId"}},
                "content": {"application/json": {"schema": {
                    "type": "object", "required": ["EmailFeedbackResponse"],
                    "properties": {"EmailFeedbackResponse": results}}}},
            },
            "400": {"$ref": refs + "BadRequest", "description": "The body is not JSON, or "
                    "some items are malformed: Message names each, and the body also holds "
                    "EmailFeedbackResponse; the good items were processed all the same."},
            "403": {"$ref": refs + "Forbidden", "description": "Bad credentials, or an SNS "
                    "message whose signature is missing or does not verify (Message names "
                    "the item; nothing was processed)."},
            "404": {"$ref": refs + "NotFound", "description": "No such application."},
            "413": {"$ref": refs + "PayloadTooLarge",
                    "description": f"The body is over {MAX_FEEDBACK_BYTES // 2**20} MB."},
            "500": {"$ref": refs + "InternalServerError", "description": "Kafka did not "
                    "acknowledge the records, or an SNS signing certificate could not be "
                    "fetched; retry."},
        },
    }}
    return {"/v1/apps/{application-id}/channels/email/feedback": item}, schemas
