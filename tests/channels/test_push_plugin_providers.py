"""The push sender's plugin routes ADM and BAIDU endpoints to their transports, as built
from settings by ``channels.factory`` — against the local ADM and Baidu peers."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from tests.channels.push_peers import serve_app
from tests.channels.test_push_adm import CLIENT_ID, CLIENT_SECRET, AdmPeer
from tests.channels.test_push_baidu import API_KEY, SECRET, BaiduPeer
from tests.core.test_push_message import NOW, _request

from lodestar.channel_settings import ChannelSettings
from lodestar.channels.channel_sender import Deliverable, Ended
from lodestar.channels.factory import ChannelConfigError, push_plugin
from lodestar.channels.push_plugin import PushPlugin
from lodestar.core.provider_outcome import ProviderOutcomeKind
from lodestar.settings import Settings


@pytest.fixture(scope="module")
def peers() -> Iterator[tuple[AdmPeer, BaiduPeer]]:
    adm, baidu = AdmPeer(), BaiduPeer()
    with serve_app(adm.app()) as adm_url, serve_app(baidu.app()) as baidu_url:
        adm.url, baidu.url = adm_url, baidu_url
        yield adm, baidu


def _plugin(settings: Settings, **channels: Any) -> PushPlugin:
    return push_plugin(settings.with_changes(channels=ChannelSettings(
        provider_timeout_seconds=5, **channels)))


def _push(channel_type: str, address: str, **content: Any) -> dict[str, Any]:
    request = _request(channel_type=channel_type, address=address)
    request["content"] = {**copy.deepcopy(request["content"] or {}), **content}
    return request


async def test_adm_and_baidu_endpoints_reach_their_providers(
        settings: Settings, peers: tuple[AdmPeer, BaiduPeer]) -> None:
    adm, baidu = peers
    plugin = _plugin(settings, adm_client_id=CLIENT_ID, adm_client_secret=CLIENT_SECRET,
                     adm_base_url=adm.url, baidu_api_key=API_KEY, baidu_secret_key=SECRET,
                     baidu_base_url=f"{baidu.url}/rest/3.0")
    try:
        to_kindle = plugin.prepare(_push("ADM", "amzn1.adm-registration.v3.k1",
                                         consolidation_key="scores", expires_after=3600),
                                   None, None, NOW)
        assert isinstance(to_kindle, Deliverable)
        assert (await plugin.send(to_kindle.payload)).kind is ProviderOutcomeKind.ACCEPTED
        rid, _, body = adm.messages[-1]
        assert rid == "amzn1.adm-registration.v3.k1"
        assert body["consolidationKey"] == "scores" and body["expiresAfter"] == 3600
        assert body["data"]["pinpoint.notification.title"] == to_kindle.payload.notification.title

        to_baidu = plugin.prepare(_push("BAIDU", "user-9:chan-42"), None, None, NOW)
        assert isinstance(to_baidu, Deliverable)
        assert (await plugin.send(to_baidu.payload)).kind is ProviderOutcomeKind.ACCEPTED
        assert baidu.requests[-1]["channel_id"] == "chan-42"

        dead = plugin.prepare(_push("ADM", "dead-registration"), None, None, NOW)
        assert isinstance(dead, Deliverable)
        assert (await plugin.send(dead.payload)).kind is ProviderOutcomeKind.DEAD_ADDRESS
    finally:
        await plugin.aclose()


async def test_an_unconfigured_provider_names_its_setting(
        settings: Settings, peers: tuple[AdmPeer, BaiduPeer]) -> None:
    adm, _ = peers
    plugin = _plugin(settings, adm_client_id=CLIENT_ID, adm_client_secret=CLIENT_SECRET,
                     adm_base_url=adm.url)
    try:
        ended = plugin.prepare(_push("BAIDU", "user-9:chan-42"), None, None, NOW)
        assert isinstance(ended, Ended) and ended.kind == "failed"
        assert "LODESTAR_BAIDU_API_KEY" in str(ended.records)
    finally:
        await plugin.aclose()
    with pytest.raises(ChannelConfigError, match="LODESTAR_ADM_CLIENT_SECRET"):
        _plugin(settings, adm_client_id=CLIENT_ID)
