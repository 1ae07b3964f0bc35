"""The OpenAPI document: valid 3.1, current, in sync with the routes, served without credentials."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from starlette.routing import Route
from starlette.testclient import TestClient

from lodestar.api import openapi
from lodestar.api.app import create_app
from lodestar.api.errors import ErrorType
from lodestar.control.migrate import migrate
from lodestar.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS_COPY = ROOT / "docs" / "openapi.json"
REGENERATE = "run `python -m lodestar.api.openapi --write` and commit both files"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

ADMIN = ("LSATESTADMIN00000001", "AdminSecret0000000000000000000000000000x")
AUTH = {"Authorization": f"Bearer {ADMIN[0]}:{ADMIN[1]}"}


def _operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def _routes(app: Any) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every route; Starlette's ``{a_b}`` is Pinpoint's ``{a-b}``."""
    out = set()
    for route in app.routes:
        assert isinstance(route, Route), f"{route!r}: teach this test about {type(route)}"
        path = re.sub(r"\{(\w+)\}", lambda m: "{" + m[1].replace("_", "-") + "}", route.path)
        methods = set(route.methods or ())
        if "GET" in methods:
            methods.discard("HEAD")  # Starlette adds HEAD to every GET route
        out.update((m, path) for m in methods)
    return out


def test_document_is_valid_openapi_3_1() -> None:
    doc = openapi.document()
    assert doc["openapi"].startswith("3.1.")
    validate(doc, cls=OpenAPIV31SpecValidator)


def test_docs_copy_is_the_served_document() -> None:
    assert DOCS_COPY.read_bytes() == openapi.document_bytes(), (
        f"{DOCS_COPY} differs from {openapi.DOCUMENT_PATH}: {REGENERATE}"
    )


def test_committed_document_is_what_the_generator_makes() -> None:
    generated = openapi.render(openapi.build_document())
    assert openapi.document_bytes().decode("utf-8") == generated, (
        f"the committed OpenAPI document is stale (a route, a limit or botocore's pinpoint "
        f"model changed): {REGENERATE}"
    )


def test_serving_needs_no_botocore() -> None:
    """botocore is a test dependency: the API serves the committed document without it."""
    code = (
        "import sys; sys.modules['botocore'] = None\n"
        "import lodestar.api.app\n"
        "from lodestar.api import openapi\n"
        "assert openapi.document()['paths'] and '<table>' in openapi._docs_html()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_every_route_is_documented_and_every_documented_operation_is_routed(
    base_settings: Settings,
) -> None:
    routed = _routes(create_app(base_settings))
    documented = set(_operations(openapi.document()))
    assert routed - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routed == set(), "documented operations no route serves"


def test_operations_are_pinpoints_and_errors_have_pinpoints_shape() -> None:
    import botocore.session

    model = botocore.session.get_session().get_service_model("pinpoint")
    doc = openapi.document()
    error_codes = {str(kind.status) for kind in ErrorType}
    components = doc["components"]["responses"]
    for (method, path), op in _operations(doc).items():
        ids = [o["operationId"] for o in _operations(doc).values()]
        assert ids.count(op["operationId"]) == 1
        if op["operationId"] in model.operation_names:
            http = model.operation_model(op["operationId"]).http
            assert (method, path) == (http["method"], http["requestUri"])
            assert str(http["responseCode"]) in op["responses"]
        elif op.get("x-lodestar-extension"):  # Lodestar's own, authenticated, under /v1/
            assert path.startswith("/v1/") and "security" not in op
            assert "Lodestar extension" in op["summary"]
        else:  # Lodestar's own routes need no credentials and are not under /v1/
            assert op["security"] == [] and not path.startswith("/v1/")
        for status, answer in op["responses"].items():
            if status in error_codes:
                target = components[answer["$ref"].rsplit("/", 1)[1]]
                assert str(target["x-status"]) == status
    for kind in ErrorType:
        answer = components[kind.value.removesuffix("Exception")]
        assert answer["headers"]["x-amzn-ErrorType"]["schema"]["const"] == kind.value
        assert answer["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    schemes = doc["components"]["securitySchemes"]
    assert schemes["sigv4"] == {**schemes["sigv4"], "type": "apiKey", "in": "header",
                                "name": "Authorization"}
    assert schemes["bearer"]["scheme"] == "bearer"


def test_limits_are_in_the_schemas() -> None:
    schemas = openapi.document()["components"]["schemas"]
    assert schemas["EndpointBatchRequest"]["properties"]["Item"]["maxItems"] == 100
    event = schemas["Event"]["properties"]
    assert event["EventType"]["maxLength"] == 50
    assert event["Attributes"]["propertyNames"]["maxLength"] == 50
    assert event["Attributes"]["additionalProperties"]["maxLength"] == 200
    attributes = schemas["EndpointRequest"]["properties"]["Attributes"]
    assert attributes["additionalProperties"]["items"]["maxLength"] == 100
    assert "IN_APP" in schemas["ChannelType"]["enum"]


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "link", "img", "iframe", "object", "embed"):
            self.external.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and value and re.match(r"^(\w+:)?//", value):
                self.external.append(value)


