"""``SnsVerifier``: which items are trusted, the certificate cache, and the httpx fetcher
against a local HTTPS server on 127.0.0.1 (a throwaway CA; the test host pattern)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tests.asgi_server import serve_asgi
from tests.channels.apns_peer import tls_material
from tests.sns_signer import CERT_URL, Signer

from lodestar.api.sns_verification import (
    CertificateUnavailable,
    SnsVerifier,
    SnsVerifyConfig,
    http_fetcher,
)
from lodestar.channel_settings import ChannelSettings, ChannelSettingsError
from lodestar.core.sns_signature import SnsRefusal

NOTE = {"Type": "Notification", "MessageId": "n-1", "Message": '{"notificationType":"Bounce"}',
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses", "Timestamp": "2026-05-01T12:00Z"}
GENERIC = {"Type": "Bounce", "Address": "a@example.com", "BounceType": "Permanent"}


class Fetcher:
    def __init__(self, pem: bytes) -> None:
        self.pem = pem
        self.urls: list[str] = []

    async def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return self.pem


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


async def test_signed_items_pass_and_the_certificate_is_fetched_once(signer: Signer) -> None:
    fetch = Fetcher(signer.pem)
    verifier = SnsVerifier(SnsVerifyConfig(), fetch)
    items = [GENERIC, signer.sign(NOTE, "1"), signer.sign({**NOTE, "MessageId": "n-2"}, "2")]
    assert await verifier.check(items) is None
    assert await verifier.check(items[1:2]) is None
    assert fetch.urls == [CERT_URL]


async def test_the_first_untrusted_item_is_named(signer: Signer) -> None:
    fetch = Fetcher(signer.pem)
    verifier = SnsVerifier(SnsVerifyConfig(), fetch)
    forged = {**signer.sign(NOTE), "Message": '{"notificationType":"Complaint"}'}
    refused = await verifier.check([GENERIC, signer.sign(NOTE), forged, NOTE])
    assert refused is not None and refused.index == 2 and not refused.transient
    assert refused.refused.reason is SnsRefusal.MISMATCH
    unsigned = await verifier.check([GENERIC, NOTE])
    assert unsigned is not None and unsigned.index == 1
    assert unsigned.refused.reason is SnsRefusal.UNSIGNED
    elsewhere = await verifier.check([signer.sign(NOTE, cert_url="https://127.0.0.1/c.pem")])
    assert elsewhere is not None and elsewhere.refused.reason is SnsRefusal.CERT_URL
    assert fetch.urls == [CERT_URL]  # a refused URL is never fetched


async def test_checks_can_be_turned_off_and_generic_items_never_need_them(signer: Signer
                                                                          ) -> None:
    fetch = Fetcher(signer.pem)
    assert await SnsVerifier(SnsVerifyConfig(enabled=False), fetch).check([NOTE]) is None
    assert await SnsVerifier(SnsVerifyConfig(), fetch).check([GENERIC, "junk", 3]) is None
    assert fetch.urls == []


async def test_a_bad_certificate_is_not_cached_and_fetch_failures_say_retry(
        signer: Signer) -> None:
    fetch = Fetcher(b"not a certificate")
    verifier = SnsVerifier(SnsVerifyConfig(), fetch)
    refused = await verifier.check([signer.sign(NOTE)])
    assert refused is not None and refused.refused.reason is SnsRefusal.CERTIFICATE
    fetch.pem = signer.pem
    assert await verifier.check([signer.sign(NOTE)]) is None
    assert len(fetch.urls) == 2

    async def down(url: str) -> bytes:
        raise CertificateUnavailable("connection refused", transient=True)

    refused = await SnsVerifier(SnsVerifyConfig(), down).check([signer.sign(NOTE)])
    assert refused is not None and refused.transient


@pytest.fixture(scope="module")
def cert_server(tmp_path_factory: pytest.TempPathFactory, signer: Signer
                ) -> Iterator[tuple[str, Path, list[str]]]:
    tls = tls_material(tmp_path_factory.mktemp("tls"))
    seen: list[str] = []

    async def cert(request: Request) -> Response:
        seen.append(request.url.path)
        if request.url.path == "/cert.pem":
            return Response(signer.pem, media_type="application/x-pem-file")
        if request.url.path == "/big.pem":
            return Response(b"x" * 100_000)
        if request.url.path == "/broken.pem":
            return Response(b"", status_code=503)
        return Response(b"", status_code=404)

    app = Starlette(routes=[Route("/{name}", cert)])
    with serve_asgi(app, tls=(str(tls.cert_path), str(tls.key_path)),
                    url_host="localhost") as url:
        yield url, tls.ca_path, seen


async def test_the_http_fetcher_over_tls(signer: Signer,
                                         cert_server: tuple[str, Path, list[str]]) -> None:
    import ssl

    url, ca, seen = cert_server
    fetcher = http_fetcher(5, verify=ssl.create_default_context(cafile=str(ca)))
    # the test host is refused unless the explicit pattern names it
    assert await SnsVerifier(SnsVerifyConfig(), fetcher).check(
        [signer.sign(NOTE, cert_url=f"{url}/cert.pem")]) is not None
    assert seen == []
    verifier = SnsVerifier(SnsVerifyConfig(extra_cert_host="localhost"), fetcher)
    assert await verifier.check([signer.sign(NOTE, "2", f"{url}/cert.pem")]) is None
    assert seen == ["/cert.pem"]
    for path, transient in (("/missing.pem", False), ("/broken.pem", True),
                            ("/big.pem", False)):
        refused = await verifier.check([signer.sign(NOTE, cert_url=f"{url}{path}")])
        assert refused is not None and refused.transient is transient, path
        assert refused.refused.reason is SnsRefusal.CERTIFICATE
    # a server whose certificate is not trusted is a fetch failure, never a pass
    untrusted = SnsVerifier(SnsVerifyConfig(extra_cert_host="localhost"), http_fetcher(5))
    refused = await untrusted.check([signer.sign(NOTE, cert_url=f"{url}/cert.pem")])
    assert refused is not None and refused.refused.reason is SnsRefusal.CERTIFICATE


def test_settings() -> None:
    default = ChannelSettings.from_env({})
    assert default.sns_verify_signatures is True and default.sns_cert_host_pattern is None
    config = SnsVerifyConfig.from_settings(type("S", (), {"channels": ChannelSettings.from_env(
        {"LODESTAR_SNS_VERIFY_SIGNATURES": "false",
         "LODESTAR_SNS_CERT_HOST_PATTERN": r"localhost|sns\.test"})})())
    assert config == SnsVerifyConfig(enabled=False, extra_cert_host=r"localhost|sns\.test")
    for env in ({"LODESTAR_SNS_VERIFY_SIGNATURES": "maybe"},
                {"LODESTAR_SNS_CERT_HOST_PATTERN": "(unclosed"}):
        with pytest.raises(ChannelSettingsError):
            ChannelSettings.from_env(env)
