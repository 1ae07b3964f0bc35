"""Web Push message encryption (RFC 8291, aes128gcm of RFC 8188) and VAPID (RFC 8292).

Pure: keys are ``cryptography`` objects or bytes; nothing is read or sent.

- ``parse_subscription(address)``: a Web Push endpoint's Address is the
  browser's ``PushSubscription.toJSON()``: ``{"endpoint": "https://…",
  "keys": {"p256dh": <base64url 65-byte P-256 point>, "auth": <base64url 16
  bytes>}}``; ``SubscriptionError`` when it is not.
- ``encrypt(plaintext, p256dh, auth, sender_key=, salt=)``: one aes128gcm
  record. ECDH(sender_key, p256dh) → IKM = HKDF(salt=auth, info="WebPush:
  info\\0" ‖ ua_public ‖ as_public, 32); CEK = HKDF(salt, IKM, "Content-Encoding:
  aes128gcm\\0", 16); NONCE = HKDF(salt, IKM, "Content-Encoding: nonce\\0", 12);
  body = salt ‖ rs (uint32) ‖ idlen (65) ‖ as_public ‖ AES-GCM(plaintext ‖ 0x02).
  Deterministic given ``sender_key`` and ``salt`` (RFC 8291 Appendix A is
  reproduced exactly); ``encrypt_payload`` draws fresh ones.
- ``load_vapid_key(text)`` / ``new_vapid_keys()``: the application server's key.
- ``vapid_authorization(endpoint, key, subject, now_s)``: ``vapid t=<ES256
  JWT {aud: origin of endpoint, exp: ≤ now + 24 h, sub}>, k=<base64url
  uncompressed public key>``; ``sub`` must be a ``mailto:`` or ``https:`` URI.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lodestar.core.jwt_tokens import b64url, sign_jwt

RECORD_SIZE = 4096
HEADER_LENGTH = 16 + 4 + 1 + 65
TAG_LENGTH = 16
MAX_PAYLOAD = RECORD_SIZE - HEADER_LENGTH - TAG_LENGTH - 1
"""Largest plaintext whose encrypted body fits the 4096 bytes push services must accept."""
MAX_VAPID_LIFETIME_S = 24 * 3600
DEFAULT_VAPID_LIFETIME_S = 12 * 3600


class SubscriptionError(ValueError):
    """An Address that is not a usable Web Push subscription."""


class PayloadTooLarge(ValueError):
    """The plaintext does not fit one record of a Web Push message."""


@dataclass(frozen=True)
class WebPushSubscription:
    endpoint: str
    p256dh: bytes
    """The user agent's public key, 65-byte uncompressed P-256 point."""
    auth: bytes
    """The 16-byte authentication secret."""


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; ValueError when it is not base64url."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64url: {exc}") from None


def parse_subscription(address: str) -> WebPushSubscription:
    """The subscription held in an endpoint Address (see the module docstring)."""
    try:
        data = json.loads(address)
    except ValueError:
        raise SubscriptionError("the address is not a JSON subscription object") from None
    if not isinstance(data, dict):
        raise SubscriptionError("the address is not a JSON subscription object")
    endpoint = data.get("endpoint")
    keys = data.get("keys")
    if not isinstance(endpoint, str):
        raise SubscriptionError("endpoint must be an https URL")
    try:
        origin(endpoint)
    except ValueError:
        raise SubscriptionError("endpoint must be an https URL") from None
    if not isinstance(keys, dict) or not isinstance(keys.get("p256dh"), str) \
            or not isinstance(keys.get("auth"), str):
        raise SubscriptionError("keys.p256dh and keys.auth are required strings")
    try:
        p256dh = b64url_decode(keys["p256dh"])
        auth = b64url_decode(keys["auth"])
    except ValueError as exc:
        raise SubscriptionError(f"keys: {exc}") from None
    if len(p256dh) != 65 or p256dh[0] != 4:
        raise SubscriptionError("keys.p256dh must be an uncompressed P-256 point (65 bytes)")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError:
        raise SubscriptionError("keys.p256dh is not a point on P-256") from None
    if len(auth) != 16:
        raise SubscriptionError("keys.auth must be 16 bytes")
    return WebPushSubscription(endpoint, p256dh, auth)


