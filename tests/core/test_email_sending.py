from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from lodestar.core.delivery_events import DeliverySubject
from lodestar.core.email_sending import (
    ClaimVerdict,
    EmailDefaults,
    FinalOutcome,
    Prepared,
    RenderingFailed,
    SendState,
    SkipReason,
    claim_verdict,
    email_definition,
    final_state,
    prepare_email,
    relay_message_id,
    screen,
    skip_records,
    smtp_records,
    unknown_outcome_records,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE: dict[str, Any] = json.loads(
    (ROOT / "schemas/examples/send_request/email-campaign-full.json").read_text())
DEFAULTS = EmailDefaults("Lodestar <noreply@lodestar.test>", "mail.lodestar.test",
                         "https://t.example.test", b"x" * 32)
NOW = 1_777_628_160_000


def _request(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(EXAMPLE)
    out.update(changes)
    return out


def test_claim_verdicts() -> None:
    def verdict(**kw: Any) -> ClaimVerdict:
        base: dict[str, Any] = dict(claimed_now=False, state="CLAIMED", claimed_by="other",
                                    me="me", claimant_alive=False)
        base.update(kw)
        return claim_verdict(**base)

    assert verdict(claimed_now=True, state=None) is ClaimVerdict.SEND
    assert verdict(state="SENT") is ClaimVerdict.REPUBLISH
    assert verdict(state="FAILED", claimant_alive=True) is ClaimVerdict.REPUBLISH
    assert verdict() is ClaimVerdict.RESOLVE_UNKNOWN
    assert verdict(claimant_alive=True) is ClaimVerdict.LEAVE
    assert verdict(claimed_by="me") is ClaimVerdict.RESOLVE_UNKNOWN
    assert verdict(claimed_by="me", in_flight=True) is ClaimVerdict.LEAVE
    with pytest.raises(ValueError):
        verdict(state=None)


def test_screen_skips_opted_out_and_inactive_endpoints() -> None:
    assert screen(_request()) is None
    assert screen(_request(endpoint=None)) is None
    out = _request()
    out["endpoint"]["opt_out"] = "ALL"
    skip = screen(out)
    assert skip is not None and skip.reason is SkipReason.OPT_OUT
    gone = _request()
    gone["endpoint"]["endpoint_status"] = "INACTIVE"
    skip = screen(gone)
    assert skip is not None and skip.reason is SkipReason.INACTIVE
    [rec] = skip_records(DeliverySubject.from_send_request(gone), skip, NOW)
    assert rec["event_type"] == "_email.rejected"
    assert rec["attributes"]["reject_reason"] == "INACTIVE"


def test_request_parts_override_the_template() -> None:
    merged = email_definition({"Subject": "T", "HtmlPart": "<p>t</p>", "tags": {"a": "b"}},
                              {"subject": "R", "html_body": None, "text_body": "r"})
    assert merged == {"Subject": "R", "HtmlPart": "<p>t</p>", "TextPart": "r"}


def test_prepare_renders_the_endpoint_snapshot_and_drops_own_headers() -> None:
    prepared = prepare_email(
        _request(), {"HtmlPart": "<p>{{Attributes.plan.[0]}} {{DiscountCode}}</p>"},
        DEFAULTS, NOW)
    assert isinstance(prepared, Prepared)
    assert prepared.message.mail_from == "news@example.com"  # the request's From
    assert prepared.message.rcpt_to == ("jane@example.com",)
    msg = prepared.message.parsed()
    assert msg["Subject"] == "Jane, our spring sale starts now"
    assert msg["To"] == "jane@example.com"
    assert "pro SPRING25" in msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    # the request's own List-Unsubscribe is replaced by Lodestar's signed one
    assert msg.get_all("List-Unsubscribe") == [msg["List-Unsubscribe"]]
    assert "https://t.example.test/t/u/" in msg["List-Unsubscribe"]


def test_an_http_tracking_base_keeps_tracking_but_drops_one_click() -> None:
    http = dataclasses.replace(DEFAULTS, tracking_base_url="http://127.0.0.1:8080")
    prepared = prepare_email(_request(), {"HtmlPart": "<a href=\"https://x.test/\">x</a>"},
                             http, NOW)
    assert isinstance(prepared, Prepared)  # not a rendering failure
    msg = prepared.message.parsed()
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
    assert "http://127.0.0.1:8080/t/c/" in msg.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_prepare_reports_rendering_failures() -> None:
    assert isinstance(prepare_email(_request(), None, DEFAULTS, NOW), RenderingFailed)
    broken = prepare_email(_request(), {"HtmlPart": "{{#each}}"}, DEFAULTS, NOW)
    assert isinstance(broken, RenderingFailed) and broken.error.startswith("template:")
    bad_header = _request()
    bad_header["content"]["headers"] = [{"name": "Subject", "value": "x"}]
    failed = prepare_email(bad_header, {"HtmlPart": "<p>x</p>"}, DEFAULTS, NOW)
    assert isinstance(failed, RenderingFailed) and "Subject" in failed.error


def test_smtp_and_unknown_records() -> None:
    subject = DeliverySubject.from_send_request(_request())
    outcome = FinalOutcome("HARD_BOUNCE", 550, "no such user", "rcpt", 1)
    send, bounce = smtp_records(subject, outcome, NOW, NOW + 5)
    assert (send["event_type"], bounce["event_type"]) == ("_email.send", "_email.hardbounce")
    assert bounce["attributes"]["smtp_attempts"] == "1"
    assert final_state(outcome) is SendState.FAILED
    assert final_state(FinalOutcome("DELIVERED", 250, "ok", "data", 2)) is SendState.SENT
    [unknown] = unknown_outcome_records(subject, NOW)
    assert unknown["event_id"] == send["event_id"]
    assert unknown["attributes"]["send_status"] == "UNKNOWN"


@pytest.mark.parametrize(("reply", "expected"), [
    ("Ok 0100018c2ea3b2c1-5d1e6a0b-7c47-4f4b-9b8b-4bb1c8d1f3a2-000000",
     "0100018c2ea3b2c1-5d1e6a0b-7c47-4f4b-9b8b-4bb1c8d1f3a2-000000"),  # SES
    ("2.0.0 Ok: queued as 4ZxKq13Tn8z9vB", "4ZxKq13Tn8z9vB"),  # Postfix
    ("OK id=1rAbCd-000Abc-Ef", "1rAbCd-000Abc-Ef"),  # Exim
    ("2.0.0 accepted", None),
    ("OK", None),
    ("Ok thanks a lot", None),
])
def test_the_relay_message_id_is_read_from_the_data_answer(reply: str,
                                                           expected: str | None) -> None:
    assert relay_message_id(reply) == expected


def test_a_template_reading_only_personal_variables_renders_as_with_the_full_context() -> None:
    """The sender builds only the variables a template reads (``personal_variables``) when
    that is all it reads, else the whole endpoint context: both render the same values."""
    request = _request()
    request["content"]["subject"] = None  # the template's own Subject then
    personal = {"Subject": "{{User.UserAttributes.FirstName.[0]}} on {{Attributes.plan.[0]}}",
                "TextPart": "{{User.UserId}} {{DiscountCode}}"}
    full = {"Subject": "{{User.UserAttributes.FirstName.[0]}} on {{Attributes.plan.[0]}}",
            "TextPart": "{{User.UserId}} {{DiscountCode}} {{Id}} {{Location.City}}"}
    texts = []
    for template in (personal, full):
        prepared = prepare_email(request, template, DEFAULTS, NOW)
        assert isinstance(prepared, Prepared)
        parsed = prepared.message.parsed()
        texts.append((parsed["Subject"], parsed.get_body(("plain",)).get_content().strip()))
    assert texts[0] == ("Jane on pro", "user-1842 SPRING25")
    assert texts[1] == ("Jane on pro", "user-1842 SPRING25 email-jane Berlin")


def test_each_recipient_gets_its_own_values_from_one_compiled_template() -> None:
    template = {"Subject": "Hi {{User.UserAttributes.FirstName.[0]}}", "TextPart": "t"}
    subjects = []
    for name in ("Ann", "Bob", "Ann"):
        request = _request(message_id=f"m-{name}-{len(subjects)}")
        request["content"]["subject"] = None
        request["endpoint"]["user"]["user_attributes"]["FirstName"] = [name]
        prepared = prepare_email(request, template, DEFAULTS, NOW)
        assert isinstance(prepared, Prepared)
        subjects.append(prepared.message.parsed()["Subject"])
    assert subjects == ["Hi Ann", "Hi Bob", "Hi Ann"]
    request = _request()
    request["content"]["subject"] = None
    changed = prepare_email(request, {**template, "Subject": "Other"}, DEFAULTS, NOW)
    assert isinstance(changed, Prepared) and changed.message.parsed()["Subject"] == "Other"
