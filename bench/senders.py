"""Channel senders: messages/s one sender process delivers, beside the raw protocol floor.

Targets (issue #5): >= 2,000 emails/s and >= 5,000 pushes/s per sender process,
with dedupe (PostgreSQL claims) and retries on.

What runs, per channel (``--channel email``):

1. A fresh topic prefix and migrated PostgreSQL database; ``--messages``
   SendRequests prefilled on ``<prefix>.send.email`` (``--partitions``), each
   with its own endpoint snapshot and Handlebars in subject, text and HTML (so
   rendering, tracking links and MIME building all run). 1 % of the addresses
   start with ``retry``: the SMTP sink answers them 451 once, so the retry path
   runs too.
2. The sink: ``bench/smtp_sink.py`` (aiosmtpd) in its own process on 127.0.0.1;
   it counts messages and ``X-Lodestar-Message-Id`` duplicates.
3. Baseline, same run: the same number of messages, pre-rendered, sent straight
   through ``SmtpPool`` (same connections and concurrency) — no Kafka, no
   PostgreSQL, no rendering. This is the floor the SMTP client and sink set.
4. The sender: ``EmailSender`` (the code ``lodestar sender email`` runs) in this
   process, from its first polled batch to the commit of the last. Afterwards
   the sink must have seen every message id exactly once.

``--channel push`` runs the same four steps for push notifications: GCM endpoints
(``push-journey.json`` with Handlebars title and body rendered against each
endpoint snapshot, the message id in the FCM ``data`` as ``mid``), 1 % of the
tokens start with ``retry`` and are answered 503 once; the sink is
``bench/fcm_sink.py`` (FCM's ``messages:send`` and OAuth2 token endpoint over
HTTP/1.1 keep-alive) in its own process; the baseline POSTs the same number of
pre-built FCM bodies through ``FcmSender.send_message`` with the same
concurrency; the sender is ``ChannelSender`` with the plugin
``build_plugin("push", …)`` makes (what ``lodestar sender push`` runs), with
``ChannelSenderConfig.freeze_gc`` as a sender process sets it (``--no-freeze-gc``:
without), after the benchmark dropped its own copies of the requests.

Everything the run created (topics, database) is deleted at the end.

Example: ``.venv/bin/python bench/senders.py --messages 20000``
(``--channel push --messages 20000`` for push)
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import cProfile
import gc
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from baselines import delete_run
from lodestar.channel_settings import ChannelSettings
from lodestar.channels.channel_sender import ChannelSender, ChannelSenderConfig
from lodestar.channels.email import SmtpConfig
from lodestar.channels.email_sender import EmailSender, EmailSenderConfig, SmtpPool
from lodestar.channels.factory import build_plugin
from lodestar.channels.push_fcm import FcmConfig, FcmSender, ServiceAccount
from lodestar.contracts.codec import AvroCodec
from lodestar.core.email_sending import EmailDefaults, Prepared, prepare_email
from lodestar.core.push_message import PushNotification, fcm_message, prepare_push
from lodestar.core.topics import Topic
from lodestar.settings import Settings
from lodestar_procs import free_port, fresh_database
from profiling import PySpy, summarize

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = json.loads((ROOT / "schemas/examples/send_request/email-campaign-full.json").read_text())
PUSH_EXAMPLE = json.loads((ROOT / "schemas/examples/send_request/push-journey.json").read_text())
CODEC = AvroCodec.default()
TARGETS = {"email": 2_000, "push": 5_000}


def report(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def email_requests(n: int, run: str) -> list[dict[str, Any]]:
    """``n`` email SendRequests; every 100th address answers 451 once."""
    out = []
    for i in range(n):
        req = copy.deepcopy(EXAMPLE)
        local = f"retry{i}" if i % 100 == 7 else f"user{i}"
        req["message_id"] = f"m-{run}{i:08d}"
        req["address"] = f"{local}@example.test"
        req["endpoint_id"] = f"ep-{i}"
        req["endpoint"]["id"] = req["endpoint_id"]
        req["endpoint"]["address"] = req["address"]
        req["template"] = None
        req["content"].update(
            subject="{{User.UserAttributes.FirstName.[0]}}, our sale starts now",
            text_body="Hi {{User.UserAttributes.FirstName.[0]}}, use {{DiscountCode}}.",
            html_body="<html><body><p>Hi {{User.UserAttributes.FirstName.[0]}}</p>"
                      "<p><a href=\"https://shop.example.test/sale\">sale</a></p></body></html>")
        out.append(req)
    return out


async def prefill(settings: Settings, topic: Topic, requests: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=20,
                                max_batch_size=512 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(settings.topic(topic), CODEC.encode(topic, r),
                                       key=r["endpoint_id"].encode()) for r in requests]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def create_topics(settings: Settings, topics: Sequence[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
    finally:
        await admin.close()


class Sink:
    """bench/smtp_sink.py (or ``script``) in its own process."""

    def __init__(self, script: str = "smtp_sink.py") -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name(script)), str(self.port)],
            stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "READY":
            raise RuntimeError(f"{script} did not start")

    def stop(self) -> dict[str, int]:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        result: dict[str, int] = json.loads(out.strip().splitlines()[-1])
        return result


async def smtp_baseline(config: SmtpConfig, messages: list[Prepared], concurrency: int,
                        connections: int) -> float:
    """Messages/s straight through ``SmtpPool`` (no Kafka, PostgreSQL or rendering)."""
    pool = SmtpPool(config, connections)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(p: Prepared) -> None:
        async with semaphore:
            await pool.send(p.message)

    try:
        started = time.monotonic()
        await asyncio.gather(*(one(p) for p in messages))
        return len(messages) / (time.monotonic() - started)
    finally:
        await pool.close()


async def bench_email(base: Settings, args: argparse.Namespace) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    prefix = f"bench-senders-{run}"
    sink = Sink()
    settings = base.with_changes(
        topic_prefix=prefix, smtp_host="127.0.0.1", smtp_port=sink.port,
        smtp_timeout_seconds=10.0, smtp_tracking_base_url="https://t.example.test",
        smtp_tracking_secret="bench-tracking-secret-of-32-characters!")
    result: dict[str, Any] = {"channel": "email", "messages": args.messages}
    try:
        async with fresh_database(base.postgres_dsn, "bench_senders") as dsn:
            settings = settings.with_changes(postgres_dsn=dsn)
            await create_topics(settings, [settings.topic(Topic.SEND_EMAIL),
                                           settings.dlq(Topic.SEND_EMAIL),
                                           settings.topic(Topic.DELIVERIES)], args.partitions)
            requests = email_requests(args.messages, run)
            report(f"prefilling {len(requests):,} email send requests …")
            await prefill(settings, Topic.SEND_EMAIL, requests)

            defaults = EmailDefaults("shop@example.test", "mail.example.test",
                                     "https://t.example.test", b"bench-secret-bench-secret!!")
            now = int(time.time() * 1000)
            base_msgs = []
            for req in email_requests(args.messages, f"b{run}"):
                req["address"] = req["address"].replace("retry", "user")
                prepared = prepare_email(req, None, defaults, now)
                assert isinstance(prepared, Prepared)
                base_msgs.append(prepared)
            report("baseline: raw SMTP through SmtpPool …")
            smtp_config = SmtpConfig.from_settings(settings)
            result["baseline_per_s"] = await smtp_baseline(
                smtp_config, base_msgs, args.concurrency, args.connections)

            report("the email sender …")
            config = EmailSenderConfig(batch_size=args.batch_size, concurrency=args.concurrency,
                                       connections=args.connections, retry_base_s=0.05,
                                       retry_cap_s=0.2, freeze_gc=not args.no_freeze_gc)
            sender = EmailSender(settings, config)
            result.update(await run_sender(sender, args))
    finally:
        counts = sink.stop()
        result["sink"] = counts
        await delete_run(base.with_changes(topic_prefix=prefix), prefix, report)
    expected = 2 * args.messages
    if counts["duplicates"] or counts["unique_ids"] != expected:
        raise RuntimeError(f"the sink saw {counts}; expected {expected} unique ids once each")
    return result


# -- push -------------------------------------------------------------------------------


def push_requests(n: int, run: str) -> list[dict[str, Any]]:
    """``n`` push SendRequests to GCM endpoints; every 100th token answers 503 once."""
    out = []
    endpoint = EXAMPLE["endpoint"]
    for i in range(n):
        req = copy.deepcopy(PUSH_EXAMPLE)
        req["message_id"] = f"m-{run}{i:08d}"
        req["address"] = f"retry-{run}-{i}" if i % 100 == 7 else f"tok-{run}-{i}"
        req["channel_type"] = "GCM"
        req["endpoint_id"] = f"ep-{i}"
        req["endpoint"] = copy.deepcopy(endpoint)
        req["endpoint"].update(id=req["endpoint_id"], address=req["address"],
                               channel_type="GCM")
        req["content"].update(
            title="Thanks, {{User.UserAttributes.FirstName.[0]}}!",
            body="Your {{Attributes.plan.[0]}} plan is active.",
            data={"screen": "whats-new", "mid": req["message_id"]})
        out.append(req)
    return out


def service_account(directory: Path, base_url: str) -> tuple[Path, ServiceAccount]:
    """A fresh service-account key file (for the factory) and the same account."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    account = ServiceAccount("bench@bench.iam.gserviceaccount.com", key, f"{base_url}/token",
                             "bench", "k1")
    path = directory / "bench-service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": account.project_id, "private_key_id": "k1",
        "client_email": account.client_email, "token_uri": account.token_uri,
        "private_key": key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode()}))
    return path, account


