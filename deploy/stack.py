#!/usr/bin/env python3
"""Lodestar's local stack: Kafka (KRaft, single node) and PostgreSQL on 127.0.0.1.

    deploy/stack up | down | status | logs <part>

Standard library only: this runs before any virtualenv exists. Kafka comes from
the Maven Central jars (resolved once into the cache dir), PostgreSQL from the
machine's binaries (Debian's ``postgresql`` package, installed with apt-get when
missing and we are root). ClickHouse needs no process: Lodestar embeds chdb
unless ``LODESTAR_CLICKHOUSE_DSN`` names a server. Everything ``up`` starts is
recorded in ``<data>/stack/state.json``; ``down`` stops exactly that.
See docs/local-stack.md.
"""

from __future__ import annotations

import argparse
import base64
import glob
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

DEFAULT_KAFKA_VERSION = "4.4.0"
DEFAULT_KAFKA_PORT = 9092
DEFAULT_POSTGRES_PORT = 5433
DEFAULT_KAFKA_HEAP = "768m"
LOG4J2_VERSION = "2.25.5"  # log4j 2 binding for Kafka 4.x (its own log4j-core version)
SLF4J_RELOAD4J_VERSION = "1.7.36"  # log4j 1 binding for Kafka 3.x
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
# What Lodestar assumes when these are unset (lodestar.settings); `up` prints exports otherwise.
LODESTAR_DEFAULTS = {
    "LODESTAR_KAFKA_BOOTSTRAP": f"127.0.0.1:{DEFAULT_KAFKA_PORT}",
    "LODESTAR_POSTGRES_DSN": f"postgresql://lodestar:lodestar@127.0.0.1:{DEFAULT_POSTGRES_PORT}/lodestar",
}
PG_USER = "postgres"  # OS user owning the cluster when we run as root; also its superuser

KAFKA_START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
CLIENT_ID = "lodestar-stack"


class StackError(Exception):
    """A part could not be started or stopped; the message says why and what to do."""


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Config:
    """The stack's settings, resolved once from the environment."""

    data_dir: Path
    cache_dir: Path
    kafka_version: str
    kafka_port: int
    controller_port: int
    kafka_heap: str
    postgres_port: int
    external_kafka: str | None  # LODESTAR_KAFKA_BOOTSTRAP: use it, start nothing
    external_postgres: str | None  # LODESTAR_POSTGRES_DSN: use it, start nothing
    clickhouse_dsn: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        def get(name: str) -> str | None:
            return env.get(name, "").strip() or None

        home = Path(env.get("HOME") or Path.home())
        data = get("LODESTAR_DATA_DIR") or str(
            Path(get("XDG_DATA_HOME") or home / ".local" / "share") / "lodestar"
        )
        cache = get("LODESTAR_CACHE_DIR") or str(
            Path(get("XDG_CACHE_HOME") or home / ".cache") / "lodestar"
        )
        data_dir = Path(data).expanduser().absolute()
        kafka_port = _port(get, "LODESTAR_KAFKA_PORT", DEFAULT_KAFKA_PORT)
        return cls(
            data_dir=data_dir,
            cache_dir=Path(cache).expanduser().absolute(),
            kafka_version=get("LODESTAR_KAFKA_VERSION") or DEFAULT_KAFKA_VERSION,
            kafka_port=kafka_port,
            controller_port=_port(get, "LODESTAR_KAFKA_CONTROLLER_PORT", kafka_port + 1),
            kafka_heap=get("LODESTAR_KAFKA_HEAP") or DEFAULT_KAFKA_HEAP,
            postgres_port=_port(get, "LODESTAR_POSTGRES_PORT", DEFAULT_POSTGRES_PORT),
            external_kafka=get("LODESTAR_KAFKA_BOOTSTRAP"),
            external_postgres=get("LODESTAR_POSTGRES_DSN"),
            clickhouse_dsn=get("LODESTAR_CLICKHOUSE_DSN") or f"chdb://{data_dir / 'clickhouse'}",
        )

    # Where things live.
    @property
    def stack_dir(self) -> Path:
        return self.data_dir / "stack"

    @property
    def state_file(self) -> Path:
        return self.stack_dir / "state.json"

    @property
    def logs_dir(self) -> Path:
        return self.stack_dir / "logs"

    @property
    def kafka_conf_dir(self) -> Path:
        return self.stack_dir / "kafka"

    @property
    def kafka_log_dir(self) -> Path:
        return self.data_dir / "kafka"

    @property
    def kafka_home(self) -> Path:
        return self.cache_dir / f"kafka-{self.kafka_version}"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    # Addresses Lodestar uses.
    @property
    def kafka_bootstrap(self) -> str:
        return self.external_kafka or f"127.0.0.1:{self.kafka_port}"

    @property
    def postgres_dsn(self) -> str:
        return self.external_postgres or (
            f"postgresql://lodestar:lodestar@127.0.0.1:{self.postgres_port}/lodestar"
        )

    def client_env(self) -> dict[str, str]:
        """The ``LODESTAR_*`` variables that point Lodestar at this stack."""
        return {
            "LODESTAR_DATA_DIR": str(self.data_dir),
            "LODESTAR_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "LODESTAR_POSTGRES_DSN": self.postgres_dsn,
            "LODESTAR_CLICKHOUSE_DSN": self.clickhouse_dsn,
        }


def _port(get, name: str, default: int) -> int:
    raw = get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise StackError(f"{name} must be a TCP port number, got {raw!r}")
    return int(raw)


# --------------------------------------------------------------------------- state file


