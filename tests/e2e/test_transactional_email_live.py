"""A transactional email end to end, with every process started as a user would:

boto3 UpdateEndpoint → SendMessages → `lodestar sender email` → an SMTP server
(aiosmtpd) receives the rendered message → the one-click unsubscribe in its
List-Unsubscribe header opts the endpoint out → the delivery shows up in the KPI
API and the dashboard's channel query within 10 s → a second send answers OPT_OUT.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from aiosmtpd.controller import Controller
from botocore.config import Config
from tests.conftest import free_port
from tests.e2e.conftest import ADMIN_KEY, launch
from tests.e2e.processes import Processes

pytestmark = pytest.mark.e2e

WITHIN = 10.0
TRACKING = "https://track.example.test"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 2.0.0 accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()


@pytest.fixture
def stack(lodestar_env: dict[str, str], tmp_path: Path,
          smtp: tuple[int, Inbox]) -> Iterator[tuple[Processes, dict[str, str]]]:
    port, _ = smtp
    env = {**lodestar_env, "LODESTAR_SMTP_HOST": "127.0.0.1", "LODESTAR_SMTP_PORT": str(port),
           "LODESTAR_SMTP_FROM_ADDRESS": "Shop <shop@example.test>",
           "LODESTAR_SMTP_TRACKING_SECRET": "an-e2e-tracking-secret-of-32-chars!!",
           # RFC 8058 wants https; a TLS proxy would forward it to the API (see below)
           "LODESTAR_SMTP_TRACKING_BASE_URL": TRACKING}
    procs, urls = launch(env, tmp_path)
    try:
        procs.start("sender", "sender", "email")
        yield procs, urls
    finally:
        procs.stop_all()


def _until(what: str, procs: Processes, check: Any, within: float = 30.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        procs.assert_alive()
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, (
            f"{what} not within {within:.0f}s\n{procs.log_tail('sender')}\n"
            f"{procs.log_tail('worker')}")
        time.sleep(0.2)


def _kpi(client: Any, app_id: str, name: str) -> float | None:
    rows = client.get_application_date_range_kpi(ApplicationId=app_id, KpiName=name)[
        "ApplicationDateRangeKpiResponse"]["KpiResult"]["Rows"]
    return float(rows[0]["Values"][0]["Value"]) if rows else None


def test_send_deliver_unsubscribe_and_measure(stack: tuple[Processes, dict[str, str]],
                                              smtp: tuple[int, Inbox]) -> None:
    procs, urls = stack
    _, inbox = smtp
    client = boto3.client("pinpoint", endpoint_url=urls["api"], region_name="us-east-1",
                          aws_access_key_id=ADMIN_KEY[0], aws_secret_access_key=ADMIN_KEY[1],
                          config=Config(retries={"max_attempts": 1}))
    app_id = client.create_app(CreateApplicationRequest={"Name": "Shop"})[
        "ApplicationResponse"]["Id"]
    client.update_endpoint(ApplicationId=app_id, EndpointId="ana", EndpointRequest={
        "ChannelType": "EMAIL", "Address": "ana@example.test",
        "User": {"UserId": "u-ana", "UserAttributes": {"FirstName": ["Ana"]}}})
    _until("the endpoint in the read model", procs, lambda: _endpoint(client, app_id))

    answer = client.send_messages(ApplicationId=app_id, MessageRequest={
        "Endpoints": {"ana": {"Substitutions": {"Code": ["2718"]}}},
        "MessageConfiguration": {"EmailMessage": {"SimpleEmail": {
            "Subject": {"Data": "Hi {{User.UserAttributes.FirstName.[0]}}"},
            "TextPart": {"Data": "Your code is {{Code}}."},
            "HtmlPart": {"Data": "<p>Your code is <b>{{Code}}</b>. "
                                 "<a href=\"https://shop.example.test/\">Shop</a></p>"}}}},
    })["MessageResponse"]["EndpointResult"]["ana"]
    assert answer["DeliveryStatus"] == "SUCCESSFUL"

    raw = _until("the message at the SMTP server", procs, lambda: inbox.messages)[0]
    delivered_at = time.monotonic()
    mail = message_from_bytes(raw, policy=policy.default)
    assert mail["Subject"] == "Hi Ana" and mail["To"] == "ana@example.test"
    assert mail["X-Lodestar-Message-Id"] == answer["MessageId"]
    assert "Your code is 2718." in mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "/t/o/" in html and "/t/c/" in html and "https://shop.example.test/" not in html
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    def kpis() -> bool:
        return (_kpi(client, app_id, "txn-emails-sent") == 1.0
                and _kpi(client, app_id, "txn-emails-delivered") == 1.0)

    _until("the delivery in the KPIs", procs, kpis, within=WITHIN)
    assert time.monotonic() - delivered_at < WITHIN
    bearer = {"Authorization": f"Bearer {ADMIN_KEY[0]}:{ADMIN_KEY[1]}"}
    page = httpx.get(f"{urls['api']}/v1/apps/{app_id}/analytics/channels-page",
                     headers=bearer, timeout=10).json()["AnalyticsQueryResponse"]["Result"]
    [email] = [c for c in page["Channels"] if c["Channel"] == "EMAIL"]
    assert (email["Sent"], email["Delivered"]) == (1, 1)
    assert httpx.get(f"{urls['api']}/dashboard", timeout=10).status_code == 200

    unsubscribe = next(u.strip().strip("<>") for u in mail["List-Unsubscribe"].split(",")
                       if TRACKING in u)
    # what the TLS proxy in front of the API would do: same path, the token is the credential
    posted = httpx.post(unsubscribe.replace(TRACKING, urls["api"]),
                        data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert posted.status_code == 200
    _until("OptOut ALL on the endpoint", procs,
           lambda: (_endpoint(client, app_id) or {}).get("OptOut") == "ALL")
    again = client.send_messages(ApplicationId=app_id, MessageRequest={
        "Endpoints": {"ana": {}},
        "MessageConfiguration": {"EmailMessage": {"SimpleEmail": {
            "Subject": {"Data": "Again"}, "TextPart": {"Data": "x"}}}},
    })["MessageResponse"]["EndpointResult"]["ana"]
    assert again["DeliveryStatus"] == "OPT_OUT"


def _endpoint(client: Any, app_id: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = client.get_endpoint(ApplicationId=app_id, EndpointId="ana")[
            "EndpointResponse"]
        return found
    except client.exceptions.NotFoundException:
        return None
