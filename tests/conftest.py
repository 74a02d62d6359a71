"""Shared fixtures: a fresh store on each backend (SQLite file and real PostgreSQL).

PostgreSQL tests create and drop a database of their own, so parallel runs never collide.
Where no server answers they skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine

from data_schemas import store
from emulator import EmulationSummary, emulate
from tests.import_fixtures import NETWORK
from tests.proof_fixtures import EmulatedStore, build_emulated_store

POSTGRES_ADMIN_URL = os.environ.get(
    "IONTO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ("sqlite", "postgresql")


def _postgres_unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required under CI=true but {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[psycopg.Connection]:
    """An autocommit connection to the maintenance database of the test server."""
    try:
        connection = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        _postgres_unavailable(f"{POSTGRES_ADMIN_URL} did not answer ({error})")
    with connection:
        yield connection


@contextmanager
def temporary_postgres_database(admin: psycopg.Connection) -> Iterator[str]:
    """Create a database with a unique name, yield its URL, drop it afterwards."""
    name = f"ionto_test_{uuid.uuid4().hex[:12]}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def postgres_url(postgres_admin: psycopg.Connection) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    with temporary_postgres_database(postgres_admin) as url:
        yield url


@contextmanager
def temporary_store_url(
    backend: str, request: pytest.FixtureRequest, folder: Path
) -> Iterator[str]:
    """An empty store URL on ``backend`` that lives as long as the context."""
    if backend == "postgresql":
        request.applymarker(pytest.mark.postgres)
        with temporary_postgres_database(request.getfixturevalue("postgres_admin")) as url:
            yield url
    else:
        yield f"sqlite:///{folder / 'store.db'}"


@pytest.fixture(params=BACKENDS, ids=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store URL, once for SQLite and once for PostgreSQL."""
    with temporary_store_url(request.param, request, tmp_path) as url:
        yield url


@pytest.fixture
def empty_engine(store_url: str) -> Iterator[Engine]:
    """An engine on an empty store (no tables yet)."""
    engine = store.connect(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(empty_engine: Engine) -> Engine:
    """An engine on a store migrated to the newest revision."""
    store.upgrade(empty_engine)
    return empty_engine


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> EmulationSummary:
    """A small emulated network (150 episodes, 6 clinics, all three device formats)."""
    return emulate(tmp_path_factory.mktemp("network") / "out", **NETWORK)


@pytest.fixture(scope="session")
def truth(network: EmulationSummary) -> dict:
    """The parsed ground truth of ``network``."""
    return json.loads(Path(network.ground_truth).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def emulated_store(tmp_path_factory: pytest.TempPathFactory) -> EmulatedStore:
    """2,000 emulated episodes (6 clinics), EHR export and device logs imported."""
    return build_emulated_store(tmp_path_factory.mktemp("proof"))