def load_state(path: Path) -> dict:
    """What ``up`` recorded: ``{part: {"pid": …, "port": …, …}}``; {} if absent or unreadable."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def save_state(path: Path, state: dict) -> None:
    """Write ``state`` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def record(path: Path, part: str, entry: dict | None) -> None:
    """Set (or with ``None`` remove) one part's entry in the state file."""
    state = load_state(path)
    if entry is None:
        state.pop(part, None)
    else:
        state[part] = entry
    save_state(path, state)


# --------------------------------------------------------------------------- processes


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], pgrp [2])."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def pid_alive(pid: int | None) -> bool:
    """True when ``pid`` is a live process (a zombie counts as dead)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    stat = _proc_stat(pid)
    return stat is None or stat[0] != "Z"


def cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def group_alive(pgid: int) -> bool:
    """True while any live (non-zombie) process is in process group ``pgid``."""
    if not Path("/proc/self/stat").exists():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat and stat[0] != "Z" and int(stat[2]) == pgid:
                return True
    return False


def stop_group(pgid: int, timeout: float = STOP_TIMEOUT) -> bool:
    """SIGTERM the process group, wait, SIGKILL after ``timeout``; True if it had to kill."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return False
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    while group_alive(pgid):
        time.sleep(0.1)
    return True


def wait_reaped(pid: int, timeout: float = 5.0) -> None:
    """Wait (briefly) until a dead process has also left the process table."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def refuse_port_change(part: str, state: dict, port: int, variable: str) -> None:
    """Raise when ``part`` runs on another port than the one now configured."""
    running = state.get(part, {}).get("port")
    if running and running != port:
        raise StackError(
            f"{part} is running on port {running}, not {variable}={port}: "
            "run `deploy/stack down` first to move it"
        )


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def tail(path: Path, lines: int = 40, since: int = 0) -> str:
    """The last ``lines`` lines of ``path``, only from byte ``since`` on."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(since, f.tell() - 256 * 1024))
            data = f.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(data.splitlines()[-lines:]) or "(nothing logged)"


def say(part: str, message: str) -> None:
    print(f"{part:<11} {message}", flush=True)


def apt_install(*packages: str) -> None:
    """Install Debian packages (root only); raise StackError naming them otherwise."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise StackError(f"install {' '.join(packages)} (e.g. sudo apt-get install {packages[0]})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"installing {' '.join(packages)} with apt-get …", flush=True)
    for cmd in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
    ):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode:
            raise StackError(f"{' '.join(cmd)} failed:\n{(done.stdout + done.stderr)[-3000:]}")


def require(command: str, debian_package: str) -> str:
    """Path of ``command``, installing its Debian package first if it is missing."""
    found = shutil.which(command)
    if not found:
        apt_install(debian_package)
        found = shutil.which(command)
    if not found:
        raise StackError(f"{command} not found even after installing {debian_package}")
    return found


# --------------------------------------------------------------------------- Kafka wire protocol

API_METADATA = 3
API_VERSIONS = 18
METADATA_VERSION = 4  # the oldest Metadata version Kafka 4.x still answers; 3.x does too


class KafkaProtocolError(Exception):
    """The peer did not answer like a Kafka broker."""


def _request(api_key: int, api_version: int, correlation_id: int, body: bytes = b"") -> bytes:
    """A size-prefixed request with header v1 (api key, version, correlation id, client id)."""
    client = CLIENT_ID.encode()
    header = struct.pack(">hhih", api_key, api_version, correlation_id, len(client)) + client
    return struct.pack(">i", len(header) + len(body)) + header + body


def api_versions_request(correlation_id: int) -> bytes:
    """ApiVersions v0: every broker answers it, whatever its version."""
    return _request(API_VERSIONS, 0, correlation_id)


def parse_api_versions_response(payload: bytes, correlation_id: int) -> dict[int, tuple[int, int]]:
    """``{api_key: (min_version, max_version)}`` from an ApiVersions v0 response body."""
    try:
        corr, error, count = struct.unpack_from(">ihi", payload, 0)
        if corr != correlation_id:
            raise KafkaProtocolError(f"correlation id {corr}, expected {correlation_id}")
        if error:
            raise KafkaProtocolError(f"ApiVersions answered error code {error}")
        if not 0 <= count <= 1000:
            raise KafkaProtocolError(f"implausible ApiVersions count {count}")
        return {
            key: (low, high)
            for key, low, high in (
                struct.unpack_from(">hhh", payload, 10 + 6 * i) for i in range(count)
            )
        }
    except struct.error as exc:
        raise KafkaProtocolError(f"truncated ApiVersions response: {exc}") from None


def metadata_request(correlation_id: int) -> bytes:
    """Metadata v4 asking for no topics (empty array) and no auto-creation."""
    return _request(API_METADATA, METADATA_VERSION, correlation_id, struct.pack(">ib", 0, 0))


def parse_metadata_response(
    payload: bytes, correlation_id: int
) -> tuple[str | None, list[tuple[int, str, int]]]:
    """``(cluster_id, [(node_id, host, port), …])`` from a Metadata v4 response body."""

    def string(offset: int) -> tuple[str | None, int]:
        (length,) = struct.unpack_from(">h", payload, offset)
        offset += 2
        if length < 0:
            return None, offset
        return payload[offset : offset + length].decode(), offset + length

    try:
        corr, _throttle, count = struct.unpack_from(">iii", payload, 0)
        if corr != correlation_id:
            raise KafkaProtocolError(f"correlation id {corr}, expected {correlation_id}")
        offset, brokers = 12, []
        for _ in range(count):
            (node,) = struct.unpack_from(">i", payload, offset)
            host, offset = string(offset + 4)
            (port,) = struct.unpack_from(">i", payload, offset)
            _rack, offset = string(offset + 4)
            brokers.append((node, host or "", port))
        cluster_id, offset = string(offset)
        return cluster_id, brokers
    except struct.error as exc:
        raise KafkaProtocolError(f"truncated Metadata response: {exc}") from None


def _exchange(sock: socket.socket, request: bytes) -> bytes:
    sock.sendall(request)
    (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
    if not 0 < size < 64 * 1024 * 1024:
        raise KafkaProtocolError(f"implausible response size {size}")
    return _recv_exactly(sock, size)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(n - got)
        if not chunk:
            raise KafkaProtocolError("connection closed before a full response")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class KafkaInfo:
    api_count: int
    cluster_id: str | None
    brokers: list[tuple[int, str, int]]


def probe_kafka(host: str, port: int, timeout: float = 3.0) -> KafkaInfo:
    """Ask host:port ApiVersions, then Metadata; raise OSError/KafkaProtocolError if it can't."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        apis = parse_api_versions_response(_exchange(sock, api_versions_request(1)), 1)
        low, high = apis.get(API_METADATA, (-1, -1))
        if not low <= METADATA_VERSION <= high:
            raise KafkaProtocolError(f"broker does not serve Metadata v{METADATA_VERSION}")
        cluster, brokers = parse_metadata_response(_exchange(sock, metadata_request(2)), 2)
        return KafkaInfo(len(apis), cluster, brokers)


