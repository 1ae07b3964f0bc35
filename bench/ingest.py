"""PutEvents ingest: accepted events/s of one ``lodestar api`` process, beside the baselines.

What runs (issue #3, target: >= 20,000 events/s per API process, 100 events a request):

1. a fresh PostgreSQL database, migrated; one ``python -m lodestar api`` subprocess
   with its own port, topic prefix ``<LODESTAR_TOPIC_PREFIX>.bench.<id>`` and an
   admin key chosen here; an application created through ``POST /v1/apps``;
2. a load generator in another process (``ingest_load.py``: httpx.AsyncClient,
   ``--concurrency`` keep-alive connections, one request in flight on each)
   sends ``--warmup`` requests, then ``--requests`` timed requests of
   Amplify-shaped bodies (``amplify_events``: 10 endpoints x 10 events with
   Session, Attributes, Metrics; every second batch item with a full
   PublicEndpoint), Bearer auth or SigV4 signed with botocore (``--auth``);
3. throughput = per-event 202 results of the timed requests / time from the
   first timed request to the last answer; p50/p90/p99 request latency;
4. the events topic must then hold exactly the accepted events of every pass
   (warm-ups included), else the run fails;
5. the baselines of ``baselines.py`` on their own pre-filled input, same run.

Everything the run creates (topics, the database, a temporary directory with
the API log) is deleted at the end, also when a phase fails (``--keep-logs``
keeps the directory). ``--py-spy PATH`` samples the API process during the
timed phase of each pass and prints its top costs (such a run is slower).

Example: ``.venv/bin/python bench/ingest.py --concurrency 4,16 --auth both``
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import httpx

from baselines import (
    DEFAULT_EVENTS,
    DEFAULT_PHASE_TIMEOUT_S,
    BenchError,
    Progress,
    Result,
    count_records,
    delete_run,
    format_table,
    prefilled_input,
    report,
    run_baselines,
)
from lodestar.core.topics import Topic
from lodestar.settings import Settings
from lodestar_procs import (
    LodestarProcess,
    cancel_on_sigterm,
    free_port,
    fresh_database,
    lodestar_env,
    run_measurement,
)
from profiling import MachineCpu, PySpy, format_cpu, summarize

LOAD_SCRIPT: Final = Path(__file__).resolve().with_name("ingest_load.py")
RESULT_MARKER: Final = "BENCH_RESULT"
ADMIN_KEY: Final = ("LSBENCHADMIN00000001", "BenchAdminSecret0000000000000000000000x1")
DEFAULT_REQUESTS: Final = 2000
DEFAULT_WARMUP: Final = 200
DEFAULT_CONCURRENCY: Final = "8"
TARGET_EVENTS_PER_S: Final = 20_000


@dataclasses.dataclass
class Pass:
    """One load pass: its settings, the load generator's answer, CPU use on this machine."""

    auth: str
    concurrency: int
    load: dict[str, Any]
    api_cpu: float  # cores the API process used during the timed phase
    machine_cpu: float  # share of all cores busy during the timed phase
    busiest: list[tuple[float, int, str]]  # (cores, pid, name) during the timed phase

    @property
    def result(self) -> Result:
        name = f"lodestar api PutEvents ({self.auth}, {self.concurrency} conn)"
        return Result(name, self.load["accepted"], self.load["seconds"])


