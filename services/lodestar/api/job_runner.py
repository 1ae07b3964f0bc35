"""The job runner: an asyncio task in the API process that runs import and export jobs.

It picks unfinished jobs from PostgreSQL, oldest first, and claims each with
an advisory lock held on its own connection (``control.jobs.try_claim``), so
any number of API processes can run side by side without running a job twice;
a crashed process's claim ends with its connection.

**Import**: the source (``file://`` file or directory, or an ``http(s)://``
URL streamed with httpx into a temporary file) is parsed record by record
(``core.endpoint_import``). Each valid record becomes an UPSERT command
(when RegisterEndpoints) and, when the job imports into a segment, an
ADD_TO_SEGMENT command, plus DEACTIVATE commands for other endpoints holding
the same Address (as UpdateEndpoint does). A record with nothing but a user ID
adds every endpoint of that user (the read model's and this run's) to the
segment, one ADD_TO_SEGMENT each. Command ids are deterministic,
``import:<job>:<piece>:<row>[:segment]``, so replays are recognisable. Every
``checkpoint_every`` records the commands are published (returning once Kafka
acknowledged them) and then progress is written: a restarted runner resumes a
PROCESSING job from that checkpoint, re-sending at most the records after it
(the commands are idempotent upserts).

**Export**: the endpoints of the app (or of a segment, through
``segment_members``) are read from ``endpoint_read_model`` and written as
newline-delimited EndpointResponse JSON into ``<dir>/<job id>/part-NNNNN.json``.
An interrupted export starts over.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from aiokafka.errors import KafkaError

from lodestar.api.jobs import file_path, import_definition, publish_segment, source_kind
from lodestar.control import endpoint_read_model as read_model
from lodestar.control.jobs import (
    EXPORT,
    FINISHED,
    MAX_FAILURES,
    Job,
    JobsRepository,
    JobStatus,
    Progress,
    release_claim,
    try_claim,
)
from lodestar.control.segments import SegmentsRepository
from lodestar.core.endpoint_commands import add_to_segment_command, upsert_command
from lodestar.core.endpoint_import import (
    ImportedRow,
    ImportedUser,
    ImportFileError,
    ImportFormat,
    RowFailure,
    parse_rows,
    user_row_endpoints,
    within_user_cap,
)
from lodestar.core.endpoint_rules import address_takeover
from lodestar.settings import Settings

log = logging.getLogger(__name__)

MAX_SOURCE_BYTES = 1024**3  # Pinpoint: 1 GB per import job
DEFAULT_CHECKPOINT_EVERY = 1000
DEFAULT_EXPORT_FILE_ROWS = 10_000


class SourceError(Exception):
    """A piece (file) of a source cannot be read; the message says why."""


@dataclass(frozen=True)
class Piece:
    """One file of a job's source."""

    name: str  # shown in Failures
    url: str
    path: Path | None  # None: fetched over HTTP


def list_pieces(url: str) -> list[Piece]:
    """The files of a source, in a stable order (a directory's files, sorted, recursively)."""
    if source_kind(url) == "http":
        name = urlsplit(url).path.rsplit("/", 1)[-1] or url
        return [Piece(name, url, None)]
    root = file_path(url, "S3Url")
    if root.is_file():
        return [Piece(root.name, url, root)]
    if not root.is_dir():
        raise SourceError(f"{url}: {root} does not exist on the Lodestar host")
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    return [Piece(str(p.relative_to(root)), p.as_uri(), p) for p in files]


