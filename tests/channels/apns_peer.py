"""A local APNs provider API: HTTP/2 over TLS on 127.0.0.1, written with ``h2`` on asyncio.

``tls_material(dir)`` makes a throwaway CA and a server certificate for
``localhost`` / ``127.0.0.1`` with ``cryptography``; ``client_context()``
trusts that CA. ``ApnsPeer`` speaks the provider API the way Apple documents it:

- only ALPN ``h2``; ``POST /3/device/<hex token>`` else 404 BadPath / 405;
- ``authorization: bearer <jwt>``: ES256, header ``kid`` = key id, claims
  ``iss`` = team id and ``iat`` no older than one hour, signature checked with
  the public key → otherwise 403 MissingProviderToken / InvalidProviderToken /
  ExpiredProviderToken;
- ``apns-topic`` required and one of the app's topics (``<bundle>`` or
  ``<bundle>.voip`` for ``apns-push-type: voip``) → 400 MissingTopic /
  TopicDisallowed; a known ``apns-push-type``; a non-empty JSON object body.

It records every request (``requests``: path, headers, payload, jwt,
connection number) and answers 200 with ``apns-id``, unless ``answers[token]``
holds scripted ``Answer``s (e.g. 410 Unregistered with a timestamp, 400
BadDeviceToken, 403 ExpiredProviderToken, 429, 503), used first in, first out.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import json
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PUSH_TYPES = {"alert", "background", "voip", "complication", "fileprovider", "mdm",
              "location", "liveactivity", "pushtotalk"}


# -- TLS ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsMaterial:
    ca_path: Path
    cert_path: Path
    key_path: Path

    def server_context(self, alpn: list[str] | None = None) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_path, self.key_path)
        if alpn:
            ctx.set_alpn_protocols(alpn)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_path))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def tls_material(directory: Path, extra_names: tuple[str, ...] = ()) -> TlsMaterial:
    """A fresh CA and a server certificate for localhost, 127.0.0.1 and ``extra_names``,
    as PEM files."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder().subject_name(_name("Lodestar test CA"))
        .issuer_name(_name("Lodestar test CA")).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), *(x509.DNSName(n) for n in extra_names),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = (directory / "ca.pem", directory / "server.pem",
                                    directory / "server.key")
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return TlsMaterial(ca_path, cert_path, key_path)


# -- provider token check ------------------------------------------------------------


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def check_provider_token(jwt: str, public_key: ec.EllipticCurvePublicKey, team_id: str,
                         key_id: str, now_s: float) -> str | None:
    """None when ``jwt`` is a valid APNs provider token now, else APNs' 403 reason."""
    try:
        header_b64, claims_b64, sig_b64 = jwt.split(".")
        header = json.loads(_b64(header_b64))
        claims = json.loads(_b64(claims_b64))
        signature = _b64(sig_b64)
    except (ValueError, json.JSONDecodeError):
        return "InvalidProviderToken"
    if header.get("alg") != "ES256" or header.get("kid") != key_id or claims.get(
            "iss") != team_id or len(signature) != 64 or not isinstance(claims.get("iat"), int):
        return "InvalidProviderToken"
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                               int.from_bytes(signature[32:], "big"))
    try:
        public_key.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return "InvalidProviderToken"
    if now_s - claims["iat"] > 3600:
        return "ExpiredProviderToken"
    if claims["iat"] - now_s > 60:
        return "InvalidProviderToken"
    return None


# -- the peer --------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str | None = None
    timestamp: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    connection: int
    path: str
    headers: dict[str, str]
    body: bytes
    jwt: str | None
    status: int = 0
    reason: str | None = None

    @property
    def payload(self) -> Any:
        return json.loads(self.body)

    @property
    def token(self) -> str:
        return self.path.rsplit("/", 1)[-1]


