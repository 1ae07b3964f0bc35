"""SigV4 verification against botocore's own signer (``botocore.auth.SigV4Auth``).

Every request here is signed by botocore, then checked by ``lodestar.api.sigv4``
from what would arrive on the wire (the URL's raw path and query, the headers
plus the ``Host`` an HTTP client adds, the body). A change to any signed part
must make verification fail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode, percent_encode_sequence
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lodestar.api import sigv4
from lodestar.api.sigv4 import SignatureError, SignedRequest

AKID = "LSKEXAMPLE0000000001"
SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY0a"
ENDPOINT = "http://lodestar.test:8080"


def _host(url: str) -> str:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname or ""
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def wire(prepared: AWSPreparedRequest) -> tuple[SignedRequest, bytes]:
    """What a server receives for a request botocore prepared."""
    parts = urlsplit(prepared.url)
    headers = [(k, v if isinstance(v, str) else v.decode("latin-1"))
               for k, v in prepared.headers.items()]
    headers.append(("Host", _host(prepared.url)))
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    return SignedRequest(prepared.method, parts.path, parts.query, headers), body


def botocore_sign(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    params: Any = None,
    service: str = "mobiletargeting",
    region: str = "us-east-1",
    secret: str = SECRET,
    at: datetime | None = None,
) -> tuple[SignedRequest, bytes, AWSRequest]:
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {},
                         params=params or {})
    signer = SigV4Auth(Credentials(AKID, secret), service, region)
    if at is None:
        signer.add_auth(request)
    else:
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=at):
            signer.add_auth(request)
    signed, raw = wire(request.prepare())
    return signed, raw, request


def now() -> datetime:
    return datetime.now(UTC)


# -- many requests, signed by botocore, verified by Lodestar -----------------------

PATHS = [
    "/v1/apps",
    "/v1/apps/" + "a" * 32,
    "/v1/apps/abc/events",
    "/v1/apps/abc/endpoints/" + percent_encode("endpoint with spaces"),
    "/v1/apps/abc/endpoints/" + percent_encode("arn:aws:sns:us-east-1:1:x"),  # ':' in ids
    "/v1/apps/abc/endpoints/" + percent_encode("100%-sure"),
    "/v1/apps/abc/users/" + percent_encode("ユーザー/ü/é"),
    "/v1/apps/abc/endpoints/" + percent_encode("tilde~plus+equals=amp&"),
    "/v1/apps/abc/endpoints/" + percent_encode("semi;comma,at@dollar$"),
    "/v1/apps/abc/./endpoints/../endpoints/x",  # dot segments are normalized away
    "/v1/apps//abc/endpoints/x/",  # empty segments too, the trailing slash stays
    "/",
    "",
]

QUERIES = [
    "",
    "page-size=10&token=abc",
    "token=abc&page-size=10",  # order does not matter: sorted
    percent_encode_sequence({"start-time": "2026-05-01T00:00:00Z", "end-time": "2026-05-02"}),
    percent_encode_sequence([("a", "2"), ("a", "1"), ("b", "")]),  # repeated keys
    percent_encode_sequence({"prefix": "hello world/ü+%", "x": "~-._"}),
    "flag",  # a key without '='
]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
@pytest.mark.parametrize("path", PATHS)
def test_botocore_signed_paths_verify(method: str, path: str) -> None:
    signed, body, _ = botocore_sign(method, ENDPOINT + path, body=b'{"a":1}')
    auth = sigv4.verify(signed, body, SECRET, now())
    assert auth.access_key_id == AKID and auth.region == "us-east-1"


@pytest.mark.parametrize("query", QUERIES)
def test_botocore_signed_query_strings_verify(query: str) -> None:
    url = f"{ENDPOINT}/v1/apps/x/kpis/daterange/unique-deliveries" + (f"?{query}" if query else "")
    signed, body, _ = botocore_sign("GET", url)
    sigv4.verify(signed, body, SECRET, now())


@pytest.mark.parametrize(
    "params",
    [
        {"page-size": "5", "token": "a b"},  # sent as a+b, signed as a%20b
        [("k", "v/w"), ("k", "ü"), ("plus", "1+1")],
    ],
)
def test_params_encoded_by_botocore_at_prepare_time_verify(params: Any) -> None:
    signed, body, _ = botocore_sign("GET", f"{ENDPOINT}/v1/apps", params=params)
    sigv4.verify(signed, body, SECRET, now())


@pytest.mark.parametrize(
    "body", [b"", b"{}", b'{"BatchItem": {"e": {"Endpoint": {}, "Events": {}}}}',
             bytes(range(256)), "ünïcødé".encode(), b"x" * 100_000],
)
def test_bodies_verify(body: bytes) -> None:
    signed, raw, _ = botocore_sign("POST", f"{ENDPOINT}/v1/apps/x/events", body=body,
                                   headers={"Content-Type": "application/json"})
    sigv4.verify(signed, raw, SECRET, now())


def test_header_values_are_trimmed_as_botocore_trims_them() -> None:
    headers = {"Content-Type": "  application/json  ", "X-Custom": "a   b \t c",
               "X-Amz-Meta": "v"}
    signed, body, _ = botocore_sign("PUT", f"{ENDPOINT}/v1/apps/x/endpoints/e", body=b"{}",
                                    headers=headers)
    sigv4.verify(signed, body, SECRET, now())


def test_date_header_instead_of_x_amz_date() -> None:
    signed, body, request = botocore_sign("GET", f"{ENDPOINT}/v1/apps",
                                          headers={"Date": "whatever"})
    assert "X-Amz-Date" not in request.headers and request.headers["Date"]
    sigv4.verify(signed, body, SECRET, now())


def test_default_port_is_not_in_the_host() -> None:
    for url in ("http://lodestar.test/v1/apps", "https://lodestar.test:443/v1/apps",
                "https://LODESTAR.test:8443/v1/apps"):
        signed, body, _ = botocore_sign("GET", url)
        sigv4.verify(signed, body, SECRET, now())


def test_any_region_is_accepted_and_part_of_the_signature() -> None:
    signed, body, _ = botocore_sign("GET", f"{ENDPOINT}/v1/apps", region="eu-west-3")
    assert sigv4.verify(signed, body, SECRET, now()).region == "eu-west-3"


def test_canonical_request_equals_botocores() -> None:
    query = percent_encode_sequence({"z": "ü", "a": "1 2"})
    url = f"{ENDPOINT}/v1/apps/{percent_encode('a b:c')}/events?{query}"
    request = AWSRequest(method="POST", url=url, data=b"{}", headers={
        "Content-Type": "application/json", "X-Amz-Date": "20260501T000000Z"})
    signer = SigV4Auth(Credentials(AKID, SECRET), "mobiletargeting", "us-east-1")
    expected = signer.canonical_request(request)
    names = tuple(sorted(signer.headers_to_sign(request)))
    signed, body = wire(request.prepare())
    ours = sigv4.canonical_request(signed, names, sigv4.payload_hash(signed, body))
    assert ours == expected


# -- whatever changes after signing is refused --------------------------------------


def _replace(signed: SignedRequest, **changes: Any) -> SignedRequest:
    fields = {"method": signed.method, "raw_path": signed.raw_path,
              "raw_query": signed.raw_query, "headers": list(signed.headers), **changes}
    return SignedRequest(**fields)


def _with_header(signed: SignedRequest, name: str, value: str) -> SignedRequest:
    headers = [(k, value if k.lower() == name else v) for k, v in signed.headers]
    return _replace(signed, headers=headers)


@pytest.fixture
def good() -> tuple[SignedRequest, bytes]:
    url = f"{ENDPOINT}/v1/apps/abc/endpoints/{percent_encode('e:1')}?page-size=5"
    signed, body, _ = botocore_sign("PUT", url, body=b'{"ChannelType":"EMAIL"}',
                                    headers={"Content-Type": "application/json"})
    sigv4.verify(signed, body, SECRET, now())
    return signed, body


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: _replace(s, method="POST"),
        lambda s: _replace(s, raw_path=s.raw_path.replace("abc", "abd")),
        lambda s: _replace(s, raw_path=s.raw_path.replace("%3A", "%3B")),
        lambda s: _replace(s, raw_query="page-size=6"),
        lambda s: _replace(s, raw_query=""),
        lambda s: _with_header(s, "host", "evil.test:8080"),
        lambda s: _with_header(s, "content-type", "text/plain"),
    ],
)
def test_tampered_requests_are_refused(good: tuple[SignedRequest, bytes], tamper: Any) -> None:
    signed, body = good
    with pytest.raises(SignatureError, match="does not match") as info:
        sigv4.verify(tamper(signed), body, SECRET, now())
    assert info.value.canonical_request  # shown to the client to debug its signer


def test_tampered_body_and_wrong_secret_are_refused(good: tuple[SignedRequest, bytes]) -> None:
    signed, body = good
    with pytest.raises(SignatureError, match="does not match"):
        sigv4.verify(signed, body + b" ", SECRET, now())
    with pytest.raises(SignatureError, match="does not match") as info:
        sigv4.verify(signed, body, SECRET[:-1] + "b", now())
    assert SECRET not in str(info.value) and SECRET[:-1] not in str(info.value)


def test_wrong_service_name_is_refused() -> None:
    signed, body, _ = botocore_sign("GET", f"{ENDPOINT}/v1/apps", service="s3")
    with pytest.raises(SignatureError, match="'mobiletargeting'"):
        sigv4.verify(signed, body, SECRET, now())


@pytest.mark.parametrize("offset", [timedelta(minutes=-16), timedelta(minutes=16)])
def test_request_time_more_than_15_minutes_off_is_refused(offset: timedelta) -> None:
    signed, body, _ = botocore_sign("GET", f"{ENDPOINT}/v1/apps", at=now() + offset)
    with pytest.raises(SignatureError, match=r"more than 15 minutes.*clock"):
        sigv4.verify(signed, body, SECRET, now())


@pytest.mark.parametrize("offset", [timedelta(minutes=-14), timedelta(minutes=14)])
def test_request_time_within_15_minutes_is_accepted(offset: timedelta) -> None:
    signed, body, _ = botocore_sign("GET", f"{ENDPOINT}/v1/apps", at=now() + offset)
    sigv4.verify(signed, body, SECRET, now())


def test_credential_date_must_be_the_request_date(good: tuple[SignedRequest, bytes]) -> None:
    signed, body = good
    header = signed.first("authorization") or ""
    auth = sigv4.parse_authorization(header)
    other = header.replace(f"/{auth.date}/", "/19990101/")
    with pytest.raises(SignatureError, match="not the date of the request time"):
        sigv4.verify(_with_header(signed, "authorization", other), body, SECRET, now())


def test_content_sha256_header_must_match_the_body() -> None:
    body = b'{"a": 1}'
    digest = hashlib.sha256(body).hexdigest()
    signed, raw, _ = botocore_sign("POST", f"{ENDPOINT}/v1/apps", body=body,
                                   headers={"X-Amz-Content-SHA256": digest})
    sigv4.verify(signed, raw, SECRET, now())
    with pytest.raises(SignatureError, match="X-Amz-Content-Sha256 does not match"):
        sigv4.verify(signed, b'{"a": 2}', SECRET, now())


def test_unsigned_payload_is_accepted_and_streaming_is_not() -> None:
    signed, raw, _ = botocore_sign("POST", f"{ENDPOINT}/v1/apps", body=b"{}",
                                   headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    sigv4.verify(signed, raw, SECRET, now())
    signed, raw, _ = botocore_sign(
        "POST", f"{ENDPOINT}/v1/apps", body=b"{}",
        headers={"X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"})
    with pytest.raises(SignatureError, match="streaming payloads are not supported"):
        sigv4.verify(signed, raw, SECRET, now())


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("AWS4-HMAC-SHA1 Credential=a/b/c/d/e", "uses 'AWS4-HMAC-SHA1'"),
        ("AWS4-HMAC-SHA256 Credential=K/20260501/us-east-1/mobiletargeting/aws4_request",
         "lacks SignedHeaders, Signature"),
        ("AWS4-HMAC-SHA256 Credential=K/20260501/us-east-1/aws4_request, SignedHeaders=host, "
         f"Signature={'0' * 64}", "got 4 part"),
        ("AWS4-HMAC-SHA256 Credential=K/2026-05-01/us-east-1/mobiletargeting/aws4_request, "
         f"SignedHeaders=host, Signature={'0' * 64}", "yyyymmdd"),
        ("AWS4-HMAC-SHA256 Credential=K/20260501/us-east-1/mobiletargeting/aws5_request, "
         f"SignedHeaders=host, Signature={'0' * 64}", "must end with /aws4_request"),
        ("AWS4-HMAC-SHA256 Credential=K/20260501/us-east-1/mobiletargeting/aws4_request, "
         f"SignedHeaders=Host;X-Amz-Date, Signature={'0' * 64}", "lower-case header names"),
        ("AWS4-HMAC-SHA256 Credential=K/20260501/us-east-1/mobiletargeting/aws4_request, "
         "SignedHeaders=host, Signature=xyz", "64 lower-case hex"),
    ],
)
def test_malformed_authorization_headers_say_what_is_wrong(header: str, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        sigv4.parse_authorization(header)


def test_signed_headers_must_cover_host_and_date_and_exist() -> None:
    at = now()
    amz = at.strftime(sigv4.AMZ_DATE_FORMAT)

    def request(signed_headers: str) -> SignedRequest:
        header = (f"AWS4-HMAC-SHA256 Credential={AKID}/{amz[:8]}/us-east-1/mobiletargeting/"
                  f"aws4_request, SignedHeaders={signed_headers}, Signature={'0' * 64}")
        return SignedRequest("GET", "/v1/apps", "", [
            ("Host", "h"), ("X-Amz-Date", amz), ("Authorization", header)])

    for signed_headers, message in [("x-amz-date", "must include host"),
                                    ("host", "must include x-amz-date"),
                                    ("host;x-amz-date;x-other", "no such header")]:
        req = request(signed_headers)
        auth = sigv4.parse_authorization(req.first("authorization") or "")
        with pytest.raises(SignatureError, match=message):
            sigv4.check_claims(req, auth, at)


def test_bad_x_amz_date_is_refused() -> None:
    req = SignedRequest("GET", "/", "", [("X-Amz-Date", "2026-05-01T00:00:00Z")])
    with pytest.raises(SignatureError, match="yyyymmddThhmmssZ"):
        sigv4.request_time(req)


def test_signing_key_matches_the_aws_documentation_example() -> None:
    # AWS's published example: secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
    # 20120215, us-east-1, iam
    key = sigv4.signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215",
                            "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


# -- the exact requests a boto3 pinpoint client sends ---------------------------------


class _Captured(Exception):
    pass


@pytest.fixture
def pinpoint() -> Iterator[tuple[Any, list[AWSPreparedRequest]]]:
    """A boto3 pinpoint client whose requests are captured instead of sent."""
    client = boto3.client(
        "pinpoint", endpoint_url=ENDPOINT, region_name="us-east-1",
        aws_access_key_id=AKID, aws_secret_access_key=SECRET,
        config=boto3.session.Config(retries={"max_attempts": 1}),
    )
    captured: list[AWSPreparedRequest] = []

    def capture(request: AWSPreparedRequest, **_: Any) -> None:
        captured.append(request)
        raise _Captured

    client.meta.events.register("before-send.pinpoint", capture)
    yield client, captured


def _call(pinpoint: tuple[Any, list[AWSPreparedRequest]], op: str, **kwargs: Any) -> None:
    client, captured = pinpoint
    with pytest.raises(_Captured):
        getattr(client, op)(**kwargs)
    signed, body = wire(captured[-1])
    sigv4.verify(signed, body, SECRET, now())


ODD_IDS = ["plain", "with space", "colon:in:id", "100%", "ü-ñ-日本", "slash/in/id",
           "tilde~", "plus+sign", "a" * 200, "..", "."]


@pytest.mark.parametrize("endpoint_id", ODD_IDS)
def test_boto3_endpoint_operations_verify(pinpoint: Any, endpoint_id: str) -> None:
    app = "0123456789abcdef0123456789abcdef"
    _call(pinpoint, "get_endpoint", ApplicationId=app, EndpointId=endpoint_id)
    _call(pinpoint, "delete_endpoint", ApplicationId=app, EndpointId=endpoint_id)
    _call(pinpoint, "update_endpoint", ApplicationId=app, EndpointId=endpoint_id,
          EndpointRequest={"ChannelType": "EMAIL", "Address": "a@example.com"})
    _call(pinpoint, "get_user_endpoints", ApplicationId=app, UserId=endpoint_id)


def test_boto3_app_operations_and_query_strings_verify(pinpoint: Any) -> None:
    _call(pinpoint, "create_app", CreateApplicationRequest={"Name": "n", "tags": {"k": "v"}})
    _call(pinpoint, "get_apps", PageSize="7", Token="abc/def+ghi=")
    _call(pinpoint, "get_app", ApplicationId="abc")
    _call(pinpoint, "delete_app", ApplicationId="abc")
    _call(pinpoint, "get_application_date_range_kpi", ApplicationId="abc",
          KpiName="unique-deliveries", StartTime=datetime(2026, 5, 1, tzinfo=UTC),
          EndTime=datetime(2026, 5, 2, 12, 30, tzinfo=UTC), PageSize="5")
    _call(pinpoint, "put_events", ApplicationId="abc", EventsRequest={"BatchItem": {
        "ep 1:ü": {"Endpoint": {}, "Events": {"e": {
            "EventType": "_session.start", "Timestamp": "2026-05-01T00:00:00Z"}}}}})


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(endpoint_id=st.text(min_size=1, max_size=40).filter(lambda s: s not in (".", "..")),
       user_id=st.text(min_size=1, max_size=20))
def test_boto3_requests_with_generated_ids_verify(
    pinpoint: Any, endpoint_id: str, user_id: str
) -> None:
    _call(pinpoint, "get_endpoint", ApplicationId="abc", EndpointId=endpoint_id)
    _call(pinpoint, "update_endpoint", ApplicationId="abc", EndpointId=endpoint_id,
          EndpointRequest={"User": {"UserId": user_id}})


# -- generated requests signed with botocore's AWSRequest --------------------------

_segment = st.text(min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))
_query_pairs = st.lists(st.tuples(st.text(min_size=1, max_size=8), st.text(max_size=8)),
                        max_size=4)
_header_value = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=20
).filter(lambda v: v.strip())


@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    segments=st.lists(_segment, max_size=4),
    query=_query_pairs,
    as_params=st.booleans(),
    headers=st.dictionaries(
        st.sampled_from(["Content-Type", "X-Custom", "X-Amz-Target", "Accept"]), _header_value,
        max_size=3),
    body=st.binary(max_size=300),
    region=st.sampled_from(["us-east-1", "eu-central-1", "ap-southeast-2"]),
)
def test_generated_requests_verify_and_fail_with_another_secret(
    method: str, segments: list[str], query: list[tuple[str, str]], as_params: bool,
    headers: dict[str, str], body: bytes, region: str,
) -> None:
    path = "/v1/apps/" + "/".join(percent_encode(s) for s in segments)
    if as_params:
        url, params = ENDPOINT + path, query
    else:
        url = ENDPOINT + path + (f"?{percent_encode_sequence(query)}" if query else "")
        params = None
    signed, raw, _ = botocore_sign(method, url, body=body, headers=headers, params=params,
                                   region=region)
    assert sigv4.verify(signed, raw, SECRET, now()).region == region
    with pytest.raises(SignatureError):
        sigv4.verify(signed, raw, SECRET + "x", now())
