"""The README stays true: its settings table and its commands match the code."""

from __future__ import annotations

from pathlib import Path

from lodestar.cli import build_parser
from lodestar.settings import settings_table_markdown

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_settings_table_is_generated_from_the_code() -> None:
    start = README.index("<!-- settings-table:start -->") + len("<!-- settings-table:start -->")
    end = README.index("<!-- settings-table:end -->")
    assert README[start:end].strip() == settings_table_markdown()


def test_the_quick_start_scripts_exist() -> None:
    for script in ("deploy/quickstart.sh", "deploy/test.sh", "deploy/stack.py", ".ci/run"):
        assert f"{script}" in README or script == ".ci/run"
        assert (ROOT / script).is_file(), script
    assert "bash deploy/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_every_subcommand_has_one_line_help() -> None:
    parser = build_parser()
    subcommands = next(a for a in parser._actions if a.dest == "command")
    helps = {a.dest: a.help for a in subcommands._choices_actions}
    assert {"api", "worker", "migrate", "topics", "events", "demo", "settings"} <= set(helps)
    assert all(h and "\n" not in h for h in helps.values())
