"""Contract tests: boto3's ``pinpoint`` client against import and export jobs.

The API runs in-process under uvicorn on a real port, on a real PostgreSQL
(migrated) and Kafka; its job runner publishes the commands, which these
tests read back from the per-test endpoint-commands topic. The engine does
not run here: what it makes of the commands is tested on its side.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from tests.api.live_api import Api

from lodestar.api.event_publisher import EventPublisher
from lodestar.api.job_runner import JobRunner
from lodestar.contracts.codec import AvroCodec
from lodestar.control.apps import AppsRepository
from lodestar.control.jobs import IMPORT, JobsRepository, JobStatus
from lodestar.core.endpoint_import import derived_endpoint_id
from lodestar.core.topics import Topic
from lodestar.settings import Settings
from lodestar.topics_admin import ensure_topics

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ROLE = "arn:aws:iam::123456789012:role/ignored-by-lodestar"
CSV_TEXT = (
    "Id,ChannelType,Address,Location.Country,Location.Latitude,Demographic.Platform,"
    "User.UserId,User.UserAttributes.interests,User.UserAttributes.interests,Metrics.score\n"
    "e1,EMAIL,ann@example.com,US,47.6,ios,u1,music,books,3\n"
    "e2,SMS,+15550100,CA,123,android,u2,,,\n"
    "e3,SMS,+15550101,CA,,android,u3,art,,1.5\n"
    ",EMAIL,new@example.com,,,,,,,\n"
)


@pytest.fixture
def app_id(api: Api) -> str:
    return str(api.admin().create_app(CreateApplicationRequest={"Name": "Shop"})[
        "ApplicationResponse"]["Id"])


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A local HTTP server (127.0.0.1) serving a directory: (directory, base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _numbers_csv(rows: int) -> str:
    """A CSV import of ``rows`` SMS endpoints r0, r1, … with distinct numbers."""
    return "Id,ChannelType,Address\n" + "".join(
        f"r{i},SMS,+1555{i:07d}\n" for i in range(rows))


def _wait_job(client: Any, app_id: str, job_id: str, export: bool = False,
              within: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        if export:
            job = client.get_export_job(ApplicationId=app_id, JobId=job_id)["ExportJobResponse"]
        else:
            job = client.get_import_job(ApplicationId=app_id, JobId=job_id)["ImportJobResponse"]
        if job["JobStatus"] in ("COMPLETED", "FAILED"):
            return dict(job)
        assert time.monotonic() < deadline, f"job still {job['JobStatus']}: {job}"
        time.sleep(0.1)


async def _commands(
    settings: Settings, expected: int, within: float = 20.0,
) -> list[dict[str, Any]]:
    """Every endpoint command on the test's topic (at least ``expected``, or what came)."""
    consumer = AIOKafkaConsumer(
        settings.topic(Topic.ENDPOINT_COMMANDS), bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest", group_id=None,
    )
    codec = AvroCodec.default()
    out: list[dict[str, Any]] = []
    await consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + within
        while len(out) < expected and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                out.extend(dict(codec.decode(Topic.ENDPOINT_COMMANDS, r.value)) for r in records)
    finally:
        await consumer.stop()
    return out


