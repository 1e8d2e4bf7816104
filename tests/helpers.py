"""Small helpers the tests share."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from plugin.einvoice import HybridOutcome, build_cii, validate
from plugin.models import Base
from tests.conftest import REPOSITORY, RULES_PATH


def snapshot(session: Session) -> dict[str, list[tuple]]:
    """Every row of every plugin table, to prove that something changed nothing."""
    rows = {}
    for name, table in Base.metadata.tables.items():
        order = list(table.primary_key.columns)
        rows[name] = [tuple(row) for row in session.execute(select(table).order_by(*order))]
    return rows


class QueryCounter:
    """Counts the SQL statements an engine runs inside the ``with`` block."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.count = 0

    def __enter__(self) -> QueryCounter:
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)

    def _count(self, *args: object) -> None:
        self.count += 1


def count_statements(session: Session, work: Callable[[], object]) -> int:
    """How many SQL statements ``work()`` runs."""
    with QueryCounter(session.get_bind()) as counter:
        work()
    return counter.count


class FakeRenderer:
    """Stands in for wkhtmltopdf and Ghostscript: binary bytes of its own per invoice.

    An e-invoice gets its real XML, really validated, beside the stand-in PDF.
    """

    def render_many(self, documents):
        return [self.render(doc) for doc in documents]

    @staticmethod
    def render(doc):
        pdf = b"%PDF-1.4\n" + doc["number"].encode() + bytes(range(256))
        if doc.get("einvoice") is None:
            return pdf
        xml = build_cii(doc["einvoice"])
        return HybridOutcome(xml, validate(xml), pdf)


def billing_process(
    database_url: str, *args: str, config: dict | None = None, **popen: Any
) -> subprocess.Popen:
    """``flask billing ARGS…`` in a process of its own, on the demo host and this database.

    ``config`` goes to the demo's ``create_app`` (plain values: it is written
    into the ``--app`` expression); ``popen`` to :class:`subprocess.Popen`.
    """
    env = {**os.environ, "DEMO_DATABASE_URL": database_url, "BILLING_RULES_PATH": str(RULES_PATH)}
    app = "examples.backoffice:create_app" + (f"({config!r})" if config else "")
    command = [sys.executable, "-m", "flask", "--app", app, "billing", *args]
    return subprocess.Popen(command, cwd=REPOSITORY, env=env, **popen)
