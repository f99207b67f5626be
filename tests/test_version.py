"""``GET /api/v1/version``: which program answers (added by following docs/development.md's
endpoint recipe)."""

from __future__ import annotations

from importlib.metadata import version

from scanedge.edge.web.openapi import document


def test_version_names_the_program_the_api_and_every_store_component(client, demo_ctx):
    r = client.get("/api/v1/version")
    assert r.status_code == 200
    body = r.get_json()
    assert body["name"] == "scanedge" and body["api"] == "v1"
    assert body["version"] == version("scanedge")
    assert body["device_id"] == demo_ctx.settings.device_id
    # the components this device has migrated, each at its latest step
    assert body["schemas"]["edge"] >= 1 and body["schemas"]["bench"] >= 1
    assert all(isinstance(v, int) and v >= 1 for v in body["schemas"].values())


def test_version_needs_a_signed_in_reader_once_people_are_configured(client, demo_ctx):
    demo_ctx.accounts.add_user("k1", "张三", "packer", badge="BADGE-PACKER-1")
    assert client.get("/api/v1/version").status_code == 401
    assert client.post("/api/v1/session", json={"badge": "BADGE-PACKER-1"}).status_code == 200
    assert client.get("/api/v1/version").status_code == 200


def test_version_is_in_the_openapi_document():
    get = document()["paths"]["/api/v1/version"]["get"]
    schema = get["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(schema["required"]) == {"name", "version", "api", "device_id", "schemas"}
