"""Shared fixtures: settings in a temporary data dir, a store, the real Flask app, real servers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanedge.edge.config import Settings, load_settings
from tests.support import EdgeServer


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(env={}, data_dir=str(tmp_path / "var"), device_id="test-dev",
                         station="bench-1")


@pytest.fixture
def edge_ctx(settings: Settings):
    from scanedge.edge.context import EdgeContext

    ctx = EdgeContext.open(settings)
    yield ctx
    ctx.close()


@pytest.fixture
def demo_ctx(edge_ctx):
    from scanedge.edge.commands import load_demo_orders

    load_demo_orders(edge_ctx.store)
    return edge_ctx


@pytest.fixture
def client(demo_ctx):
    from scanedge.edge.web.app import create_app

    app = create_app(demo_ctx.settings, demo_ctx)
    return app.test_client()


@pytest.fixture
def edge_server(tmp_path: Path) -> Iterator[EdgeServer]:
    server = EdgeServer(tmp_path / "var")
    yield server
    server.stop()


PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _postgres_database() -> Iterator[str]:
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except Exception as e:  # not installed, not running: the SQLite half still runs
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {e}")
    name = f"scanedge_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE DATABASE {name}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


# The PostgreSQL half is slow (a database made and dropped per test): the fast loop keeps the
# SQLite twin of each test; the whole run (scripts/setup.sh test) runs both.
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def hub_database(request, tmp_path: Path) -> Iterator[str]:
    """The same hub tests against both storages."""
    if request.param == "sqlite":
        yield str(tmp_path / "hub" / "hub.db")
    else:
        yield from _postgres_database()


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    yield from _postgres_database()
