"""Authentication and authorization of every ``/v1/…`` request.

Three schemes, each carrying a Lodestar access key (docs/authentication.md):

- **AWS SigV4** (``Authorization: AWS4-HMAC-SHA256 Credential=…``), what a
  boto3 ``pinpoint`` client sends; verified by ``lodestar.api.sigv4``;
- **Bearer** (``Authorization: Bearer <access key id>:<secret access key>``)
  for clients without a SigV4 signer;
- **Basic** (``Authorization: Basic base64(<access key id>:<secret access key>)``),
  what Amazon SNS sends for an HTTPS subscription URL carrying credentials
  (``https://<key id>:<secret>@host/…``), so SES feedback can post directly.

Who may do what (``authorize``): an admin key may call everything; an app key
may call GetApp on its own application and everything under
``/v1/apps/<its app id>/…``, nothing else. A sub-resource of an application
that does not exist answers 404 ``NotFoundException``, after authentication.

Keys and application ids are looked up in PostgreSQL once and then served
from an in-process cache for ``LODESTAR_AUTH_CACHE_SECONDS`` (both hits and
misses), so a request costs no query on the hot path; a revoked key or a
deleted application stops working within that time in other processes, and
at once in the process that deleted it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lodestar.api import sigv4
from lodestar.api.errors import ErrorType, error_response
from lodestar.control.apps import ApiKey

log = logging.getLogger(__name__)

BEARER = "Bearer"
BASIC = "Basic"
# a signed body is read whole before the handler sees it; larger ones are refused
MAX_SIGNED_BODY_BYTES = 8 * 1024 * 1024
_APP_PATH = re.compile(r"^/v1/apps/(?P<app_id>[^/]+)(?P<rest>/.*)?$")
_HOW_TO_AUTHENTICATE = (
    "Sign the request with AWS Signature Version 4 for service 'mobiletargeting' (e.g. a "
    "boto3 'pinpoint' client given a Lodestar access key id and secret access key), or send "
    "'Authorization: Bearer <access key id>:<secret access key>'. "
    "Get keys with `lodestar apps create` or `lodestar keys create --app-id <id>`."
)


@dataclass(frozen=True)
class KeyRecord:
    """What authentication needs to know about an access key."""

    access_key_id: str
    secret: str
    app_id: str | None  # None: an admin key
    revoked: bool = False

    @classmethod
    def of(cls, key: ApiKey) -> KeyRecord:
        return cls(key.access_key_id, key.secret, key.app_id, not key.active)


@dataclass(frozen=True)
class Principal:
    """Who is calling: kept in ``request.state.principal`` for handlers."""

    access_key_id: str
    app_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.app_id is None


class KeySource(Protocol):
    """Where keys and applications are looked up (``AppsRepository`` in production)."""

    async def get_key(self, access_key_id: str) -> ApiKey | None: ...

    async def app_exists(self, app_id: str) -> bool: ...


T = TypeVar("T")


class TtlCache(Generic[T]):
    """A small in-process cache: values expire ``ttl`` seconds after they were stored.

    Concurrent misses for one key share a single load ("single flight").
    """

    def __init__(
        self, ttl: float, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[float, T]] = {}
        self._loading: dict[str, asyncio.Future[T]] = {}

    def get(self, key: str) -> tuple[bool, T | None]:
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        expires, value = entry
        if self._clock() >= expires:
            del self._entries[key]
            return False, None
        return True, value

    def put(self, key: str, value: T) -> None:
        if len(self._entries) >= self.max_entries:
            now = self._clock()
            self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        self._entries[key] = (self._clock() + self.ttl, value)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    async def get_or_load(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        """The cached value, else ``load()``'s (one load at a time per key), cached."""
        hit, value = self.get(key)
        if hit:
            return value  # type: ignore[return-value]
        task = self._loading.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key, load))
            # a load whose callers all went away still has its outcome retrieved
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._loading[key] = task
        # shielded: a caller that is cancelled does not cancel the others' load
        return await asyncio.shield(task)

    async def _load(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        try:
            value = await load()
        finally:
            self._loading.pop(key, None)
        self.put(key, value)
        return value


class Authenticator:
    """Finds access keys and applications, through the caches."""

    def __init__(
        self,
        source: KeySource | None,
        *,
        ttl: float,
        admin_key: tuple[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self._admin = KeyRecord(admin_key[0], admin_key[1], None) if admin_key else None
        self.keys: TtlCache[KeyRecord | None] = TtlCache(ttl, clock=clock)
        self.apps: TtlCache[bool] = TtlCache(ttl, clock=clock)

    def _source(self) -> KeySource:
        if self.source is None:
            raise RuntimeError("the authenticator has no key source (the API is not started)")
        return self.source

    async def key(self, access_key_id: str) -> KeyRecord | None:
        """The key with this id (maybe revoked), or None when it is unknown."""
        if self._admin is not None and hmac.compare_digest(
            access_key_id.encode(), self._admin.access_key_id.encode()
        ):
            return self._admin

        async def load() -> KeyRecord | None:
            found = await self._source().get_key(access_key_id)
            return KeyRecord.of(found) if found else None

        return await self.keys.get_or_load(access_key_id, load)

    async def app_exists(self, app_id: str) -> bool:
        return await self.apps.get_or_load(app_id, lambda: self._source().app_exists(app_id))

    # this process changed the control plane: make it visible at once here
    def remember_key(self, key: ApiKey) -> None:
        self.keys.put(key.access_key_id, KeyRecord.of(key))

    def remember_app(self, app_id: str, exists: bool = True) -> None:
        self.apps.put(app_id, exists)


class AuthFailure(Exception):
    """Authentication or authorization failed: answer ``kind`` with ``message``."""

    def __init__(self, message: str, kind: ErrorType = ErrorType.FORBIDDEN) -> None:
        super().__init__(message)
        self.kind = kind


def authorize(principal: Principal, method: str, path: str) -> None:
    """Raise ``AuthFailure`` unless ``principal`` may call ``method path``.

    ``path`` is the decoded path the router matches on.
    """
    if principal.is_admin:
        return
    match = _APP_PATH.match(path)
    key = principal.access_key_id
    if match is None:
        raise AuthFailure(
            f"Access key {key} belongs to application {principal.app_id} and may call only "
            f"/v1/apps/{principal.app_id}/…; {method} {path} needs an admin key "
            "(`lodestar keys admin`)."
        )
    app_id, rest = match["app_id"], match["rest"]
    if app_id != principal.app_id:
        raise AuthFailure(
            f"Access key {key} belongs to application {principal.app_id}, not {app_id}; "
            "use a key of that application or an admin key."
        )
    if not rest and method.upper() != "GET":
        raise AuthFailure(
            f"{method} /v1/apps/{app_id} needs an admin key (`lodestar keys admin`); "
            f"access key {key} is an application key."
        )


def _bearer_credentials(value: str) -> tuple[str, str]:
    token = value.strip()[len(BEARER):].strip()
    access_key_id, sep, secret = token.partition(":")
    if not sep or not access_key_id or not secret:
        raise AuthFailure(
            "The Bearer token must be '<access key id>:<secret access key>' "
            "(the two joined by a colon)."
        )
    return access_key_id, secret


def _basic_credentials(value: str) -> tuple[str, str]:
    token = value.strip()[len(BASIC):].strip()
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthFailure("The Basic credentials are not base64 of "
                          "'<access key id>:<secret access key>'.") from None
    access_key_id, sep, secret = decoded.partition(":")
    if not sep or not access_key_id or not secret:
        raise AuthFailure("The Basic credentials must be '<access key id>:<secret access key>' "
                          "(the two joined by a colon, base64-encoded).")
    return access_key_id, secret


def _unknown_or_revoked(access_key_id: str, record: KeyRecord | None) -> KeyRecord:
    if record is None:
        raise AuthFailure(
            f"The access key id {access_key_id} is not known to this Lodestar. Check the "
            "access key id, or create a key with `lodestar keys create --app-id <id>`."
        )
    if record.revoked:
        raise AuthFailure(
            f"The access key {access_key_id} has been revoked; use another key of the "
            "application (`lodestar keys create --app-id <id>`)."
        )
    return record


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it exceeds ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def signed_request(scope: Scope) -> sigv4.SignedRequest:
    """The parts of an ASGI request a SigV4 signature covers."""
    raw_path = scope.get("raw_path")
    if raw_path:
        path = raw_path.decode("utf-8", "surrogateescape")
    else:  # a server without raw_path: re-encode the decoded path as botocore would
        path = "/".join(quote(s, safe="-_.~") for s in scope["path"].split("/"))
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    return sigv4.SignedRequest(
        method=scope["method"],
        raw_path=path,
        raw_query=scope.get("query_string", b"").decode("latin-1"),
        headers=headers,
    )


class AuthMiddleware:
    """ASGI middleware: authenticate and authorize ``/v1/…``; other paths pass through.

    Reads the authenticator from ``scope["app"].state.authenticator`` (set in the
    lifespan). A failure answers Pinpoint's 403 ``ForbiddenException``.
    """

    def __init__(
        self, app: ASGIApp, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        authenticator: Authenticator = scope["app"].state.authenticator
        try:
            principal, receive = await self._authenticate(authenticator, scope, receive)
            authorize(principal, scope["method"], scope["path"])
            await self._check_app_exists(authenticator, principal, scope["path"])
        except AuthFailure as failure:
            if failure.kind is ErrorType.FORBIDDEN:
                log.info("refused %s %s: %s", scope["method"], scope["path"], failure)
            await error_response(failure.kind, str(failure))(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    async def _authenticate(
        self, authenticator: Authenticator, scope: Scope, receive: Receive
    ) -> tuple[Principal, Receive]:
        header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        if header is None or not header.strip():
            raise AuthFailure(f"The request has no credentials. {_HOW_TO_AUTHENTICATE}")
        scheme = header.strip().split(" ", 1)[0]
        if scheme.lower() in (BEARER.lower(), BASIC.lower()):
            access_key_id, secret = (_bearer_credentials(header)
                                     if scheme.lower() == BEARER.lower()
                                     else _basic_credentials(header))
            record = _unknown_or_revoked(access_key_id, await authenticator.key(access_key_id))
            if not hmac.compare_digest(secret.encode(), record.secret.encode()):
                raise AuthFailure(
                    f"The secret access key sent for {access_key_id} is not its secret; check "
                    "the secret (`lodestar keys create` makes a new key if it is lost)."
                )
            return Principal(record.access_key_id, record.app_id), receive
        if not sigv4.is_sigv4(header):
            raise AuthFailure(
                f"Unsupported authorization scheme {scheme!r}. {_HOW_TO_AUTHENTICATE}"
            )
        return await self._sigv4(authenticator, scope, receive, header)

    async def _sigv4(
        self, authenticator: Authenticator, scope: Scope, receive: Receive, header: str
    ) -> tuple[Principal, Receive]:
        request = signed_request(scope)
        try:
            auth = sigv4.parse_authorization(header)
            amz_date = sigv4.check_claims(request, auth, self.clock())
        except sigv4.SignatureError as exc:
            raise AuthFailure(str(exc)) from None
        found = await authenticator.key(auth.access_key_id)
        record = _unknown_or_revoked(auth.access_key_id, found)
        principal = Principal(record.access_key_id, record.app_id)
        # refuse a key on the wrong application before reading its body
        authorize(principal, scope["method"], scope["path"])
        body = await _read_body(receive, MAX_SIGNED_BODY_BYTES)
        if body is None:
            raise AuthFailure(
                f"The request body is larger than {MAX_SIGNED_BODY_BYTES // (1024 * 1024)} MB; "
                "send less per request.",
                ErrorType.PAYLOAD_TOO_LARGE,
            )
        try:
            sigv4.verify_signature(request, auth, amz_date, body, record.secret)
        except sigv4.SignatureError as exc:
            message = str(exc)
            if exc.canonical_request is not None:
                message += f" The canonical request Lodestar signed:\n{exc.canonical_request}"
            raise AuthFailure(message) from None
        return principal, _replay(body, receive)

    @staticmethod
    async def _check_app_exists(
        authenticator: Authenticator, principal: Principal, path: str
    ) -> None:
        match = _APP_PATH.match(path)
        if match is None or not match["rest"]:
            return  # /v1/apps and /v1/apps/<id> handlers answer for themselves
        app_id = match["app_id"]
        if principal.app_id == app_id:
            return  # an app key exists only while its application does
        if not await authenticator.app_exists(app_id):
            raise AuthFailure(
                f"Application {app_id} does not exist. Create it with CreateApp "
                "(POST /v1/apps) or `lodestar apps create`.",
                ErrorType.NOT_FOUND,
            )

