"""Shared fixtures: settings in a temporary data dir, a store, the real Flask app, real servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.config import Settings, load_settings
from tests.support import EdgeServer


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(env={}, data_dir=str(tmp_path / "var"), device_id="test-dev",
                         station="bench-1")


@pytest.fixture
def edge_ctx(settings: Settings):
    from edge.context import EdgeContext

    ctx = EdgeContext.open(settings)
    yield ctx
    ctx.close()


@pytest.fixture
def demo_ctx(edge_ctx):
    from edge.commands import load_demo_orders

    load_demo_orders(edge_ctx.store)
    return edge_ctx


@pytest.fixture
def client(demo_ctx):
    from edge.web.app import create_app

    app = create_app(demo_ctx.settings, demo_ctx)
    return app.test_client()


@pytest.fixture
def edge_server(tmp_path: Path) -> Iterator[EdgeServer]:
    server = EdgeServer(tmp_path / "var")
    yield server
    server.stop()