@pytest.fixture
async def api_settings(settings: Settings, postgres_dsn: str) -> Settings:
    await migrate(postgres_dsn)
    return settings.with_changes(postgres_dsn=postgres_dsn, admin_access_key_id=ADMIN[0],
                                 admin_secret_access_key=ADMIN[1])


@pytest.mark.kafka
@pytest.mark.postgres
def test_document_and_page_are_served_without_credentials(api_settings: Settings) -> None:
    with TestClient(create_app(api_settings)) as client:
        response = client.get("/openapi.json")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert response.content == DOCS_COPY.read_bytes()

        page = client.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        parser = _Page()
        parser.feed(page.text)
        assert parser.external == [], "the page must not load anything"
        for op in _operations(openapi.document()).values():
            assert op["operationId"] in page.text


class _Checker:
    """Checks a live answer against the operation's documented responses."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.ops = _operations(doc)

    def __call__(self, response: Any, method: str, path: str) -> Any:
        op = self.ops[(method, path)]
        status = str(response.status_code)
        assert status in op["responses"], f"{op['operationId']} answered undocumented {status}"
        answer = op["responses"][status]
        if "$ref" in answer:
            answer = self.doc["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
        for name, header in answer.get("headers", {}).items():
            assert name in response.headers, f"{op['operationId']} {status}: no {name} header"
            const = header.get("schema", {}).get("const")
            assert const is None or response.headers[name] == const
        schema = answer["content"]["application/json"]["schema"]
        root = {"components": self.doc["components"], **schema}
        body = response.json()
        errors = sorted(Draft202012Validator(root).iter_errors(body), key=str)
        assert not errors, f"{op['operationId']} {status}: {errors[0].message}"
        return body


@pytest.mark.kafka
@pytest.mark.postgres
def test_live_answers_match_the_document(api_settings: Settings) -> None:
    check = _Checker(openapi.document())
    apps, app = "/v1/apps", "/v1/apps/{application-id}"
    with TestClient(create_app(api_settings), headers=AUTH) as client:
        created = check(client.post(apps, json={"Name": "Shop", "tags": {"k": "v"}}),
                        "POST", apps)
        app_id = created["Id"]
        check(client.post(apps, json={"tags": {}}), "POST", apps)  # 400
        check(client.get(apps, params={"page-size": "1"}), "GET", apps)
        check(client.get(apps, headers={"Authorization": ""}), "GET", apps)  # 403
        check(client.get(f"{apps}/{app_id}"), "GET", app)
        check(client.get(f"{apps}/nope"), "GET", app)  # 404

        events = check(client.post(f"{apps}/{app_id}/events", json={"BatchItem": {"ep-1": {
            "Endpoint": {"ChannelType": "EMAIL", "Address": "a@example.com"},
            "Events": {
                "e1": {"EventType": "pageView", "Timestamp": "2026-05-01T12:00:00.000Z"},
                "e2": {"EventType": "pageView", "Timestamp": "not a time"},
            },
        }}}), "POST", f"{app}/events")
        statuses = events["Results"]["ep-1"]["EventsItemResponse"]
        assert {k: v["StatusCode"] for k, v in statuses.items()} == {"e1": 202, "e2": 400}
        check(client.post(f"{apps}/nope/events", json={"BatchItem": {}}),
              "POST", f"{app}/events")  # 404

        endpoint = f"{app}/endpoints/{{endpoint-id}}"
        check(client.put(f"{apps}/{app_id}/endpoints/ep-2", json={"ChannelType": "SMS"}),
              "PUT", endpoint)
        check(client.put(f"{apps}/{app_id}/endpoints/ep-2", json={"ChannelType": "FAX"}),
              "PUT", endpoint)  # 400
        check(client.put(f"{apps}/{app_id}/endpoints",
                         json={"Item": [{"Id": "ep-3", "OptOut": "NONE"}]}),
              "PUT", f"{app}/endpoints")
        check(client.get(f"{apps}/{app_id}/endpoints/missing"), "GET", endpoint)  # 404
        check(client.get(f"{apps}/{app_id}/users/missing"), "GET", f"{app}/users/{{user-id}}")
        check(client.put(f"{apps}/{app_id}/attributes/endpoint-custom-attributes",
                         json={"Blacklist": ["plan"]}),
              "PUT", f"{app}/attributes/{{attribute-type}}")
        check(client.delete(f"{apps}/{app_id}"), "DELETE", app)
