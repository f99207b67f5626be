"""HTTP adapters of the edge service (Flask blueprints around the domain services).

``errors`` and ``limits`` are plain HTTP plumbing that the hub uses too: this package's import
must not load the device's services (the context is imported for type checking only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from scanedge.edge.context import EdgeContext


def context() -> EdgeContext:
    """The running app's store and services."""
    return current_app.extensions["scanedge"]
