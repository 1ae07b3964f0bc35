"""deploy/stack.py's pieces: settings, state file, generated files, the Kafka and
PostgreSQL probes (against fake servers on 127.0.0.1), process stopping, and the
command line. Nothing here starts Kafka or PostgreSQL."""

from __future__ import annotations

import base64
import contextlib
import http.server
import importlib.util
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "stack.py"


def _load_stack():
    spec = importlib.util.spec_from_file_location("lodestar_deploy_stack", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


stack = _load_stack()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(tmp_path: Path, **env: str):
    base = {"HOME": str(tmp_path / "home"), "LODESTAR_DATA_DIR": str(tmp_path / "data")}
    return stack.Config.from_env({**base, **env})


# --------------------------------------------------------------------------- settings


def test_config_defaults_follow_xdg_and_lodestar_defaults(tmp_path: Path) -> None:
    cfg = stack.Config.from_env({"HOME": "/home/u"})
    assert cfg.data_dir == Path("/home/u/.local/share/lodestar")
    assert cfg.cache_dir == Path("/home/u/.cache/lodestar")
    assert (cfg.kafka_port, cfg.controller_port, cfg.postgres_port) == (9092, 9093, 5433)
    assert cfg.kafka_version == stack.DEFAULT_KAFKA_VERSION
    assert cfg.kafka_bootstrap == "127.0.0.1:9092"
    assert cfg.postgres_dsn == "postgresql://lodestar:lodestar@127.0.0.1:5433/lodestar"
    assert cfg.clickhouse_dsn == "chdb:///home/u/.local/share/lodestar/clickhouse"
    assert cfg.external_kafka is None and cfg.external_postgres is None
    # The addresses Lodestar assumes when unset are what the stack serves by default.
    for name, value in stack.LODESTAR_DEFAULTS.items():
        assert cfg.client_env()[name] == value

    xdg = stack.Config.from_env(
        {"HOME": "/home/u", "XDG_DATA_HOME": "/x/data", "XDG_CACHE_HOME": "/x/cache"}
    )
    assert xdg.data_dir == Path("/x/data/lodestar")
    assert xdg.cache_dir == Path("/x/cache/lodestar")


def test_config_overrides_and_external_parts(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        LODESTAR_CACHE_DIR=str(tmp_path / "cache"),
        LODESTAR_KAFKA_VERSION="3.9.1",
        LODESTAR_KAFKA_PORT="19092",
        LODESTAR_POSTGRES_PORT="15433",
        LODESTAR_KAFKA_BOOTSTRAP="kafka.example:9092",
        LODESTAR_POSTGRES_DSN="postgresql://u:p@db.example/x",
        LODESTAR_CLICKHOUSE_DSN="http://ch.example:8123/default",
    )
    assert cfg.controller_port == 19093
    assert cfg.kafka_version == "3.9.1"
    assert cfg.kafka_home == tmp_path / "cache" / "kafka-3.9.1"
    assert cfg.kafka_bootstrap == "kafka.example:9092"
    assert cfg.postgres_dsn == "postgresql://u:p@db.example/x"
    assert cfg.client_env()["LODESTAR_CLICKHOUSE_DSN"] == "http://ch.example:8123/default"
    assert cfg.state_file == tmp_path / "data" / "stack" / "state.json"


@pytest.mark.parametrize("value", ["0", "70000", "x", "-1"])
def test_config_rejects_bad_ports(tmp_path: Path, value: str) -> None:
    with pytest.raises(stack.StackError, match="LODESTAR_POSTGRES_PORT"):
        config(tmp_path, LODESTAR_POSTGRES_PORT=value)


# --------------------------------------------------------------------------- state file


def test_state_file_missing_or_corrupt_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "stack" / "state.json"
    assert stack.load_state(path) == {}
    path.parent.mkdir()
    path.write_text("{not json")
    assert stack.load_state(path) == {}
    path.write_text("[1, 2]")
    assert stack.load_state(path) == {}


def test_state_file_records_and_forgets_parts(tmp_path: Path) -> None:
    path = tmp_path / "stack" / "state.json"
    stack.record(path, "kafka", {"pid": 10, "port": 9092})
    stack.record(path, "postgres", {"pid": 20, "port": 5433})
    assert stack.load_state(path) == {
        "kafka": {"pid": 10, "port": 9092},
        "postgres": {"pid": 20, "port": 5433},
    }
    stack.record(path, "kafka", None)
    stack.record(path, "kafka", None)  # forgetting twice is harmless
    assert json.loads(path.read_text()) == {"postgres": {"pid": 20, "port": 5433}}
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]  # no temp left


