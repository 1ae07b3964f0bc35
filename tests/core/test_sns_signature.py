"""SNS message signatures: canonical strings, the SigningCertURL rule, and the verdict."""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from tests.sns_signer import CERT_URL, Signer, certificate_pem

from lodestar.core.sns_signature import (
    Refused,
    SnsRefusal,
    canonical_string,
    cert_url_refusal,
    is_sns_message,
    signing_fields,
    verdict,
)

NOW_MS = int(time.time() * 1000)
NOTIFICATION = {
    "Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
    "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-feedback",
    "Message": '{"notificationType":"Bounce"}', "Timestamp": "2026-05-01T12:00:03.000Z",
    "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
}
CONFIRMATION = {
    "Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
    "Token": "2336412f37", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-feedback",
    "Message": "You have chosen to subscribe to the topic …",
    "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=2",
    "Timestamp": "2026-05-01T12:00:00.000Z",
}


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


def test_canonical_strings_follow_awss_field_lists() -> None:
    assert canonical_string(NOTIFICATION) == (
        'Message\n{"notificationType":"Bounce"}\n'
        "MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
        "Timestamp\n2026-05-01T12:00:03.000Z\n"
        "TopicArn\narn:aws:sns:eu-west-1:123456789012:ses-feedback\n"
        "Type\nNotification\n")
    with_subject = canonical_string({**NOTIFICATION, "Subject": "Amazon SES Email Event"})
    assert isinstance(with_subject, str)
    assert "MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nSubject\nAmazon SES Email Event\n" \
        "Timestamp\n" in with_subject
    assert canonical_string(CONFIRMATION) == (
        "Message\nYou have chosen to subscribe to the topic …\n"
        "MessageId\n165545c9-2a5c-472c-8df2-7ff2be2b3b1b\n"
        "SubscribeURL\nhttps://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=2\n"
        "Timestamp\n2026-05-01T12:00:00.000Z\nToken\n2336412f37\n"
        "TopicArn\narn:aws:sns:eu-west-1:123456789012:ses-feedback\n"
        "Type\nSubscriptionConfirmation\n")
    unsubscribe = canonical_string({**CONFIRMATION, "Type": "UnsubscribeConfirmation"})
    assert isinstance(unsubscribe, str) and unsubscribe.endswith(
        "Type\nUnsubscribeConfirmation\n")
    missing = canonical_string({k: v for k, v in CONFIRMATION.items() if k != "Token"})
    assert isinstance(missing, Refused) and missing.reason is SnsRefusal.MALFORMED
    assert "Token" in missing.message


@pytest.mark.parametrize("url", [
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.eu-west-1.amazonaws.com:443/cert.pem",
    "https://SNS.AP-SOUTHEAST-2.amazonaws.com/cert.pem",
    "https://sns.cn-north-1.amazonaws.com.cn/cert.pem",
])
def test_sns_hosts_may_serve_certificates(url: str) -> None:
    assert cert_url_refusal(url) is None


@pytest.mark.parametrize("url", [
    "http://sns.us-east-1.amazonaws.com/cert.pem",
    "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
    "https://evilsns.us-east-1.amazonaws.com/cert.pem",
    "https://sns.amazonaws.com/cert.pem",
    "https://s3.us-east-1.amazonaws.com/cert.pem",
    "https://attacker@sns.us-east-1.amazonaws.com/cert.pem",
    "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
    "https://localhost/cert.pem",
    "https://127.0.0.1/cert.pem",
    "ftp://sns.us-east-1.amazonaws.com/cert.pem",
    "sns.us-east-1.amazonaws.com/cert.pem",
])
def test_other_certificate_urls_are_refused(url: str) -> None:
    refused = cert_url_refusal(url)
    assert isinstance(refused, Refused) and refused.reason is SnsRefusal.CERT_URL, url
    assert url in refused.message


