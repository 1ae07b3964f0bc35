"""AWS Signature Version 4 verification, as pure functions.

A boto3 ``pinpoint`` client signs each request with ``AWS4-HMAC-SHA256`` in
the ``Authorization`` header (service name ``mobiletargeting``). To verify it
we rebuild what the client signed from what arrived on the wire:

1. the *canonical request*: method, canonical URI, canonical query string,
   the signed headers (lower-case name, trimmed value) and the payload hash;
2. the *string to sign*: algorithm, request time, credential scope and the
   SHA-256 of the canonical request;
3. the signature: HMAC-SHA256 chains ``AWS4<secret>`` → date → region →
   service → ``aws4_request`` → string to sign;

and compare it with the one sent, in constant time.

Path encoding follows botocore's rules for ``rest-json`` services: the client
percent-encodes each path label once when it builds the URL (``:`` becomes
``%3A``, a space ``%20``), then signs that path after removing dot segments
and empty segments and percent-encoding it *again* (``%3A`` → ``%253A``),
keeping only ``/`` and ``~`` (and unreserved characters) as they are. So the
canonical URI is computed from the raw path as sent, never the decoded one.

Nothing here does I/O or reads a clock: the caller passes the current time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote_to_bytes

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "mobiletargeting"
TERMINATOR = "aws4_request"
MAX_CLOCK_SKEW = timedelta(minutes=15)
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_DATE8 = re.compile(r"\d{8}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")
_EXPECTED_FORM = (
    f"{ALGORITHM} Credential=<access key id>/<yyyymmdd>/<region>/{SERVICE}/{TERMINATOR}, "
    "SignedHeaders=<lower-case names joined by ;>, Signature=<64 hex digits>"
)


class SignatureError(Exception):
    """The request's SigV4 signature cannot be accepted; the message says what to fix.

    ``canonical_request`` is set when the failure is a signature mismatch: it is
    what Lodestar signed, to compare with the client's own (botocore logs it at
    DEBUG level as ``CanonicalRequest``).
    """

    def __init__(self, message: str, canonical_request: str | None = None) -> None:
        super().__init__(message)
        self.canonical_request = canonical_request


@dataclass(frozen=True)
class SignedRequest:
    """What arrived on the wire, as the signature covers it.

    ``raw_path`` is the path exactly as sent (still percent-encoded, without the
    query); ``raw_query`` the text after ``?``; ``headers`` the (name, value)
    pairs in arrival order, names in any case.
    """

    method: str
    raw_path: str
    raw_query: str
    headers: Sequence[tuple[str, str]]
    _by_name: dict[str, list[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, list[str]] = {}
        for name, value in self.headers:
            by_name.setdefault(name.lower(), []).append(value)
        object.__setattr__(self, "_by_name", by_name)

    def header(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in arrival order."""
        return self._by_name.get(name.lower(), [])

    def first(self, name: str) -> str | None:
        values = self.header(name)
        return values[0] if values else None


@dataclass(frozen=True)
class Authorization:
    """The parts of an ``AWS4-HMAC-SHA256`` Authorization header."""

    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{TERMINATOR}"


def is_sigv4(authorization: str) -> bool:
    """Whether an Authorization header value claims to be SigV4."""
    return authorization.lstrip().startswith(ALGORITHM)