# --------------------------------------------------------------------------- generated files


def _pom_dependencies(pom: str) -> list[tuple[str, str, str]]:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.fromstring(pom)
    return [
        tuple(dep.find(f"m:{tag}", ns).text for tag in ("groupId", "artifactId", "version"))
        for dep in root.iterfind("m:dependencies/m:dependency", ns)
    ]


def test_pom_for_kafka_4_binds_slf4j_to_log4j2() -> None:
    deps = _pom_dependencies(stack.kafka_pom("4.4.0"))
    assert deps[0] == ("org.apache.kafka", "kafka_2.13", "4.4.0")
    artifacts = {a for _, a, _ in deps}
    assert {"log4j-slf4j-impl", "log4j-core"} <= artifacts
    assert "slf4j-reload4j" not in artifacts


def test_pom_for_kafka_3_binds_slf4j_to_reload4j() -> None:
    deps = _pom_dependencies(stack.kafka_pom("3.9.1"))
    assert deps == [
        ("org.apache.kafka", "kafka_2.13", "3.9.1"),
        ("org.slf4j", "slf4j-reload4j", stack.SLF4J_RELOAD4J_VERSION),
    ]


def test_pom_rejects_a_version_that_is_not_one() -> None:
    with pytest.raises(stack.StackError, match="LODESTAR_KAFKA_VERSION"):
        stack.kafka_pom("latest")


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key.strip(): value.strip() for key, value in pairs}


def test_server_properties_single_node_kraft_on_loopback(tmp_path: Path) -> None:
    cfg = config(tmp_path, LODESTAR_KAFKA_PORT="19092")
    props = _properties(stack.server_properties(cfg))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(tmp_path / "data" / "kafka")
    assert props["auto.create.topics.enable"] == "true"
    assert props["num.partitions"] == "8"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
    ):
        assert props[key] == "1", key


def test_server_properties_for_kafka_3_omit_4_only_settings(tmp_path: Path) -> None:
    props = _properties(stack.server_properties(config(tmp_path, LODESTAR_KAFKA_VERSION="3.9.1")))
    assert not [key for key in props if key.startswith("share.")]
    assert props["offsets.topic.replication.factor"] == "1"


@pytest.mark.parametrize(
    ("version", "file_name", "flag", "needle"),
    [
        ("4.4.0", "log4j2.properties", "-Dlog4j2.configurationFile=", "rootLogger.level = INFO"),
        ("3.9.1", "log4j.properties", "-Dlog4j.configuration=file:", "log4j.rootLogger=INFO, file"),
    ],
)
def test_log_config_writes_info_to_the_log_file(
    tmp_path: Path, version: str, file_name: str, flag: str, needle: str
) -> None:
    cfg = config(tmp_path, LODESTAR_KAFKA_VERSION=version)
    name, text, jvm_flag = stack.log_config(cfg)
    assert name == file_name
    assert needle in text
    assert str(cfg.logs_dir / "kafka.log") in text
    assert jvm_flag == flag + str(cfg.kafka_conf_dir / file_name)


