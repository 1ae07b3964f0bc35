"""Local protocol peers for the push transport tests, on real sockets on 127.0.0.1.

- ``decrypt_webpush(body, ua_private, auth)``: the receiving user agent's side of
  RFC 8291 / RFC 8188, written from the RFCs independently of
  ``lodestar.core.webpush_crypto`` (so a shared mistake cannot pass).
- ``verify_es256(jwt, public_point)`` / ``verify_rs256(jwt, public_key)``: JWT
  signature checks with ``cryptography``.
- ``FcmPeer``: an FCM-shaped server: ``POST /token`` verifies the RS256
  JWT-bearer assertion and hands out access tokens; ``POST
  /v1/projects/{p}/messages:send`` checks the bearer token and answers according
  to the message's token (``ok…`` 200, ``dead…`` 404 UNREGISTERED, ``badarg…``
  400 INVALID_ARGUMENT, ``busy…`` 429 with Retry-After, ``boom…`` 500, ``flaky…`` 503
  the first time, then 200).
- ``WebPushPeer``: a push service that decrypts each body with the subscription's
  private key and auth secret and verifies the VAPID token; the answer is chosen
  by the path (``/ok…`` 201 with Location, ``/gone…`` 410, ``/missing…`` 404, ``/big…`` 413,
  ``/busy…`` 429).
- ``serve_app(app)``: run a Starlette app under uvicorn in a thread, yield its URL.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hmac import HMAC
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.asgi_server import serve_asgi


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ------------------------------------------------------------ RFC 8291 receiver


def _hmac(key: bytes, data: bytes) -> bytes:
    mac = HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 by hand: extract, then expand (one block suffices for ≤ 32 bytes)."""
    prk = _hmac(salt, ikm)
    return _hmac(prk, info + b"\x01")[:length]


@dataclass(frozen=True)
class Decrypted:
    plaintext: bytes
    record_size: int
    sender_public: bytes


def decrypt_webpush(body: bytes, ua_private: ec.EllipticCurvePrivateKey,
                    auth: bytes) -> Decrypted:
    """Decrypt one aes128gcm Web Push message as a browser does."""
    salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    keyid = body[21:21 + idlen]
    records = body[21 + idlen:]
    assert len(records) <= rs, "one record only"
    ua_public = ua_private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    sender = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), keyid)
    shared = ua_private.exchange(ec.ECDH(), sender)
    ikm = _hkdf(auth, shared, b"WebPush: info\x00" + ua_public + keyid, 32)
    cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    padded = AESGCM(cek).decrypt(nonce, records, None)
    stripped = padded.rstrip(b"\x00")
    assert stripped.endswith(b"\x02"), "the last record ends with the 0x02 delimiter"
    return Decrypted(stripped[:-1], rs, keyid)


# ---------------------------------------------------------------------- JWTs


def _jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    header, claims, signature = token.split(".")
    return (json.loads(unb64(header)), json.loads(unb64(claims)),
            f"{header}.{claims}".encode("ascii"), unb64(signature))


def verify_es256(token: str, public_point: bytes) -> dict[str, Any]:
    """The claims of an ES256 JWT signed by the key ``public_point``; raises otherwise."""
    header, claims, signed, signature = _jwt_parts(token)
    assert header["alg"] == "ES256", header
    assert len(signature) == 64
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                               int.from_bytes(signature[32:], "big"))
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_point)
    key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
    return claims


def verify_rs256(token: str, key: rsa.RSAPublicKey) -> dict[str, Any]:
    header, claims, signed, signature = _jwt_parts(token)
    assert header["alg"] == "RS256", header
    key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    return claims


# ------------------------------------------------------------------- serving


@contextmanager
def serve_app(app: Starlette) -> Iterator[str]:
    with serve_asgi(app) as url:
        yield url


# ----------------------------------------------------------------------- FCM


