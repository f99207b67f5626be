"""The layers of docs/architecture.md, kept: every import in the product's code (module level,
inside functions, inside ``try``) is read from the source (AST) and checked against the table
below; any import cycle between modules fails too. Imports under ``if TYPE_CHECKING:`` are for
the type checker only and never run, so they are left out.

The checker is tested on planted code as well: a rule that cannot fail is no rule.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from tests.support import ROOT

PACKAGES = ("edge", "ocr", "printers", "sync")
INSTALLED = "scanedge"  # the folders install as scanedge.edge ... (pyproject.toml)

# lowest first; a layer may import the layers listed for it (and itself)
ALLOWED: dict[str, frozenset[str]] = {
    "domain": frozenset({"domain"}),
    "store": frozenset({"domain", "store"}),
    "http": frozenset({"domain", "store", "http"}),  # HTTP plumbing the device and hub share
    "shared": frozenset({"domain", "store", "shared"}),  # settings, sync protocol, signatures
    "carriers": frozenset({"domain", "carriers"}),  # carrier e-waybill adapters, simulators
    "services": frozenset({"domain", "store", "http", "shared", "services"}),
    "hub": frozenset({"domain", "store", "http", "shared", "carriers", "hub"}),
    "web": frozenset({"domain", "store", "http", "shared", "services", "web"}),
    "cli": frozenset({"domain", "store", "http", "shared", "carriers", "services", "hub", "web",
                      "cli"}),
}
HTTP = {"edge.web", "edge.web.errors", "edge.web.limits", "edge.web.schema", "edge.web.wsgi_bridge",
        "edge.web.http_guard", "edge.webhook"}
SHARED = {"edge.config", "sync.protocol", "sync.signing", "printers.address"}
WEB = {"ocr.web", "ocr.waybill_web", "printers.web"}
# what a process starts from, and the command lines: they wire everything together
CLI = {"edge.cli", "edge.commands", "edge.server", "edge.demo", "edge.lifecycle",
       "edge.sdnotify", "edge.backup", "edge.report_cli", "edge.accounts_cli", "edge.scale_cli",
       "edge.picking_cli", "ocr.cli", "ocr.waybill_cli", "printers.cli", "printers.sim",
       "sync.cli", "sync.enroll", "sync.hub.server", "sync.carrier_cli"}


def layer_of(module: str) -> str:
    if module in PACKAGES:  # the bare packages hold nothing but a docstring
        return "shared"
    if module == "edge.domain" or module.startswith("edge.domain."):
        return "domain"
    if module == "edge.store" or module.startswith("edge.store."):
        return "store"
    for name, members in (("http", HTTP), ("shared", SHARED), ("web", WEB), ("cli", CLI)):
        if module in members:
            return name
    if module == "sync.hub" or module.startswith("sync.hub."):
        return "hub"
    if module == "sync.carriers" or module.startswith("sync.carriers."):
        return "carriers"
    if module.startswith("edge.web."):
        return "web"
    return "services"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources(root: Path = ROOT) -> dict[str, str]:
    return {module_name(p, root): p.read_text(encoding="utf-8")
            for package in PACKAGES for p in sorted((root / package).rglob("*.py"))}


@functools.cache
def parse(text: str) -> ast.Module:
    """``ast.parse``, once per text in a test run (here and tests/test_refusals.py read the
    same product sources; nobody changes a tree)."""
    return ast.parse(text)


@functools.cache
def product_graph() -> dict[str, set[str]]:
    """The product's import graph, read once for the tests below (the same sources)."""
    return graph(sources())