def test_cluster_ids_are_kafka_uuids() -> None:
    ids = {stack.new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cid in ids:
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_pg_settings_listen_on_loopback_with_socket_in_data_dir(tmp_path: Path) -> None:
    cfg = config(tmp_path, LODESTAR_POSTGRES_PORT="15433")
    text = stack.pg_settings(cfg)
    assert "listen_addresses = '127.0.0.1'" in text
    assert "port = 15433" in text
    assert f"unix_socket_directories = '{cfg.pgdata}'" in text


# --------------------------------------------------------------------------- Kafka wire protocol


def test_api_versions_request_bytes() -> None:
    client = stack.CLIENT_ID.encode()
    header = struct.pack(">hhih", 18, 0, 7, len(client)) + client
    assert stack.api_versions_request(7) == struct.pack(">i", len(header)) + header


def test_metadata_request_bytes_ask_for_no_topics() -> None:
    client = stack.CLIENT_ID.encode()
    header = struct.pack(">hhih", 3, 4, 9, len(client)) + client
    body = struct.pack(">ib", 0, 0)  # empty topic array, allow_auto_topic_creation=false
    assert stack.metadata_request(9) == struct.pack(">i", len(header) + len(body)) + header + body


def api_versions_response(correlation_id: int, apis: dict[int, tuple[int, int]], error=0) -> bytes:
    body = struct.pack(">ihi", correlation_id, error, len(apis))
    body += b"".join(struct.pack(">hhh", k, lo, hi) for k, (lo, hi) in apis.items())
    return body


def _string(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">h", -1)
    return struct.pack(">h", len(value)) + value.encode()


def metadata_response(
    correlation_id: int, cluster_id: str | None, brokers: list[tuple[int, str, int]]
) -> bytes:
    body = struct.pack(">iii", correlation_id, 0, len(brokers))
    for node, host, port in brokers:
        body += struct.pack(">i", node) + _string(host) + struct.pack(">i", port) + _string(None)
    return body + _string(cluster_id) + struct.pack(">ii", 1, 0)  # controller id, no topics


BROKER_APIS = {0: (3, 12), 3: (0, 13), 18: (0, 4)}


def test_parse_api_versions_response() -> None:
    payload = api_versions_response(5, BROKER_APIS)
    assert stack.parse_api_versions_response(payload, 5) == BROKER_APIS


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (api_versions_response(6, BROKER_APIS), "correlation id 6"),
        (api_versions_response(5, BROKER_APIS, error=35), "error code 35"),
        (api_versions_response(5, BROKER_APIS)[:-3], "truncated"),
        (b"HTTP/1.1 400", "truncated|implausible|correlation"),
    ],
)
def test_parse_api_versions_response_rejects_bad_answers(payload: bytes, match: str) -> None:
    with pytest.raises(stack.KafkaProtocolError, match=match):
        stack.parse_api_versions_response(payload, 5)


def test_parse_metadata_response() -> None:
    payload = metadata_response(2, "abc", [(1, "127.0.0.1", 9092), (2, "b", 9093)])
    assert stack.parse_metadata_response(payload, 2) == (
        "abc",
        [(1, "127.0.0.1", 9092), (2, "b", 9093)],
    )
    assert stack.parse_metadata_response(metadata_response(2, None, []), 2) == (None, [])
    with pytest.raises(stack.KafkaProtocolError, match="truncated"):
        stack.parse_metadata_response(payload[:20], 2)


