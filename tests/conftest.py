"""Shared fixtures: settings in a temporary data dir, a store, the real Flask app, real servers."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanedge.edge.config import Settings, load_settings
from tests.support import EdgeServer

# Tesseract (the label read-backs, the waybill reader's Tesseract engine, in this process's
# subprocesses and the CLI's) runs one thread per process: with its default OpenMP threads it
# took 2.4-2.8 times as long on the project's 2-core machine (same reads; 11.6-13.3 s against
# 4.8 s for three OCR tests, most of it spinning in sys). A setting given outside wins.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")


def _settings(data_dir: Path) -> Settings:
    return load_settings(env={}, data_dir=str(data_dir), device_id="test-dev", station="bench-1")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return _settings(tmp_path / "var")


@pytest.fixture(scope="session")
def migrated_edge_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An edge store every component's migrations ran on, made once per session by
    ``EdgeContext.open``: ``edge_ctx`` starts from a copy of it, as a device whose store is
    already up to date starts (the migrations themselves: tests/test_edge_store.py). It holds
    the schema and nothing else: the check below fails when opening starts to write rows."""
    import sqlite3

    from scanedge.edge.context import EdgeContext

    settings = _settings(tmp_path_factory.mktemp("migrated") / "var")
    EdgeContext.open(settings).close()
    path = settings.edge_db_path
    assert not path.with_name(path.name + "-wal").exists(), "closed with a WAL left to copy"
    with sqlite3.connect(path) as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                           " AND name NOT LIKE 'sqlite_%'")]
        filled = [t for t in tables if t != "schema_version"
                  and db.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone()]
    assert filled == [], f"opening a new store wrote rows into {filled}: copy no template"
    return path


@pytest.fixture
def edge_ctx(settings: Settings, migrated_edge_db: Path):
    from scanedge.edge.context import EdgeContext

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not settings.edge_db_path.exists():  # 15 ms of migrations less a test
        shutil.copyfile(migrated_edge_db, settings.edge_db_path)
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