def test_a_test_host_pattern_is_an_explicit_extra() -> None:
    url = "https://localhost:8443/cert.pem"
    assert cert_url_refusal(url) is not None
    assert cert_url_refusal(url, re.compile("localhost")) is None
    assert cert_url_refusal("https://localhost.evil/cert.pem", re.compile("localhost")) is not None
    assert cert_url_refusal("http://localhost/cert.pem", re.compile("localhost")) is not None


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("message", [NOTIFICATION, CONFIRMATION,
                                     {**NOTIFICATION, "Subject": "Bounce"}])
def test_signatures_of_both_versions_verify(signer: Signer, version: str,
                                            message: dict[str, Any]) -> None:
    signed = signer.sign(message, version)
    assert signing_fields(signed) == CERT_URL
    assert verdict(signed, signer.pem, NOW_MS) is None
    # any change to a signed field breaks it; unsigned fields do not matter
    tampered = {**signed, "Message": signed["Message"] + " "}
    refused = verdict(tampered, signer.pem, NOW_MS)
    assert isinstance(refused, Refused) and refused.reason is SnsRefusal.MISMATCH
    assert verdict({**signed, "UnsubscribeURL": "https://x"}, signer.pem, NOW_MS) is None


def test_the_version_names_the_hash(signer: Signer) -> None:
    signed = signer.sign(NOTIFICATION, "2")
    refused = verdict({**signed, "SignatureVersion": "1"}, signer.pem, NOW_MS)
    assert isinstance(refused, Refused) and refused.reason is SnsRefusal.MISMATCH


def test_another_key_or_a_broken_signature_is_a_mismatch(signer: Signer) -> None:
    signed = signer.sign(NOTIFICATION)
    other = Signer()
    refused = verdict(signed, other.pem, NOW_MS)
    assert isinstance(refused, Refused) and refused.reason is SnsRefusal.MISMATCH
    bad = verdict({**signed, "Signature": "not base64!"}, signer.pem, NOW_MS)
    assert isinstance(bad, Refused) and bad.reason is SnsRefusal.MISMATCH
    flipped = bytearray(base64.b64decode(signed["Signature"]))
    flipped[-1] ^= 1
    refused = verdict({**signed, "Signature": base64.b64encode(flipped).decode()},
                      signer.pem, NOW_MS)
    assert isinstance(refused, Refused) and refused.reason is SnsRefusal.MISMATCH


def test_certificates_must_be_rsa_pem_and_current(signer: Signer) -> None:
    signed = signer.sign(NOTIFICATION)
    for pem in (b"<html>not a certificate</html>",
                certificate_pem(ec.generate_private_key(ec.SECP256R1())),
                certificate_pem(signer.key, days=2, starts_days_ago=5)):  # expired
        refused = verdict(signed, pem, NOW_MS)
        assert isinstance(refused, Refused) and refused.reason is SnsRefusal.CERTIFICATE


def test_unsigned_and_unknown_versions_are_refused_before_fetching(signer: Signer) -> None:
    unsigned = signing_fields(NOTIFICATION)
    assert isinstance(unsigned, Refused) and unsigned.reason is SnsRefusal.UNSIGNED
    signed = signer.sign(NOTIFICATION)
    v3 = signing_fields({**signed, "SignatureVersion": "3"})
    assert isinstance(v3, Refused) and v3.reason is SnsRefusal.UNKNOWN_VERSION
    elsewhere = signing_fields({**signed, "SigningCertURL": "https://evil.example/c.pem"})
    assert isinstance(elsewhere, Refused) and elsewhere.reason is SnsRefusal.CERT_URL
    no_url = signing_fields({k: v for k, v in signed.items() if k != "SigningCertURL"})
    assert isinstance(no_url, Refused) and no_url.reason is SnsRefusal.UNSIGNED


def test_only_sns_types_are_sns_messages() -> None:
    assert is_sns_message(NOTIFICATION) and is_sns_message(CONFIRMATION)
    assert not is_sns_message({"Type": "Bounce", "Address": "a@example.com"})
    assert not is_sns_message({"notificationType": "Bounce"})
    assert not is_sns_message("Notification")
