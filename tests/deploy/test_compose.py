"""docker-compose.yml is a valid Compose file that wires Lodestar to its parts.

No Docker here: the file is checked against the Compose Specification's JSON
schema (as shipped in check-jsonschema) the way `docker compose config` checks
it, and the references a schema cannot see (depends_on targets, healthchecks
behind `service_healthy`, named volumes, the image's build) are checked below.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return YAML(typ="safe").load(COMPOSE.read_text())


def test_compose_file_matches_the_compose_spec_schema() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(COMPOSE)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_schema_check_catches_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("service_healthy", "service_happy", 1))
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(broken)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "depends_on" in done.stdout


def test_every_part_is_there(compose: dict) -> None:
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert services["mailpit"]["image"].startswith("axllent/mailpit:")
    assert services["api"]["command"] == ["api"]
    assert services["worker"]["command"] == ["worker"]
    assert services["migrate"]["command"] == ["migrate"]
    for name in ("api", "worker", "migrate"):
        assert services[name]["build"] == "."
    assert (ROOT / "Dockerfile").exists()


def test_references_resolve(compose: dict) -> None:
    services = compose["services"]
    declared_volumes = set(compose.get("volumes") or {})
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown service {target}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
        for mount in service.get("volumes") or []:
            source = mount.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared_volumes, f"{name} mounts undeclared volume {source}"
        if name in ("api", "worker", "kafka", "postgres", "clickhouse", "mailpit"):
            assert "healthcheck" in service, f"{name} has no healthcheck"


def test_lodestar_processes_point_at_the_other_services(compose: dict) -> None:
    services = compose["services"]
    for name in ("api", "worker", "migrate"):
        env = services[name]["environment"]
        assert env["LODESTAR_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert "@postgres:5432/" in env["LODESTAR_POSTGRES_DSN"]
        assert env["LODESTAR_CLICKHOUSE_DSN"].startswith("http://")
        assert "@clickhouse:8123/" in env["LODESTAR_CLICKHOUSE_DSN"]
    assert services["api"]["environment"]["LODESTAR_API_HOST"] == "0.0.0.0"
    kafka_env = services["kafka"]["environment"]
    assert "PLAINTEXT://kafka:9092" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"