def test_csv_import_defines_an_imported_segment(api: Api, app_id: str, tmp_path: Path) -> None:
    source = tmp_path / "users.csv"
    source.write_text(CSV_TEXT, encoding="utf-8")
    client = api.admin()
    answer = client.create_import_job(ApplicationId=app_id, ImportJobRequest={
        "Format": "CSV", "S3Url": source.as_uri(), "RoleArn": ROLE,
        "DefineSegment": True, "SegmentName": "Newsletter", "RegisterEndpoints": True})
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 201
    created = answer["ImportJobResponse"]
    assert re.fullmatch(r"[0-9a-f]{32}", created["Id"]) and created["Type"] == "IMPORT"
    assert created["JobStatus"] in ("CREATED", "INITIALIZING", "PROCESSING")
    segment_id = created["Definition"]["SegmentId"]
    assert created["Definition"] == {
        "DefineSegment": True, "Format": "CSV", "RegisterEndpoints": True, "RoleArn": ROLE,
        "S3Url": source.as_uri(), "SegmentId": segment_id, "SegmentName": "Newsletter"}

    job = _wait_job(client, app_id, created["Id"])
    assert job["JobStatus"] == "COMPLETED", job
    assert (job["TotalProcessed"], job["TotalFailures"]) == (3, 1)
    assert (job["TotalPieces"], job["CompletedPieces"], job["FailedPieces"]) == (1, 1, 0)
    assert len(job["Failures"]) == 1
    assert job["Failures"][0].startswith("users.csv: row 3: Location.Latitude: ")
    assert "CompletionDate" in job

    segment = client.get_segment(ApplicationId=app_id, SegmentId=segment_id)["SegmentResponse"]
    assert segment["SegmentType"] == "IMPORT" and segment["Name"] == "Newsletter"
    assert segment["ImportDefinition"] == {
        "ChannelCounts": {"EMAIL": 2, "SMS": 1}, "Format": "CSV", "RoleArn": ROLE,
        "S3Url": source.as_uri(), "Size": 3}
    assert "Dimensions" not in segment
    listed = client.get_segments(ApplicationId=app_id)["SegmentsResponse"]["Item"]
    assert [s["Id"] for s in listed] == [segment_id] and listed[0]["SegmentType"] == "IMPORT"

    assert [j["Id"] for j in client.get_import_jobs(ApplicationId=app_id)[
        "ImportJobsResponse"]["Item"]] == [created["Id"]]
    assert [j["Id"] for j in client.get_segment_import_jobs(
        ApplicationId=app_id, SegmentId=segment_id)["ImportJobsResponse"]["Item"]] == [
        created["Id"]]

    commands = asyncio.run(_commands(api.settings, 6))
    mine = [c for c in commands if c["command_id"].startswith(f"import:{created['Id']}:")]
    new_id = derived_endpoint_id("EMAIL", "new@example.com")
    upserts = {c["endpoint_id"]: c for c in mine if c["kind"] == "UPSERT"}
    assert set(upserts) == {"e1", "e3", new_id}
    assert json.loads(upserts["e1"]["endpoint_request"]) == {
        "Address": "ann@example.com", "ChannelType": "EMAIL",
        "Demographic": {"Platform": "ios"}, "Location": {"Country": "US", "Latitude": 47.6},
        "Metrics": {"score": 3.0},
        "User": {"UserAttributes": {"interests": ["music", "books"]}, "UserId": "u1"}}
    adds = [c for c in mine if c["kind"] == "ADD_TO_SEGMENT"]
    assert sorted(c["endpoint_id"] for c in adds) == sorted(["e1", "e3", new_id])
    assert {c["segment_id"] for c in adds} == {segment_id}
    assert upserts["e1"]["command_id"] == f"import:{created['Id']}:0:2"
    assert {c["command_id"] for c in adds} >= {f"import:{created['Id']}:0:2:segment"}

    # SegmentId: the next job adds to the same IMPORT segment, as its next version
    more = tmp_path / "more.json"
    more.write_text('{"Id":"e9","ChannelType":"SMS","Address":"+15550199"}\n', encoding="utf-8")
    second = client.create_import_job(ApplicationId=app_id, ImportJobRequest={
        "Format": "JSON", "S3Url": more.as_uri(), "RoleArn": ROLE,
        "SegmentId": segment_id})["ImportJobResponse"]
    assert _wait_job(client, app_id, second["Id"])["JobStatus"] == "COMPLETED"
    v2 = client.get_segment(ApplicationId=app_id, SegmentId=segment_id)["SegmentResponse"]
    assert v2["Version"] == 2 and v2["Name"] == "Newsletter"
    assert v2["ImportDefinition"]["Size"] == 4
    assert v2["ImportDefinition"]["ChannelCounts"] == {"EMAIL": 2, "SMS": 2}
    assert [j["Id"] for j in client.get_segment_import_jobs(
        ApplicationId=app_id, SegmentId=segment_id)["ImportJobsResponse"]["Item"]] == [
        second["Id"], created["Id"]]


