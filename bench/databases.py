"""The data set on SQLite and PostgreSQL, and fresh copies of it for what writes.

SQLite: one file in ``bench/data/`` per scale, seed and month, built once and
reused (the build takes about a minute at ``large``); copies are file copies.
PostgreSQL: a throw-away server started here (``tests/postgres.py``, the one
the test suite uses), the data set built into ``bench_base`` and analysed (as
autovacuum would), copies made with ``CREATE DATABASE … TEMPLATE``.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from plugin import migrate
from plugin.rules import load_rules_file
from plugin.synthetic.generator import generate
from tests.postgres import postgres_server

from .harness import log
from .workspaces import add_bench_workspaces

REPOSITORY = Path(__file__).resolve().parent.parent
DATA = REPOSITORY / "bench" / "data"
RULES_PATH = REPOSITORY / "pricing_rules.yaml"
RULES = load_rules_file(RULES_PATH)
SEED = 1
#: Part of the cached file's name: change it when the data set's shape changes.
DATA_VERSION = 2


@dataclass(frozen=True)
class Scale:
    generator: str
    #: Billed people of the biggest export (the 1× export has a tenth).
    export: int
    #: Inactive members of the purged workspace.
    purge: int
    #: Invoices per batch in the parallel-rendering comparison.
    pdf_batch: int
    #: Invoices per batch of the worker comparison: long enough that the start of a batch
    #: (a poll interval) and its end (one worker finishing its last PDF alone) stay small.
    worker_batch: int


SCALES = {
    "small": Scale("small", export=13_000, purge=11_000, pdf_batch=40, worker_batch=120),
    "large": Scale("large", export=130_000, purge=110_000, pdf_batch=60, worker_batch=160),
}


def data_now() -> datetime:
    """The data set's "now": the 1st of this month, 00:00 UTC (so last month is complete)."""
    today = datetime.now(UTC)
    return datetime(today.year, today.month, 1, tzinfo=UTC)


def build(engine: Engine, scale: Scale, now: datetime) -> None:
    """Migrate, then the generator's data set and the bench's big workspaces, in one commit."""
    migrate.upgrade(engine)
    with engine.begin() as connection:
        log(f"  generating scale {scale.generator} on {engine.dialect.name}")
        generate(
            connection,
            seed=SEED,
            scale=scale.generator,
            tz=RULES.zoneinfo,
            now=now,
            cutover=RULES.cutover_date,
        )
        log("  adding the big bench workspaces")
        add_bench_workspaces(
            connection,
            export=scale.export,
            purge=scale.purge,
            seed=SEED,
            now=now,
            tz=RULES.zoneinfo,
        )


class SQLiteData:
    name = "sqlite"

    def __init__(self, scale_name: str, scale: Scale, now: datetime) -> None:
        DATA.mkdir(parents=True, exist_ok=True)
        self.path = DATA / f"bench-v{DATA_VERSION}-{scale_name}-seed{SEED}-{now:%Y-%m}.sqlite"
        self.workdir = Path(tempfile.mkdtemp(prefix="work-", dir=DATA))
        self._numbers = itertools.count()
        if self.path.exists():
            log(f"SQLite: reusing {self.path.relative_to(REPOSITORY)}")
        else:
            partial = self.path.with_suffix(".partial")
            partial.unlink(missing_ok=True)
            log(f"SQLite: building {self.path.relative_to(REPOSITORY)}")
            engine = create_engine(f"sqlite:///{partial}", poolclass=NullPool)
            build(engine, scale, now)
            engine.dispose()
            partial.rename(self.path)
        migrate.upgrade(create_engine(f"sqlite:///{self.path}", poolclass=NullPool))
        self.url = f"sqlite:///{self.path}"

    def copy(self) -> str:
        target = self.workdir / f"copy{next(self._numbers)}.sqlite"
        shutil.copyfile(self.path, target)
        return f"sqlite:///{target}"

    def drop(self, url: str) -> None:
        Path(make_url(url).database).unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


class PostgresData:
    name = "postgresql"

    def __init__(self, server_url: str, scale: Scale, now: datetime) -> None:
        self.server_url = server_url
        self._numbers = itertools.count()
        self._admin("CREATE DATABASE bench_base")
        self.url = self._url("bench_base")
        log("PostgreSQL: building bench_base")
        engine = create_engine(self.url, poolclass=NullPool)
        build(engine, scale, now)
        engine.dispose()
        log("  VACUUM ANALYZE")
        self._admin("VACUUM ANALYZE", database="bench_base")
        # Right after the bulk load the first VACUUM leaves the visibility map empty
        # (relallvisible 0), and the planner then prices index-only scans as heap
        # reads; autovacuum would have marked these never-updated pages long ago.
        self._admin("VACUUM", database="bench_base")

    def _url(self, database: str) -> str:
        url = make_url(self.server_url).set(database=database)
        return url.render_as_string(hide_password=False)

    def _admin(self, sql: str, database: str = "postgres") -> None:
        engine = create_engine(
            self._url(database), isolation_level="AUTOCOMMIT", poolclass=NullPool
        )
        with engine.connect() as connection:
            connection.execute(text(sql))
        engine.dispose()

    def copy(self) -> str:
        name = f"bench_copy_{next(self._numbers)}"
        self._admin(f"CREATE DATABASE {name} TEMPLATE bench_base STRATEGY FILE_COPY")
        return self._url(name)

    def drop(self, url: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)")

    def close(self) -> None:
        pass


@contextlib.contextmanager
def backends(scale_name: str, only: set[str]) -> Iterator[list[SQLiteData | PostgresData]]:
    """The data set on each database asked for; the PostgreSQL server stops afterwards."""
    scale, now = SCALES[scale_name], data_now()
    with contextlib.ExitStack() as stack:
        found: list[SQLiteData | PostgresData] = []
        if "sqlite" in only:
            found.append(SQLiteData(scale_name, scale, now))
            stack.callback(found[-1].close)
        if "postgresql" in only:
            log("PostgreSQL: starting a throw-away server")
            server_url = stack.enter_context(postgres_server())
            found.append(PostgresData(server_url, scale, now))
        yield found