def public_bytes(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """The uncompressed (65-byte) encoding of a P-256 public key."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.X962,
                               serialization.PublicFormat.UncompressedPoint)


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def encrypt(
    plaintext: bytes,
    p256dh: bytes,
    auth: bytes,
    *,
    sender_key: ec.EllipticCurvePrivateKey,
    salt: bytes,
    record_size: int = RECORD_SIZE,
) -> bytes:
    """The aes128gcm body of ``plaintext`` for the user agent key ``p256dh`` and
    secret ``auth`` (see the module docstring). Raises ``PayloadTooLarge``."""
    if len(salt) != 16:
        raise ValueError("the salt must be 16 bytes")
    if len(plaintext) + 1 + TAG_LENGTH > record_size or len(plaintext) > MAX_PAYLOAD:
        raise PayloadTooLarge(f"{len(plaintext)} bytes; at most {MAX_PAYLOAD}")
    ua_public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    as_public = public_bytes(sender_key)
    shared = sender_key.exchange(ec.ECDH(), ua_public)
    ikm = _hkdf(auth, shared, b"WebPush: info\x00" + p256dh + as_public, 32)
    cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    ciphertext = AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)
    header = salt + record_size.to_bytes(4, "big") + bytes([len(as_public)]) + as_public
    return header + ciphertext


def encrypt_payload(plaintext: bytes, subscription: WebPushSubscription) -> bytes:
    """``encrypt`` with a fresh ephemeral key and salt (every message must have its own)."""
    return encrypt(plaintext, subscription.p256dh, subscription.auth,
                   sender_key=ec.generate_private_key(ec.SECP256R1()),
                   salt=secrets.token_bytes(16))


_URL = re.compile(r"^(?P<scheme>https?)://(?P<authority>[^/?#]+)(?:[/?#].*)?$",
                  re.IGNORECASE | re.DOTALL)
_AUTHORITY = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\[\]]+)(?::(?P<port>[0-9]{1,5}))?$")


def origin(url: str) -> str:
    """``scheme://host[:port]`` of an http(s) ``url`` (the VAPID ``aud``), lower-cased,
    default ports and user info left out; ValueError for anything else."""
    match = _URL.match(url)
    if match is None:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    scheme = match["scheme"].lower()
    authority = match["authority"].rpartition("@")[2]
    parts = _AUTHORITY.match(authority)
    if parts is None or not parts["host"]:
        raise ValueError(f"not a valid host in {url!r}")
    host = parts["host"].lower()
    port = int(parts["port"]) if parts["port"] else None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"not a valid port in {url!r}")
    default = {"https": 443, "http": 80}[scheme]
    return f"{scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def vapid_authorization(
    endpoint: str,
    key: ec.EllipticCurvePrivateKey,
    subject: str,
    now_s: int,
    lifetime_s: int = DEFAULT_VAPID_LIFETIME_S,
) -> str:
    """The ``Authorization`` header value for a push to ``endpoint`` (RFC 8292)."""
    if not (subject.startswith("mailto:") or subject.startswith("https:")):
        raise ValueError("the VAPID subject must be a mailto: or https: URI")
    if not 0 < lifetime_s <= MAX_VAPID_LIFETIME_S:
        raise ValueError("the VAPID token lifetime must be within 24 hours")
    claims = {"aud": origin(endpoint), "exp": int(now_s) + lifetime_s, "sub": subject}
    token = sign_jwt(claims, key)
    return f"vapid t={token}, k={b64url(public_bytes(key))}"


def load_vapid_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A VAPID private key from PEM (PKCS#8 or SEC1) or the base64url raw 32-byte
    scalar most Web Push tools print; ValueError when it is neither a P-256 key."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(stripped.encode("ascii"), password=None)
    else:
        raw = b64url_decode(stripped)
        if len(raw) != 32:
            raise ValueError("a raw VAPID private key is 32 bytes of base64url")
        key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve,
                                                                          ec.SECP256R1):
        raise ValueError("the VAPID key must be an EC P-256 private key")
    return key


def new_vapid_keys() -> tuple[str, str]:
    """A fresh VAPID key pair as (private: base64url raw 32 bytes, public: base64url
    uncompressed point — the web app's ``applicationServerKey``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    return b64url(private), b64url(public_bytes(key))
