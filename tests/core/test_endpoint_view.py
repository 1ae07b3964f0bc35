from __future__ import annotations

import json
from pathlib import Path

from lodestar.core.endpoint_view import endpoint_response, iso_millis

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples" / "endpoint_change"


def test_iso_millis() -> None:
    assert iso_millis(1777636800000) == "2026-05-01T12:00:00.000Z"
    assert iso_millis(1777636800250) == "2026-05-01T12:00:00.250Z"


def test_amplify_created_endpoint_in_pinpoint_shape() -> None:
    change = json.loads((EXAMPLES / "amplify-js-created.json").read_text())
    response = endpoint_response(change["app_id"], change["endpoint"])
    assert response == {
        "ApplicationId": "7a8e3c1f0b9d4e5fa6b7c8d9e0f1a2b3",
        "Id": "2f4c9b1e-8d7a-4e36-b5c2-6a1d0e9f8b7c",
        "Attributes": {"email": ["jane@example.com"], "name": ["Jane Doe"], "plan": ["pro"]},
        "CohortId": "42",
        "CreationDate": "2026-05-01T12:00:11.250Z",
        "Demographic": {
            "AppVersion": "1.0.0", "Make": "Google Inc.", "Model": "Chrome",
            "ModelVersion": "126.0.0.0", "Platform": "MacIntel",
        },
        "EffectiveDate": "2026-05-01T12:00:11.000Z",
        "EndpointStatus": "ACTIVE",
        "Metrics": {},
        "OptOut": "NONE",
        "RequestId": "e7b1c6d2-3a4f-4e5b-9c8d-7f6e5d4c3b2a",
        "User": {"UserId": "us-east-1:5c2f8e9a-1b3d-4f6a-9e0c-7d8b2a4c6e1f"},
    }


def test_every_example_with_an_endpoint_converts() -> None:
    for path in EXAMPLES.glob("*.json"):
        change = json.loads(path.read_text())
        if change.get("endpoint"):
            response = endpoint_response(change["app_id"], change["endpoint"])
            assert response["Id"] == change["endpoint"]["id"]
            assert 0 <= int(response["CohortId"]) <= 99