class JobRunner:
    """Runs jobs one at a time; ``start``/``stop`` with the API's lifespan."""

    def __init__(
        self, pool: asyncpg.Pool, publisher: Any, settings: Settings, *,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY, poll_seconds: float = 1.0,
        export_file_rows: int = DEFAULT_EXPORT_FILE_ROWS,
        only: tuple[str, str] | None = None,
    ) -> None:
        """``only``: run just this (app id, job id) — what ``lodestar import --wait`` does."""
        self._pool = pool
        self._publisher = publisher
        self._settings = settings
        self._jobs = JobsRepository(pool)
        self._checkpoint_every = max(1, checkpoint_every)
        self._poll = poll_seconds
        self._export_rows = max(1, export_file_rows)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._only = only

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="lodestar-job-runner")

    async def stop(self) -> None:
        """Stop at once (mid-job too): an unfinished job resumes from its checkpoint later."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        """Look for work now (a job was just created)."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                ran = await self.run_pending()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the job runner failed; retrying")
                ran = False
            if not ran:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll)
                self._wake.clear()

    async def run_pending(self) -> bool:
        """Run the oldest unfinished job no one else runs; False if there was none."""
        conn: asyncpg.Connection = await self._pool.acquire()
        try:
            for app_id, job_id in await self._jobs.active():
                if self._only is not None and (app_id, job_id) != self._only:
                    continue
                if not await try_claim(conn, app_id, job_id):
                    continue
                try:
                    job = await self._jobs.get(app_id, job_id)
                    if job is None or job.status in FINISHED:
                        continue
                    await self._run(job)
                    return True
                finally:
                    await release_claim(conn, app_id, job_id)
            return False
        finally:
            await self._pool.release(conn)  # asyncpg's reset also drops advisory locks

    async def _run(self, job: Job) -> None:
        try:
            if job.job_type == EXPORT:
                await self._export(job)
            else:
                await self._import(job)
        except (asyncio.CancelledError, asyncpg.PostgresConnectionError, ConnectionError,
                KafkaError, httpx.TransportError):
            raise  # not the job's fault: it stays where its checkpoint is
        except Exception as exc:
            log.exception("job %s failed", job.id)
            failure = f"Lodestar failed to run the job: {type(exc).__name__}: {exc}"
            progress = job.progress
            await self._jobs.save_progress(job.app_id, job.id, replace(
                progress, failures=(*progress.failures, failure)[:MAX_FAILURES],
                failed_pieces=max(1, progress.total_pieces - progress.completed_pieces)),
                JobStatus.FAILED)

    # ----------------------------------------------------------------------- import

    async def _import(self, job: Job) -> None:
        definition = job.definition
        progress = job.progress
        try:
            pieces = list_pieces(definition["S3Url"])
        except (SourceError, OSError, ValueError) as exc:
            await self._jobs.save_progress(job.app_id, job.id, replace(
                progress, failures=(f"{exc}",), failed_pieces=1, total_pieces=1),
                JobStatus.FAILED)
            return
        if not pieces:
            await self._jobs.save_progress(job.app_id, job.id, replace(
                progress, failures=(f"{definition['S3Url']}: no files to import",),
                failed_pieces=1, total_pieces=1), JobStatus.FAILED)
            return
        if job.status in (JobStatus.CREATED, JobStatus.INITIALIZING):
            await self._jobs.set_status(job.app_id, job.id, JobStatus.INITIALIZING)
            extra: dict[str, Any] = {"piece": 0, "piece_records": 0, "channel_counts": {}}
            if job.segment_id is not None:
                segment = await SegmentsRepository(self._pool).get(job.app_id, job.segment_id)
                current = (segment.definition.get("ImportDefinition", {}) if segment else {})
                extra["base_size"] = current.get("Size", 0)
                extra["base_counts"] = current.get("ChannelCounts", {})
            progress = Progress(total_pieces=len(pieces), extra=extra)
            await self._jobs.save_progress(job.app_id, job.id, progress)
        run = _ImportRun(self, job, progress)
        for index, piece in enumerate(pieces):
            if index < run.extra["piece"]:
                continue
            await run.piece(index, piece)
        await run.finish()

    # ----------------------------------------------------------------------- export

    async def _export(self, job: Job) -> None:
        directory = file_path(job.definition["S3UrlPrefix"], "S3UrlPrefix") / job.id
        resume = job.progress.extra.get("after") is not None and directory.is_dir()
        if not resume:
            await self._jobs.set_status(job.app_id, job.id, JobStatus.INITIALIZING)
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
        segment_id = job.definition.get("SegmentId")
        version = job.definition.get("SegmentVersion")
        if segment_id is None:
            base = ("FROM endpoint_read_model e WHERE e.app_id = $1 AND NOT e.deleted "
                    "AND $2::text IS NULL AND $3::int IS NULL")
        else:
            base = ("FROM endpoint_read_model e JOIN segment_members m "
                    "ON m.app_id = e.app_id AND m.endpoint_id = e.endpoint_id "
                    "WHERE e.app_id = $1 AND NOT e.deleted AND m.segment_id = $2 "
                    "AND ($3::int IS NULL OR m.segment_version = $3)")
        if resume:
            # An interrupted export goes on after its last whole part (parts are sorted by
            # endpoint id); a part it was writing is written again.
            progress = job.progress
            pieces = progress.total_pieces
            after, written, part = (str(progress.extra["after"]), progress.total_processed,
                                    progress.completed_pieces)
            for stale in directory.glob("part-*"):
                if stale.suffix == ".tmp" or int(stale.stem.split("-")[1]) >= part:
                    stale.unlink()
        else:
            total = await self._pool.fetchval(f"SELECT count(*) {base}", job.app_id,
                                              segment_id, version)
            pieces = max(1, -(-total // self._export_rows))
            progress = Progress(total_pieces=pieces, extra={"after": ""})
            await self._jobs.save_progress(job.app_id, job.id, progress)
            after, written, part = "", 0, 0
        while True:
            rows = await self._pool.fetch(
                f"SELECT e.endpoint_id, e.endpoint {base} AND e.endpoint_id > $4 "
                "ORDER BY e.endpoint_id LIMIT $5",
                job.app_id, segment_id, version, after, self._export_rows,
            )
            if not rows and part > 0:
                break
            target = directory / f"part-{part:05d}.json"
            temporary = target.with_suffix(".tmp")
            with temporary.open("w", encoding="utf-8") as out:
                for row in rows:
                    out.write(row["endpoint"] if isinstance(row["endpoint"], str)
                              else json.dumps(row["endpoint"]))
                    out.write("\n")
            os.replace(temporary, target)
            part += 1
            written += len(rows)
            if rows:
                after = rows[-1]["endpoint_id"]
            progress = replace(progress, completed_pieces=part, total_pieces=max(part, pieces),
                               total_processed=written, checkpoint=written,
                               extra={"after": after})
            await self._jobs.save_progress(job.app_id, job.id, progress)
            if len(rows) < self._export_rows:
                break
        await self._jobs.save_progress(job.app_id, job.id, progress, JobStatus.COMPLETED)


class _ImportRun:
    """One run of an import job (from its checkpoint to the end)."""

    def __init__(self, runner: JobRunner, job: Job, progress: Progress) -> None:
        self.runner = runner
        self.job = job
        self.progress = progress
        self.extra: dict[str, Any] = dict(progress.extra)
        self.extra.setdefault("piece", 0)
        self.extra.setdefault("piece_records", 0)
        self.extra.setdefault("channel_counts", {})
        # endpoints added to the segment so far; a checkpoint from before user rows
        # existed added one per imported record
        self.extra.setdefault("segment_size", progress.total_processed)
        self.failures = list(progress.failures)
        self.fmt = ImportFormat(job.definition["Format"])
        self.register = bool(job.definition.get("RegisterEndpoints", True))
        self.user_endpoints: dict[str, set[str]] = {}
        """User id → endpoints this run gave the user (the read model may lag behind)."""
        self.channels: dict[str, str] = {}
        """Endpoint id → ChannelType of the endpoints in ``user_endpoints``."""

    async def piece(self, index: int, piece: Piece) -> None:
        skip = self.extra["piece_records"] if index == self.extra["piece"] else 0
        self.extra.update(piece=index, piece_records=skip)
        try:
            async with _local_copy(piece, self.runner._settings) as (path, digest):
                self._check_unchanged(index, piece, digest, skip)
                await self._records(index, piece, path, skip)
        except (SourceError, ImportFileError, UnicodeDecodeError, OSError,
                httpx.HTTPError) as exc:
            if isinstance(exc, httpx.TransportError | ConnectionError):
                raise  # retried from the checkpoint
            why = f"not UTF-8 text ({exc.reason})" if isinstance(exc, UnicodeDecodeError) \
                else str(exc)
            self._fail(f"{piece.name}: the file was not imported: {why}")
            self.progress = replace(self.progress,
                                    failed_pieces=self.progress.failed_pieces + 1)
        else:
            self.progress = replace(self.progress,
                                    completed_pieces=self.progress.completed_pieces + 1)
        self.extra.update(piece=index + 1, piece_records=0)
        await self._save()

    def _check_unchanged(self, index: int, piece: Piece, digest: str | None, skip: int) -> None:
        """A resumed HTTP piece must be the file the job started reading (SHA-256)."""
        if digest is None:
            return
        digests = self.extra.setdefault("digests", {})
        seen = digests.get(str(index))
        if skip and seen is not None and seen != digest:
            raise SourceError(f"{piece.url} changed since the job started reading it (its "
                              f"first {skip} records were imported from the earlier file); "
                              "create a new job for the new file")
        digests[str(index)] = digest

    async def _records(self, index: int, piece: Piece, path: Path, skip: int) -> None:
        batch: list[ImportedRow | ImportedUser] = []
        seen = 0
        with path.open(encoding="utf-8", newline="") as lines:
            for result in parse_rows(self.fmt, lines):
                seen += 1
                if seen <= skip:
                    continue
                if isinstance(result, RowFailure):
                    self._fail(f"{piece.name}: {result.message}")
                else:
                    batch.append(result)
                if (seen - skip) % self.runner._checkpoint_every == 0:
                    await self._flush(index, piece.name, batch, seen)
                    batch = []
            await self._flush(index, piece.name, batch, seen)

    def _fail(self, message: str) -> None:
        if len(self.failures) < MAX_FAILURES:
            self.failures.append(message)
        self.progress = replace(self.progress, total_failures=self.progress.total_failures + 1)

    async def _within_user_cap(self, name: str, batch: list[ImportedRow]) -> list[ImportedRow]:
        """The rows that keep their user at 15 endpoints or fewer; the others fail."""
        users = {row.user_id for row in batch if row.user_id}
        if not users:
            return batch
        existing = await read_model.endpoint_ids_of_users(self.runner._pool, self.job.app_id,
                                                          users)
        kept = []
        for result in within_user_cap(batch, existing, self.user_endpoints):
            if isinstance(result, RowFailure):
                self._fail(f"{name}: {result.message}")
            else:
                kept.append(result)
        return kept

    async def _flush(self, index: int, name: str, batch: list[ImportedRow | ImportedUser],
                     seen: int) -> None:
        job = self.job
        commands: list[dict[str, Any]] = []
        now = _now_ms()
        rows = [r for r in batch if isinstance(r, ImportedRow)]
        users = [r for r in batch if isinstance(r, ImportedUser)]
        if self.register and rows:
            rows = await self._within_user_cap(name, rows)
            addresses = [r.request["Address"] for r in rows if r.request.get("Address")]
            holders = (await read_model.holders_of_addresses(self.runner._pool, job.app_id,
                                                             addresses) if addresses else {})
        for row in rows:
            command_id = f"import:{job.id}:{index}:{row.row}"
            if self.register:
                commands.append(upsert_command(job.app_id, row.endpoint_id, row.request,
                                               command_id, now))
                address = row.request.get("Address")
                if address:
                    commands += address_takeover(job.app_id, row.endpoint_id,
                                                 holders.get(address, []), command_id, now)
            if job.segment_id is not None:
                commands.append(add_to_segment_command(job.app_id, row.endpoint_id,
                                                       job.segment_id, f"{command_id}:segment",
                                                       now))
            channel = row.request.get("ChannelType", "UNKNOWN")
            self._count(channel)
            if row.user_id:
                self.channels[row.endpoint_id] = channel
        processed = len(rows) + await self._user_rows(index, name, users, commands, now)
        await self.runner._publisher.publish_commands(commands)  # acknowledged by Kafka
        self.progress = replace(
            self.progress, total_processed=self.progress.total_processed + processed,
            checkpoint=self.progress.checkpoint + seen - self.extra["piece_records"])
        self.extra["piece_records"] = seen
        await self._save()

    async def _user_rows(self, index: int, name: str, users: list[ImportedUser],
                         commands: list[dict[str, Any]], now: int) -> int:
        """ADD_TO_SEGMENT commands for every endpoint of each user row; rows that add none
        fail. Returns how many rows were imported."""
        job = self.job
        if not users:
            return 0
        existing = (await read_model.endpoint_channels_of_users(
            self.runner._pool, job.app_id, {row.user_id for row in users})
            if job.segment_id is not None else {})
        imported = 0
        for row in users:
            ids = user_row_endpoints(row, existing, self.user_endpoints,
                                     job.segment_id is not None)
            if isinstance(ids, RowFailure):
                self._fail(f"{name}: {ids.message}")
                continue
            assert job.segment_id is not None
            known = existing.get(row.user_id, {})
            for endpoint_id in ids:
                commands.append(add_to_segment_command(
                    job.app_id, endpoint_id, job.segment_id,
                    f"import:{job.id}:{index}:{row.row}:segment:{endpoint_id}", now))
                self._count(known.get(endpoint_id) or self.channels.get(endpoint_id, "UNKNOWN"))
            imported += 1
        return imported

    def _count(self, channel: str) -> None:
        """One more endpoint in the job's segment, on ``channel`` (its ChannelCounts)."""
        counts = self.extra["channel_counts"]
        counts[channel] = counts.get(channel, 0) + 1
        self.extra["segment_size"] += 1

    async def _save(self, status: JobStatus = JobStatus.PROCESSING) -> None:
        self.progress = replace(self.progress, failures=tuple(self.failures),
                                extra=json.loads(json.dumps(self.extra)))
        await self.runner._jobs.save_progress(self.job.app_id, self.job.id, self.progress, status)

    async def finish(self) -> None:
        job = self.job
        if job.segment_id is not None:
            segments = SegmentsRepository(self.runner._pool)
            segment = await segments.get(job.app_id, job.segment_id)
            if segment is not None:
                counts = dict(self.extra.get("base_counts", {}))
                for channel, n in self.extra["channel_counts"].items():
                    counts[channel] = counts.get(channel, 0) + n
                size = self.extra.get("base_size", 0) + self.extra["segment_size"]
                definition = import_definition(job.definition, size, counts)
                if segment.definition != definition:
                    updated = await segments.replace_definition(job.app_id, segment.id,
                                                                segment.version, definition)
                    if updated is not None:
                        await publish_segment(self.runner._publisher, self.runner._settings,
                                              updated, None)
        failed_all = self.progress.failed_pieces >= max(1, self.progress.total_pieces)
        await self._save(JobStatus.FAILED if failed_all else JobStatus.COMPLETED)


def _now_ms() -> int:
    return int(time.time() * 1000)


@contextlib.asynccontextmanager
async def _local_copy(piece: Piece, settings: Settings) -> Any:
    """``(path, digest)``: the piece as a local file — itself (digest ``None``), or an
    HTTP download streamed to a temporary file, with the SHA-256 of its bytes."""
    if piece.path is not None:
        yield piece.path, None
        return
    sha = hashlib.sha256()
    handle, name = tempfile.mkstemp(prefix="lodestar-import-", suffix=".part")
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            size = 0
            async with httpx.AsyncClient(follow_redirects=True, timeout=60.0) as client, \
                    client.stream("GET", piece.url) as response:
                if response.status_code != 200:
                    raise SourceError(f"GET {piece.url} answered HTTP {response.status_code}")
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_SOURCE_BYTES:
                        raise SourceError(f"{piece.url} is larger than 1 GB, the limit of one "
                                          "import job")
                    out.write(chunk)
                    sha.update(chunk)
        yield path, sha.hexdigest()
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)