async def create_app(url: str) -> tuple[str, str, str]:
    """CreateApp with the admin key: ``(app id, access key id, secret)``."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY[0]}:{ADMIN_KEY[1]}"}
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(f"{url}/v1/apps", json={"Name": "bench-ingest"},
                                     headers=headers)
    if response.status_code != 201:
        raise BenchError(f"CreateApp answered {response.status_code}: {response.text[:300]}")
    return (response.json()["Id"], response.headers["x-lodestar-access-key-id"],
            response.headers["x-lodestar-secret-access-key"])


async def run_load(
    config: dict[str, Any], api: LodestarProcess, timeout_s: float, progress: Progress,
    py_spy: PySpy | None,
) -> tuple[dict[str, Any], float, list[tuple[float, int, str]]]:
    """Run ``ingest_load.py`` with ``config``: its result, the machine's busy share and
    the busiest processes during the timed phase."""
    name = f"load ({config['auth']['kind']}, {config['concurrency']} conn)"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(LOAD_SCRIPT), json.dumps(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    sampler = MachineCpu({api.pid: "lodestar api", proc.pid: "load generator"})
    tail: list[str] = []
    busy: tuple[float, list[tuple[float, int, str]]] = (0.0, [])

    async def relay() -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line.startswith("progress "):
                text = line.removeprefix("progress ")
                progress(f"{name}: {text}")
                if text.startswith("warm-up:"):
                    sampler.mark()  # the timed phase starts now
                    if py_spy is not None:
                        await py_spy.start()
            elif line:
                tail.append(line)

    relaying = asyncio.create_task(relay())
    result: dict[str, Any] | None = None
    try:
        async with asyncio.timeout(timeout_s):
            async for raw in proc.stdout:
                _, marker, payload = raw.decode(errors="replace").partition(RESULT_MARKER)
                if marker:
                    _, *top = sampler.top(8)
                    busy = (top[0], top[1])
                    result = json.loads(payload)
            await proc.wait()
            await relaying
    except TimeoutError:
        raise BenchError(f"{name} did not finish within {timeout_s:.0f} s") from None
    finally:
        if py_spy is not None:
            await py_spy.stop()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        relaying.cancel()
    if result is None:
        detail = "\n".join(tail[-20:])
        raise BenchError(f"{name}: exited with {proc.returncode}, no result\n{detail}")
    if result["failed_requests"] or result["rejected_events"]:
        raise BenchError(f"{name}: {result['failed_requests']} failed requests, "
                         f"{result['rejected_events']} rejected events: {result['failures']}")
    return result, *busy


async def measure_api(settings: Settings, args: argparse.Namespace, workdir: Path) -> list[Pass]:
    """Start the API, run every load pass, check the events topic, clean up."""
    run = f"{settings.topic_prefix}.bench.{uuid.uuid4().hex[:12]}"
    partitions = args.partitions or settings.partitions
    passes: list[Pass] = []
    try:
        async with fresh_database(settings.postgres_dsn) as dsn:
            port = free_port()
            env = lodestar_env(
                kafka_bootstrap=settings.kafka_bootstrap, postgres_dsn=dsn, topic_prefix=run,
                data_dir=workdir / "data", partitions=partitions,
                extra={"LODESTAR_API_PORT": str(port),
                       "LODESTAR_ADMIN_ACCESS_KEY_ID": ADMIN_KEY[0],
                       "LODESTAR_ADMIN_SECRET_ACCESS_KEY": ADMIN_KEY[1]},
            )
            api = LodestarProcess("api", ["api"], env, workdir / "api.log")
            url = f"http://127.0.0.1:{port}"
            await api.start()
            try:
                await api.wait_healthy(f"{url}/healthz", timeout_s=60)
                app_id, key, secret = await create_app(url)
                report(f"api pid {api.pid} on {url}, topics {run}.*, app {app_id}")
                first_body = 0
                for auth in (["bearer", "sigv4"] if args.auth == "both" else [args.auth]):
                    for concurrency in args.concurrency:
                        config = {
                            "url": url, "app_id": app_id, "concurrency": concurrency,
                            "auth": {"kind": auth, "key": key, "secret": secret,
                                     "region": settings.region},
                            "warmup": args.warmup, "requests": args.requests,
                            "first_body": first_body, "endpoints": args.endpoints,
                            "seed": 7, "timeout_s": args.timeout,
                            "progress_every": max(1, args.requests // 4),
                        }
                        first_body += args.warmup + args.requests
                        spy = None
                        if args.py_spy:
                            raw = workdir / f"py-spy-{auth}-{concurrency}.txt"
                            spy = PySpy(args.py_spy, api.pid, raw, blocking=args.py_spy_blocking)
                        load, machine, busiest = await run_load(
                            config, api, args.timeout + 60, report, spy)
                        api_cpu = sum(c for c, pid, _ in busiest if pid == api.pid)
                        done = Pass(auth, concurrency, load, api_cpu, machine, busiest)
                        passes.append(done)
                        report(f"{done.result.name}: {done.result.events_per_s:,.0f} events/s, "
                               f"p50 {load['p50_ms']:.1f} ms, p99 {load['p99_ms']:.1f} ms, "
                               f"API {api_cpu:.2f} cores, machine {machine:.0%} busy")
                        report(format_cpu(load["seconds"], machine, busiest))
                        if spy is not None and spy.out.exists():
                            print(f"\n# py-spy profile of the API process, {done.result.name}")
                            print(summarize(spy.out, args.profile_top))
                if not api.alive():
                    raise BenchError(f"the API process died:\n{api.log_tail()}")
            finally:
                code = await api.stop()
                report(f"api stopped (exit {code})")
            await verify_topic(settings, run, partitions, passes)
    finally:
        await delete_run(settings, run, report)
    return passes


async def verify_topic(settings: Settings, run: str, partitions: int, passes: list[Pass]) -> None:
    """The events topic must hold exactly every accepted event, warm-ups included."""
    expected = sum(p.load["accepted"] + p.load["warmup_accepted"] for p in passes)
    events = await count_records(settings, f"{run}.{Topic.EVENTS.value}", partitions)
    commands = await count_records(settings, f"{run}.{Topic.ENDPOINT_COMMANDS.value}",
                                   partitions)
    if events != expected:
        raise BenchError(f"{run}.events holds {events:,} records; the API accepted {expected:,}")
    report(f"verified: {run}.events holds exactly the {events:,} accepted events "
           f"({commands} endpoint commands)")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="PutEvents throughput of one `lodestar api` process (issue #3 target: "
        f"{TARGET_EVENTS_PER_S:,} events/s), beside the baselines of baselines.py. Reads "
        "LODESTAR_KAFKA_BOOTSTRAP and LODESTAR_POSTGRES_DSN (an existing database used to "
        "create a fresh one) from the environment.",
    )
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS,
                        help=f"timed requests per pass, 100 events each "
                        f"(default {DEFAULT_REQUESTS:,})")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP,
                        help=f"requests before timing starts (default {DEFAULT_WARMUP})")
    parser.add_argument("--concurrency", default=DEFAULT_CONCURRENCY,
                        help="connections of the load generator; a comma list runs one pass "
                        f"each (default {DEFAULT_CONCURRENCY})")
    parser.add_argument("--auth", choices=["bearer", "sigv4", "both"], default="bearer",
                        help="Bearer tokens, SigV4 signatures (botocore), or a pass of each")
    parser.add_argument("--endpoints", type=int, default=10_000,
                        help="endpoint pool the bodies draw from (default 10,000)")
    parser.add_argument("--partitions", type=int, default=None,
                        help="partitions of the API's topics (default LODESTAR_PARTITIONS)")
    parser.add_argument("--baseline-events", type=int, default=DEFAULT_EVENTS,
                        help=f"records for the baselines (default {DEFAULT_EVENTS:,})")
    parser.add_argument("--skip-baselines", action="store_true",
                        help="measure the API only (for profiling; figures then stand alone)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_PHASE_TIMEOUT_S,
                        help=f"seconds allowed per phase (default {DEFAULT_PHASE_TIMEOUT_S:.0f})")
    parser.add_argument("--py-spy", metavar="PATH",
                        help="sample the API process with this py-spy binary during each pass")
    parser.add_argument("--py-spy-blocking", action="store_true",
                        help="let py-spy pause the target for each sample (exact stacks)")
    parser.add_argument("--profile-top", type=int, default=25,
                        help="functions listed per profile (default 25)")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the temporary directory with the API log and profiles")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    try:
        args.concurrency = [int(c) for c in args.concurrency.split(",")]
    except ValueError:
        parser.error("--concurrency takes whole numbers separated by commas")
    if min([args.requests, args.endpoints, args.baseline_events, *args.concurrency]) <= 0 or (
        args.warmup < 0 or (args.partitions is not None and args.partitions <= 0)
    ):
        parser.error("counts must be positive")
    if args.endpoints < 10:
        parser.error("--endpoints must be at least 10 (10 endpoints per request)")
    return args


async def _measure(settings: Settings, args: argparse.Namespace,
                   workdir: Path) -> tuple[list[Pass], list[Result]]:
    cancel_on_sigterm()
    passes = await measure_api(settings, args, workdir)
    if args.skip_baselines:
        return passes, []
    async with prefilled_input(settings, args.baseline_events, partitions=args.partitions,
                               timeout_s=args.timeout) as source:
        return passes, await run_baselines(settings, source, timeout_s=args.timeout)


def _latency_table(passes: list[Pass]) -> str:
    head = (f"{'pass':<44}  {'requests':>8}  {'p50 ms':>7}  {'p90 ms':>7}  {'p99 ms':>7}  "
            f"{'API cores':>9}  {'machine':>7}  {'loadgen cores':>13}")
    lines = [head, "-" * len(head)]
    for p in passes:
        load = p.load
        lines.append(
            f"{p.result.name:<44}  {load['requests']:>8,}  {load['p50_ms']:>7.1f}  "
            f"{load['p90_ms']:>7.1f}  {load['p99_ms']:>7.1f}  {p.api_cpu:>9.2f}  "
            f"{p.machine_cpu:>7.0%}  {load['cpu_seconds'] / load['seconds']:>13.2f}"
        )
    lines.append("(API cores: CPU of the API process / wall time; machine: share of all "
                 f"{os.cpu_count()} cores busy; loadgen cores: CPU of the load generator)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    settings = Settings.from_env()
    workdir = Path(tempfile.mkdtemp(prefix="lodestar-bench-ingest-"))
    outcome = run_measurement(
        settings, lambda: _measure(settings, args, workdir), workdir, keep_logs=args.keep_logs
    )
    if isinstance(outcome, int):
        return outcome
    passes, base = outcome
    results = [p.result for p in passes]
    config = {"bootstrap": settings.kafka_bootstrap, "requests": args.requests,
              "warmup": args.warmup, "events_per_request": 100,
              "partitions": args.partitions or settings.partitions,
              "baseline_events": 0 if args.skip_baselines else args.baseline_events}
    if args.json:
        print(json.dumps({
            "config": config,
            "passes": [dataclasses.asdict(p) | {"events_per_s": p.result.events_per_s}
                       for p in passes],
            "baselines": [dataclasses.asdict(r) for r in base],
        }))
        return 0
    print(", ".join(f"{k}={v}" for k, v in config.items()))
    print(format_table([*results, *base], reference=base[0] if base else None))
    print()
    print(_latency_table(passes))
    best = max(results, key=lambda r: r.events_per_s)
    print(f"\nbest: {best.events_per_s:,.0f} events/s per API process "
          f"({best.events_per_s / TARGET_EVENTS_PER_S:.0%} of the {TARGET_EVENTS_PER_S:,}/s "
          "target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