def split_address(address: str, default_port: int) -> tuple[str, int]:
    """``host:port`` of the first entry of a bootstrap list or a URL's netloc."""
    first = address.split(",")[0].strip()
    if "://" in first:
        first = first.split("://", 1)[1]
    first = first.rsplit("@", 1)[-1].split("/", 1)[0]
    host, sep, port = first.rpartition(":")
    if not sep or not port.isdigit():
        return first.strip("[]") or "127.0.0.1", default_port
    return host.strip("[]") or "127.0.0.1", int(port)


# --------------------------------------------------------------------------- Kafka files


def kafka_major(version: str) -> int:
    head = version.split(".", 1)[0]
    if not head.isdigit():
        raise StackError(f"LODESTAR_KAFKA_VERSION must look like 4.1.0, got {version!r}")
    return int(head)


def kafka_pom(version: str) -> str:
    """A pom whose runtime dependencies are a Kafka broker and an slf4j binding for its logs."""
    if kafka_major(version) >= 4:  # Kafka 4 logs through log4j 2
        logging = [
            ("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J2_VERSION),
            ("org.apache.logging.log4j", "log4j-core", LOG4J2_VERSION),
        ]
    else:  # Kafka 3 logs through reload4j (log4j 1 API)
        logging = [("org.slf4j", "slf4j-reload4j", SLF4J_RELOAD4J_VERSION)]
    deps = [("org.apache.kafka", "kafka_2.13", version), *logging]
    rows = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>"
        for g, a, v in deps
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by deploy/stack.py: the jars of a Kafka {version} broker. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.lodestar.stack</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
{rows}
  </dependencies>
</project>
"""


def server_properties(cfg: Config) -> str:
    """KRaft combined broker+controller, one node, everything on 127.0.0.1."""
    broker = f"127.0.0.1:{cfg.kafka_port}"
    lines = [
        "# Generated by deploy/stack.py on every `up`; edit the script, not this file.",
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{cfg.controller_port}",
        f"listeners=PLAINTEXT://{broker},CONTROLLER://127.0.0.1:{cfg.controller_port}",
        f"advertised.listeners=PLAINTEXT://{broker}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        f"log.dirs={cfg.kafka_log_dir}",
        "auto.create.topics.enable=true",
        "num.partitions=8",
        "default.replication.factor=1",
        "min.insync.replicas=1",
        "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "log.retention.hours=168",
    ]
    if kafka_major(cfg.kafka_version) >= 4:
        lines += [
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
        ]
    return "\n".join(lines) + "\n"


def log_config(cfg: Config) -> tuple[str, str, str]:
    """``(file name, contents, JVM flag)`` of a logging config writing INFO to kafka.log."""
    log = cfg.logs_dir / "kafka.log"
    pattern = "[%d] %p %m (%c)%n"
    if kafka_major(cfg.kafka_version) >= 4:
        name = "log4j2.properties"
        # shutdownHook = disable: keep logging until Kafka's own shutdown hook has finished.
        text = f"""status = warn
shutdownHook = disable
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {log}
appender.file.filePattern = {log}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = {pattern}
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 10MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 5
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""
        flag = f"-Dlog4j2.configurationFile={cfg.kafka_conf_dir / name}"
    else:
        name = "log4j.properties"
        text = f"""log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File={log}
log4j.appender.file.MaxFileSize=10MB
log4j.appender.file.MaxBackupIndex=5
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern={pattern}
log4j.logger.kafka.request.logger=WARN
"""
        flag = f"-Dlog4j.configuration=file:{cfg.kafka_conf_dir / name}"
    return name, text, flag


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not starting '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def kafka_command(cfg: Config, *args: str, heap: bool = False) -> list[str]:
    java = require("java", "default-jre-headless")
    _, _, log_flag = log_config(cfg)
    jvm = [f"-Xmx{cfg.kafka_heap}", "-XX:+ExitOnOutOfMemoryError"] if heap else []
    return [
        java, *jvm, "-Djava.awt.headless=true", f"-Dkafka.logs.dir={cfg.logs_dir}", log_flag,
        "-cp", f"{cfg.kafka_home / 'libs'}/*", *args,
    ]  # fmt: skip


# --------------------------------------------------------------------------- Kafka lifecycle


def ensure_kafka_libs(cfg: Config) -> Path:
    """Resolve the broker's jars from Maven Central once into ``<cache>/kafka-<v>/libs``."""
    libs = cfg.kafka_home / "libs"
    if (libs / f"kafka_2.13-{cfg.kafka_version}.jar").exists():
        return libs
    mvn = require("mvn", "maven")
    cfg.kafka_home.mkdir(parents=True, exist_ok=True)
    (cfg.kafka_home / "pom.xml").write_text(kafka_pom(cfg.kafka_version))
    partial = cfg.kafka_home / "libs.partial"
    shutil.rmtree(partial, ignore_errors=True)
    log_path = cfg.kafka_home / "mvn.log"
    say("kafka", f"resolving Kafka {cfg.kafka_version} jars from Maven Central (once) …")
    started, downloads = time.monotonic(), 0
    cmd = [
        mvn, "-B", "-f", str(cfg.kafka_home / "pom.xml"),
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={partial}",
    ]  # fmt: skip
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if "Downloaded from" in line:
                downloads += 1
                if downloads % 25 == 0:
                    say("kafka", f"… {downloads} files downloaded")
        code = proc.wait()
    if code or not (partial / f"kafka_2.13-{cfg.kafka_version}.jar").exists():
        raise StackError(
            f"Maven could not resolve Kafka {cfg.kafka_version} (log: {log_path}):\n"
            + tail(log_path, 30)
        )
    shutil.rmtree(libs, ignore_errors=True)
    partial.rename(libs)
    jars = len(list(libs.glob("*.jar")))
    took = time.monotonic() - started
    say("kafka", f"{jars} jars in {libs} ({downloads} downloads, {took:.0f}s)")
    return libs


def our_kafka_pid(cfg: Config, state: dict) -> int | None:
    """The pid of the broker ``up`` recorded, if that process is still our broker."""
    pid = state.get("kafka", {}).get("pid")
    props = str(cfg.kafka_conf_dir / "server.properties")
    if pid_alive(pid) and "kafka.Kafka" in cmdline(pid) and props in cmdline(pid):
        return pid
    return None


def write_kafka_config(cfg: Config) -> Path:
    cfg.kafka_conf_dir.mkdir(parents=True, exist_ok=True)
    cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    props = cfg.kafka_conf_dir / "server.properties"
    props.write_text(server_properties(cfg))
    name, text, _ = log_config(cfg)
    (cfg.kafka_conf_dir / name).write_text(text)
    return props


def format_kafka_storage(cfg: Config, props: Path) -> None:
    """Format the log dir on first run with the cluster id kept in the data dir."""
    if (cfg.kafka_log_dir / "meta.properties").exists():
        return
    id_file = cfg.kafka_conf_dir / "cluster-id"
    if not id_file.exists():
        id_file.write_text(new_cluster_id() + "\n")
    cluster_id = id_file.read_text().strip()
    say("kafka", f"formatting {cfg.kafka_log_dir} (cluster id {cluster_id})")
    cmd = kafka_command(
        cfg, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props),
        "--ignore-formatted",
    )  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise StackError(f"formatting Kafka storage failed:\n{(done.stdout + done.stderr)[-3000:]}")


