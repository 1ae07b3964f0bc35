"""Sign SNS messages the way SNS does, with a throwaway self-signed certificate (tests only).

``Signer()`` holds an RSA key and its certificate (``pem``); ``signer.sign(message,
version, cert_url)`` adds ``SignatureVersion``, ``SigningCertURL`` and the base64
``Signature`` over the canonical string, built here independently of
``lodestar.core.sns_signature`` from AWS's documented field lists.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem"

_SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"),
}
_SIGNED["UnsubscribeConfirmation"] = _SIGNED["SubscriptionConfirmation"]


def certificate_pem(key: CertificateIssuerPrivateKeyTypes, *, days: int = 30,
                    starts_days_ago: int = 1) -> bytes:
    public = key.public_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(public)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=starts_days_ago))
            .not_valid_after(now + dt.timedelta(days=days - starts_days_ago))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def canonical(message: dict[str, Any]) -> bytes:
    return "".join(f"{k}\n{message[k]}\n" for k in _SIGNED[message["Type"]]
                   if k in message).encode()


class Signer:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.pem = certificate_pem(self.key)

    def sign(self, message: dict[str, Any], version: str = "1",
             cert_url: str = CERT_URL) -> dict[str, Any]:
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(canonical(message), padding.PKCS1v15(), algorithm)
        return {**message, "SignatureVersion": version, "SigningCertURL": cert_url,
                "Signature": base64.b64encode(signature).decode()}
