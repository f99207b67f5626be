"""The OpenAPI 3.1 documents of the edge and the hub (issue 13, item 10).

- each document lists exactly the routes its service has: every Flask rule and the ASGI stream
  route, with their methods, and nothing else;
- each is a valid OpenAPI 3.1 document, served at ``/api/v1/openapi.json``;
- schemathesis sends generated requests (positive and negative) to real servers on 127.0.0.1
  and checks every answer: no server error, a documented status code and content type, a body
  that matches the documented schema. Bounded: ``MAX_EXAMPLES`` per operation and mode,
  derandomized (the same requests every run), no shrinking.
"""

from __future__ import annotations

import contextlib
import json
import re
import urllib.request

import pytest

schemathesis = pytest.importorskip("schemathesis")  # the `dev` extra

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from scanedge.edge.config import load_settings  # noqa: E402
from scanedge.edge.web.openapi import document as edge_document  # noqa: E402
from scanedge.sync.hub.openapi import document as hub_document  # noqa: E402

MAX_EXAMPLES = 12
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
ADMIN = "openapi-admin-token"
# Long-lived streams are listed in the documents but not fuzzed: a request would stay open for
# minutes (their inputs have tests of their own: test_pages_stream.py, test_hub_fleet.py).
STREAMS = {"/api/v1/stream", "/api/v1/sync/stream"}


def flask_routes(app) -> set[tuple[str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        out |= {(method.lower(), path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return out


def documented(doc: dict) -> set[tuple[str, str]]:
    return {(method, path) for path, item in doc["paths"].items() for method in item
            if method in METHODS}


def operations(doc: dict) -> list[tuple[str, str]]:
    return sorted((m, p) for m, p in documented(doc) if p not in STREAMS)


# -- real servers ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    """An edge with the demo orders, open mode (loopback, no user, no token)."""
    from scanedge.edge.commands import load_demo_orders
    from scanedge.edge.context import EdgeContext
    from scanedge.edge.lifecycle import BackgroundServer
    from scanedge.edge.web.asgi import create_asgi_app

    settings = load_settings(env={}, data_dir=str(tmp_path_factory.mktemp("edge")),
                             device_id="openapi", station="bench-1")
    ctx = EdgeContext.open(settings)
    load_demo_orders(ctx.store)
    app = create_asgi_app(settings, ctx)
    server = BackgroundServer(app).start()
    server.app, server.settings, server.ctx = app, settings, ctx
    yield server
    server.stop()
    ctx.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from scanedge.edge.lifecycle import BackgroundServer
    from scanedge.sync.hub.app import HubOptions
    from scanedge.sync.hub.asgi import create_hub_asgi
    from scanedge.sync.hub.limits import Rate
    from scanedge.sync.hub.storage import open_storage

    storage = open_storage(str(tmp_path_factory.mktemp("hub") / "hub.db"))
    storage.ensure_admin_token(ADMIN)
    fast = Rate(10_000.0, 10_000.0)  # the fuzzer is one device sending hundreds of requests
    app = create_hub_asgi(storage, HubOptions(rates={k: fast for k in ("pull", "push", "ack",
                                                                        "stream")}))
    server = BackgroundServer(app).start()
    server.app, server.storage = app, storage
    server.device_token = storage.add_device("fuzz-dev")
    yield server
    server.stop()
    storage.close()


def served(server) -> dict:
    with urllib.request.urlopen(server.url + "/api/v1/openapi.json", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("application/json")
        return json.loads(r.read())


# -- the documents and the routes -----------------------------------------------------------
def test_the_edge_document_lists_exactly_its_routes(edge):
    from scanedge.edge.web.app import create_app

    routes = flask_routes(create_app(edge.settings, edge.ctx))
    routes |= set(edge.app.asgi_routes)  # beside the Flask app: the page stream
    assert ("get", "/api/v1/stream") in routes
    doc = edge_document()
    assert documented(doc) - routes == set(), "documented but not served"
    assert routes - documented(doc) == set(), "served but not in edge/web/openapi.py"


def test_the_hub_document_lists_exactly_its_routes(hub):
    from scanedge.sync.hub.asgi import STREAM_PATH

    routes = flask_routes(hub.app.flask) | {("get", STREAM_PATH)}
    doc = hub_document()
    assert documented(doc) - routes == set(), "documented but not served"
    assert routes - documented(doc) == set(), "served but not in sync/hub/openapi.py"


@pytest.mark.parametrize("which", ["edge", "hub"])
def test_the_documents_are_openapi_31_and_served(request, which):
    import jsonschema_rs  # schemathesis' own validator
    from schemathesis.specs.openapi.definitions import OPENAPI_31

    server = request.getfixturevalue(which)
    doc = served(server)
    assert doc == json.loads(json.dumps(edge_document() if which == "edge" else hub_document()))
    assert doc["openapi"] == "3.1.0"
    jsonschema_rs.Draft202012Validator(OPENAPI_31).validate(doc)
    for schema in doc["components"]["schemas"].values():
        jsonschema_rs.meta.validate(schema)  # each a valid JSON Schema (2020-12)
    for path, item in doc["paths"].items():  # every operation answers JSON errors as documented
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert "application/json" in answer["content"], (method, path, status)


# -- schemathesis against the real servers --------------------------------------------------
def fuzz(operation, base_url: str, headers: dict[str, str]) -> None:
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case):
            response = case.call(base_url=base_url, headers=headers, timeout=60)
            case.validate_response(response, checks=CHECKS)

        with contextlib.suppress(Unsatisfiable):  # no parameters: nothing negative to make
            run()


@pytest.fixture(scope="module")
def edge_schema(edge):
    return schemathesis.openapi.from_url(edge.url + "/api/v1/openapi.json")


@pytest.fixture(scope="module")
def hub_schema(hub):
    return schemathesis.openapi.from_url(hub.url + "/api/v1/openapi.json")


@pytest.mark.slow
@pytest.mark.parametrize("method,path", operations(edge_document()),
                         ids=[f"{m.upper()} {p}" for m, p in operations(edge_document())])
def test_schemathesis_edge(edge, edge_schema, method, path):
    fuzz(edge_schema[path][method.upper()], edge.url, {})


@pytest.mark.slow
@pytest.mark.parametrize("method,path", operations(hub_document()),
                         ids=[f"{m.upper()} {p}" for m, p in operations(hub_document())])
def test_schemathesis_hub(hub, hub_schema, method, path):
    token = hub.device_token if path.startswith("/api/v1/sync/") else ADMIN
    fuzz(hub_schema[path][method.upper()], hub.url, {"Authorization": f"Bearer {token}"})
