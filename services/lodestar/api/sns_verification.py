"""SNS signature checks for the email feedback route: fetch and cache signing certificates.

``SnsVerifier.check(items)`` answers, for the SNS-shaped items of a feedback body
(``core.sns_signature.is_sns_message``), the first that is not trusted, as a
``Refused`` value with its index — or None when every one verifies (or when checks
are off). The pure parts (URL rule, canonical string, signature) are
``core.sns_signature``; this module only fetches certificates.

Certificates are fetched from ``SigningCertURL`` (only once the URL passed the host
rule, so the API never fetches an address a caller chose) with httpx — no redirects,
no proxies from the environment, at most 64 KiB — and cached by URL: SNS signs with
few certificates, so after the first message nothing is fetched. The fetcher is
injectable (``app.state.sns_verifier``) so tests serve their own certificate.

Configuration (``SnsVerifyConfig.from_settings``): ``LODESTAR_SNS_VERIFY_SIGNATURES``
(default true) and, for tests only, ``LODESTAR_SNS_CERT_HOST_PATTERN``.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from lodestar.core.sns_signature import (
    Refused,
    SnsRefusal,
    cert_url_refusal,
    is_sns_message,
    signing_fields,
    verdict,
)

log = logging.getLogger(__name__)

MAX_CERTIFICATE_BYTES = 64 * 1024
CACHE_SIZE = 32

CertificateFetcher = Callable[[str], Awaitable[bytes]]
"""Fetch the document at a (checked) SigningCertURL; raise ``CertificateUnavailable``."""


class CertificateUnavailable(Exception):
    """The certificate could not be fetched. ``transient``: a network failure or a 5xx,
    worth retrying; otherwise the URL serves no certificate."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class SnsVerifyConfig:
    enabled: bool = True
    extra_cert_host: str | None = None  # tests only: a regular expression of hosts
    timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Any) -> SnsVerifyConfig:
        channels = settings.channels
        return cls(enabled=channels.sns_verify_signatures,
                   extra_cert_host=channels.sns_cert_host_pattern,
                   timeout_s=channels.provider_timeout_seconds)


def http_fetcher(timeout_s: float, verify: Any = True, name: str = "SigningCertURL"
                 ) -> CertificateFetcher:
    """A fetcher GETting the URL (the message's field ``name``) with httpx (``verify``:
    httpx's TLS verification, e.g. a test CA's ``ssl.SSLContext``)."""

    async def fetch(url: str) -> bytes:
        try:
            async with (httpx.AsyncClient(timeout=timeout_s, verify=verify, trust_env=False,
                                          follow_redirects=False) as client,
                        client.stream("GET", url) as response):
                if response.status_code != 200:
                    raise CertificateUnavailable(
                        f"{name} answered HTTP {response.status_code}",
                        transient=response.status_code >= 500)
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_CERTIFICATE_BYTES:
                        raise CertificateUnavailable(
                            f"{name} serves more than a certificate", transient=False)
                return body
        except httpx.HTTPError as exc:
            raise CertificateUnavailable(f"{name} could not be fetched: "
                                         f"{type(exc).__name__}: {exc}", transient=True) from exc

    return fetch


@dataclass(frozen=True)
class ItemRefused:
    index: int
    refused: Refused
    transient: bool = False  # the certificate could not be fetched now: retry


class SnsVerifier:
    """Checks SNS signatures with certificates fetched by ``fetcher``, cached by URL, and
    confirms verified subscriptions by GETting their ``SubscribeURL`` with ``confirmer``."""

    def __init__(self, config: SnsVerifyConfig, fetcher: CertificateFetcher | None = None,
                 clock: Callable[[], float] = time.time,
                 confirmer: CertificateFetcher | None = None) -> None:
        self.config = config
        self._fetch = fetcher or http_fetcher(config.timeout_s)
        self._confirm = confirmer or http_fetcher(config.timeout_s, name="SubscribeURL")
        self._extra_host = re.compile(config.extra_cert_host) if config.extra_cert_host else None
        self._certificates: OrderedDict[str, bytes] = OrderedDict()
        self._clock = clock

    async def certificate(self, url: str) -> bytes:
        cached = self._certificates.get(url)
        if cached is not None:
            self._certificates.move_to_end(url)
            return cached
        pem = await self._fetch(url)
        self._certificates[url] = pem
        while len(self._certificates) > CACHE_SIZE:
            self._certificates.popitem(last=False)
        return pem

    async def confirm(self, subscribe_url: str) -> str | None:
        """Confirm an SNS subscription whose message verified: None when SNS answered
        200, else why not. Only with signature checks on, and only an ``https`` URL on
        an SNS host (the SigningCertURL rule) is fetched."""
        if not self.config.enabled:
            return "signature checks are off, so Lodestar does not confirm subscriptions"
        refused = cert_url_refusal(subscribe_url, self._extra_host, name="SubscribeURL")
        if refused is not None:
            return refused.message
        try:
            await self._confirm(subscribe_url)
        except CertificateUnavailable as exc:
            return str(exc)
        return None

    async def check(self, items: Sequence[object]) -> ItemRefused | None:
        """The first SNS-shaped item of ``items`` that is not trusted, or None."""
        if not self.config.enabled:
            return None
        for index, item in enumerate(items):
            if not is_sns_message(item):
                continue
            assert isinstance(item, dict)
            url = signing_fields(item, self._extra_host)
            if isinstance(url, Refused):
                return ItemRefused(index, url)
            try:
                pem = await self.certificate(url)
            except CertificateUnavailable as exc:
                log.warning("SNS signing certificate %s: %s", url, exc)
                return ItemRefused(index, Refused(SnsRefusal.CERTIFICATE, str(exc)),
                                   transient=exc.transient)
            refused = verdict(item, pem, int(self._clock() * 1000))
            if refused is not None:
                if refused.reason is SnsRefusal.CERTIFICATE:
                    self._certificates.pop(url, None)  # not kept: fetch it afresh next time
                return ItemRefused(index, refused)
        return None