def wait_for_kafka(
    host: str, port: int, timeout: float, proc: subprocess.Popen | None = None
) -> KafkaInfo:
    """Poll until the broker answers Metadata listing itself; raise StackError on timeout."""
    deadline, last = time.monotonic() + timeout, "no answer yet"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"the broker exited with code {proc.returncode}")
        try:
            info = probe_kafka(host, port)
            if info.brokers:
                return info
            last = "Metadata lists no broker yet"
        except (OSError, KafkaProtocolError) as exc:
            last = str(exc) or type(exc).__name__
        time.sleep(0.5)
    raise StackError(f"no answer from Kafka on {host}:{port} after {timeout:.0f}s ({last})")


KAFKA_OPEN_FILES = 262_144  # a broker keeps ~3 files open per partition


def raise_open_files_limit() -> None:
    """In the broker's process, before exec: allow many open files (root may raise the
    hard limit; others get their hard limit). Every partition holds open segment files."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in (max(hard, KAFKA_OPEN_FILES), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
            return
        except (ValueError, OSError):
            continue


def kafka_up(cfg: Config) -> None:
    if cfg.external_kafka:
        host, port = split_address(cfg.external_kafka, 9092)
        try:
            info = probe_kafka(host, port)
        except (OSError, KafkaProtocolError) as exc:
            raise StackError(
                f"LODESTAR_KAFKA_BOOTSTRAP={cfg.external_kafka} does not answer: {exc}"
            ) from None
        say("kafka", f"external  {host}:{port}  answers (cluster {info.cluster_id}); not started")
        return
    address = f"127.0.0.1:{cfg.kafka_port}"
    state = load_state(cfg.state_file)
    pid = our_kafka_pid(cfg, state)
    if pid:
        refuse_port_change("kafka", state, cfg.kafka_port, "LODESTAR_KAFKA_PORT")
        info = wait_for_kafka("127.0.0.1", cfg.kafka_port, KAFKA_START_TIMEOUT)
        say("kafka", f"already running  {address}  pid {pid}  (cluster {info.cluster_id})")
        return
    for port in (cfg.kafka_port, cfg.controller_port):
        if port_open("127.0.0.1", port):
            raise StackError(
                f"port {port} is held by a process deploy/stack did not start; stop it, or "
                "choose LODESTAR_KAFKA_PORT / LODESTAR_KAFKA_CONTROLLER_PORT, or use that "
                "broker with LODESTAR_KAFKA_BOOTSTRAP"
            )
    ensure_kafka_libs(cfg)
    props = write_kafka_config(cfg)
    format_kafka_storage(cfg, props)
    out = cfg.logs_dir / "kafka.out"
    log = cfg.logs_dir / "kafka.log"
    offsets = log_size(out), log_size(log)  # a failure shows only this start's lines
    started = time.monotonic()
    with out.open("ab") as sink:
        proc = subprocess.Popen(
            kafka_command(cfg, "kafka.Kafka", str(props), heap=True),
            cwd=cfg.kafka_conf_dir, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
            start_new_session=True, preexec_fn=raise_open_files_limit,
        )  # fmt: skip
    (cfg.stack_dir / "kafka.pid").write_text(f"{proc.pid}\n")
    record(cfg.state_file, "kafka", {
        "pid": proc.pid, "port": cfg.kafka_port, "controller_port": cfg.controller_port,
        "version": cfg.kafka_version, "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })  # fmt: skip
    say("kafka", f"starting Kafka {cfg.kafka_version} (pid {proc.pid}) …")
    try:
        info = wait_for_kafka("127.0.0.1", cfg.kafka_port, KAFKA_START_TIMEOUT, proc)
    except StackError as exc:
        stop_group(proc.pid)
        record(cfg.state_file, "kafka", None)
        (cfg.stack_dir / "kafka.pid").unlink(missing_ok=True)
        raise StackError(
            f"{exc}\n--- {out}\n{tail(out, 20, offsets[0])}\n--- {log}\n{tail(log, 40, offsets[1])}"
        ) from None
    say(
        "kafka",
        f"running  {address}  pid {proc.pid}  (Kafka {cfg.kafka_version}, cluster "
        f"{info.cluster_id}, ready in {time.monotonic() - started:.1f}s)",
    )


def kafka_down(cfg: Config, state: dict) -> None:
    if "kafka" not in state:
        say("kafka", "not started by deploy/stack")
        return
    pid = our_kafka_pid(cfg, state)
    if pid is None:
        say("kafka", "not running")
    else:
        killed = stop_group(pid)
        wait_reaped(pid)
        say("kafka", f"stopped (pid {pid}{', killed after timeout' if killed else ''})")
    (cfg.stack_dir / "kafka.pid").unlink(missing_ok=True)
    record(cfg.state_file, "kafka", None)


def kafka_status(cfg: Config, state: dict) -> bool:
    if cfg.external_kafka:
        host, port = split_address(cfg.external_kafka, 9092)
        kind, pid_text = "external", ""
    else:
        host, port = "127.0.0.1", cfg.kafka_port
        pid = our_kafka_pid(cfg, state)
        if pid is None:
            say("kafka", f"stopped   {host}:{port}")
            return False
        kind, pid_text = "running", f"  pid {pid}"
    try:
        info = probe_kafka(host, port)
    except (OSError, KafkaProtocolError) as exc:
        say("kafka", f"{kind:<9} {host}:{port}{pid_text}  NOT ANSWERING ({exc})")
        return False
    version = state.get("kafka", {}).get("version") if kind == "running" else None
    what = f"Kafka {version}, " if version else ""
    say("kafka", f"{kind:<9} {host}:{port}{pid_text}  ({what}cluster {info.cluster_id})")
    return True


# --------------------------------------------------------------------------- PostgreSQL


def _pg_version_key(bindir: str) -> tuple[int, ...]:
    name = Path(bindir).parent.name
    return tuple(int(p) for p in name.split(".") if p.isdigit())


def find_pg_bindir() -> Path | None:
    """Directory holding initdb and pg_ctl: Debian's newest /usr/lib/postgresql/*/bin, or PATH."""
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_pg_version_key, reverse=True):
        if all(os.access(Path(bindir, t), os.X_OK) for t in ("initdb", "pg_ctl")):
            return Path(bindir)
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl and os.access(Path(pg_ctl).parent / "initdb", os.X_OK):
        return Path(pg_ctl).parent
    return None


