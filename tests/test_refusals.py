"""One way to refuse (edge/domain/refusal.py): every code the product raises has its status in
the one table, and the one handler answers with it, on the device and on the hub."""

from __future__ import annotations

import ast

import pytest
from flask import Flask

from scanedge.edge.domain.refusal import STATUS, Refusal
from scanedge.edge.web.errors import register_error_handlers
from tests.test_layers import parse, sources

REFUSALS = {"Refusal", "QueueError", "WaybillError", "NoteError", "PickError", "ImageError",
            "AlarmError", "ScanInputError", "ScanTooLarge", "ConflictError"}


def raised_codes() -> dict[str, set[str]]:
    """Code literals given to a refusal anywhere in the product: {code: {module, ...}}."""
    found: dict[str, set[str]] = {}
    for module, text in sources().items():
        for node in ast.walk(parse(text)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in REFUSALS and node.args
                    and isinstance(node.args[0], ast.Constant)):
                found.setdefault(node.args[0].value, set()).add(module)
    return found


def test_every_code_raised_has_its_status():
    codes = raised_codes()
    assert len(codes) > 40  # the scan found the product's refusals
    assert {c: m for c, m in codes.items() if c not in STATUS} == {}


def test_no_module_defines_its_own_error_with_a_status():
    """The copies this replaced (ApiError, WaybillError, QueueError) each kept a status."""
    for module, text in sources().items():
        for node in ast.walk(parse(text)):
            if isinstance(node, ast.ClassDef) and node.name in REFUSALS - {"Refusal"}:
                bases = {ast.unparse(b) for b in node.bases}
                assert bases & {"Refusal", "ScanInputError"}, f"{module}.{node.name}: {bases}"
                assert not any(isinstance(n, ast.FunctionDef) for n in node.body), \
                    f"{module}.{node.name} adds its own fields: raise a Refusal with details"


def test_an_unknown_code_is_a_programming_error_not_a_status_guess():
    with pytest.raises(ValueError, match="add it to STATUS"):
        Refusal("made_up", "x")


@pytest.mark.parametrize(("error", "status"), [
    ("scanedge.printers.queue:QueueError", 409), ("scanedge.edge.waybills:WaybillError", 409),
    ("scanedge.edge.picking:PickError", 409), ("scanedge.ocr.images:ImageError", 409)])
def test_the_one_handler_answers_every_kind_by_its_code(error, status):
    import importlib

    module, _, name = error.partition(":")
    cls = getattr(importlib.import_module(module), name)
    app = Flask("t")
    register_error_handlers(app)

    @app.get("/x")
    def x():
        raise cls("frozen", "order SO-1 is frozen", order_id="SO-1", retry_after_s=3)

    r = app.test_client().get("/x")
    assert r.status_code == status == STATUS["frozen"]
    assert r.get_json() == {"error": "frozen", "message": "order SO-1 is frozen",
                            "order_id": "SO-1", "retry_after_s": 3}
    assert r.headers["Retry-After"] == "3"
