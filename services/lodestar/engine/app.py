"""Build the engine: the Faust app, its topics, tables, agents and services.

``build_engine(settings)`` wires everything and returns the Faust app; the CLI
runs it with ``run_worker``. Nothing here holds business logic: agents call
``lodestar.core``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import faust
from faust.contrib.asgi import serve_asgi

from lodestar.contracts.codec import AvroCodec
from lodestar.dead_letter_publisher import DeadLetterPublisher
from lodestar.engine import user_index_agent
from lodestar.engine.analytics_service import (
    AnalyticsRuntime,
    analytics_sink_services,
    erasure_service,
)
from lodestar.engine.backfill_progress import BackfillProgress
from lodestar.engine.membership_projection_service import (
    segment_membership_projection_service,
)
from lodestar.engine.profile_agent import EntryView, ProfileAgent, partition_of
from lodestar.engine.profile_consumer import ProfileConsumer, profile_consumer_service
from lodestar.engine.profile_store import ProfileStore
from lodestar.engine.projection_service import endpoint_projection_service
from lodestar.engine.segment_catalogs import SegmentCatalogs, segment_catalog_service
from lodestar.engine.table_store import STORE_URL
from lodestar.engine.web import create_worker_web
from lodestar.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Engine:
    """The Faust app and the handles tests and the CLI need."""

    app: faust.App
    endpoint_profiles: ProfileStore
    user_endpoints: faust.Table
    analytics: AnalyticsRuntime
    segments: SegmentCatalogs
    profiles: ProfileAgent


def broker_url(bootstrap: str) -> str:
    """``host1:9092,host2:9092`` → Faust's ``kafka://host1:9092;kafka://host2:9092``."""
    return ";".join(f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip())


def build_engine(
    settings: Settings,
    codec: AvroCodec | None = None,
    *,
    clickhouse_database: str | None = None,
    with_analytics: bool = True,
    with_projections: bool = True,
) -> Engine:
    """Wire the engine for ``settings`` (tests pass unique topic prefixes and databases)."""
    codec = codec or AvroCodec.default()
    datadir = settings.data_dir / "engine" / settings.worker_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.worker_id,
        broker=broker_url(settings.kafka_bootstrap),
        store=STORE_URL,  # RocksDB without its write-ahead log (engine/table_store.py)
        datadir=str(datadir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        web_host=settings.worker_web_host,
        web_port=settings.worker_web_port,
        table_cleanup_interval=60.0,
    )

    async def send(topic: str, key: bytes | None, value: bytes, headers: Any) -> None:
        await app.producer.send_and_wait(topic, key, value, None, None, list(headers))

    dead_letters = DeadLetterPublisher(settings, codec, send, "engine")
    catalogs = SegmentCatalogs()
    app.service(segment_catalog_service(settings, codec, catalogs))
    progress = BackfillProgress(settings)
    store = ProfileStore(datadir / "endpoint-profiles",
                         lambda endpoint_id: partition_of(endpoint_id, settings.partitions))
    profiles = ProfileAgent(settings, store, codec, catalogs, progress)
    app.service(profile_consumer_service(
        ProfileConsumer(settings, codec, profiles, store, catalogs)))
    users = app.Table(
        "user-endpoints",
        partitions=settings.partitions,
        key_type=str,
        help="Per <app id>/<user id>: the ids of the user's endpoints, sorted.",
    )
    user_index_agent.register(app, settings, users, codec, dead_letters)
    if with_projections:
        for service in projection_services(settings, codec):
            app.service(service)

    runtime = AnalyticsRuntime(settings, clickhouse_database)
    if with_analytics:
        for sink_service in analytics_sink_services(settings, codec, runtime):
            app.service(sink_service)
        app.service(erasure_service(settings, codec, runtime))
    web = create_worker_web(runtime, EntryView(profiles), users)
    serve_asgi(app, web, host=settings.worker_web_host, port=settings.worker_web_port)
    return Engine(app=app, endpoint_profiles=store, user_endpoints=users, analytics=runtime,
                  segments=catalogs, profiles=profiles)


def projection_services(settings: Settings, codec: AvroCodec) -> list[type[Any]]:
    """The PostgreSQL read-model projections (endpoints, segment membership): hosted by
    the worker, or run on their own by ``lodestar projections``."""
    return [endpoint_projection_service(settings, codec),
            segment_membership_projection_service(settings, codec)]


def run_projections(settings: Settings) -> None:
    """Run the projections in the foreground, without the engine, until a signal."""
    from mode import Worker

    codec = AvroCodec.default()
    services = [cls() for cls in projection_services(settings, codec)]
    Worker(*services, loglevel=settings.log_level, quiet=True).execute_from_commandline()


def run_worker(engine: Engine, settings: Settings) -> None:
    """Run the Faust worker in the foreground until a signal stops it."""
    worker = faust.Worker(engine.app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