def pg_bindir() -> Path:
    bindir = find_pg_bindir()
    if bindir is None:
        apt_install("postgresql")
        bindir = find_pg_bindir()
    if bindir is None:
        raise StackError("initdb/pg_ctl not found even after installing postgresql")
    return bindir


def as_pg(cmd: list[str]) -> list[str]:
    """Run ``cmd`` as the postgres OS user when we are root (initdb refuses root)."""
    return ["runuser", "-u", PG_USER, "--", *cmd] if os.geteuid() == 0 else cmd


def pg_owner() -> tuple[int, int] | None:
    """uid/gid that must own the cluster's files (None: whoever runs us)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(PG_USER)
    except KeyError:
        raise StackError(
            f"no OS user {PG_USER!r} to own the cluster (install postgresql)"
        ) from None
    return entry.pw_uid, entry.pw_gid


def untraversable(path: Path, uid: int) -> list[Path]:
    """Ancestors of ``path`` that user ``uid`` cannot enter (neither owner nor o+x)."""
    return [
        parent
        for parent in reversed(path.parents)
        if parent.stat().st_uid != uid and not parent.stat().st_mode & 0o001
    ]


def pg_settings(cfg: Config) -> str:
    return (
        "# Generated by deploy/stack.py on every `up`.\n"
        "listen_addresses = '127.0.0.1'\n"
        f"port = {cfg.postgres_port}\n"
        f"unix_socket_directories = '{cfg.pgdata}'\n"
        "max_connections = 200\n"
    )


def postmaster_pid(pgdata: Path) -> int | None:
    """The postmaster running on ``pgdata``, from its postmaster.pid."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) and "postgres" in cmdline(pid) else None


