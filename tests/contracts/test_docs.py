"""docs/wire-format.md shows real bytes: its fingerprint table and hex dump are checked."""

from __future__ import annotations

import re
from pathlib import Path

from lodestar.contracts.codec import AvroCodec
from lodestar.contracts.registry import SchemaRegistry
from lodestar.core.topics import Topic

DOC = Path(__file__).resolve().parents[2] / "docs" / "wire-format.md"


def _between(text: str, name: str) -> str:
    match = re.search(rf"<!-- {name}:start -->(.*?)<!-- {name}:end -->", text, re.S)
    assert match, f"marker {name} missing from {DOC.name}"
    return match.group(1)


def test_fingerprint_table_matches_the_schemas(registry: SchemaRegistry) -> None:
    rows = re.findall(r"\| `(\w+)\.avsc` \| `([\w.]+)` \| `([0-9a-f ]+)` \|", _between(
        DOC.read_text(), "fingerprints"))  # fmt: skip
    documented = {stem: (name, bytes.fromhex(hexed)) for stem, name, hexed in rows}
    actual = {e.stem: (e.full_name, e.fingerprint) for e in registry}
    assert documented == actual, "update the fingerprint table in docs/wire-format.md"


def test_worked_example_is_what_the_codec_writes(codec: AvroCodec) -> None:
    dump = _between(DOC.read_text(), "hexdump")
    documented = bytes.fromhex(
        "".join(line[6:] for line in dump.splitlines() if re.match(r"^[0-9a-f]{4}  ", line))
    )
    record = {
        "event_id": "e1",
        "app_id": "app",
        "endpoint_id": "ep1",
        "event_type": "_session.start",
        "timestamp": 1777636800000,
        "arrival_timestamp": 1777636800250,
    }
    assert codec.encode(Topic.EVENTS, record) == documented