class FakeServer:
    """A TCP server on 127.0.0.1 answering each connection with ``handler(conn)``."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self.handler = handler
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                self.handler(conn)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[socket.socket], None]], FakeServer]]:
    servers: list[FakeServer] = []

    def start(handler: Callable[[socket.socket], None]) -> FakeServer:
        servers.append(FakeServer(handler))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _read_request(conn: socket.socket) -> bytes | None:
    head = conn.recv(4, socket.MSG_WAITALL)
    if len(head) < 4:
        return None
    (size,) = struct.unpack(">i", head)
    return conn.recv(size, socket.MSG_WAITALL)


def fake_broker(brokers_after: int = 0, cluster: str = "test-cluster"):
    """A handler speaking ApiVersions v0 and Metadata v4; lists no broker for the first
    ``brokers_after`` Metadata requests (a broker still starting)."""
    metadata_calls = []

    def handle(conn: socket.socket) -> None:
        while (request := _read_request(conn)) is not None:
            api_key, version, corr = struct.unpack_from(">hhi", request)
            if api_key == 18:
                assert version == 0
                body = api_versions_response(corr, BROKER_APIS)
            else:
                assert (api_key, version) == (3, 4)
                metadata_calls.append(corr)
                ready = len(metadata_calls) > brokers_after
                body = metadata_response(corr, cluster, [(1, "127.0.0.1", 9092)] if ready else [])
            conn.sendall(struct.pack(">i", len(body)) + body)

    return handle


def test_probe_kafka_against_a_fake_broker(serve) -> None:
    server = serve(fake_broker())
    info = stack.probe_kafka("127.0.0.1", server.port)
    assert info.cluster_id == "test-cluster"
    assert info.brokers == [(1, "127.0.0.1", 9092)]
    assert info.api_count == len(BROKER_APIS)


def test_wait_for_kafka_waits_until_the_broker_lists_itself(serve) -> None:
    server = serve(fake_broker(brokers_after=2))
    info = stack.wait_for_kafka("127.0.0.1", server.port, timeout=10)
    assert info.brokers


def test_wait_for_kafka_times_out_on_a_silent_port(serve) -> None:
    server = serve(lambda conn: None)  # accepts, then hangs up
    with pytest.raises(stack.StackError, match="no answer from Kafka"):
        stack.wait_for_kafka("127.0.0.1", server.port, timeout=1.2)


def test_probe_kafka_refuses_something_that_is_not_kafka(serve) -> None:
    def http(conn: socket.socket) -> None:
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    server = serve(http)
    with pytest.raises(stack.KafkaProtocolError):
        stack.probe_kafka("127.0.0.1", server.port)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:9092", ("127.0.0.1", 9092)),
        ("a:1,b:2", ("a", 1)),
        ("PLAINTEXT://kafka:29092", ("kafka", 29092)),
        ("kafka", ("kafka", 9092)),
        ("postgresql://u:p@db:5433/x", ("db", 5433)),
        ("postgresql://u:p@db/x", ("db", 9092)),
        ("[::1]:9093", ("::1", 9093)),
    ],
)
def test_split_address(address: str, expected: tuple[str, int]) -> None:
    assert stack.split_address(address, 9092) == expected


# --------------------------------------------------------------------------- PostgreSQL, ClickHouse


def test_pg_answers_speaks_the_ssl_request(serve) -> None:
    seen: list[bytes] = []

    def postgres(conn: socket.socket) -> None:
        seen.append(conn.recv(8, socket.MSG_WAITALL))
        conn.sendall(b"N")

    server = serve(postgres)
    assert stack.pg_answers("127.0.0.1", server.port)
    assert seen == [struct.pack(">ii", 8, 80877103)]
    assert not stack.pg_answers("127.0.0.1", free_port())


def test_untraversable_lists_closed_ancestors(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    target = closed / "open" / "postgres"
    target.mkdir(parents=True)
    closed.chmod(0o700)
    (closed / "open").chmod(0o755)
    someone_else = os.getuid() + 4242
    found = stack.untraversable(target, someone_else)
    assert closed in found and closed / "open" not in found
    assert closed not in stack.untraversable(target, os.stat(closed).st_uid)  # its owner


class _Ping(http.server.BaseHTTPRequestHandler):
    answer = b"Ok.\n"

    def do_GET(self) -> None:
        body = self.answer if self.path == "/ping" else b"nope"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize(("answer", "ok"), [(b"Ok.\n", True), (b"Hello", False)])
def test_clickhouse_status_pings_a_server(tmp_path: Path, answer: bytes, ok: bool, capsys) -> None:
    handler = type("Ping", (_Ping,), {"answer": answer})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        dsn = f"http://u:secret@127.0.0.1:{server.server_port}/default"
        assert stack.clickhouse_status(config(tmp_path, LODESTAR_CLICKHOUSE_DSN=dsn)) is ok
    finally:
        server.shutdown()
        server.server_close()
    line = capsys.readouterr().out
    assert "secret" not in line
    assert ("answers" in line) is ok


def test_clickhouse_status_embedded_needs_nothing(tmp_path: Path, capsys) -> None:
    assert stack.clickhouse_status(config(tmp_path))
    assert f"chdb://{tmp_path / 'data' / 'clickhouse'}" in capsys.readouterr().out


# --------------------------------------------------------------------------- refusing foreign ports


@pytest.fixture
def foreign_listener() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_kafka_up_refuses_a_port_held_by_someone_else(tmp_path: Path, foreign_listener) -> None:
    cfg = config(tmp_path, LODESTAR_KAFKA_PORT=str(foreign_listener))
    with pytest.raises(stack.StackError, match=f"port {foreign_listener} is held"):
        stack.kafka_up(cfg)
    assert stack.load_state(cfg.state_file) == {}


def test_postgres_up_refuses_a_port_held_by_someone_else(tmp_path: Path, foreign_listener) -> None:
    cfg = config(tmp_path, LODESTAR_POSTGRES_PORT=str(foreign_listener))
    with pytest.raises(stack.StackError, match=f"port {foreign_listener} is held"):
        stack.postgres_up(cfg)
    assert not cfg.pgdata.exists()


def test_external_kafka_that_does_not_answer_fails_up(tmp_path: Path) -> None:
    cfg = config(tmp_path, LODESTAR_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}")
    with pytest.raises(stack.StackError, match="LODESTAR_KAFKA_BOOTSTRAP"):
        stack.kafka_up(cfg)


# --------------------------------------------------------------------------- processes


def _spawn(script: str) -> subprocess.Popen:
    return subprocess.Popen(["sh", "-c", script], start_new_session=True)


def test_stop_group_terminates_the_whole_group() -> None:
    proc = _spawn("sleep 60 & sleep 60 & wait")
    time.sleep(0.2)
    assert stack.group_alive(proc.pid)
    assert stack.stop_group(proc.pid, timeout=5) is False  # stopped by SIGTERM
    proc.wait(5)
    assert not stack.group_alive(proc.pid)


def test_stop_group_kills_what_ignores_sigterm() -> None:
    proc = _spawn("trap '' TERM; sleep 60 & wait; sleep 60")
    time.sleep(0.2)
    assert stack.stop_group(proc.pid, timeout=0.5) is True  # had to SIGKILL
    assert proc.wait(5) == -signal.SIGKILL
    assert not stack.group_alive(proc.pid)


def test_pid_alive_treats_zombies_and_nonsense_as_dead() -> None:
    assert stack.pid_alive(os.getpid())
    assert not stack.pid_alive(None) and not stack.pid_alive(0)
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 5
    while stack.pid_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # not reaped yet: a zombie
    assert not stack.pid_alive(child.pid)
    child.wait()


def test_our_kafka_pid_ignores_a_recorded_pid_that_is_not_our_broker(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert stack.our_kafka_pid(cfg, {"kafka": {"pid": os.getpid()}}) is None
    assert stack.our_kafka_pid(cfg, {}) is None


# --------------------------------------------------------------------------- migrations


def _fake_python(tmp_path: Path, script: str) -> str:
    path = tmp_path / "python"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize(
    ("script", "ok", "said"),
    [
        ('[ "$1" = -c ] && exit 3\nexit 0\n', True, "has no `python -m lodestar`"),
        (
            '[ "$1" = -c ] && exit 0\necho "lodestar: error: invalid choice: \'migrate\'" >&2\n'
            "exit 2\n",
            True,
            "no `migrate` command yet",
        ),
        ('[ "$1" = -c ] && exit 0\necho "PostgreSQL: 2 migration(s) applied"\n', True, "2 migr"),
        ('[ "$1" = -c ] && exit 0\necho "connection refused" >&2\nexit 1\n', False, "refused"),
    ],
)
def test_migrate_runs_or_explains_why_not(
    tmp_path: Path, monkeypatch, capsys, script: str, ok: bool, said: str
) -> None:
    monkeypatch.setattr(stack, "lodestar_python", lambda: _fake_python(tmp_path, script))
    assert stack.migrate(config(tmp_path)) is ok
    assert said in capsys.readouterr().out


def test_migrate_without_lodestar_says_how(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(stack, "lodestar_python", lambda: None)
    assert stack.migrate(config(tmp_path)) is True
    assert "lodestar migrate" in capsys.readouterr().out


# --------------------------------------------------------------------------- command line


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "LODESTAR_DATA_DIR": str(tmp_path / "data"),
        "LODESTAR_KAFKA_PORT": str(free_port()),
        "LODESTAR_POSTGRES_PORT": str(free_port()),
        **env,
    }
    return subprocess.run(
        [str(ROOT / "deploy" / "stack"), *args],
        env=full_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_help_lists_every_command(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "--help")
    assert done.returncode == 0
    for command in ("up", "down", "status", "logs"):
        assert f"    {command} " in done.stdout


def test_status_of_a_stopped_stack_fails_with_one_line_per_part(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "status")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["kafka", "stopped"],
        ["postgres", "stopped"],
        ["clickhouse", "embedded"],
    ]


def test_status_reports_external_parts(tmp_path: Path, serve) -> None:
    kafka = serve(fake_broker())
    postgres = serve(lambda conn: (conn.recv(8, socket.MSG_WAITALL), conn.sendall(b"S")))
    done = run_cli(
        tmp_path, "status",
        LODESTAR_KAFKA_BOOTSTRAP=f"127.0.0.1:{kafka.port}",
        LODESTAR_POSTGRES_DSN=f"postgresql://u:p@127.0.0.1:{postgres.port}/x",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"kafka       external  127.0.0.1:{kafka.port}" in done.stdout
    assert "cluster test-cluster" in done.stdout
    assert f"postgres    external  127.0.0.1:{postgres.port}  answers" in done.stdout


def test_down_with_nothing_started_is_harmless(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "down")
    assert done.returncode == 0
    assert "kafka       not started by deploy/stack" in done.stdout


def test_down_forgets_parts_whose_process_is_gone(tmp_path: Path) -> None:
    state_file = tmp_path / "data" / "stack" / "state.json"
    stack.save_state(state_file, {"kafka": {"pid": 2**22 + 7, "port": 1}})
    done = run_cli(tmp_path, "down")
    assert done.returncode == 0
    assert "kafka       not running" in done.stdout
    assert stack.load_state(state_file) == {}


def test_logs_prints_the_tail(tmp_path: Path) -> None:
    logs = tmp_path / "data" / "stack" / "logs"
    logs.mkdir(parents=True)
    (logs / "postgres.log").write_text("".join(f"line {i}\n" for i in range(100)))
    done = run_cli(tmp_path, "logs", "postgres", "-n", "3")
    assert done.returncode == 0
    assert done.stdout.splitlines()[-3:] == ["line 97", "line 98", "line 99"]


def test_a_running_part_is_not_silently_moved_to_another_port() -> None:
    state = {"kafka": {"pid": 1, "port": 9092}}
    stack.refuse_port_change("kafka", state, 9092, "LODESTAR_KAFKA_PORT")
    stack.refuse_port_change("postgres", state, 5433, "LODESTAR_POSTGRES_PORT")
    with pytest.raises(stack.StackError, match=r"running on port 9092.*deploy/stack down"):
        stack.refuse_port_change("kafka", state, 19092, "LODESTAR_KAFKA_PORT")


def test_tail_shows_the_last_lines_written_since_an_offset(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("old 1\nold 2\n")
    offset = stack.log_size(log)
    with log.open("a") as f:
        f.write("new 1\nnew 2\nnew 3\n")
    assert stack.tail(log, 2) == "new 2\nnew 3"
    assert stack.tail(log, 10, since=offset) == "new 1\nnew 2\nnew 3"
    assert stack.tail(log, 10, since=stack.log_size(log)) == "(nothing logged)"
    assert "no log at" in stack.tail(tmp_path / "missing.log")