def pg_answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when host:port answers a PostgreSQL SSLRequest with 'S' or 'N'."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(struct.pack(">ii", 8, 80877103))
            return sock.recv(1) in (b"S", b"N")
    except OSError:
        return False


def run_checked(cmd: list[str], what: str, log: Path | None = None) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode:
        extra = f"\n--- {log}\n{tail(log)}" if log else ""
        raise StackError(f"{what} failed ({' '.join(cmd)}):\n{done.stdout}{done.stderr}{extra}")
    return done.stdout


def init_cluster(cfg: Config, bindir: Path, owner: tuple[int, int] | None) -> None:
    pgdata = cfg.pgdata
    if (pgdata / "PG_VERSION").exists():
        return
    if pgdata.exists() and any(pgdata.iterdir()):
        raise StackError(f"{pgdata} exists, is not empty and holds no PostgreSQL cluster")
    pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
    if owner:
        os.chown(pgdata, *owner)
    say("postgres", f"initdb {pgdata}")
    run_checked(
        as_pg([
            str(bindir / "initdb"), "-D", str(pgdata), "-U", PG_USER, "-E", "UTF8",
            "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256",
        ]),
        "initdb",
    )  # fmt: skip
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write("\n# deploy/stack.py\ninclude_if_exists = 'lodestar.conf'\n")


def postgres_up(cfg: Config) -> None:
    if cfg.external_postgres:
        host, port = split_address(cfg.external_postgres, 5432)
        if not pg_answers(host, port):
            raise StackError(f"LODESTAR_POSTGRES_DSN: {host}:{port} does not answer")
        say("postgres", f"external  {host}:{port}  answers; not started")
        return
    address = f"127.0.0.1:{cfg.postgres_port}"
    pid = postmaster_pid(cfg.pgdata)
    if pid:
        refuse_port_change("postgres", load_state(cfg.state_file), cfg.postgres_port,
                           "LODESTAR_POSTGRES_PORT")  # fmt: skip
    if pid and pg_answers("127.0.0.1", cfg.postgres_port):
        say("postgres", f"already running  {address}  pid {pid}")
        record(cfg.state_file, "postgres", _pg_entry(cfg, pid))
        return
    if pid is None and port_open("127.0.0.1", cfg.postgres_port):
        raise StackError(
            f"port {cfg.postgres_port} is held by a process deploy/stack did not start; stop "
            "it, or choose LODESTAR_POSTGRES_PORT, or use that server with LODESTAR_POSTGRES_DSN"
        )
    socket_path = cfg.pgdata / f".s.PGSQL.{cfg.postgres_port}"
    if len(str(socket_path)) > 100:
        raise StackError(f"{socket_path} is too long for a unix socket: use a shorter data dir")
    bindir = pg_bindir()
    owner = pg_owner()
    cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    if owner:
        for parent in untraversable(cfg.pgdata, owner[0]):
            os.chmod(parent, parent.stat().st_mode | 0o001)
            say("postgres", f"made {parent} traversable (o+x) for the {PG_USER} user")
    init_cluster(cfg, bindir, owner)
    conf = cfg.pgdata / "lodestar.conf"
    conf.write_text(pg_settings(cfg))
    log = cfg.logs_dir / "postgres.log"
    log.touch()
    if owner:
        os.chown(conf, *owner)
        os.chown(log, *owner)
    if pid is None:
        say("postgres", f"starting PostgreSQL from {bindir} …")
        run_checked(
            as_pg([str(bindir / "pg_ctl"), "start", "-D", str(cfg.pgdata), "-l", str(log),
                   "-w", "-t", "60", "-s"]),
            "pg_ctl start", log,
        )  # fmt: skip
    run_checked(
        [str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(cfg.postgres_port),
         "-t", "30"],
        "pg_isready", log,
    )  # fmt: skip
    pid = postmaster_pid(cfg.pgdata)
    if pid is None:
        raise StackError(f"PostgreSQL did not stay up\n--- {log}\n{tail(log)}")
    record(cfg.state_file, "postgres", _pg_entry(cfg, pid))
    ensure_role_and_database(cfg, bindir)
    say("postgres", f"running  {address}  pid {pid}  (database lodestar, role lodestar)")


def _pg_entry(cfg: Config, pid: int) -> dict:
    return {"pid": pid, "port": cfg.postgres_port, "pgdata": str(cfg.pgdata)}


def ensure_role_and_database(cfg: Config, bindir: Path) -> None:
    def psql(sql: str) -> str:
        return run_checked(
            as_pg([str(bindir / "psql"), "-XqAt", "-v", "ON_ERROR_STOP=1", "-h", str(cfg.pgdata),
                   "-p", str(cfg.postgres_port), "-U", PG_USER, "-d", "postgres", "-c", sql]),
            "psql",
        )  # fmt: skip

    psql(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lodestar') THEN "
        "CREATE ROLE lodestar LOGIN CREATEDB PASSWORD 'lodestar'; END IF; END $$"
    )
    if not psql("SELECT 1 FROM pg_database WHERE datname = 'lodestar'").strip():
        psql("CREATE DATABASE lodestar OWNER lodestar")


def postgres_down(cfg: Config, state: dict) -> None:
    if "postgres" not in state:
        say("postgres", "not started by deploy/stack")
        return
    pgdata = Path(state["postgres"].get("pgdata") or cfg.pgdata)
    pid = postmaster_pid(pgdata)
    if pid is None:
        say("postgres", "not running")
    else:
        bindir = find_pg_bindir()
        stopped = False
        if bindir:
            done = subprocess.run(
                as_pg([str(bindir / "pg_ctl"), "stop", "-D", str(pgdata), "-m", "fast", "-w",
                       "-t", str(int(STOP_TIMEOUT)), "-s"]),
                capture_output=True, text=True,
            )  # fmt: skip
            stopped = done.returncode == 0
        killed = False
        if not stopped and pid_alive(pid):  # pg_ctl missing or timed out
            killed = stop_group(os.getpgid(pid))
        wait_reaped(pid)
        say("postgres", f"stopped (pid {pid}{', killed after timeout' if killed else ''})")
    record(cfg.state_file, "postgres", None)


