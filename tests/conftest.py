from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from tests.pg import SKIP_ENV, PostgresServer, postgres_server

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the whole run (see tests/pg.py); each test takes a database of its own."""
    if os.environ.get(SKIP_ENV):
        pytest.skip(f"{SKIP_ENV} is set")
    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    """A fresh, empty database on the shared test server."""
    return pg_server.create_database(f"test_{os.getpid()}_{next(_databases)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    """The incident store of a test, on each engine: "" is SQLite in the data directory."""
    if request.param == "sqlite":
        return ""
    return str(request.getfixturevalue("pg_url"))
