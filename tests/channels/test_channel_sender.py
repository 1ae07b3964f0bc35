"""The generic channel sender against real Kafka and PostgreSQL, with a scripted provider:
claims before sending, retries, dead addresses, suppression, replays and crashes."""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from tests.channels.sender_topics import produce, read

from lodestar.channels.channel_sender import (
    ChannelSender,
    ChannelSenderConfig,
    Deliverable,
    Ended,
)
from lodestar.contracts.codec import AvroCodec
from lodestar.control.migrate import migrate
from lodestar.core.delivery_events import (
    Channel,
    DeliverySubject,
    EventType,
    Record,
    channel_outcome,
    delivery_record,
)
from lodestar.core.email_sending import screen
from lodestar.core.provider_outcome import (
    ProviderOutcome,
    ProviderOutcomeKind,
    accepted,
    from_http_status,
)
from lodestar.core.topics import Topic
from lodestar.settings import Settings
from lodestar.topics_admin import ensure_topics

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = json.loads((ROOT / "schemas/examples/send_request/custom-webhook.json").read_text())
ENDPOINT = json.loads(
    (ROOT / "schemas/examples/send_request/email-campaign-full.json").read_text())["endpoint"]
CODEC = AvroCodec.default()


@dataclass
class ScriptedProvider:
    """Answers by address: ``retry-*`` 503 twice then 200, ``gone-*`` DEAD_ADDRESS,
    ``bad-*`` 400, ``hang-*`` never answers; everything else 200."""

    calls: list[str] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    delay_s: float = 0.0

    async def answer(self, address: str) -> ProviderOutcome:
        self.calls.append(address)
        n = self.seen[address] = self.seen.get(address, 0) + 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if address.startswith("hang-"):
            await asyncio.sleep(3600)
        if address.startswith("raise-"):
            raise RuntimeError("a transport bug")
        if address.startswith("retry-") and n <= 2:
            return from_http_status(503, "busy", retry_after_s=0.01)
        if address.startswith("gone-"):
            return ProviderOutcome(ProviderOutcomeKind.DEAD_ADDRESS, 410, "gone")
        if address.startswith("bad-"):
            return from_http_status(400, "bad request")
        if address.startswith("moved-"):
            return ProviderOutcome(ProviderOutcomeKind.ACCEPTED, 200, "accepted",
                                   f"prov-{address}", updated_address=f"now-{address}")
        return accepted(200, f"prov-{address}")


class ScriptedPlugin:
    channel = Channel.CUSTOM
    topic = Topic.SEND_CUSTOM
    template_type = None
    deactivates_dead_addresses = True

    def __init__(self, provider: ScriptedProvider) -> None:
        self.provider = provider

    def prepare(self, request: Mapping[str, Any], template: Any, template_error: str | None,
                now_ms: int) -> Deliverable[str] | Ended:
        if request["address"].startswith("unreadable-"):
            raise KeyError("a plugin bug")
        skip = screen(request)
        if skip is not None:
            subject = DeliverySubject.from_send_request(request)
            return Ended([delivery_record(subject, EventType.CUSTOM_FAILURE, now_ms,
                                          {"status_message": skip.reason.value})])
        return Deliverable(request["address"], request["address"])

    def suppressed_records(self, subject: DeliverySubject, now_ms: int) -> list[Record]:
        return [channel_outcome(subject, now_ms, success=False, delivery_type="CUSTOM",
                                status_message="SUPPRESSED")]

    async def send(self, payload: str) -> ProviderOutcome:
        return await self.provider.answer(payload)

    def outcome_records(self, request: Mapping[str, Any], subject: DeliverySubject,
                        payload: str, outcome: ProviderOutcome, attempts: int, sent_ms: int,
                        now_ms: int) -> list[Record]:
        return [channel_outcome(subject, now_ms, success=outcome.accepted,
                                delivery_type="CUSTOM", status_code=outcome.status_code,
                                status_message=f"{outcome.message} after {attempts}")]

    def unknown_records(self, subject: DeliverySubject, now_ms: int) -> list[Record]:
        return [channel_outcome(subject, now_ms, success=False, delivery_type="CUSTOM",
                                status_message="UNKNOWN")]

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def env(settings: Settings, postgres_dsn: str) -> AsyncIterator[Settings]:
    configured = settings.with_changes(postgres_dsn=postgres_dsn)
    await migrate(postgres_dsn)
    await ensure_topics(configured, [configured.topic(Topic.SEND_CUSTOM),
                                     configured.dlq(Topic.SEND_CUSTOM),
                                     configured.topic(Topic.DELIVERIES),
                                     configured.topic(Topic.ENDPOINT_COMMANDS)])
    yield configured


