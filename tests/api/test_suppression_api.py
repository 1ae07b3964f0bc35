"""The suppression list routes on the live API (real PostgreSQL; Kafka for the API's start)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.api.live_api import ADMIN, Api
from tests.api.test_openapi import _Checker

from lodestar.api import openapi

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN[0]}:{ADMIN[1]}"}
LIST = "/v1/apps/{application-id}/suppressed-destinations"
ONE = LIST + "/{channel}/{address}"


def _create_app(api: Api, name: str = "Shop") -> tuple[str, dict[str, str]]:
    answer = httpx.post(f"{api.url}/v1/apps", json={"Name": name}, headers=ADMIN_AUTH)
    assert answer.status_code == 201, answer.text
    key = (answer.headers["x-lodestar-access-key-id"],
           answer.headers["x-lodestar-secret-access-key"])
    return answer.json()["Id"], {"Authorization": f"Bearer {key[0]}:{key[1]}"}


def _call(api: Api, method: str, app_id: str, tail: str = "", auth: dict[str, str] | None = None,
          **params: Any) -> httpx.Response:
    return httpx.request(method, f"{api.url}/v1/apps/{app_id}/suppressed-destinations{tail}",
                         headers=ADMIN_AUTH if auth is None else auth, params=params)


def test_put_get_delete_one_destination(api: Api) -> None:
    app_id, app_auth = _create_app(api)
    put = _call(api, "PUT", app_id, "/EMAIL/Jane.Doe@Example.com", app_auth)
    assert put.status_code == 200, put.text
    assert put.headers["x-amzn-RequestId"]
    item = put.json()["SuppressedDestination"]
    assert {k: item[k] for k in ("ApplicationId", "Channel", "Address", "Reason",
                                 "Attributes")} == {
        "ApplicationId": app_id, "Channel": "EMAIL", "Address": "jane.doe@example.com",
        "Reason": "MANUAL", "Attributes": {}}
    assert item["CreationDate"].endswith("Z") and item["LastUpdateTime"] >= item["CreationDate"]

    got = _call(api, "GET", app_id, "/email/jane.doe@example.com", app_auth)
    assert got.status_code == 200 and got.json()["SuppressedDestination"]["Reason"] == "MANUAL"
    sms = _call(api, "PUT", app_id, "/SMS/%2B14155550100")
    assert sms.status_code == 200
    assert sms.json()["SuppressedDestination"]["Address"] == "+14155550100"
    assert _call(api, "GET", app_id, "/VOICE/%2B14155550100").status_code == 404

    gone = _call(api, "DELETE", app_id, "/EMAIL/JANE.DOE@EXAMPLE.COM", app_auth)
    assert gone.status_code == 200
    assert gone.json()["SuppressedDestination"]["Address"] == "jane.doe@example.com"
    again = _call(api, "DELETE", app_id, "/EMAIL/jane.doe@example.com")
    assert again.status_code == 404
    assert again.headers["x-amzn-ErrorType"] == "NotFoundException"
    assert "not on the EMAIL suppression list" in again.json()["Message"]
    missing = _call(api, "GET", app_id, "/EMAIL/jane.doe@example.com")
    assert missing.status_code == 404

    check = _Checker(openapi.document())  # the answers are the documented ones
    for response, method, path in ((put, "PUT", ONE), (got, "GET", ONE), (gone, "DELETE", ONE),
                                   (again, "DELETE", ONE), (missing, "GET", ONE),
                                   (_call(api, "PUT", app_id, "/FAX/x"), "PUT", ONE),
                                   (_call(api, "GET", app_id, **{"page-size": 1}), "GET", LIST),
                                   (_call(api, "GET", app_id, token="!"), "GET", LIST)):
        check(response, method, path)


def test_bad_channels_and_addresses_answer_400(api: Api) -> None:
    app_id, _ = _create_app(api)
    for tail, fragment in (("/FAX/a@example.com", "channel 'FAX'"),
                           ("/EMAIL/not-an-address", "not an email address"),
                           ("/EMAIL/Jane%20%3Cj@example.com%3E", "not an email address"),
                           ("/SMS/0800123", "E.164")):
        answer = _call(api, "PUT", app_id, tail)
        assert answer.status_code == 400, tail
        assert fragment in answer.json()["Message"], answer.json()
    assert _call(api, "GET", app_id).json()["SuppressedDestinationsResponse"]["Item"] == []


def test_list_pages_filters_and_bad_queries(api: Api) -> None:
    app_id, _ = _create_app(api)
    emails = [f"user{i}@example.com" for i in range(5)]
    for address in emails:
        assert _call(api, "PUT", app_id, f"/EMAIL/{address}").status_code == 200
    assert _call(api, "PUT", app_id, "/PUSH/token-abc").status_code == 200

    seen: list[tuple[str, str]] = []
    token = None
    pages = 0
    while True:
        params: dict[str, Any] = {"page-size": 2} | ({"token": token} if token else {})
        answer = _call(api, "GET", app_id, **params)
        assert answer.status_code == 200, answer.text
        body = answer.json()["SuppressedDestinationsResponse"]
        seen += [(i["Channel"], i["Address"]) for i in body["Item"]]
        pages += 1
        token = body.get("NextToken")
        if token is None:
            break
    assert seen == [*(("EMAIL", a) for a in emails), ("PUSH", "token-abc")]
    assert pages == 3  # 2 + 2 + 2, the last without a NextToken

    push = _call(api, "GET", app_id, channel="push").json()["SuppressedDestinationsResponse"]
    assert [i["Address"] for i in push["Item"]] == ["token-abc"] and "NextToken" not in push
    manual = _call(api, "GET", app_id, reason="MANUAL").json()
    assert len(manual["SuppressedDestinationsResponse"]["Item"]) == 6
    assert _call(api, "GET", app_id, reason="BOUNCE").json()[
        "SuppressedDestinationsResponse"]["Item"] == []
    for params in ({"page-size": "0"}, {"page-size": "x"}, {"token": "garbage!"},
                   {"channel": "FAX"}, {"reason": "BORED"}):
        answer = _call(api, "GET", app_id, **params)
        assert answer.status_code == 400, params
        assert answer.headers["x-amzn-ErrorType"] == "BadRequestException"


def test_apps_are_separate_and_deleting_an_app_drops_its_list(api: Api) -> None:
    app_id, app_auth = _create_app(api)
    other_id, other_auth = _create_app(api, "Other")
    assert _call(api, "PUT", app_id, "/EMAIL/a@example.com").status_code == 200
    assert _call(api, "GET", app_id, "/EMAIL/a@example.com", app_auth).status_code == 200
    assert _call(api, "GET", other_id, "/EMAIL/a@example.com", other_auth).status_code == 404
    assert _call(api, "GET", app_id, "/EMAIL/a@example.com", other_auth).status_code == 403
    assert _call(api, "GET", app_id, "", {}).status_code == 403

    assert httpx.delete(f"{api.url}/v1/apps/{app_id}", headers=ADMIN_AUTH).status_code == 200
    assert _call(api, "GET", app_id).status_code == 404
    assert _call(api, "PUT", app_id, "/EMAIL/a@example.com").status_code == 404
