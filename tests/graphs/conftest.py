"""Graph store fixtures: every store test runs on SQLite, PostgreSQL and MariaDB.

PostgreSQL (127.0.0.1:5432, trust auth, database ``test``) and MariaDB (127.0.0.1:3306, root
without password, database ``test``) are the servers of this machine kind and of CI. They are
skipped, with the reason, only when nothing answers there. Each test session uses its own
table prefix per backend (and per xdist worker), so parallel runs never see each other's rows;
the tables are dropped at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from dagfetch.graphs import GraphStore

SERVERS = {
    "postgresql": os.environ.get("DAGFETCH_TEST_POSTGRES",
                                 "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("DAGFETCH_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
BACKENDS = ["sqlite", "postgresql", "mariadb"]
_probed: dict[str, str | None] = {}


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}_"


def server_url(backend: str, tmp_dir: Path) -> str:
    """The backend's URL, or skip when its server does not answer."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_dir / 'graphs.sqlite3'}"
    url = SERVERS[backend]
    if backend not in _probed:
        try:
            engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            engine.dispose()
            _probed[backend] = None
        except Exception as exc:  # any failure to answer means: no server here
            _probed[backend] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    if _probed[backend] is not None:
        pytest.skip(f"no {backend} server answers at {sa.make_url(url).render_as_string()} "
                    f"({_probed[backend]})")
    return url


@pytest.fixture(scope="session", params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    return server_url(request.param, tmp_path_factory.mktemp(f"db-{request.param}"))


@pytest.fixture(scope="session")
def session_store(backend_url: str) -> Iterator[GraphStore]:
    store = GraphStore(backend_url, prefix=unique_prefix())
    yield store
    store.drop()
    store.close()


@pytest.fixture
def store(session_store: GraphStore) -> Iterator[GraphStore]:
    """The session's store, emptied after each test."""
    yield session_store
    with session_store.engine.begin() as conn:
        for table in reversed(session_store.tables.all()):
            conn.execute(table.delete())


@pytest.fixture
def fresh_store(backend_url: str) -> Iterator[GraphStore]:
    """A store of its own (new prefix, schema created), for tests that need an empty one."""
    store = GraphStore(backend_url, prefix=unique_prefix())
    yield store
    store.drop()
    store.close()
