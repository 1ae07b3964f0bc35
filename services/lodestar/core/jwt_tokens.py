"""Compact JSON Web Tokens signed with RS256 or ES256 (RFC 7515 / 7518).

Used where a provider wants a self-signed bearer token: FCM's service-account
assertion (RS256), APNs provider tokens and VAPID (ES256). Pure: keys are
``cryptography`` key objects the caller loaded; nothing is read or sent here.

- ``sign_jwt(claims, key, headers)`` picks the algorithm from the key type
  (RSA → RS256, EC P-256 → ES256) and returns ``header.payload.signature``;
  an ES256 signature is the raw 64-byte ``r || s`` form JOSE requires, not DER.
- ``b64url(data)`` is unpadded base64url.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def b64url(data: bytes) -> str:
    """Unpadded base64url of ``data``."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


def algorithm(key: SigningKey) -> str:
    """``RS256`` for an RSA key, ``ES256`` for an EC P-256 key; ValueError otherwise."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    raise ValueError("JWT signing needs an RSA key (RS256) or an EC P-256 key (ES256)")


def sign_jwt(
    claims: Mapping[str, Any], key: SigningKey, headers: Mapping[str, Any] | None = None
) -> str:
    """The compact JWT for ``claims`` signed with ``key`` (extra ``headers`` such as ``kid``)."""
    alg = algorithm(key)
    header = {"alg": alg, "typ": "JWT", **(headers or {})}
    signing_input = f"{b64url(_json(header))}.{b64url(_json(claims))}".encode("ascii")
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input.decode('ascii')}.{b64url(signature)}"
