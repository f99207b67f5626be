"""HTTP adapters of the edge service (Flask blueprints around the domain services)."""

from flask import current_app

from edge.context import EdgeContext


def context() -> EdgeContext:
    """The running app's store and services."""
    return current_app.extensions["scanedge"]