async def fcm_baseline(sender: FcmSender, bodies: list[dict[str, Any]],
                       concurrency: int) -> float:
    """Messages/s of pre-built bodies straight through ``FcmSender.send_message``."""
    semaphore = asyncio.Semaphore(concurrency)
    failures = 0

    async def one(body: dict[str, Any]) -> None:
        nonlocal failures
        async with semaphore:
            outcome = await sender.send_message(body)
            failures += not outcome.accepted

    await sender.send_message(bodies[0])  # the access token, outside the timing
    started = time.monotonic()
    await asyncio.gather(*(one(b) for b in bodies[1:]))
    elapsed = time.monotonic() - started
    if failures:
        raise RuntimeError(f"{failures} baseline sends were not accepted")
    return (len(bodies) - 1) / elapsed


async def run_sender(sender: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Run ``sender`` until it has finished ``args.messages`` (optionally profiled); its
    rate over the window from its first polled batch to its last commit, and its counts."""
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    spy = None
    if args.py_spy:
        raw = Path(tempfile.gettempdir()) / f"senders-py-spy-{uuid.uuid4().hex[:8]}.txt"
        spy = PySpy(args.py_spy, os.getpid(), raw, rate=args.py_spy_rate,
                    blocking=args.py_spy_blocking)
        await spy.start()
    task = asyncio.create_task(sender.run())
    deadline = time.monotonic() + args.timeout
    last = 0
    while sender.stats.sent + sender.stats.failed < args.messages:
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise TimeoutError(f"sender did not finish: {sender.stats}")
        await asyncio.sleep(0.2)
        done = sender.stats.sent + sender.stats.failed
        if done - last >= 5_000:
            report(f"  {done:,} sent")
            last = done
    await asyncio.sleep(0.5)  # the last batch's commit
    sender.stop()
    await task
    if spy is not None:
        await spy.stop()
        report(f"py-spy of the sender phase ({spy.out}):\n{summarize(spy.out, 40)}")
    if profiler is not None:
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(args.profile_lines)
        stats.sort_stats("cumulative").print_stats(args.profile_lines)
    counts = sender.stats
    assert counts.first_batch_s is not None and counts.last_batch_s is not None
    window = counts.last_batch_s - counts.first_batch_s
    return {"sender_per_s": args.messages / window, "window_s": window, "sent": counts.sent,
            "failed": counts.failed, "retries": counts.retries, "batches": counts.batches}


async def bench_push(base: Settings, args: argparse.Namespace) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    prefix = f"bench-senders-{run}"
    sink = Sink("fcm_sink.py")
    url = f"http://127.0.0.1:{sink.port}"
    result: dict[str, Any] = {"channel": "push", "messages": args.messages}
    workdir = Path(tempfile.mkdtemp(prefix="bench-push-"))
    try:
        account_file, account = service_account(workdir, url)
        channels = ChannelSettings(fcm_service_account_file=str(account_file),
                                   fcm_base_url=url, provider_timeout_seconds=10.0)
        settings = base.with_changes(topic_prefix=prefix, channels=channels)
        async with fresh_database(base.postgres_dsn, "bench_senders") as dsn:
            settings = settings.with_changes(postgres_dsn=dsn)
            await create_topics(settings, [settings.topic(Topic.SEND_PUSH),
                                           settings.dlq(Topic.SEND_PUSH),
                                           settings.topic(Topic.DELIVERIES),
                                           settings.topic(Topic.ENDPOINT_COMMANDS)],
                                args.partitions)
            requests = push_requests(args.messages, run)
            report(f"prefilling {len(requests):,} push send requests …")
            await prefill(settings, Topic.SEND_PUSH, requests)

            now = int(time.time() * 1000)
            bodies = []
            for req in push_requests(args.messages + 1, f"b{run}"):
                req["address"] = req["address"].replace("retry", "tok")
                note = prepare_push(req, None, now)
                assert isinstance(note, PushNotification), note
                bodies.append(fcm_message(note, req["address"]))
            report("baseline: pre-built FCM bodies through FcmSender.send_message …")
            raw = FcmSender(FcmConfig(account, base_url=url, timeout_s=10.0))
            try:
                result["baseline_per_s"] = await fcm_baseline(raw, bodies, args.concurrency)
            finally:
                await raw.aclose()

            del requests, bodies  # the sender should not carry the benchmark's data
            gc.collect()
            report("the push sender …")
            config = ChannelSenderConfig(batch_size=args.batch_size, concurrency=args.concurrency,
                                         retry_base_s=0.05, retry_cap_s=0.2,
                                         freeze_gc=not args.no_freeze_gc)
            sender: ChannelSender[Any] = ChannelSender(settings, build_plugin("push", settings),
                                                       config)
            result.update(await run_sender(sender, args))
    finally:
        counts = sink.stop()
        result["sink"] = counts
        shutil.rmtree(workdir, ignore_errors=True)
        await delete_run(base.with_changes(topic_prefix=prefix), prefix, report)
    expected = 2 * args.messages + 1
    retry_tokens = sum(1 for i in range(args.messages) if i % 100 == 7)
    if (counts["duplicates"] or counts["unique_ids"] != expected
            or counts["unavailable"] != retry_tokens or result.get("failed")):
        raise RuntimeError(f"the sink saw {counts} (sender failed {result.get('failed')}); "
                           f"expected {expected} unique ids once each and {retry_tokens} "
                           "503s")
    return result


def _table(results: list[dict[str, Any]]) -> str:
    lines = ["| channel | messages | sender msg/s | baseline msg/s (raw protocol) | ratio | "
             "retries | target |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(
            f"| {r['channel']} | {r['messages']:,} | {r['sender_per_s']:,.0f} | "
            f"{r['baseline_per_s']:,.0f} | {r['sender_per_s'] / r['baseline_per_s']:.2f} | "
            f"{r['retries']} | {TARGETS[r['channel']]:,} |")
    return "\n".join(lines)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Messages/s one channel sender process delivers into a local protocol "
        "peer, with dedupe and retries on, beside the raw protocol floor measured in the "
        "same run (issue #5 targets: 2,000 emails/s, 5,000 pushes/s). Reads "
        "LODESTAR_KAFKA_BOOTSTRAP and LODESTAR_POSTGRES_DSN.")
    parser.add_argument("--channel", action="append", choices=["email", "push"],
                        help="channel to measure (repeatable; default email)")
    parser.add_argument("--messages", type=int, default=20_000,
                        help="messages per channel (default 20,000)")
    parser.add_argument("--partitions", type=int, default=4, help="send topic partitions")
    parser.add_argument("--batch-size", type=int, default=1000, help="records per poll")
    parser.add_argument("--concurrency", type=int, default=64, help="messages in flight")
    parser.add_argument("--connections", type=int, default=16,
                        help="SMTP connections (email)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per channel")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio",
                        help="event loop of the benchmark process (the sender and the "
                        "baselines run in it; default asyncio)")
    parser.add_argument("--profile", action="store_true",
                        help="profile the sender phase with cProfile (slows it down)")
    parser.add_argument("--profile-lines", type=int, default=30,
                        help="functions listed per profile ordering (default 30)")
    parser.add_argument("--py-spy", metavar="PATH",
                        help="sample the sender phase with this py-spy binary (raw stacks "
                        "kept in the temp directory; shares printed)")
    parser.add_argument("--py-spy-rate", type=int, default=100,
                        help="with --py-spy: samples a second (default 100)")
    parser.add_argument("--py-spy-blocking", action="store_true",
                        help="with --py-spy: pause the process for each sample (exact stacks)")
    parser.add_argument("--no-freeze-gc", action="store_true",
                        help="push: leave the garbage collector as it is (by default the "
                        "sender runs with ChannelSenderConfig.freeze_gc, as a sender process "
                        "does)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    base = Settings.from_env()

    async def run() -> list[dict[str, Any]]:
        results = []
        for channel in args.channel or ["email"]:
            if channel == "email":
                results.append(await bench_email(base, args))
            elif channel == "push":
                results.append(await bench_push(base, args))
        return results

    if args.loop == "uvloop":
        import uvloop

        results = uvloop.run(run())
    else:
        results = asyncio.run(run())
    print(json.dumps(results, indent=2) if args.json else _table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
