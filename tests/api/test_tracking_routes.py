"""The email tracking routes (``/t/o``, ``/t/c``, ``/t/u``) on the live API.

The API runs in-process under uvicorn on a real port, on a real PostgreSQL and
Kafka (as in ``test_segments_boto3.py``); each test reads its own
``<prefix>.deliveries`` and ``<prefix>.endpoint-commands`` topics.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.api.live_api import Api, api_settings, serve
from tests.api.topic_records import topic_records

from lodestar.api.tracking import PIXEL_GIF
from lodestar.contracts.codec import AvroCodec
from lodestar.core.email_message import LinkKind, TrackedLink, make_token
from lodestar.core.topics import Topic
from lodestar.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SECRET = "tracking-secret-0123456789abcdef0123456789"
APP = "a" * 32
TARGET = "https://shop.example.com/sale?x=1&y=%C3%A9"


@pytest.fixture
def api(settings: Settings, control_dsn: str) -> Iterator[Api]:
    configured = api_settings(settings, control_dsn, smtp_tracking_secret=SECRET)
    for url in serve(configured):
        yield Api(url, configured)


@pytest.fixture
def untracked_api(settings: Settings, control_dsn: str) -> Iterator[Api]:
    configured = api_settings(settings, control_dsn, smtp_tracking_secret=None)
    for url in serve(configured):
        yield Api(url, configured)


def _token(kind: LinkKind, url: str | None = None, endpoint_id: str | None = "ep-1",
           secret: str = SECRET) -> str:
    return make_token(TrackedLink(kind, "msg-1", APP, endpoint_id, url), secret.encode())


def _tampered(token: str) -> str:
    payload, _, mac = token.partition(".")
    return f"{payload}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"


async def _consume(settings: Settings, topic: Topic, expected: int,
                   within: float = 10.0) -> list[dict[str, Any]]:
    """Up to ``expected`` decoded records of ``topic`` (waits ``within`` s when fewer)."""
    out = await topic_records(settings, topic, expected, within)
    codec = AvroCodec.default()
    return [{"key": r.key, **codec.decode(topic, r.value)} for r in out]


def _deliveries(api: Api, expected: int, within: float = 10.0) -> list[dict[str, Any]]:
    return asyncio.run(_consume(api.settings, Topic.DELIVERIES, expected, within))


def _commands(api: Api, expected: int, within: float = 10.0) -> list[dict[str, Any]]:
    return asyncio.run(_consume(api.settings, Topic.ENDPOINT_COMMANDS, expected, within))


def test_open_answers_the_pixel_and_publishes_an_open(api: Api) -> None:
    response = httpx.get(f"{api.url}/t/o/{_token(LinkKind.OPEN)}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.content == PIXEL_GIF and PIXEL_GIF.startswith(b"GIF89a")
    assert "no-store" in response.headers["cache-control"]
    assert response.headers["pragma"] == "no-cache"

    [record] = _deliveries(api, 1)
    assert record["event_type"] == "_email.open" and record["channel"] == "EMAIL"
    assert (record["app_id"], record["endpoint_id"], record["message_id"]) == (
        APP, "ep-1", "msg-1")
    assert record["key"] == b"ep-1"
    assert record["event_id"].startswith("msg-1:_email.open:")


def test_invalid_open_tokens_answer_the_pixel_and_publish_nothing(api: Api) -> None:
    for token in (_tampered(_token(LinkKind.OPEN)), "garbage", "a.b",
                  _token(LinkKind.CLICK, TARGET),  # a valid token of another kind
                  _token(LinkKind.OPEN, secret="another-secret-0123456789abcdef0123")):
        response = httpx.get(f"{api.url}/t/o/{token}")
        assert response.status_code == 200, token
        assert response.content == PIXEL_GIF
        assert response.headers["content-type"] == "image/gif"
    assert _deliveries(api, 1, within=3) == []


def test_click_redirects_to_the_target_and_publishes_a_click(api: Api) -> None:
    response = httpx.get(f"{api.url}/t/c/{_token(LinkKind.CLICK, TARGET)}")
    assert response.status_code == 302
    assert response.headers["location"] == TARGET

    [record] = _deliveries(api, 1)
    assert record["event_type"] == "_email.click"
    assert record["attributes"]["feedback"] == TARGET
    assert (record["app_id"], record["endpoint_id"], record["message_id"]) == (
        APP, "ep-1", "msg-1")


def test_invalid_click_tokens_answer_404_and_publish_nothing(api: Api) -> None:
    for token in (_tampered(_token(LinkKind.CLICK, TARGET)), "garbage",
                  _token(LinkKind.OPEN)):
        response = httpx.get(f"{api.url}/t/c/{token}")
        assert response.status_code == 404, token
        assert response.headers["content-type"].startswith("text/plain")
        assert "location" not in response.headers
    assert _deliveries(api, 1, within=3) == []


def _assert_unsubscribed(api: Api) -> None:
    [record] = _deliveries(api, 1)
    assert record["event_type"] == "_email.unsubscribe"
    assert record["event_id"] == "msg-1:_email.unsubscribe"
    assert (record["app_id"], record["endpoint_id"]) == (APP, "ep-1")
    [command] = _commands(api, 1)
    assert command["kind"] == "UPSERT" and command["key"] == b"ep-1"
    assert (command["app_id"], command["endpoint_id"]) == (APP, "ep-1")
    assert json.loads(command["endpoint_request"]) == {"OptOut": "ALL"}


def test_one_click_post_unsubscribes(api: Api) -> None:
    response = httpx.post(
        f"{api.url}/t/u/{_token(LinkKind.UNSUBSCRIBE)}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    _assert_unsubscribed(api)


def test_the_unsubscribe_link_asks_first_and_its_button_unsubscribes(api: Api) -> None:
    url = f"{api.url}/t/u/{_token(LinkKind.UNSUBSCRIBE)}"
    page = httpx.get(url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<form method="post">' in page.text
    assert _deliveries(api, 1, within=2.0) == [], "a GET (a mail scanner) changes nothing"
    done = httpx.post(url, data={"List-Unsubscribe": "One-Click"},
                      headers={"Accept": "text/html"})
    assert done.status_code == 200 and "You have been unsubscribed" in done.text
    _assert_unsubscribed(api)


def test_invalid_unsubscribe_tokens_answer_404_and_publish_nothing(api: Api) -> None:
    tampered = _tampered(_token(LinkKind.UNSUBSCRIBE))
    assert httpx.get(f"{api.url}/t/u/{tampered}").status_code == 404
    assert httpx.post(f"{api.url}/t/u/{tampered}",
                      content=b"List-Unsubscribe=One-Click").status_code == 404
    assert httpx.post(f"{api.url}/t/u/{_token(LinkKind.OPEN)}").status_code == 404
    assert _deliveries(api, 1, within=3) == []
    assert _commands(api, 1, within=1) == []


def test_head_publishes_nothing(api: Api) -> None:
    assert httpx.head(f"{api.url}/t/o/{_token(LinkKind.OPEN)}").status_code == 200
    assert httpx.head(f"{api.url}/t/c/{_token(LinkKind.CLICK, TARGET)}").status_code == 302
    assert httpx.head(f"{api.url}/t/u/{_token(LinkKind.UNSUBSCRIBE)}").status_code == 200
    assert _deliveries(api, 1, within=3) == []
    assert _commands(api, 1, within=1) == []


def test_v1_still_needs_credentials(api: Api) -> None:
    assert httpx.get(f"{api.url}/v1/apps").status_code == 403


def test_without_a_secret_every_route_answers_404(untracked_api: Api) -> None:
    url = untracked_api.url
    assert httpx.get(f"{url}/t/o/{_token(LinkKind.OPEN)}").status_code == 404
    assert httpx.get(f"{url}/t/c/{_token(LinkKind.CLICK, TARGET)}").status_code == 404
    assert httpx.get(f"{url}/t/u/{_token(LinkKind.UNSUBSCRIBE)}").status_code == 404
    assert httpx.post(f"{url}/t/u/{_token(LinkKind.UNSUBSCRIBE)}").status_code == 404
    assert _deliveries(untracked_api, 1, within=3) == []
