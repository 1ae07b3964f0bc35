from __future__ import annotations

import pytest

from lodestar.core.destination_guard import (
    GuardPolicy,
    Refusal,
    check_addresses,
    check_url,
    classify,
    parse_address,
)

STRICT = GuardPolicy()
URL = "https://hooks.example.com/lodestar"


@pytest.mark.parametrize(("address", "reason"), [
    ("10.0.0.1", Refusal.PRIVATE),
    ("10.255.255.255", Refusal.PRIVATE),
    ("172.16.0.1", Refusal.PRIVATE),
    ("172.31.255.254", Refusal.PRIVATE),
    ("192.168.1.10", Refusal.PRIVATE),
    ("127.0.0.1", Refusal.LOOPBACK),
    ("127.8.9.10", Refusal.LOOPBACK),
    ("::1", Refusal.LOOPBACK),
    ("fe80::1", Refusal.LINK_LOCAL),
    ("febf::1", Refusal.LINK_LOCAL),
    ("fe80::1%eth0", Refusal.LINK_LOCAL),
    ("169.254.169.254", Refusal.LINK_LOCAL),
    ("0.0.0.0", Refusal.UNSPECIFIED),
    ("::", Refusal.UNSPECIFIED),
    ("224.0.0.1", Refusal.MULTICAST),
    ("ff02::1", Refusal.MULTICAST),
    ("fd12:3456::1", Refusal.PRIVATE),
    ("240.0.0.1", Refusal.PRIVATE),
    ("100.64.0.1", Refusal.NOT_GLOBAL),
    ("::ffff:10.0.0.1", Refusal.PRIVATE),
    ("::ffff:127.0.0.1", Refusal.LOOPBACK),
    ("::ffff:169.254.169.254", Refusal.LINK_LOCAL),
    ("2002:0a00:0001::1", Refusal.PRIVATE),
    ("64:ff9b::7f00:1", Refusal.LOOPBACK),
])
def test_non_public_addresses_are_refused(address: str, reason: Refusal) -> None:
    assert classify(parse_address(address)) is reason
    verdict = check_addresses(URL, [address], STRICT)
    assert not verdict.allowed and verdict.reason is reason
    assert verdict.addresses == ()


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "172.32.0.1", "11.0.0.1",
                                     "2606:4700:4700::1111", "::ffff:93.184.216.34"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert classify(parse_address(address)) is None
    verdict = check_addresses(URL, [address], STRICT)
    assert verdict.allowed, verdict
    assert verdict.addresses == (address,)
    assert verdict.destination is not None and verdict.destination.port == 443


def test_every_resolved_address_must_pass() -> None:
    verdict = check_addresses(URL, ["93.184.216.34", "10.0.0.5"], STRICT)
    assert not verdict.allowed and verdict.reason is Refusal.PRIVATE
    assert "10.0.0.5" in verdict.detail
    assert check_addresses(URL, [], STRICT).reason is Refusal.NO_ADDRESSES


@pytest.mark.parametrize(("url", "reason"), [
    ("http://hooks.example.com/x", Refusal.NOT_HTTPS),
    ("ftp://hooks.example.com/x", Refusal.NOT_HTTPS),
    ("hooks.example.com/x", Refusal.INVALID_URL),
    ("https:///x", Refusal.INVALID_URL),
    ("https://user:pw@hooks.example.com/x", Refusal.INVALID_URL),
    ("https://hooks.example.com:99999/x", Refusal.INVALID_URL),
])
def test_urls_are_checked_before_resolution(url: str, reason: Refusal) -> None:
    verdict = check_url(url, STRICT)
    assert not verdict.allowed and verdict.reason is reason


def test_http_only_when_allowed() -> None:
    policy = GuardPolicy(allow_http=True)
    verdict = check_url("http://hooks.example.com/x", policy)
    assert verdict.allowed and verdict.destination is not None
    assert verdict.destination.port == 80


def test_allow_list_networks_and_hosts() -> None:
    policy = GuardPolicy.from_entries(["127.0.0.1/32", "10.1.0.0/16", "fd00::/8",
                                       "Internal.Example.", " "])
    assert policy.allowed_hosts == frozenset({"internal.example"})
    assert check_addresses("https://127.0.0.1:8443/h", ["127.0.0.1"], policy).allowed
    assert check_addresses(URL, ["10.1.2.3"], policy).allowed
    assert check_addresses(URL, ["fd00::5"], policy).allowed
    assert not check_addresses(URL, ["10.2.0.1"], policy).allowed
    assert not check_addresses(URL, ["127.0.0.2"], policy).allowed
    # an allow-listed host name is trusted whatever it resolves to
    assert check_addresses("https://internal.example/h", ["192.168.0.9"], policy).allowed
    with pytest.raises(ValueError):
        GuardPolicy.from_entries(["not a/host"])


@pytest.mark.parametrize(("url", "host", "port"), [
    ("https://[::1]:8443/x", "::1", 8443),
    ("https://[2606:4700::1111]/x?y#z", "2606:4700::1111", 443),
    ("HTTPS://Hooks.Example.COM./x", "hooks.example.com", 443),
    ("https://hooks.example.com:/x", "hooks.example.com", 443),
    ("https://hooks.example.com?x=1", "hooks.example.com", 443),
    ("https://bücher.example/x", "bücher.example", 443),
])
def test_url_parsing(url: str, host: str, port: int) -> None:
    verdict = check_url(url, STRICT)
    assert verdict.allowed and verdict.destination is not None, verdict
    assert (verdict.destination.host, verdict.destination.port) == (host, port)


@pytest.mark.parametrize("url", [
    "https://a b.example/x", "https://ex%61mple.com/", "https://[::1/x", "https://host:0/",
    "https://host:80:81/", "https://[::1]x/", "https://@host/", "https:/host/x",
    "https://host\\@evil.example/",
])
def test_malformed_urls_are_refused(url: str) -> None:
    verdict = check_url(url, STRICT)
    assert not verdict.allowed and verdict.reason is Refusal.INVALID_URL, verdict
