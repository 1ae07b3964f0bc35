"""The dashboard pages' queries, checked against answers computed in Python from the
generated rows (tests/dashboard/seed.py), every row inserted twice."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from tests.dashboard.seed import APP, END, PURCHASE, START, Data, Delivery, generate, load

from lodestar.analytics.clickhouse import connect, migrate
from lodestar.analytics.registry import QueryParameterError, run_query
from lodestar.core.significance import Arm, Rule, verdict

pytestmark = pytest.mark.clickhouse


@pytest.fixture(scope="module")
def data() -> Data:
    return generate(seed=5)


@pytest.fixture(scope="module")
def client(data: Data, clickhouse_dsn: str) -> Iterator[Client]:
    ch = connect(clickhouse_dsn, f"t_dashboard_{uuid.uuid4().hex[:10]}")
    migrate(ch)
    load(ch, data)
    yield ch
    ch.command("DROP DATABASE IF EXISTS {db:Identifier}", parameters={"db": ch.database})
    ch.close()


def ask(client: Client, name: str, **extra: str) -> Any:
    return run_query(client, name, {"app-id": APP, "start": START.isoformat(),
                                    "end": END.isoformat(), **extra})


def messages(data: Data) -> dict[str, list[Delivery]]:
    out: dict[str, list[Delivery]] = defaultdict(list)
    for d in data.deliveries:
        if d.app_id == APP:
            out[d.message_id].append(d)
    return out


def expected_campaigns(data: Data, days: int) -> dict[tuple[str, str], dict[str, int]]:
    purchases: dict[str, list[Any]] = defaultdict(list)
    for e in data.events:
        if e.app_id == APP and e.event_type == PURCHASE:
            purchases[e.endpoint_id].append(e.time)
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for events in messages(data).values():
        first = events[0]
        if not first.campaign_id:
            continue
        types = {d.event_type for d in events}
        delivered = [d.time for d in events if d.event_type == "_email.delivered" or (
            d.event_type == "_campaign.send" and d.channel == "PUSH"
            and d.attributes.get("campaign_send_status") == "SUCCESSFUL")]
        row = out[(first.campaign_id, first.treatment_id)]
        row["Sent"] += bool(types & {"_email.send", "_campaign.send"})
        row["Delivered"] += bool(delivered)
        row["Opened"] += "_email.open" in types
        row["Clicked"] += "_email.click" in types
        if delivered:
            at = min(delivered)
            row["Converted"] += any(
                at <= t < at + timedelta(days=days) for t in purchases[first.endpoint_id])
    return out


@pytest.mark.parametrize("days", [7, 2])
def test_campaign_funnel_per_treatment(client: Client, data: Data, days: int) -> None:
    expected = expected_campaigns(data, days)
    answer = ask(client, "campaigns-page", **{"conversion-days": str(days)})
    assert answer["ConversionDays"] == days and answer["ConversionEvent"] == PURCHASE
    got = {(c["CampaignId"], t["TreatmentId"]): t
           for c in answer["Campaigns"] for t in c["Treatments"]}
    assert set(got) == set(expected) == {("c-1", "0"), ("c-1", "1"), ("c-2", "0")}
    for key, counts in expected.items():
        for stage in ("Sent", "Delivered", "Opened", "Clicked", "Converted"):
            assert got[key][stage] == counts[stage], (key, stage)
    assert got[("c-2", "0")]["Delivered"] == 24  # 30 pushes, every fifth failed
    c1 = next(c for c in answer["Campaigns"] if c["CampaignId"] == "c-1")
    arms = [Arm(t, expected[("c-1", t)]["Sent"], expected[("c-1", t)]["Converted"])
            for t in ("0", "1")]
    truth = verdict(arms, Rule())
    assert c1["Significance"]["Winner"] == truth.winner == "1"
    assert c1["Significance"]["Tests"][0]["PValue"] == pytest.approx(truth.tests[0].p_value)


def test_conversion_window_and_event_type_matter(client: Client, data: Data) -> None:
    week = ask(client, "campaigns-page")
    day = ask(client, "campaigns-page", **{"conversion-days": "1"})
    other = ask(client, "campaigns-page", **{"conversion-event": "pageView"})

    def converted(answer: Any) -> int:
        return sum(t["Converted"] for c in answer["Campaigns"] for t in c["Treatments"])

    assert converted(week) > converted(day) > 0
    assert converted(other) == 0


def test_no_winner_without_enough_sends(client: Client) -> None:
    answer = ask(client, "campaigns-page", **{"min-sends": "1000", "campaign-id": "c-1"})
    assert [c["CampaignId"] for c in answer["Campaigns"]] == ["c-1"]
    significance = answer["Campaigns"][0]["Significance"]
    assert significance["Winner"] is None and significance["Reason"] == "TOO_FEW_SENDS"
    single = ask(client, "campaigns-page", **{"campaign-id": "c-2"})
    assert single["Campaigns"][0]["Significance"]["Reason"] == "SINGLE_ARM"


def test_journey_activity_counts(client: Client, data: Data) -> None:
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    branches: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for s in data.steps:
        counts[(s.activity_id, s.activity_type)][s.outcome] += 1
        if s.branch:
            branches[s.activity_id][s.branch] += 1
    answer = ask(client, "journeys-page")
    (journey,) = answer["Journeys"]
    assert journey["JourneyId"] == "j-1"
    assert journey["Entered"] == len({s.endpoint_id for s in data.steps
                                      if s.activity_type == "ENTRY"})
    got = {(a["ActivityId"], a["ActivityType"]): a for a in journey["Activities"]}
    assert set(got) == set(counts)
    for key, outcomes in counts.items():
        assert got[key]["Outcomes"] == dict(outcomes)
        assert got[key]["Total"] == sum(outcomes.values())
    assert got[("split", "CONDITIONAL_SPLIT")]["Branches"] == dict(branches["split"])
    assert ask(client, "journeys-page", **{"journey-id": "nope"}) == {"Journeys": []}


def test_channels_deliverability_and_spend(client: Client, data: Data) -> None:
    per: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    spend: dict[str, float] = defaultdict(float)
    for mid, events in messages(data).items():
        for d in events:
            row = per[(d.channel, d.country)]
            kinds = {
                "Sent": d.event_type in ("_email.send", "_campaign.send") or
                d.event_type.startswith("_SMS."),
                "Delivered": d.event_type in ("_email.delivered", "_SMS.SUCCESS") or (
                    d.event_type == "_campaign.send"
                    and d.attributes.get("campaign_send_status") == "SUCCESSFUL"),
                "Bounced": d.event_type in ("_email.hardbounce", "_email.softbounce",
                                            "_SMS.FAILURE"),
                "Complained": d.event_type == "_email.complaint",
                "OptedOut": d.event_type in ("_email.unsubscribe", "_SMS.OPTOUT"),
            }
            for kind, hit in kinds.items():
                if hit:
                    row[kind].add(mid)
            spend[d.channel] += d.price
    answer = ask(client, "channels-page")
    by_country = {(r["Channel"], r["Country"]): r for r in answer["Countries"]}
    assert set(by_country) == set(per)
    for key, kinds in per.items():
        for kind in ("Sent", "Delivered", "Bounced", "Complained", "OptedOut"):
            assert by_country[key][kind] == len(kinds[kind]), (key, kind)
    channels = {r["Channel"]: r for r in answer["Channels"]}
    assert set(channels) == {"EMAIL", "SMS", "PUSH"}
    for channel, total in spend.items():
        assert channels[channel]["SpendUsd"] == pytest.approx(total / 100_000)
    email = channels["EMAIL"]
    assert email["BounceRate"] == round(email["Bounced"] / email["Sent"], 4)
    assert email["ComplaintRate"] == round(email["Complained"] / email["Delivered"], 4)
    assert sum(d["Sent"] for d in answer["Days"] if d["Channel"] == "SMS") == (
        channels["SMS"]["Sent"])


@pytest.mark.parametrize("params", [
    {"alpha": "1.5"}, {"conversion-days": "0"}, {"min-sends": "-1"},
])
def test_bad_parameters(client: Client, params: dict[str, str]) -> None:
    with pytest.raises(QueryParameterError):
        ask(client, "campaigns-page", **params)
