from __future__ import annotations

import json

import pytest

from lodestar.contracts.codec import AvroCodec
from lodestar.core.endpoint_commands import (
    AttributeType,
    deactivate_command,
    delete_command,
    remove_attributes_command,
    upsert_command,
)
from lodestar.core.topics import Topic

CODEC = AvroCodec.default()


@pytest.mark.parametrize(
    "command",
    [
        upsert_command("app", "ep", {"ChannelType": "EMAIL", "Address": "a@b.c"}, "r1", 5),
        delete_command("app", "ep", "r2", 6),
        deactivate_command("app", "ep", "address taken by endpoint ep2", "r3", 7),
        remove_attributes_command(
            "app", AttributeType.ENDPOINT_USER_ATTRIBUTES, ["b", "a", "b"], "r4", 8
        ),
    ],
)
def test_commands_are_valid_endpoint_command_records(command: dict) -> None:
    encoded = CODEC.encode(Topic.ENDPOINT_COMMANDS, command)
    assert CODEC.decode(Topic.ENDPOINT_COMMANDS, encoded) == command


def test_upsert_carries_the_request_as_pinpoint_json() -> None:
    request = {"ChannelType": "SMS", "Address": "+351910000000", "User": {"UserId": "u"}}
    assert json.loads(upsert_command("a", "e", request, "r", 1)["endpoint_request"]) == request


def test_remove_attributes_is_app_wide_with_sorted_unique_names() -> None:
    command = remove_attributes_command(
        "app", AttributeType("endpoint-custom-attributes"), ["z", "a", "z"], "r", 1
    )
    assert command["endpoint_id"] is None
    assert command["attribute_type"] == "ENDPOINT_CUSTOM_ATTRIBUTES"
    assert command["attribute_names"] == ["a", "z"]
