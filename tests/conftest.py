"""Shared fixtures: every database test runs on SQLite and on a real PostgreSQL.

PostgreSQL is started once per test process (see ``tests/postgres.py``; under
pytest-xdist each worker has a server, databases and temporary files of its own) unless
``BILLING_TEST_POSTGRES_URL`` points at a server already running.  Without
PostgreSQL installed its half of the tests is skipped, except when
``BILLING_TEST_REQUIRE_POSTGRES=1`` (what ``make test`` sets): then it fails.

Each test gets a database of its own at the migrated schema: on SQLite a copy of a
template file migrated once; on PostgreSQL a database that is either a fresh
``CREATE DATABASE … TEMPLATE`` clone or one an earlier test of this process used and
that was emptied back to the template's rows and renamed (:class:`PostgresPool`).
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from plugin import migrate
from tests.pgpool import PostgresPool
from tests.postgres import postgres_server

REPOSITORY = Path(__file__).resolve().parent.parent
# The suite runs the demo host, in this process and in the `flask` processes it
# starts, as `make demo` does: with its published secret key.
os.environ.setdefault("DEMO_MODE", "1")
RULES_PATH = REPOSITORY / "pricing_rules.yaml"
BACKENDS = ("sqlite", "postgresql")


class Databases:
    """Hands out fresh databases, empty or migrated, on either backend."""

    def __init__(self, postgres_url: str | None, workdir: Path) -> None:
        self.postgres_url = postgres_url
        self.workdir = workdir
        self._counter = itertools.count()
        self._templates: dict[str, str] = {}
        self._admin: Engine | None = None
        self._pool: PostgresPool | None = None
        if postgres_url:
            # One connection to the server's ``postgres`` database, kept for the run.
            self._admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT", pool_size=1)
            self._pool = PostgresPool(self._admin, postgres_url, self._postgres_name)

    def _postgres_name(self) -> str:
        return f"billing_test_{os.getpid()}_{next(self._counter)}"

    def empty(self, backend: str, template: str | None = None) -> str:
        if backend == "sqlite":
            url = f"sqlite:///{self.workdir / f'db{next(self._counter)}.sqlite'}"
            if template:
                shutil.copyfile(make_url(template).database, make_url(url).database)
            return url
        if self.postgres_url is None:
            if os.environ.get("BILLING_TEST_REQUIRE_POSTGRES") == "1":
                pytest.fail("PostgreSQL is required (BILLING_TEST_REQUIRE_POSTGRES=1) but absent")
            pytest.skip("PostgreSQL is not installed")
        name = self._postgres_name()
        clause = f" TEMPLATE {make_url(template).database}" if template else ""
        assert self._admin is not None
        with self._admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}{clause}"))
        return make_url(self.postgres_url).set(database=name).render_as_string(hide_password=False)

    def migrated(self, backend: str) -> str:
        """A database at the latest schema; give it back with :meth:`drop`."""
        if backend not in self._templates:
            url = self.empty(backend)
            engine = create_engine(url, poolclass=NullPool)
            migrate.upgrade(engine)
            engine.dispose()
            self._templates[backend] = url
            if backend == "postgresql" and self._pool is not None:
                self._pool.set_template(make_url(url).database)
        if backend == "postgresql" and self._pool is not None:
            return self._pool.take()
        return self.empty(backend, template=self._templates[backend])

    def drop(self, url: str) -> None:
        """The test is done with ``url``: a migrated PostgreSQL database goes back to the
        pool (emptied, renamed) or is dropped; SQLite files stay until the run ends."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql" or self._pool is None:
            return
        if self._pool.owns(url):
            self._pool.give_back(url)
        else:
            self._pool.drop(parsed.database)

    def close(self, *, drop_spares: bool) -> None:
        """Let go of the server; ``drop_spares``: leave no database of the run on it."""
        if self._pool is not None and drop_spares:
            self._pool.close()
        if self._admin is not None:
            self._admin.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    workdir = tmp_path_factory.mktemp("databases")
    url = os.environ.get("BILLING_TEST_POSTGRES_URL")
    if url:
        shared = Databases(url, workdir)
        yield shared
        shared.close(drop_spares=True)
        return
    try:
        server = postgres_server(autovacuum=False)
        url = server.__enter__()
    except RuntimeError:
        yield Databases(None, workdir)
        return
    own = Databases(url, workdir)
    try:
        yield own
    finally:
        own.close(drop_spares=False)  # they go with the server
        server.__exit__(None, None, None)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def empty_database_url(databases: Databases, backend: str) -> Iterator[str]:
    url = databases.empty(backend)
    yield url
    databases.drop(url)


@pytest.fixture
def database_url(databases: Databases, backend: str) -> Iterator[str]:
    """A database of its own for this test, at the latest schema."""
    url = databases.migrated(backend)
    yield url
    databases.drop(url)


class TemplateCode(BytecodeCache):
    """The compiled templates, shared by every app this process makes.

    Each app has a Jinja environment of its own, which compiles every template
    it renders anew: for the admin's pages about half of a test's first
    request (140 ms of an app and its first four pages).  Jinja checks a
    template's source against its checksum before it uses the code, so a
    changed template is compiled again; the pages are the same.
    """

    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


TEMPLATE_CODE = TemplateCode()


def make_app(database_url: str, **config: object) -> Flask:
    from examples.backoffice import create_app

    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"poolclass": NullPool},
            "BILLING_RULES_PATH": str(RULES_PATH),
            # The test runner invokes commands in its own process: it keeps its priority.
            "BILLING_BATCH_NICE": 0,
            **config,
        }
    )
    app.jinja_env.bytecode_cache = TEMPLATE_CODE
    return app


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    """The demo host back-office with the plugin, on this test's database."""
    app = make_app(database_url)
    with app.app_context():
        yield app
        app.extensions["sqlalchemy"].session.remove()
        app.extensions["sqlalchemy"].engine.dispose()


DEMO = REPOSITORY / "examples" / "backoffice" / "demo_data.yaml"
#: The demo's customers for every VAT case and e-invoice syntax (imported after DEMO).
CUSTOMERS = REPOSITORY / "examples" / "backoffice" / "demo_customers.yaml"


@pytest.fixture
def session(app):
    """The host's Flask-SQLAlchemy session, which the plugin uses."""
    return app.extensions["sqlalchemy"].session


@pytest.fixture
def cli(app):
    """Run ``flask billing ARGS…`` in the test app; returns click's result."""
    runner = app.test_cli_runner()

    def invoke(*args: str):
        return runner.invoke(args=["billing", *args])

    return invoke


@pytest.fixture
def demo_cli(cli):
    """:func:`cli` on a database holding the demo data."""
    result = cli("import", str(DEMO))
    assert result.exit_code == 0, result.output
    return cli


@pytest.fixture
def customers_cli(demo_cli):
    """:func:`demo_cli` with the demo's customers for every VAT case added."""
    result = demo_cli("import", str(CUSTOMERS))
    assert result.exit_code == 0, result.output
    return demo_cli
