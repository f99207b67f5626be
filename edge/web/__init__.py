"""HTTP adapters of the edge service (Flask blueprints around the domain services).

``errors`` and ``limits`` are plain HTTP plumbing that the hub uses too: this package's import
must not load the device's services (the context is imported for type checking only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import current_app

from scanedge.edge.domain.refusal import Refusal

if TYPE_CHECKING:
    from scanedge.edge.context import EdgeContext


def context() -> EdgeContext:
    """The running app's store and services."""
    return current_app.extensions["scanedge"]


def service(name: str, missing: str, code: str = "not_found") -> Any:
    """``context().<name>``, or a refusal saying ``missing`` when this device has not that
    service (an EdgeContext built without it; never one of ``EdgeContext.open``)."""
    found = getattr(context(), name)
    if found is None:
        raise Refusal(code, missing)
    return found
