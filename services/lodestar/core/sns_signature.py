"""Amazon SNS message signatures, checked as values (pure; the adapter fetches the certificate).

SNS signs every message it posts to an HTTP(S) subscription. The receiver must

1. refuse a ``SigningCertURL`` that is not ``https://sns.<region>.amazonaws.com/…``
   (``cert_url_refusal``): anyone can sign with a certificate of their own;
2. build the string SNS signed (``canonical_string``): for a ``Notification`` the
   pairs ``Message``, ``MessageId``, ``Subject`` (only when present), ``Timestamp``,
   ``TopicArn``, ``Type``; for a ``SubscriptionConfirmation`` or
   ``UnsubscribeConfirmation`` the pairs ``Message``, ``MessageId``, ``SubscribeURL``,
   ``Timestamp``, ``Token``, ``TopicArn``, ``Type`` — each as ``name\\nvalue\\n``;
3. verify the base64 ``Signature`` over it with the certificate's RSA key: PKCS#1 v1.5
   with SHA-1 for ``SignatureVersion`` 1, SHA-256 for 2 (``verdict``).

Every refusal is a ``Refused`` value naming its ``SnsRefusal`` and saying what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SNS_TYPES = frozenset({"Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"})
"""The ``Type`` of every message SNS posts to a subscription."""

AWS_CERT_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
"""The hosts SNS serves its signing certificates from (``sns.<region>.amazonaws.com``)."""

_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                      "TopicArn", "Type")
_HASHES: Mapping[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<rest>.*)",
                  re.DOTALL)
_HOST_PORT = re.compile(r"(?P<host>[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?")


class SnsRefusal(StrEnum):
    """Why an SNS message is not trusted."""

    UNSIGNED = "UNSIGNED"  # no Signature, SignatureVersion or SigningCertURL
    UNKNOWN_VERSION = "UNKNOWN_VERSION"  # SignatureVersion neither 1 nor 2
    MALFORMED = "MALFORMED"  # a signed field is missing or not a string
    CERT_URL = "CERT_URL"  # SigningCertURL is not https on an SNS host
    CERTIFICATE = "CERTIFICATE"  # not a PEM X.509 certificate with an RSA key, or expired
    MISMATCH = "MISMATCH"  # the signature does not verify


@dataclass(frozen=True)
class Refused:
    reason: SnsRefusal
    message: str


def is_sns_message(item: object) -> bool:
    """Whether ``item`` is shaped like a message SNS posts (its ``Type`` is one of SNS's)."""
    return isinstance(item, dict) and item.get("Type") in SNS_TYPES


def cert_url_refusal(url: object, extra_host: re.Pattern[str] | None = None,
                     name: str = "SigningCertURL") -> Refused | None:
    """None when ``url`` (the message's field ``name``) is on SNS: ``https``, no
    credentials, host ``sns.<region>.amazonaws.com`` (``.com.cn`` in China) on the
    default port. ``extra_host`` (tests only, never by default) full-matches further
    hosts, on any port."""
    if not isinstance(url, str) or not url:
        return Refused(SnsRefusal.UNSIGNED, f"the message has no {name}")
    match = _URL.fullmatch(url)
    if match is None or match["scheme"].lower() != "https":
        return Refused(SnsRefusal.CERT_URL, f"{name} {url!r} is not an https URL")
    host_port = _HOST_PORT.fullmatch(match["authority"])
    if host_port is None:
        return Refused(SnsRefusal.CERT_URL, f"{name} {url!r} has no plain host name "
                                            "(credentials and IPv6 literals are refused)")
    host, port = host_port["host"].lower(), host_port["port"]
    if extra_host is not None and extra_host.fullmatch(host):
        return None
    if not AWS_CERT_HOST.fullmatch(host):
        return Refused(SnsRefusal.CERT_URL, f"{name} {url!r} is not on an SNS host "
                                            "(sns.<region>.amazonaws.com)")
    if port is not None and port != "443":
        return Refused(SnsRefusal.CERT_URL, f"{name} {url!r} names port {port}")
    return None


def canonical_string(message: Mapping[str, Any]) -> str | Refused:
    """The string SNS signed for ``message``, or why it cannot be built."""
    kind = message.get("Type")
    if kind not in SNS_TYPES:
        return Refused(SnsRefusal.MALFORMED, f"Type {kind!r} is not an SNS message type")
    keys = _NOTIFICATION_KEYS if kind == "Notification" else _CONFIRMATION_KEYS
    out = []
    for key in keys:
        value = message.get(key)
        if key == "Subject" and value is None:
            continue
        if not isinstance(value, str):
            return Refused(SnsRefusal.MALFORMED,
                           f"the SNS {kind} has no {key} string, which SNS signs")
        out.append(f"{key}\n{value}\n")
    return "".join(out)


def signing_fields(message: Mapping[str, Any], extra_host: re.Pattern[str] | None = None
                   ) -> str | Refused:
    """The ``SigningCertURL`` to fetch, or why the message is refused before fetching."""
    if not message.get("Signature") or not message.get("SignatureVersion"):
        return Refused(SnsRefusal.UNSIGNED, "the message has no Signature or SignatureVersion")
    version = message.get("SignatureVersion")
    if version not in _HASHES:
        return Refused(SnsRefusal.UNKNOWN_VERSION,
                       f"SignatureVersion {version!r} is neither 1 (SHA1withRSA) nor 2 "
                       "(SHA256withRSA)")
    url = message.get("SigningCertURL")
    refused = cert_url_refusal(url, extra_host)
    if refused is not None:
        return refused
    assert isinstance(url, str)
    return url


@functools.lru_cache(maxsize=32)
def _certificate(pem: bytes) -> x509.Certificate:
    """The parsed certificate (a batch of messages shares one)."""
    return x509.load_pem_x509_certificate(pem)


def verdict(message: Mapping[str, Any], certificate_pem: bytes, now_ms: int) -> Refused | None:
    """None when ``message``'s signature verifies under ``certificate_pem`` (the document
    at its ``SigningCertURL``, valid at ``now_ms``); else why not. Call ``signing_fields``
    first: this checks the signature, not where the certificate came from."""
    version = message.get("SignatureVersion")
    algorithm = _HASHES.get(version) if isinstance(version, str) else None
    if algorithm is None:
        return Refused(SnsRefusal.UNKNOWN_VERSION, f"SignatureVersion {version!r} is unknown")
    text = canonical_string(message)
    if isinstance(text, Refused):
        return text
    try:
        signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
    except (binascii.Error, ValueError):
        return Refused(SnsRefusal.MISMATCH, "Signature is not base64")
    try:
        certificate = _certificate(certificate_pem)
    except ValueError:
        return Refused(SnsRefusal.CERTIFICATE,
                       "SigningCertURL does not serve a PEM X.509 certificate")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return Refused(SnsRefusal.CERTIFICATE, "the signing certificate's key is not RSA")
    now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        return Refused(SnsRefusal.CERTIFICATE, "the signing certificate is not valid now "
                       f"(valid {certificate.not_valid_before_utc:%Y-%m-%d} to "
                       f"{certificate.not_valid_after_utc:%Y-%m-%d})")
    try:
        key.verify(signature, text.encode("utf-8"), padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        return Refused(SnsRefusal.MISMATCH, "the Signature does not match the message")
    return None