def _type_checking_only(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip.update(id(n) for n in ast.walk(child))
    return skip


def imports(module: str, text: str, known: Iterable[str]) -> set[str]:
    """The project modules ``module`` imports, wherever in its code."""
    known = set(known)
    tree = parse(text)
    skip = _type_checking_only(tree)
    package = module if text and module in _packages(known) else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names: list[str] = []
        relative = False
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                relative = True
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        for name in names:
            if name.startswith(f"{INSTALLED}."):  # scanedge.edge.x is the folder edge/x
                name = name[len(INSTALLED) + 1:]
            elif not relative and name.split(".")[0] in PACKAGES:
                out.add(f"(bare) {names[0]}")  # by the folder's name: not what is installed
                break
            target = _resolve(name, known)
            if target is not None and target != module:
                out.add(target)
    return out


def _packages(known: set[str]) -> set[str]:
    return {m.rpartition(".")[0] for m in known if "." in m}


def _resolve(name: str, known: set[str]) -> str | None:
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return None


def graph(code: Mapping[str, str]) -> dict[str, set[str]]:
    return {m: imports(m, text, code) for m, text in code.items()}


def forbidden(edges: Mapping[str, set[str]]) -> list[str]:
    return sorted(f"{a} imports {b[7:]} by the folder's name, not as {INSTALLED}.{b[7:]}"
                  if b.startswith("(bare) ") else f"{a} ({layer_of(a)}) imports {b} ({layer_of(b)})"
                  for a, targets in edges.items() for b in targets
                  if b.startswith("(bare) ") or layer_of(b) not in ALLOWED[layer_of(a)])


def cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


# -- the product ---------------------------------------------------------------------------------
def test_no_module_imports_a_layer_above_its_own():
    assert forbidden(product_graph()) == []


def test_no_import_cycles_between_modules():
    assert cycles(product_graph()) == []


def test_every_module_has_a_layer_the_docs_name():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for name in ALLOWED:
        assert f"`{name}`" in text, f"docs/architecture.md does not describe the {name} layer"


def test_the_hub_process_loads_no_device_service():
    """The hub serves from its own code: the print worker, the scan service and the device's
    web app never load into it (they would open stores, start threads, cost memory)."""
    out = subprocess.run(
        [sys.executable, "-c", "import sys, scanedge.sync.hub.asgi, scanedge.sync.hub.server; "
         "print('\\n'.join(m[9:] for m in sys.modules if m.startswith('scanedge.')))"],
        capture_output=True, text=True, check=True, cwd=ROOT, timeout=60)
    loaded = set(out.stdout.split())
    assert {"sync.hub.asgi", "sync.hub.storage"} <= loaded
    assert not {m for m in loaded if layer_of(m) in ("services", "web")}, sorted(loaded)


# -- the checker, on planted code ------------------------------------------------------------------
PLANTED = {
    "edge.domain": "", "edge.domain.rules": "x = 1\n",
    "edge.store": "", "edge.store.db": "from scanedge.edge.domain.rules import x\n",
    "edge.scanning": "from scanedge.edge.store import db\n",
}


@pytest.mark.parametrize(("module", "text", "problem"), [
    # a domain rule reaching for the database, even inside a function
    ("edge.domain.bad", "def f():\n    from scanedge.edge.store.db import x\n",
     "edge.domain.bad (domain) imports edge.store.db (store)"),
    # the hub loading the scan service
    ("sync.hub.bad", "import scanedge.edge.scanning\n",
     "sync.hub.bad (hub) imports edge.scanning (services)"),
    # an import by the folder's name would load a second copy (or someone else's "edge")
    ("edge.bad", "from edge.domain import rules\n",
     "edge.bad imports edge.domain by the folder's name, not as scanedge.edge.domain"),
    # a relative import is resolved too
    ("edge.store.bad", "try:\n    from ..scanning import S\nexcept ImportError:\n    pass\n",
     "edge.store.bad (store) imports edge.scanning (services)"),
])
def test_the_checker_finds_a_planted_forbidden_import(module, text, problem):
    code = {**PLANTED, module: text}
    assert forbidden(graph(code)) == [problem]


def test_the_checker_ignores_type_checking_imports_and_finds_a_planted_cycle():
    code = {**PLANTED, "edge.domain.typed": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                            "    from scanedge.edge.store.db import x\n"}
    assert forbidden(graph(code)) == [] and cycles(graph(code)) == []
    code = {**PLANTED, "edge.alarms": "def f():\n    import scanedge.edge.bus\n",
            "edge.bus": "from scanedge.edge import alarms\n"}
    assert cycles(graph(code)) == [["edge.alarms", "edge.bus"]]