def parse_authorization(value: str) -> Authorization:
    """Split an ``AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`` header."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureError(
            f"The Authorization header uses {algorithm!r}; Lodestar verifies {ALGORITHM}. "
            f"Expected: {_EXPECTED_FORM}"
        )
    parts: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, val = item.strip().partition("=")
        if sep:
            parts[key.strip()] = val.strip()
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if k not in parts]
    if missing:
        raise SignatureError(
            f"The Authorization header lacks {', '.join(missing)}. Expected: {_EXPECTED_FORM}"
        )
    credential = parts["Credential"].split("/")
    if len(credential) != 5 or not all(credential):
        raise SignatureError(
            "The Credential of the Authorization header must be "
            f"<access key id>/<yyyymmdd>/<region>/{SERVICE}/{TERMINATOR}, "
            f"got {len(credential)} part(s)."
        )
    access_key_id, date, region, service, terminator = credential
    if not _DATE8.fullmatch(date):
        raise SignatureError(f"The Credential date must be yyyymmdd, got {date!r}.")
    if terminator != TERMINATOR:
        raise SignatureError(
            f"The Credential must end with /{TERMINATOR}, got /{terminator}."
        )
    signed = tuple(parts["SignedHeaders"].split(";"))
    if not all(_HEADER_NAME.fullmatch(h) for h in signed):
        raise SignatureError(
            "SignedHeaders must be lower-case header names joined by ';', "
            f"got {parts['SignedHeaders']!r}."
        )
    signature = parts["Signature"]
    if not _HEX64.fullmatch(signature):
        raise SignatureError("The Signature must be 64 lower-case hex digits.")
    return Authorization(access_key_id, date, region, service, signed, signature)


def request_time(request: SignedRequest) -> tuple[datetime, str]:
    """When the request was signed: ``X-Amz-Date`` (else ``Date``), as (time, yyyymmddThhmmssZ)."""
    amz_date = request.first("x-amz-date")
    if amz_date is not None:
        try:
            at = datetime.strptime(amz_date.strip(), AMZ_DATE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise SignatureError(
                f"X-Amz-Date must be yyyymmddThhmmssZ (UTC), got {amz_date!r}."
            ) from None
        return at, amz_date.strip()
    date = request.first("date")
    if date is None:
        raise SignatureError("A signed request needs an X-Amz-Date header (yyyymmddThhmmssZ).")
    try:
        at = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        raise SignatureError(f"The Date header is not an HTTP date: {date!r}.") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    at = at.astimezone(UTC)
    return at, at.strftime(AMZ_DATE_FORMAT)


def check_claims(
    request: SignedRequest,
    auth: Authorization,
    now: datetime,
    *,
    service: str = SERVICE,
    max_skew: timedelta = MAX_CLOCK_SKEW,
) -> str:
    """Check everything but the signature itself; return the request time (yyyymmddThhmmssZ).

    Cheap checks that need neither the secret nor the body: the service name,
    the request time against ``now``, the credential date, the signed headers.
    """
    if auth.service != service:
        raise SignatureError(
            f"The Credential is scoped to service {auth.service!r}; Lodestar's Pinpoint API "
            f"expects {service!r} (what a boto3 'pinpoint' client signs for)."
        )
    at, amz_date = request_time(request)
    if abs(now - at) > max_skew:
        minutes = int(max_skew.total_seconds() // 60)
        raise SignatureError(
            f"Signature expired or not yet valid: the request time {amz_date} is more than "
            f"{minutes} minutes from the server time {now.strftime(AMZ_DATE_FORMAT)}. "
            "Check the client's clock."
        )
    if auth.date != amz_date[:8]:
        raise SignatureError(
            f"The Credential date {auth.date} is not the date of the request time {amz_date}."
        )
    if "host" not in auth.signed_headers:
        raise SignatureError("SignedHeaders must include host.")
    date_header = "x-amz-date" if request.first("x-amz-date") is not None else "date"
    if date_header not in auth.signed_headers:
        raise SignatureError(f"SignedHeaders must include {date_header}.")
    absent = [h for h in auth.signed_headers if not request.header(h)]
    if absent:
        raise SignatureError(
            f"SignedHeaders names {', '.join(absent)} but the request has no such header."
        )
    return amz_date


def payload_hash(request: SignedRequest, body: bytes) -> str:
    """The payload hash the client signed: ``X-Amz-Content-Sha256`` if sent, else SHA-256(body).

    A sent hash must match the body; ``UNSIGNED-PAYLOAD`` is accepted (AWS SDKs
    send it only over TLS, which then protects the body).
    """
    actual = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    claimed = request.first("x-amz-content-sha256")
    if claimed is None:
        return actual
    claimed = claimed.strip()
    if claimed == UNSIGNED_PAYLOAD:
        return claimed
    if not _HEX64.fullmatch(claimed.lower()):
        raise SignatureError(
            f"X-Amz-Content-Sha256 must be the hex SHA-256 of the body or {UNSIGNED_PAYLOAD}; "
            "streaming payloads are not supported."
        )
    if not hmac.compare_digest(claimed.lower(), actual):
        raise SignatureError(
            "X-Amz-Content-Sha256 does not match the SHA-256 of the body received: the body "
            "changed after it was signed (a proxy rewriting it?) or the header is wrong."
        )
    return claimed


def normalize_path(path: str) -> str:
    """Remove ``.``, ``..`` and empty segments, as AWS signers do before encoding."""
    if not path:
        return "/"
    kept: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if kept:
                kept.pop()
        else:
            kept.append(segment)
    lead = "/" if path.startswith("/") else ""
    trail = "/" if path.endswith("/") and kept else ""
    return lead + "/".join(kept) + trail


def canonical_uri(raw_path: str) -> str:
    """The canonical URI of a path as sent: normalized, then percent-encoded once more."""
    return quote(normalize_path(raw_path), safe="/~", errors="surrogateescape")


def _encode_component(text: str) -> str:
    # decode what the client encoded ('+' is a space in a query), then encode per RFC 3986
    return quote(unquote_to_bytes(text.replace("+", " ")), safe="-_.~")


def canonical_query_string(raw_query: str) -> str:
    """Each ``name=value`` re-encoded (RFC 3986 unreserved characters kept), sorted."""
    if not raw_query:
        return ""
    pairs = []
    for item in raw_query.split("&"):
        name, _, value = item.partition("=")
        pairs.append((_encode_component(name), _encode_component(value)))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def _trim(value: str) -> str:
    return " ".join(value.split())


def canonical_headers(request: SignedRequest, signed_headers: Iterable[str]) -> str:
    """``name:value`` lines for the signed headers (repeated values joined by ``,``)."""
    return "".join(
        f"{name}:{','.join(_trim(v) for v in request.header(name))}\n" for name in signed_headers
    )


def canonical_request(
    request: SignedRequest, signed_headers: Sequence[str], payload: str
) -> str:
    """The canonical request of SigV4 (step 1)."""
    return "\n".join([
        request.method.upper(),
        canonical_uri(request.raw_path),
        canonical_query_string(request.raw_query),
        canonical_headers(request, signed_headers),
        ";".join(signed_headers),
        payload,
    ])


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    """The string to sign of SigV4 (step 2)."""
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    return "\n".join([ALGORITHM, amz_date, scope, digest])


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The derived key: HMAC chain over date, region, service and ``aws4_request``."""
    key = _hmac(f"AWS4{secret}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, TERMINATOR)


def compute_signature(
    secret: str, auth: Authorization, amz_date: str, canonical: str
) -> str:
    """The hex signature a holder of ``secret`` computes for ``canonical`` (step 3)."""
    key = signing_key(secret, auth.date, auth.region, auth.service)
    sts = string_to_sign(amz_date, auth.scope, canonical)
    return hmac.new(key, sts.encode("utf-8"), hashlib.sha256).hexdigest()


def verify_signature(
    request: SignedRequest, auth: Authorization, amz_date: str, body: bytes, secret: str
) -> None:
    """Raise ``SignatureError`` unless ``auth.signature`` signs this request with ``secret``.

    Call ``check_claims`` first (it yields ``amz_date``).
    """
    canonical = canonical_request(request, auth.signed_headers, payload_hash(request, body))
    expected = compute_signature(secret, auth, amz_date, canonical)
    if not hmac.compare_digest(expected, auth.signature):
        raise SignatureError(
            "The request signature Lodestar calculated does not match the signature you "
            "provided. Check the secret access key of "
            f"{auth.access_key_id} and how the request is signed: service {SERVICE}, the "
            "exact path, query and signed headers that reach Lodestar (a proxy must not "
            "rewrite them, nor the Host header).",
            canonical_request=canonical,
        )


def verify(
    request: SignedRequest,
    body: bytes,
    secret: str,
    now: datetime,
    *,
    service: str = SERVICE,
    max_skew: timedelta = MAX_CLOCK_SKEW,
) -> Authorization:
    """Parse, check and verify in one call (tests, simple callers); the parsed header."""
    header = request.first("authorization")
    if header is None:
        raise SignatureError("The request has no Authorization header.")
    auth = parse_authorization(header)
    amz_date = check_claims(request, auth, now, service=service, max_skew=max_skew)
    verify_signature(request, auth, amz_date, body, secret)
    return auth
