"""``lodestar apps …`` and ``lodestar keys …`` against a real PostgreSQL."""

from __future__ import annotations

import json
import re

import pytest

from lodestar.cli import main

pytestmark = pytest.mark.postgres


@pytest.fixture
def cli(postgres_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("LODESTAR_POSTGRES_DSN", postgres_dsn)
    for name in ("LODESTAR_ADMIN_ACCESS_KEY_ID", "LODESTAR_ADMIN_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_commands_need_the_migrations(cli) -> None:
    code, _, err = cli("apps", "list")
    assert code == 1 and "lodestar migrate" in err


def test_apps_and_keys_lifecycle(cli) -> None:
    assert cli("migrate")[0] == 0

    code, out, _ = cli("apps", "create", "--name", "Shop", "--tag", "team=growth", "--json")
    assert code == 0
    app = json.loads(out)
    assert re.fullmatch(r"[0-9a-f]{32}", app["Id"])
    assert app["Arn"] == f"arn:aws:mobiletargeting:us-east-1:000000000000:apps/{app['Id']}"
    assert app["tags"] == {"team": "growth"}
    assert re.fullmatch(r"LSK[A-Z0-9]{17}", app["AccessKeyId"])
    assert len(app["SecretAccessKey"]) == 40

    code, out, _ = cli("apps", "create", "--name", "Old project",
                       "--id", "0123456789abcdef0123456789abcdef")
    assert code == 0
    assert "Id               0123456789abcdef0123456789abcdef" in out
    assert re.search(r"^SecretAccessKey  [A-Za-z0-9]{40}$", out, re.M)
    code, _, err = cli("apps", "create", "--name", "x", "--id", "0123456789abcdef0123456789abcdef")
    assert code == 1 and "already exists" in err

    code, out, _ = cli("apps", "list")
    assert code == 0 and app["Id"] in out and "Old project" in out
    assert [a["Id"] for a in json.loads(cli("apps", "list", "--json")[1])["Item"]] == [
        app["Id"], "0123456789abcdef0123456789abcdef"]

    code, out, _ = cli("keys", "create", "--app-id", app["Id"], "--json")
    second = json.loads(out)
    assert code == 0 and second["ApplicationId"] == app["Id"]
    assert second["AccessKeyId"] != app["AccessKeyId"]
    code, _, err = cli("keys", "create", "--app-id", "nope")
    assert code == 1 and "does not exist" in err

    listed = json.loads(cli("keys", "list", "--app-id", app["Id"], "--json")[1])
    assert [k["AccessKeyId"] for k in listed] == [app["AccessKeyId"], second["AccessKeyId"]]
    assert all("SecretAccessKey" not in k for k in listed)

    code, out, _ = cli("keys", "revoke", app["AccessKeyId"])
    assert code == 0 and "revoked" in out and "within 30 s" in out
    listed = json.loads(cli("keys", "list", "--app-id", app["Id"], "--json")[1])
    assert [k["AccessKeyId"] for k in listed] == [second["AccessKeyId"]]
    listed = json.loads(cli("keys", "list", "--app-id", app["Id"], "--all", "--json")[1])
    assert listed[0]["RevokedDate"]
    assert cli("keys", "revoke", "LSKNOSUCHKEY00000000")[0] == 1

    code, out, _ = cli("apps", "delete", app["Id"])
    assert code == 0 and "deleted" in out
    assert cli("apps", "delete", app["Id"])[0] == 1
    left = json.loads(cli("keys", "list", "--all", "--json")[1])
    assert {k["ApplicationId"] for k in left} == {"0123456789abcdef0123456789abcdef"}


def test_admin_key_is_created_once_and_rotated(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("migrate")[0] == 0
    first = json.loads(cli("keys", "admin", "--json")[1])
    assert first["AccessKeyId"].startswith("LSA") and first["ApplicationId"] is None
    assert json.loads(cli("keys", "admin", "--json")[1]) == first

    code, out, _ = cli("keys", "admin", "--new")
    assert code == 0 and "revoke the old one" in out
    newer = re.search(r"^AccessKeyId\s+(\S+)$", out, re.M)[1]  # type: ignore[index]
    assert cli("keys", "revoke", first["AccessKeyId"])[0] == 0
    assert json.loads(cli("keys", "admin", "--json")[1])["AccessKeyId"] == newer
    admins = json.loads(cli("keys", "list", "--admin", "--json")[1])
    assert [k["AccessKeyId"] for k in admins] == [newer]

    monkeypatch.setenv("LODESTAR_ADMIN_ACCESS_KEY_ID", "ENVADMINKEY000000001")
    monkeypatch.setenv("LODESTAR_ADMIN_SECRET_ACCESS_KEY", "e" * 40)
    code, out, _ = cli("keys", "admin")
    assert code == 0 and "ENVADMINKEY000000001" in out and "LODESTAR_ADMIN_" in out
    code, _, err = cli("keys", "revoke", "ENVADMINKEY000000001")
    assert code == 1 and "change the setting" in err
    code, out, _ = cli("settings")
    assert "e" * 40 not in out and "***" in out