def postgres_status(cfg: Config) -> bool:
    if cfg.external_postgres:
        host, port = split_address(cfg.external_postgres, 5432)
        ok = pg_answers(host, port)
        say("postgres", f"external  {host}:{port}  {'answers' if ok else 'NOT ANSWERING'}")
        return ok
    address = f"127.0.0.1:{cfg.postgres_port}"
    pid = postmaster_pid(cfg.pgdata)
    if pid is None:
        say("postgres", f"stopped   {address}")
        return False
    ok = pg_answers("127.0.0.1", cfg.postgres_port)
    say("postgres", f"running   {address}  pid {pid}{'' if ok else '  NOT ANSWERING'}")
    return ok


# --------------------------------------------------------------------------- migrations


def lodestar_python() -> str | None:
    """An interpreter that can import lodestar: this one, else the repo's .venv."""
    if importlib.util.find_spec("lodestar") is not None:
        return sys.executable
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else None


def migrate(cfg: Config) -> bool:
    """Run ``<python> -m lodestar migrate``; False only when migrations ran and failed."""
    python = lodestar_python()
    hint = "run `lodestar migrate` once Lodestar is installed (e.g. pip install -e .)"
    if python is None:
        say("migrate", f"skipped: no Python here can import lodestar; {hint}")
        return True
    has_main = subprocess.run(
        [python, "-c", "import importlib.util as u, sys; "
         "sys.exit(0 if u.find_spec('lodestar.__main__') else 3)"],
        capture_output=True, text=True,
    )  # fmt: skip
    if has_main.returncode:
        why = "it has no `python -m lodestar`" if has_main.returncode == 3 else "it fails to import"
        say("migrate", f"skipped: {python} can import lodestar but {why}; {hint}")
        return True
    env = {**os.environ, **cfg.client_env()}
    done = subprocess.run([python, "-m", "lodestar", "migrate"], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)  # fmt: skip
    output = (done.stdout + done.stderr).strip()
    if done.returncode == 0:
        for line in output.splitlines() or ["done"]:
            say("migrate", line)
        return True
    if "invalid choice" in output and "migrate" in output:
        say("migrate", f"skipped: this Lodestar has no `migrate` command yet; {hint}")
        return True
    say("migrate", f"FAILED ({python} -m lodestar migrate, exit {done.returncode}):")
    print(output[-3000:], flush=True)
    return False


# --------------------------------------------------------------------------- Lodestar

# `up --with-lodestar` also runs Lodestar's own processes: name -> (subcommand,
# port variable, default port). Each answers GET /healthz on its port.
LODESTAR_PROCESSES = {
    "api": ("api", "LODESTAR_API_PORT", 8080),
    "worker": ("worker", "LODESTAR_WORKER_WEB_PORT", 6066),
}
LODESTAR_START_TIMEOUT = 120.0


def lodestar_port(name: str) -> int:
    _, variable, default = LODESTAR_PROCESSES[name]
    return _port(lambda n: os.environ.get(n, "").strip() or None, variable, default)