def test_json_import_from_an_http_url(api: Api, app_id: str,
                                      http_root: tuple[Path, str]) -> None:
    root, base = http_root
    lines = [json.dumps({"Id": f"h{i}", "ChannelType": "EMAIL",
                         "Address": f"h{i}@example.com", "Attributes": {"plan": ["pro"]}})
             for i in range(5)]
    lines.insert(2, '{"Id": "bad", "OptOut": "SOMETIMES"}')
    (root / "endpoints.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    client = api.admin()
    created = client.create_import_job(ApplicationId=app_id, ImportJobRequest={
        "Format": "JSON", "S3Url": f"{base}/endpoints.json", "RoleArn": ROLE,
        "RegisterEndpoints": True})["ImportJobResponse"]
    job = _wait_job(client, app_id, created["Id"])
    assert job["JobStatus"] == "COMPLETED", job
    assert (job["TotalProcessed"], job["TotalFailures"]) == (5, 1)
    assert job["Failures"] == [
        "endpoints.json: row 3: OptOut: unknown OptOut 'SOMETIMES'; expected one of NONE, ALL"]
    commands = asyncio.run(_commands(api.settings, 5))
    assert sorted(c["endpoint_id"] for c in commands if c["kind"] == "UPSERT") == [
        f"h{i}" for i in range(5)]
    assert not [c for c in commands if c["kind"] == "ADD_TO_SEGMENT"]

    missing = client.create_import_job(ApplicationId=app_id, ImportJobRequest={
        "Format": "JSON", "S3Url": f"{base}/nope.json", "RoleArn": ROLE})["ImportJobResponse"]
    failed = _wait_job(client, app_id, missing["Id"])
    assert failed["JobStatus"] == "FAILED" and failed["FailedPieces"] == 1
    assert "HTTP 404" in failed["Failures"][0]


def test_directory_import_counts_pieces(api: Api, app_id: str, tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("Id,ChannelType,Address\nd1,SMS,+1555\n", encoding="utf-8")
    (folder / "sub" / "b.csv").write_text("Id,Fax\nd2,x\n", encoding="utf-8")  # bad header
    client = api.admin()
    created = client.create_import_job(ApplicationId=app_id, ImportJobRequest={
        "Format": "CSV", "S3Url": folder.as_uri(), "RoleArn": ROLE})["ImportJobResponse"]
    job = _wait_job(client, app_id, created["Id"])
    assert job["JobStatus"] == "COMPLETED"
    assert (job["TotalPieces"], job["CompletedPieces"], job["FailedPieces"]) == (2, 1, 1)
    assert job["TotalProcessed"] == 1
    assert job["Failures"][0].startswith("sub/b.csv: the file was not imported: ")
    assert "'Fax' is not an endpoint field" in job["Failures"][0]


def test_request_errors(api: Api, app_id: str, tmp_path: Path) -> None:
    client = api.admin()
    source = tmp_path / "x.csv"
    source.write_text("Id\n", encoding="utf-8")
    bad_request = client.exceptions.BadRequestException
    with pytest.raises(bad_request, match=r"does not reach Amazon S3.*file:///.*https://"):
        client.create_import_job(ApplicationId=app_id, ImportJobRequest={
            "Format": "CSV", "S3Url": "s3://bucket/users.csv", "RoleArn": ROLE})
    with pytest.raises(bad_request, match="SegmentName is required"):
        client.create_import_job(ApplicationId=app_id, ImportJobRequest={
            "Format": "CSV", "S3Url": source.as_uri(), "RoleArn": ROLE, "DefineSegment": True})
    with pytest.raises(bad_request, match="does not exist on the Lodestar host"):
        client.create_import_job(ApplicationId=app_id, ImportJobRequest={
            "Format": "CSV", "S3Url": (tmp_path / "nope.csv").as_uri(), "RoleArn": ROLE})
    with pytest.raises(bad_request, match="Format"):
        client.create_import_job(ApplicationId=app_id, ImportJobRequest={
            "Format": "XML", "S3Url": source.as_uri(), "RoleArn": ROLE})
    with pytest.raises(bad_request, match="would do nothing"):
        client.create_import_job(ApplicationId=app_id, ImportJobRequest={
            "Format": "CSV", "S3Url": source.as_uri(), "RoleArn": ROLE,
            "RegisterEndpoints": False})
    with pytest.raises(client.exceptions.NotFoundException):
        client.create_import_job(ApplicationId=app_id, ImportJobRequest={
            "Format": "CSV", "S3Url": source.as_uri(), "RoleArn": ROLE, "SegmentId": "f" * 32})
    dims = client.create_segment(ApplicationId=app_id, WriteSegmentRequest={
        "Name": "d", "Dimensions": {"Demographic": {"Platform": {"Values": ["ios"]}}}})
    with pytest.raises(bad_request, match="DIMENSIONAL segment"):
        client.create_import_job(ApplicationId=app_id, ImportJobRequest={
            "Format": "CSV", "S3Url": source.as_uri(), "RoleArn": ROLE,
            "SegmentId": dims["SegmentResponse"]["Id"]})
    with pytest.raises(bad_request, match="does not reach Amazon S3"):
        client.create_export_job(ApplicationId=app_id, ExportJobRequest={
            "S3UrlPrefix": "s3://bucket/out/", "RoleArn": ROLE})
    with pytest.raises(bad_request, match="file:///absolute/dir"):
        client.create_export_job(ApplicationId=app_id, ExportJobRequest={
            "S3UrlPrefix": "https://example.com/out/", "RoleArn": ROLE})
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_import_job(ApplicationId=app_id, JobId="0" * 32)
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_export_job(ApplicationId=app_id, JobId="0" * 32)
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_segment_import_jobs(ApplicationId=app_id, SegmentId="0" * 32)
    with pytest.raises(bad_request, match="page-size"):
        client.get_import_jobs(ApplicationId=app_id, PageSize="0")
    assert client.get_import_jobs(ApplicationId=app_id)["ImportJobsResponse"]["Item"] == []


async def _seed_endpoints(dsn: str, app_id: str, n: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for i in range(n):
            endpoint = {"Id": f"x{i:02d}", "ApplicationId": app_id, "ChannelType": "EMAIL",
                        "Address": f"x{i}@example.com", "CohortId": "1",
                        "EndpointStatus": "ACTIVE", "OptOut": "NONE", "Attributes": {},
                        "Metrics": {}, "CreationDate": "2026-01-01T00:00:00.000Z"}
            await conn.execute(
                "INSERT INTO endpoint_read_model (app_id, endpoint_id, endpoint, deleted, "
                "change_ts) VALUES ($1, $2, $3::jsonb, $4, 1)",
                app_id, endpoint["Id"], json.dumps(endpoint), i == n - 1)  # last: deleted
    finally:
        await conn.close()


async def _add_members(dsn: str, app_id: str, segment_id: str, ids: list[str]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for endpoint_id in ids:
            await conn.execute(
                "INSERT INTO segment_members (app_id, segment_id, endpoint_id, segment_version,"
                " entered_at) VALUES ($1, $2, $3, 1, now())", app_id, segment_id, endpoint_id)
    finally:
        await conn.close()


def _exported(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for f in sorted(directory.glob("part-*.json"))
            for line in f.read_text("utf-8").splitlines()]


def test_export_writes_endpoint_files(api: Api, app_id: str, tmp_path: Path) -> None:
    asyncio.run(_seed_endpoints(api.settings.postgres_dsn, app_id, 6))
    client = api.admin()
    out = tmp_path / "exports"
    answer = client.create_export_job(ApplicationId=app_id, ExportJobRequest={
        "S3UrlPrefix": out.as_uri(), "RoleArn": ROLE})
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    created = answer["ExportJobResponse"]
    assert created["Type"] == "EXPORT" and created["Definition"] == {
        "RoleArn": ROLE, "S3UrlPrefix": out.as_uri()}
    job = _wait_job(client, app_id, created["Id"], export=True)
    assert job["JobStatus"] == "COMPLETED" and job["TotalProcessed"] == 5
    assert (job["TotalPieces"], job["CompletedPieces"]) == (1, 1)
    written = _exported(out / created["Id"])
    assert [e["Id"] for e in written] == [f"x{i:02d}" for i in range(5)]  # not the deleted one
    assert written[0]["Address"] == "x0@example.com" and written[0]["ApplicationId"] == app_id

    seg = client.create_segment(ApplicationId=app_id, WriteSegmentRequest={
        "Name": "d", "Dimensions": {"Demographic": {"Platform": {"Values": ["ios"]}}}})[
        "SegmentResponse"]
    asyncio.run(_add_members(api.settings.postgres_dsn, app_id, seg["Id"], ["x01", "x03"]))
    of_segment = client.create_export_job(ApplicationId=app_id, ExportJobRequest={
        "S3UrlPrefix": out.as_uri(), "RoleArn": ROLE, "SegmentId": seg["Id"],
        "SegmentVersion": 1})["ExportJobResponse"]
    job = _wait_job(client, app_id, of_segment["Id"], export=True)
    assert job["JobStatus"] == "COMPLETED" and job["TotalProcessed"] == 2
    assert [e["Id"] for e in _exported(out / of_segment["Id"])] == ["x01", "x03"]
    assert [j["Id"] for j in client.get_segment_export_jobs(
        ApplicationId=app_id, SegmentId=seg["Id"])["ExportJobsResponse"]["Item"]] == [
        of_segment["Id"]]
    assert [j["Id"] for j in client.get_export_jobs(ApplicationId=app_id)[
        "ExportJobsResponse"]["Item"]] == [of_segment["Id"], created["Id"]]
    with pytest.raises(client.exceptions.NotFoundException):
        client.create_export_job(ApplicationId=app_id, ExportJobRequest={
            "S3UrlPrefix": out.as_uri(), "RoleArn": ROLE, "SegmentId": seg["Id"],
            "SegmentVersion": 9})


class _SlowPublisher:
    """The real publisher, a little slower, so a test can stop a runner mid-job."""

    def __init__(self, inner: EventPublisher) -> None:
        self.inner = inner

    async def publish_commands(self, commands: list[dict[str, Any]]) -> None:
        await asyncio.sleep(0.01)
        await self.inner.publish_commands(commands)

    async def publish_control(self, changes: list[dict[str, Any]]) -> None:
        await self.inner.publish_control(changes)


async def test_a_restarted_runner_resumes_from_the_checkpoint(
    settings: Settings, control_dsn: str, tmp_path: Path,
) -> None:
    rows = 3000
    source = tmp_path / "big.csv"
    source.write_text(_numbers_csv(rows), encoding="utf-8")
    await ensure_topics(settings)
    pool = await asyncpg.create_pool(control_dsn, min_size=1, max_size=6)
    publisher = EventPublisher(settings, AvroCodec.default())
    await publisher.start()
    try:
        app, _ = await AppsRepository(pool).create_app("Big")
        repo = JobsRepository(pool)
        job = await repo.create(app.id, IMPORT, {"Format": "CSV", "S3Url": source.as_uri(),
                                                 "RegisterEndpoints": True})
        first = JobRunner(pool, _SlowPublisher(publisher), settings, checkpoint_every=50,
                          poll_seconds=0.05)
        first.start()
        deadline = time.monotonic() + 30
        while True:
            got = await repo.get(app.id, job.id)
            assert got is not None
            if got.progress.checkpoint >= 500:
                break
            assert time.monotonic() < deadline, got
            await asyncio.sleep(0.005)
        await first.stop()
        stopped = await repo.get(app.id, job.id)
        assert stopped is not None and stopped.status is JobStatus.PROCESSING
        assert 500 <= stopped.progress.checkpoint < rows

        second = JobRunner(pool, publisher, settings, checkpoint_every=50, poll_seconds=0.05)
        second.start()
        try:
            deadline = time.monotonic() + 60
            while True:
                done = await repo.get(app.id, job.id)
                assert done is not None
                if done.status in (JobStatus.COMPLETED, JobStatus.FAILED):
                    break
                assert time.monotonic() < deadline, done
                await asyncio.sleep(0.05)
        finally:
            await second.stop()
        assert done.status is JobStatus.COMPLETED
        assert done.progress.total_processed == rows and done.progress.total_failures == 0
        assert done.progress.checkpoint == rows

        commands = await _commands(settings, rows)
        ids = {c["command_id"] for c in commands if c["kind"] == "UPSERT"}
        assert ids == {f"import:{job.id}:0:{n}" for n in range(2, rows + 2)}  # every row
        resent = sum(1 for c in commands if c["kind"] == "UPSERT") - rows
        assert 0 <= resent <= 50  # at most the records after the last checkpoint
    finally:
        await publisher.stop()
        await pool.close()


def test_cli_import_with_wait(settings: Settings, control_dsn: str, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    from lodestar.cli import main

    for name, value in (("LODESTAR_POSTGRES_DSN", control_dsn),
                        ("LODESTAR_KAFKA_BOOTSTRAP", settings.kafka_bootstrap),
                        ("LODESTAR_TOPIC_PREFIX", settings.topic_prefix),
                        ("LODESTAR_PARTITIONS", str(settings.partitions)),
                        ("LODESTAR_DATA_DIR", str(settings.data_dir))):
        monkeypatch.setenv(name, value)

    async def make_app() -> str:
        pool = await asyncpg.create_pool(control_dsn, min_size=1, max_size=2)
        try:
            return (await AppsRepository(pool).create_app("Cli"))[0].id
        finally:
            await pool.close()

    app_id = asyncio.run(make_app())
    source = tmp_path / "people.csv"
    source.write_text("Id,ChannelType,Address\nc1,SMS,+15550001\nc2,FAX,+15550002\n",
                      encoding="utf-8")
    code = main(["import", str(source), "--app", app_id, "--segment-name", "From CLI",
                 "--wait"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"import job [0-9a-f]{32} created \(CSV from file://", out)
    assert "(From CLI), version 1" in out
    assert "COMPLETED: 1 rows imported, 1 failed, files 1/1" in out
    assert "people.csv: row 3: ChannelType: unknown ChannelType 'FAX'" in out

    assert main(["import", str(tmp_path / "people.txt"), "--app", app_id]) == 2
    assert "--format" in capsys.readouterr().err
    assert main(["import", "s3://bucket/x.csv", "--app", app_id]) == 1
    assert "does not reach Amazon S3" in capsys.readouterr().err


async def _seed_user_endpoints(dsn: str, app_id: str, user_id: str, n: int,
                               channel: str = "EMAIL") -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for i in range(n):
            endpoint = {"Id": f"{user_id}-{i}", "ApplicationId": app_id, "ChannelType": channel,
                        "Address": f"{user_id}{i}@example.com", "EndpointStatus": "ACTIVE",
                        "OptOut": "NONE", "User": {"UserId": user_id}}
            await conn.execute(
                "INSERT INTO endpoint_read_model (app_id, endpoint_id, endpoint, deleted, "
                "change_ts, user_id, channel_type) VALUES ($1, $2, $3::jsonb, false, 1, $4, $5)",
                app_id, endpoint["Id"], json.dumps(endpoint), user_id, channel)
    finally:
        await conn.close()


def _import_csv(api: Api, app_id: str, source: Path, **request: Any
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create a CSV import job of ``source`` (plus ``request`` fields) and wait for it:
    (the CreateImportJob answer, the finished job)."""
    client = api.admin()
    created = client.create_import_job(ApplicationId=app_id, ImportJobRequest={
        "Format": "CSV", "S3Url": source.as_uri(), "RoleArn": ROLE, **request})[
        "ImportJobResponse"]
    return created, _wait_job(client, app_id, created["Id"])


def test_imports_keep_a_user_at_15_endpoints(api: Api, app_id: str, tmp_path: Path) -> None:
    """13 endpoints in the read model: two more import, the third fails like
    UpdateEndpoint would; re-importing one the user holds and other users are fine."""
    asyncio.run(_seed_user_endpoints(api.settings.postgres_dsn, app_id, "big", 13))
    source = tmp_path / "users.csv"
    source.write_text(
        "Id,ChannelType,Address,User.UserId\n"
        "n1,EMAIL,n1@example.com,big\n"
        "n2,EMAIL,n2@example.com,big\n"
        "n3,EMAIL,n3@example.com,big\n"
        "big-0,EMAIL,big0@example.com,big\n"
        "o1,EMAIL,o1@example.com,other\n", encoding="utf-8")
    created, job = _import_csv(api, app_id, source)
    assert job["JobStatus"] == "COMPLETED", job
    assert (job["TotalProcessed"], job["TotalFailures"]) == (4, 1)
    assert job["Failures"] == [
        "users.csv: row 4: User.UserId: a user has at most 15 endpoints; user 'big' would "
        "have 16. Delete some with DeleteEndpoint first."]
    commands = asyncio.run(_commands(api.settings, 4))
    mine = [c for c in commands if c["command_id"].startswith(f"import:{created['Id']}:")]
    assert sorted(c["endpoint_id"] for c in mine if c["kind"] == "UPSERT") == [
        "big-0", "n1", "n2", "o1"]


def test_user_id_rows_add_all_the_users_endpoints(api: Api, app_id: str,
                                                  tmp_path: Path) -> None:
    """A row with only User.UserId adds every endpoint of that user: those in the read
    model and those the same file registered; a user without endpoints fails its row."""
    asyncio.run(_seed_user_endpoints(api.settings.postgres_dsn, app_id, "known", 2, "SMS"))
    source = tmp_path / "users.csv"
    source.write_text(
        "Id,ChannelType,Address,User.UserId\n"
        "n1,EMAIL,n1@example.com,newbie\n"
        ",,,known\n"
        ",,,newbie\n"
        ",,,ghost\n", encoding="utf-8")
    created, job = _import_csv(api, app_id, source, DefineSegment=True, SegmentName="By user")
    assert job["JobStatus"] == "COMPLETED", job
    assert (job["TotalProcessed"], job["TotalFailures"]) == (3, 1)
    assert job["Failures"] == [
        "users.csv: row 5: User.UserId: user 'ghost' has no endpoint in this app; add "
        "endpoints with this user ID before importing the user ID"]
    segment_id = created["Definition"]["SegmentId"]
    segment = api.admin().get_segment(ApplicationId=app_id, SegmentId=segment_id)[
        "SegmentResponse"]
    assert segment["ImportDefinition"]["Size"] == 4  # additions: n1 counts twice, as before
    assert segment["ImportDefinition"]["ChannelCounts"] == {"EMAIL": 2, "SMS": 2}
    commands = asyncio.run(_commands(api.settings, 5))
    mine = [c for c in commands if c["command_id"].startswith(f"import:{created['Id']}:")]
    adds = {c["command_id"]: c["endpoint_id"] for c in mine if c["kind"] == "ADD_TO_SEGMENT"}
    prefix = f"import:{created['Id']}:0"
    assert adds == {f"{prefix}:2:segment": "n1",
                    f"{prefix}:3:segment:known-0": "known-0",
                    f"{prefix}:3:segment:known-1": "known-1",
                    f"{prefix}:4:segment:n1": "n1"}
    assert [c["endpoint_id"] for c in mine if c["kind"] == "UPSERT"] == ["n1"]

    # without a segment to add them to, user rows fail and say what to do
    _, job = _import_csv(api, app_id, source)
    assert (job["TotalProcessed"], job["TotalFailures"]) == (1, 3)
    assert "this job defines no segment" in job["Failures"][0]


async def test_an_interrupted_export_resumes_after_its_last_whole_part(
    settings: Settings, control_dsn: str, tmp_path: Path,
) -> None:
    """A runner that died after part 0 (and midway through part 1) left its checkpoint;
    the next one keeps part 0 as it is and writes the rest."""
    from lodestar.control.jobs import EXPORT, Progress

    pool = await asyncpg.create_pool(control_dsn, min_size=1, max_size=4)
    try:
        app, _ = await AppsRepository(pool).create_app("Exports")
        await _seed_endpoints(control_dsn, app.id, 6)  # x00..x04 live, x05 deleted
        repo = JobsRepository(pool)
        out = tmp_path / "exports"
        job = await repo.create(app.id, EXPORT, {"S3UrlPrefix": out.as_uri()})
        directory = out / job.id
        directory.mkdir(parents=True)
        (directory / "part-00000.json").write_text("kept as written\n", encoding="utf-8")
        (directory / "part-00001.json").write_text('{"Id": "half', encoding="utf-8")
        (directory / "part-00001.tmp").write_text("partial", encoding="utf-8")
        await repo.save_progress(app.id, job.id, Progress(
            checkpoint=2, total_pieces=3, completed_pieces=1, total_processed=2,
            extra={"after": "x01"}))
        runner = JobRunner(pool, None, settings, export_file_rows=2, poll_seconds=0.05,
                           only=(app.id, job.id))
        assert await runner.run_pending()
        done = await repo.get(app.id, job.id)
        assert done is not None and done.status is JobStatus.COMPLETED, done
        assert (done.progress.total_processed, done.progress.completed_pieces) == (5, 3)
        assert sorted(p.name for p in directory.iterdir()) == [
            "part-00000.json", "part-00001.json", "part-00002.json"]
        assert (directory / "part-00000.json").read_text("utf-8") == "kept as written\n"
        written = [json.loads(line) for name in ("part-00001.json", "part-00002.json")
                   for line in (directory / name).read_text("utf-8").splitlines()]
        assert [e["Id"] for e in written] == ["x02", "x03", "x04"]
    finally:
        await pool.close()


async def _stop_midway(runner: JobRunner, repo: JobsRepository, app_id: str, job_id: str,
                       at_least: int) -> None:
    runner.start()
    deadline = time.monotonic() + 30
    while True:
        got = await repo.get(app_id, job_id)
        assert got is not None
        if got.progress.checkpoint >= at_least:
            break
        assert time.monotonic() < deadline, got
        await asyncio.sleep(0.005)
    await runner.stop()


@pytest.mark.parametrize("changed", [False, True])
async def test_a_resumed_http_import_checks_the_file_is_the_same(
    settings: Settings, control_dsn: str, http_root: tuple[Path, str], changed: bool,
) -> None:
    root, base = http_root
    rows = 2000
    (root / "big.csv").write_text(_numbers_csv(rows), encoding="utf-8")
    await ensure_topics(settings)
    pool = await asyncpg.create_pool(control_dsn, min_size=1, max_size=6)
    publisher = EventPublisher(settings, AvroCodec.default())
    await publisher.start()
    try:
        app, _ = await AppsRepository(pool).create_app("Http")
        repo = JobsRepository(pool)
        job = await repo.create(app.id, IMPORT, {"Format": "CSV", "S3Url": f"{base}/big.csv",
                                                 "RegisterEndpoints": True})
        await _stop_midway(JobRunner(pool, _SlowPublisher(publisher), settings,
                                     checkpoint_every=50, poll_seconds=0.05),
                           repo, app.id, job.id, 200)
        if changed:
            (root / "big.csv").write_text("Id,ChannelType,Address\nz1,SMS,+15559999999\n",
                                          encoding="utf-8")
        second = JobRunner(pool, publisher, settings, checkpoint_every=50, poll_seconds=0.05,
                           only=(app.id, job.id))
        assert await second.run_pending()
        done = await repo.get(app.id, job.id)
        assert done is not None
        if not changed:  # downloaded again, same bytes: it goes on from its checkpoint
            assert done.status is JobStatus.COMPLETED, done
            assert (done.progress.total_processed, done.progress.failed_pieces) == (rows, 0)
            return
        assert done.status is JobStatus.FAILED, done
        assert done.progress.failed_pieces == 1
        assert "changed since the job started reading it" in done.progress.failures[-1]
        assert 200 <= done.progress.total_processed < rows
    finally:
        await publisher.stop()
        await pool.close()
