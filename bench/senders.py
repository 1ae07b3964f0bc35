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

Everything the run created (topics, database) is deleted at the end.

Example: ``.venv/bin/python bench/senders.py --messages 20000``
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import cProfile
import json
import pstats
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from baselines import delete_run
from lodestar.channels.email import SmtpConfig
from lodestar.channels.email_sender import EmailSender, EmailSenderConfig, SmtpPool
from lodestar.contracts.codec import AvroCodec
from lodestar.core.email_sending import EmailDefaults, Prepared, prepare_email
from lodestar.core.topics import Topic
from lodestar.settings import Settings
from lodestar_procs import free_port, fresh_database

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = json.loads((ROOT / "schemas/examples/send_request/email-campaign-full.json").read_text())
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
    """bench/smtp_sink.py in its own process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("smtp_sink.py")), str(self.port)],
            stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "READY":
            raise RuntimeError("the SMTP sink did not start")

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
                                       retry_cap_s=0.2)
            sender = EmailSender(settings, config)
            profiler = cProfile.Profile() if args.profile else None
            if profiler is not None:
                profiler.enable()
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
            if profiler is not None:
                profiler.disable()
                pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
            stats = sender.stats
            assert stats.first_batch_s is not None and stats.last_batch_s is not None
            window = stats.last_batch_s - stats.first_batch_s
            result.update(sender_per_s=args.messages / window, window_s=window,
                          sent=stats.sent, failed=stats.failed, retries=stats.retries,
                          batches=stats.batches)
    finally:
        counts = sink.stop()
        result["sink"] = counts
        await delete_run(base.with_changes(topic_prefix=prefix), prefix, report)
    expected = 2 * args.messages
    if counts["duplicates"] or counts["unique_ids"] != expected:
        raise RuntimeError(f"the sink saw {counts}; expected {expected} unique ids once each")
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
    parser.add_argument("--channel", action="append", choices=["email"],
                        help="channel to measure (repeatable; default email)")
    parser.add_argument("--messages", type=int, default=20_000,
                        help="messages per channel (default 20,000)")
    parser.add_argument("--partitions", type=int, default=4, help="send topic partitions")
    parser.add_argument("--batch-size", type=int, default=1000, help="records per poll")
    parser.add_argument("--concurrency", type=int, default=64, help="messages in flight")
    parser.add_argument("--connections", type=int, default=16, help="SMTP connections")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per channel")
    parser.add_argument("--profile", action="store_true",
                        help="profile the sender phase with cProfile (slows it down)")
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
        return results

    results = asyncio.run(run())
    print(json.dumps(results, indent=2) if args.json else _table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