@dataclass
class FcmPeer:
    """See the module docstring. ``expire_next`` makes the next messages:send answer
    401 once (as for an expired access token)."""

    public_key: rsa.RSAPublicKey
    client_email: str
    project: str
    token_lifetime_s: int = 3600
    issued: list[str] = field(default_factory=list)
    assertions: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    expire_next: bool = False
    flaked: set[str] = field(default_factory=set)
    url: str = ""

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/token", self._token, methods=["POST"]),
            Route("/v1/projects/{project}/messages:send", self._send, methods=["POST"]),
        ])

    async def _token(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode("ascii"))
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        try:
            claims = verify_rs256(form["assertion"][0], self.public_key)
        except (InvalidSignature, KeyError, ValueError, AssertionError):
            return JSONResponse({"error": "invalid_grant"}, 400)
        now = time.time()
        if (claims.get("iss") != self.client_email or claims.get("aud") != f"{self.url}/token"
                or "firebase.messaging" not in claims.get("scope", "")
                or not claims["iat"] - 60 <= now <= claims["exp"]):
            return JSONResponse({"error": "invalid_grant", "claims": claims}, 400)
        self.assertions.append(claims)
        token = f"ya29.test-{len(self.issued)}"
        self.issued.append(token)
        return JSONResponse({"access_token": token, "expires_in": self.token_lifetime_s,
                             "token_type": "Bearer"})

    async def _send(self, request: Request) -> Response:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.expire_next or bearer not in self.issued or bearer in self.revoked:
            if self.expire_next:
                self.expire_next = False
                self.revoked.add(bearer)
            return JSONResponse({"error": {"code": 401, "status": "UNAUTHENTICATED",
                                           "message": "Request had invalid credentials."}}, 401)
        if request.path_params["project"] != self.project:
            return JSONResponse({"error": {"code": 403, "status": "PERMISSION_DENIED",
                                           "message": "wrong project"}}, 403)
        body = await request.json()
        self.messages.append(body)
        token = body["message"].get("token", "")
        if token.startswith("dead"):
            return _fcm_error(404, "NOT_FOUND", "Requested entity was not found.",
                              "UNREGISTERED")
        if token.startswith("badarg"):
            return _fcm_error(400, "INVALID_ARGUMENT",
                              "The registration token is not a valid FCM registration token",
                              "INVALID_ARGUMENT")
        if token.startswith("badbody"):
            return _fcm_error(400, "INVALID_ARGUMENT", "Invalid value at 'message.android.ttl'",
                              "INVALID_ARGUMENT")
        if token.startswith("busy"):
            return JSONResponse({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                                           "message": "quota"}}, 429,
                                headers={"Retry-After": "7"})
        if token.startswith("boom"):
            return _fcm_error(500, "INTERNAL", "internal error", "INTERNAL")
        if token.startswith("flaky") and token not in self.flaked:
            self.flaked.add(token)
            return _fcm_error(503, "UNAVAILABLE", "The service is currently unavailable.",
                              "UNAVAILABLE")
        return JSONResponse(
            {"name": f"projects/{self.project}/messages/{len(self.messages)}"})


def _fcm_error(status: int, code: str, message: str, fcm_code: str) -> Response:
    return JSONResponse({"error": {
        "code": status, "message": message, "status": code,
        "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                     "errorCode": fcm_code}],
    }}, status)


# ------------------------------------------------------------------ Web Push


@dataclass
class WebPushPeer:
    """See the module docstring. Every accepted message is kept in ``received``."""

    ua_private: ec.EllipticCurvePrivateKey
    auth: bytes
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{rest:path}", self._push, methods=["POST"])])

    async def _push(self, request: Request) -> Response:
        rest = request.path_params["rest"]
        headers = request.headers
        authorization = headers.get("authorization", "")
        try:
            scheme, params = authorization.split(" ", 1)
            fields = dict(p.strip().split("=", 1) for p in params.split(","))
            assert scheme == "vapid"
            claims = verify_es256(fields["t"], unb64(fields["k"]))
            assert claims["aud"] == self.url, claims
            assert claims["exp"] <= time.time() + 24 * 3600
            assert claims["sub"].startswith(("mailto:", "https:"))
        except (InvalidSignature, AssertionError, KeyError, ValueError) as exc:
            return Response(f"bad VAPID: {exc!r}", 403)
        if headers.get("content-encoding") != "aes128gcm" or "ttl" not in headers:
            return Response("need Content-Encoding aes128gcm and TTL", 400)
        body = await request.body()
        try:
            decrypted = decrypt_webpush(body, self.ua_private, self.auth)
        except Exception as exc:
            return Response(f"cannot decrypt: {exc!r}", 400)
        if rest.startswith("gone"):
            return Response("", 410)
        if rest.startswith("missing"):
            return Response("", 404)
        if rest.startswith("big"):
            return Response("", 413)
        if rest.startswith("busy"):
            return Response("", 429, headers={"Retry-After": "11"})
        self.received.append({
            "path": rest, "plaintext": decrypted.plaintext, "claims": claims,
            "ttl": headers.get("ttl"), "urgency": headers.get("urgency"),
            "topic": headers.get("topic"), "record_size": decrypted.record_size,
        })
        return Response("", 201, headers={"Location": f"{self.url}/m/{len(self.received)}"})