class ApnsPeer:
    def __init__(self, public_key: ec.EllipticCurvePublicKey, *, team_id: str, key_id: str,
                 bundle_id: str, clock: Callable[[], float] = time.time) -> None:
        self.public_key = public_key
        self.team_id = team_id
        self.key_id = key_id
        self.topics = {bundle_id, f"{bundle_id}.voip"}
        self.clock = clock
        self.answers: dict[str, list[Answer]] = {}
        self.requests: list[Received] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._transports: list[asyncio.Transport] = []
        self.url = ""

    async def start(self, tls: TlsMaterial) -> str:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _H2Protocol(self), "127.0.0.1", 0, ssl=tls.server_context(["h2"]))
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"https://localhost:{port}"
        return self.url

    async def stop(self) -> None:
        for transport in self._transports:
            transport.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def answer(self, token: str, *answers: Answer) -> None:
        self.answers.setdefault(token, []).extend(answers)

    def judge(self, received: Received, method: str) -> Answer:
        """What APNs would answer (checks first, then the scripted answer, else 200)."""
        if method != "POST":
            return Answer(405, "MethodNotAllowed")
        if not received.path.startswith("/3/device/") or not received.token:
            return Answer(404, "BadPath")
        if received.jwt is None:
            return Answer(403, "MissingProviderToken")
        refused = check_provider_token(received.jwt, self.public_key, self.team_id,
                                       self.key_id, self.clock())
        if refused is not None:
            return Answer(403, refused)
        topic = received.headers.get("apns-topic")
        push_type = received.headers.get("apns-push-type", "alert")
        if not topic:
            return Answer(400, "MissingTopic")
        if push_type not in PUSH_TYPES:
            return Answer(400, "InvalidPushType")
        if topic not in self.topics or (push_type == "voip") != topic.endswith(".voip"):
            return Answer(400, "TopicDisallowed")
        try:
            payload = json.loads(received.body) if received.body else None
        except json.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict) or not payload:
            return Answer(400, "PayloadEmpty")
        queued = self.answers.get(received.token)
        if queued:
            return queued.pop(0)
        return Answer(200)


class _H2Protocol(asyncio.Protocol):
    def __init__(self, peer: ApnsPeer) -> None:
        self.peer = peer
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8"))
        self.streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        self.transport: asyncio.Transport | None = None
        self.number = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
            transport.close()
            return
        self.peer.connections += 1
        self.number = self.peer.connections
        self.peer._transports.append(transport)
        self.conn.initiate_connection()
        transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.transport.write(self.conn.data_to_send())
            self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self.streams[event.stream_id] = (dict(event.headers), bytearray())
            elif isinstance(event, h2.events.DataReceived):
                self.streams[event.stream_id][1].extend(event.data)
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self._respond(event.stream_id)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.transport.close()
        self.transport.write(self.conn.data_to_send())

    def _respond(self, stream_id: int) -> None:
        headers, body = self.streams.pop(stream_id)
        auth = headers.get("authorization", "")
        received = Received(
            connection=self.number, path=headers.get(":path", ""),
            headers={k: v for k, v in headers.items() if not k.startswith(":")},
            body=bytes(body), jwt=auth[7:] if auth.lower().startswith("bearer ") else None)
        answer = self.peer.judge(received, headers.get(":method", ""))
        received.status, received.reason = answer.status, answer.reason
        self.peer.requests.append(received)
        apns_id = headers.get("apns-id") or str(uuid.uuid4()).upper()
        out_headers = [(":status", str(answer.status)), ("apns-id", apns_id),
                       *answer.headers.items()]
        if answer.status == 200:
            self.conn.send_headers(stream_id, out_headers, end_stream=True)
            return
        error: dict[str, Any] = {"reason": answer.reason or "InternalServerError"}
        if answer.timestamp is not None:
            error["timestamp"] = answer.timestamp
        data = json.dumps(error).encode()
        self.conn.send_headers(stream_id, [*out_headers, ("content-type", "application/json"),
                                           ("content-length", str(len(data)))])
        self.conn.send_data(stream_id, data, end_stream=True)