def healthy(url: str) -> bool:
    """True when ``url`` answers 200 and (for the worker) its analytics engine is open."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body = json.loads(response.read() or b"{}")
    except (OSError, urllib.error.URLError, ValueError):
        return False
    return bool(body.get("analytics", True))


def lodestar_up(cfg: Config, name: str) -> None:
    """Start ``lodestar <name>`` detached, log to <stack>/logs/<name>.log, wait for /healthz."""
    subcommand, variable, _ = LODESTAR_PROCESSES[name]
    port = lodestar_port(name)
    url = f"http://127.0.0.1:{port}/healthz"
    state = load_state(cfg.state_file)
    pid = state.get(name, {}).get("pid")
    if pid_alive(pid):
        refuse_port_change(name, state, port, variable)
        say(name, f"already running  127.0.0.1:{port}  pid {pid}")
        return
    if port_open("127.0.0.1", port):
        raise StackError(
            f"port {port} is held by a process deploy/stack did not start; "
            f"stop it or set {variable}"
        )
    python = lodestar_python()
    if python is None:
        raise StackError("no Python here can import lodestar; run `bash deploy/setup.sh` first")
    log = cfg.logs_dir / f"{name}.log"
    offset = log_size(log)
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            [python, "-m", "lodestar", subcommand], env={**os.environ, **cfg.client_env()},
            stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, start_new_session=True,
        )  # fmt: skip
    record(cfg.state_file, name, {"pid": proc.pid, "port": port})
    say(name, f"starting `lodestar {subcommand}` (pid {proc.pid}) …")
    started = time.monotonic()
    while not healthy(url):
        if proc.poll() is not None or time.monotonic() - started > LODESTAR_START_TIMEOUT:
            stop_group(proc.pid)
            record(cfg.state_file, name, None)
            why = f"exited with {proc.returncode}" if proc.poll() is not None else "timed out"
            raise StackError(f"`lodestar {subcommand}` {why}\n--- {log}\n{tail(log, 40, offset)}")
        time.sleep(0.5)
    ready = time.monotonic() - started
    say(name, f"running  127.0.0.1:{port}  pid {proc.pid}  (ready in {ready:.1f}s)")


def lodestar_down(cfg: Config, state: dict, name: str) -> None:
    entry = state.get(name)
    if entry is None:
        return
    pid = entry.get("pid")
    if pid_alive(pid):
        killed = stop_group(pid)
        wait_reaped(pid)
        say(name, f"stopped (pid {pid}{', killed after timeout' if killed else ''})")
    else:
        say(name, "not running")
    record(cfg.state_file, name, None)


def lodestar_status(cfg: Config, state: dict, name: str) -> bool:
    entry = state.get(name)
    if entry is None:
        return True  # not part of this stack
    port, pid = entry.get("port"), entry.get("pid")
    if not pid_alive(pid):
        say(name, f"stopped   127.0.0.1:{port}")
        return False
    ok = healthy(f"http://127.0.0.1:{port}/healthz")
    say(name, f"running   127.0.0.1:{port}  pid {pid}{'' if ok else '  NOT ANSWERING'}")
    return ok


# --------------------------------------------------------------------------- ClickHouse


def clickhouse_status(cfg: Config) -> bool:
    dsn = cfg.clickhouse_dsn
    if dsn.startswith("chdb:"):
        say("clickhouse", f"embedded  {dsn}  (chdb inside Lodestar; created on first use)")
        return True
    parts = urllib.parse.urlsplit(dsn)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        say("clickhouse", f"unknown   {dsn}  (expected chdb:///path or http(s)://host:port/db)")
        return False
    port = parts.port or (8443 if parts.scheme == "https" else 8123)
    url = f"{parts.scheme}://{parts.hostname}:{port}/ping"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            ok = response.read().strip() == b"Ok."
    except (OSError, urllib.error.URLError):
        ok = False
    say("clickhouse", f"external  {parts.hostname}:{port}  {'answers' if ok else 'NOT ANSWERING'}")
    return ok


# --------------------------------------------------------------------------- commands


def cmd_up(cfg: Config, with_lodestar: bool = False) -> int:
    cfg.stack_dir.mkdir(parents=True, exist_ok=True)
    cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    failed = False
    for part, start in (("kafka", kafka_up), ("postgres", postgres_up)):
        try:
            start(cfg)
        except StackError as exc:
            say(part, f"FAILED: {exc}")
            failed = True
    if not failed and not migrate(cfg):
        failed = True
    if not clickhouse_status(cfg):
        failed = True
    for name in LODESTAR_PROCESSES if with_lodestar and not failed else ():
        try:
            lodestar_up(cfg, name)
        except StackError as exc:
            say(name, f"FAILED: {exc}")
            failed = True
    if failed:
        print("deploy/stack up: some parts failed (see above); `deploy/stack down` stops the rest")
        return 1
    exports = {
        name: value for name, value in cfg.client_env().items()
        if name in LODESTAR_DEFAULTS and value != LODESTAR_DEFAULTS[name] and name not in os.environ
    }  # fmt: skip
    if exports:
        print("point Lodestar at this stack with:")
        for name, value in exports.items():
            print(f"  export {name}={value}")
    print(f"stack up in {time.monotonic() - started:.1f}s")
    return 0


def cmd_down(cfg: Config) -> int:
    state = load_state(cfg.state_file)
    failed = False
    for name in reversed(LODESTAR_PROCESSES):
        lodestar_down(cfg, state, name)
    for part, stop in (("kafka", kafka_down), ("postgres", postgres_down)):
        try:
            stop(cfg, state)
        except (StackError, OSError) as exc:
            say(part, f"FAILED to stop: {exc}")
            failed = True
    return 1 if failed else 0


def cmd_status(cfg: Config) -> int:
    state = load_state(cfg.state_file)
    results = [kafka_status(cfg, state), postgres_status(cfg), clickhouse_status(cfg)]
    results += [lodestar_status(cfg, state, name) for name in LODESTAR_PROCESSES]
    return 0 if all(results) else 1


LOGS = {
    "kafka": ("kafka.out", "kafka.log"),
    "postgres": ("postgres.log",),
    "api": ("api.log",),
    "worker": ("worker.log",),
}


def cmd_logs(cfg: Config, part: str, lines: int) -> int:
    for name in LOGS[part]:
        path = cfg.logs_dir / name
        if path.exists() and path.stat().st_size:
            print(f"--- {path}")
            print(tail(path, lines))
    if part == "kafka" and (cfg.kafka_home / "mvn.log").exists():
        print(f"(Maven's log of the jar download: {cfg.kafka_home / 'mvn.log'})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deploy/stack",
        description="Lodestar's local stack (Kafka, PostgreSQL) on 127.0.0.1. "
        "See docs/local-stack.md.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    up = sub.add_parser("up", help="start Kafka and PostgreSQL (if not running), apply migrations")
    up.add_argument(
        "--with-lodestar", action="store_true",
        help="also start `lodestar api` and `lodestar worker` (logs: deploy/stack logs api|worker)",
    )
    sub.add_parser("down", help="stop what `up` started (Lodestar's processes too)")
    sub.add_parser("status", help="one line per part; exit 0 only if every part answers")
    logs = sub.add_parser("logs", help="print the tail of a part's log")
    logs.add_argument("part", choices=sorted(LOGS))
    logs.add_argument("-n", "--lines", type=int, default=60, help="lines to print (default 60)")
    args = parser.parse_args(argv)
    try:
        cfg = Config.from_env(os.environ)
    except StackError as exc:
        parser.error(str(exc))
    if args.command == "up":
        return cmd_up(cfg, args.with_lodestar)
    if args.command == "down":
        return cmd_down(cfg)
    if args.command == "status":
        return cmd_status(cfg)
    return cmd_logs(cfg, args.part, args.lines)


if __name__ == "__main__":
    sys.exit(main())