def request(address: str, **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(EXAMPLE)
    out["message_id"] = f"m-{uuid.uuid4().hex}"
    out["address"] = address
    out["endpoint_id"] = f"ep-{address}"
    out["endpoint"] = copy.deepcopy(ENDPOINT)
    out["endpoint"].update(id=out["endpoint_id"], address=address, channel_type="CUSTOM")
    out.update(changes)
    return out


async def run_until(sender: ChannelSender[Any], done: Callable[[], bool],
                    wait_s: float = 30.0) -> None:
    task = asyncio.create_task(sender.run())
    try:
        deadline = time.monotonic() + wait_s
        while not done():
            assert time.monotonic() < deadline, f"sender stats: {sender.stats}"
            assert not task.done(), task.exception()
            await asyncio.sleep(0.05)
    finally:
        sender.stop()
        await asyncio.wait_for(task, 15)


def fast(**changes: Any) -> ChannelSenderConfig:
    return ChannelSenderConfig(retry_base_s=0.01, retry_cap_s=0.05, **changes)


async def test_a_replaced_address_updates_the_endpoint(env: Settings) -> None:
    """A provider naming the recipient's new address (ADM's current registrationID) makes
    the sender publish an UPSERT of the endpoint's Address; other sends publish none."""
    reqs = [request("moved-1"), request("ok-1")]
    await produce(env, Topic.SEND_CUSTOM, reqs)
    sender = ChannelSender(env, ScriptedPlugin(ScriptedProvider()), fast())
    await run_until(sender, lambda: sender.stats.requests == len(reqs)
                    and sender.stats.sent == 2)
    commands = await read(env, Topic.ENDPOINT_COMMANDS, lambda got: len(got) >= 1)
    assert [(c["kind"], c["endpoint_id"], json.loads(c["endpoint_request"]), c["command_id"])
            for c in commands] == [("UPSERT", "ep-moved-1", {"Address": "now-moved-1"},
                                    f"updated-address-{reqs[0]['message_id']}")]


async def test_every_ending_is_published_once_and_a_replay_sends_nothing(env: Settings) -> None:
    provider = ScriptedProvider()
    reqs = [request("ok-1"), request("ok-2"), request("retry-1"), request("gone-1"),
            request("bad-1"), request("blocked-1"), request("ok-3")]
    reqs[-1]["endpoint"]["opt_out"] = "ALL"

    class Suppressed:
        async def suppressed(self, app_id: str, channel: str, addresses: Any) -> set[str]:
            assert channel == "CUSTOM"
            return {a for a in addresses if a.startswith("blocked-")}

        async def add_bounce(self, *args: Any) -> None:
            raise AssertionError("this channel deactivates dead addresses")

    suppressed = Suppressed()

    await produce(env, Topic.SEND_CUSTOM, reqs)
    plugin = ScriptedPlugin(provider)
    plugin.message_price_millicents = 0.1  # type: ignore[attr-defined]
    sender = ChannelSender(env, plugin, fast(), suppression=suppressed)
    await run_until(sender, lambda: sender.stats.batches >= 1
                    and sender.stats.requests == len(reqs))
    assert sorted(provider.calls) == sorted(
        ["ok-1", "ok-2", "retry-1", "retry-1", "retry-1", "gone-1", "bad-1"])
    stats = sender.stats
    assert (stats.sent, stats.failed, stats.suppressed, stats.skipped, stats.retries) == (
        3, 2, 1, 1, 2)

    records = await read(env, Topic.DELIVERIES, lambda got: len(got) >= len(reqs))
    by_message = {r["message_id"]: r for r in records}
    assert len(records) == len(reqs) == len(by_message)
    kinds = {r["address"]: by_message[r["message_id"]]["event_type"] for r in reqs}
    assert kinds == {"ok-1": "_custom.success", "ok-2": "_custom.success",
                     "retry-1": "_custom.success", "gone-1": "_custom.failure",
                     "bad-1": "_custom.failure", "blocked-1": "_custom.failure",
                     "ok-3": "_custom.failure"}
    assert by_message[reqs[2]["message_id"]]["attributes"]["status_message"] == "accepted after 3"
    priced = {r["address"]: by_message[r["message_id"]]["metrics"].get("price_in_millicents_usd")
              for r in reqs}
    assert priced == {"ok-1": 0.1, "ok-2": 0.1, "retry-1": 0.1, "gone-1": None, "bad-1": None,
                      "blocked-1": None, "ok-3": None}  # only accepted messages cost

    commands = await read(env, Topic.ENDPOINT_COMMANDS, lambda got: len(got) >= 1)
    assert [(c["kind"], c["endpoint_id"]) for c in commands] == [("DEACTIVATE", "ep-gone-1")]

    pool = await asyncpg.connect(env.postgres_dsn)
    try:
        rows = {r["message_id"]: r for r in await pool.fetch(
            "SELECT message_id, channel, state, attempts, outcome_kind, status_code, "
            "provider_message_id FROM sent_messages")}
    finally:
        await pool.close()
    ok = rows[reqs[2]["message_id"]]
    assert (ok["channel"], ok["state"], ok["attempts"], ok["status_code"],
            ok["provider_message_id"]) == ("CUSTOM", "SENT", 3, 200, "prov-retry-1")
    assert rows[reqs[3]["message_id"]]["outcome_kind"] == "DEAD_ADDRESS"
    assert rows[reqs[5]["message_id"]]["outcome_kind"] == "SUPPRESSED"

    # The same requests again (a replay after a lost commit): nothing reaches the provider,
    # the stored records are republished with the same event ids.
    replay = ChannelSender(env, ScriptedPlugin(provider), fast(group_id=f"replay-{uuid.uuid4()}"),
                           suppression=suppressed)
    calls_before = len(provider.calls)
    await run_until(replay, lambda: replay.stats.requests == len(reqs))
    assert len(provider.calls) == calls_before
    assert replay.stats.republished == len(reqs)
    again = await read(env, Topic.DELIVERIES, lambda got: len(got) >= 2 * len(reqs))
    assert sorted(r["event_id"] for r in again) == sorted(
        [r["event_id"] for r in records] * 2)


async def test_a_sender_stopped_mid_send_never_sends_the_claimed_message_again(
    env: Settings
) -> None:
    provider = ScriptedProvider()
    reqs = [request("hang-1"), request("ok-1")]
    await produce(env, Topic.SEND_CUSTOM, reqs)
    first = ChannelSender(env, ScriptedPlugin(provider), fast())
    task = asyncio.create_task(first.run())
    deadline = time.monotonic() + 30
    conn = await asyncpg.connect(env.postgres_dsn)
    try:
        # hang-1 is with the provider and ok-1's outcome is stored (on a busy machine
        # ok-1 may still be in flight when hang-1 is called)
        while "hang-1" not in provider.calls or await conn.fetchval(
                "SELECT state FROM sent_messages WHERE message_id = $1",
                reqs[1]["message_id"]) != "SENT":
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    task.cancel()  # the process dies: its claims stay, its liveness lock goes
    with pytest.raises(asyncio.CancelledError):
        await task

    second = ChannelSender(env, ScriptedPlugin(provider), fast())
    await run_until(second, lambda: second.stats.batches >= 1)
    assert provider.calls.count("hang-1") == 1
    assert provider.calls.count("ok-1") == 1  # answered in the first run, stored, not resent
    records = await read(env, Topic.DELIVERIES, lambda got: {r["message_id"] for r in got} == {
        q["message_id"] for q in reqs})
    by_address = {}
    for r in records:
        by_address.setdefault(r["message_id"], set()).add(r["attributes"]["status_message"])
    assert by_address == {reqs[0]["message_id"]: {"UNKNOWN"},
                          reqs[1]["message_id"]: {"accepted after 1"}}


async def test_concurrency_and_the_rate_limit_shape_the_sends(env: Settings) -> None:
    provider = ScriptedProvider(delay_s=0.05)
    reqs = [request(f"ok-{i}") for i in range(40)]
    await produce(env, Topic.SEND_CUSTOM, reqs)
    sender = ChannelSender(env, ScriptedPlugin(provider), fast(concurrency=20))
    started = time.monotonic()
    await run_until(sender, lambda: sender.stats.sent == 40)
    concurrent = time.monotonic() - started
    assert concurrent < 40 * 0.05  # one at a time would take 2 s of provider time alone

    limited_reqs = [request(f"ok-l{i}") for i in range(30)]
    await produce(env, Topic.SEND_CUSTOM, limited_reqs)
    limited = ChannelSender(env, ScriptedPlugin(ScriptedProvider()),
                            fast(rate_per_s=20, burst=5, group_id=f"rl-{uuid.uuid4()}"))
    started = time.monotonic()
    await run_until(limited, lambda: limited.stats.sent + limited.stats.republished == 70)
    assert time.monotonic() - started >= (30 - 5) / 20 * 0.9


async def test_a_plugin_that_raises_parks_the_message_and_the_sender_keeps_going(
    env: Settings
) -> None:
    provider = ScriptedProvider()
    reqs = [request("raise-1"), request("unreadable-1"), request("ok-1")]
    await produce(env, Topic.SEND_CUSTOM, reqs)
    sender = ChannelSender(env, ScriptedPlugin(provider), fast())
    await run_until(sender, lambda: sender.stats.batches >= 1 and sender.stats.requests == 3)
    assert provider.calls.count("raise-1") == 1 and provider.calls.count("ok-1") == 1
    assert "unreadable-1" not in provider.calls
    codec = AvroCodec.default()
    consumer = AIOKafkaConsumer(env.dlq(Topic.SEND_CUSTOM),
                                bootstrap_servers=env.kafka_bootstrap,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    letters: list[Any] = []
    try:
        deadline = time.monotonic() + 20
        while len(letters) < 2 and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                letters += [codec.decode_dlq(m.value) for m in batch]
    finally:
        await consumer.stop()
    assert [letter.reason.value for letter in letters] == ["PROCESSING_ERROR"] * 2
    assert sorted(letter.error_message.split(":")[0] for letter in letters) == [
        "prepare", "send"]
    records = await read(env, Topic.DELIVERIES, lambda got: len(got) >= 2)
    assert sorted(r["message_id"] for r in records) == sorted(
        [reqs[0]["message_id"], reqs[2]["message_id"]])  # the raising send ends as a failure
    assert {r["message_id"]: r["event_type"] for r in records}[reqs[0]["message_id"]] == (
        "_custom.failure")


async def test_a_hard_bounce_is_on_the_suppression_list_before_the_next_claim(
    env: Settings
) -> None:
    """A channel that keeps endpoints (email) lists a dead address before it claims the next
    message, so a later message to the same address is suppressed, not sent."""
    provider = ScriptedProvider()
    first, second = request("gone-x"), request("gone-x")

    class Bounces:
        def __init__(self) -> None:
            self.listed: set[str] = set()

        async def suppressed(self, app_id: str, channel: str, addresses: Any) -> set[str]:
            return {a for a in addresses if a in self.listed}

        async def add_bounce(self, app_id: str, channel: str, address: str,
                             message_id: str) -> None:
            await asyncio.sleep(0.2)  # a slow store: the next claim must wait for it
            self.listed.add(address)

    class KeepsEndpoints(ScriptedPlugin):
        deactivates_dead_addresses = False

    await produce(env, Topic.SEND_CUSTOM, [first, second])
    sender = ChannelSender(env, KeepsEndpoints(provider), fast(concurrency=1),
                           suppression=Bounces())
    await run_until(sender, lambda: sender.stats.requests == 2 and sender.stats.batches >= 1)
    assert provider.calls == ["gone-x"]
    assert (sender.stats.dead_addresses, sender.stats.suppressed) == (1, 1)
    assert sender._bounced == {}  # listed and nothing screened before it is left: forgotten
