"""OpenAPI 3.1 building blocks shared by the device's document (edge/web/openapi.py) and the hub's
(sync/hub/openapi.py): plain dicts, no Flask, no services."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """An object with these keys always present (more keys may come: clients ignore them)."""
    return {"type": "object", "required": sorted(required),
            "properties": {**required, **(optional or {})}}


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
ANY_OBJ: Schema = {"type": "object"}
OPT_STR = nullable(STR)


def json_content(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def ok_json(schema: Schema, status: int = 200, description: str = "OK") -> dict[str, Any]:
    return {str(status): {"description": description, "content": json_content(schema)}}


def json_body(schema: Schema, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": json_content(schema)}


def query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def path_param(name: str, description: str, schema: Schema | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True,
            "schema": schema or {"type": "string", "minLength": 1}, "description": description}
