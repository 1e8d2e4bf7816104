"""Small helpers the tests share."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from plugin.einvoice import HybridOutcome, build_cii, validate
from plugin.models import Base, Invoice, MonthLicences
from plugin.services.invoice_pdfs import invoice_document
from tests.conftest import REPOSITORY, RULES_PATH

#: Characters no stored text may hold (:func:`plugin.validators.characters`), each with how
#: a refusal names it.  Every path that stores text is fed these: the import file (YAML and
#: JSON), the API, the CLI, the admin forms, the rules file.
HOSTILE_CHARACTERS = [
    ("\x00", "the control character U+0000"),
    ("\x07", "the control character U+0007"),
    ("\x1b", "the control character U+001B"),
    ("\x7f", "the control character U+007F"),
    ("\x85", "a line break (U+0085)"),
    ("\x9b", "the control character U+009B"),
    ("\u202e", "the bidirectional control U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    ("\u2066", "the bidirectional control U+2066 (LEFT-TO-RIGHT ISOLATE)"),
    ("\u2028", "a line break (U+2028)"),
    ("\n", "a line break (U+000A)"),
    ("\r", "a line break (U+000D)"),
    ("\t", "a tab (U+0009)"),
]
#: What must pass wherever text is stored: umlauts, emoji, CJK, right-to-left scripts.
HARMLESS_TEXTS = [
    "Müller & Söhne GmbH",
    "Kaffee ☕ und Kuchen 🚀",
    "東京支社 株式会社",
    "شركة المثال للبرمجيات",
    "חברת הדוגמה בע״מ",
]


def hostile(text: str, character: str) -> str:
    """``text`` with ``character`` as its third character (refusals say "at character 3")."""
    return text[:2] + character + text[2:]


def refusal(description: str) -> str:
    """What a refusal of :func:`hostile` text says, wherever it is given."""
    return f"contains {description} at character 3"


#: What the plugin keeps only to count faster, derived from the rest and counted again
#: whenever it is out of date: a page that fills it has changed no data.
DERIVED = {MonthLicences.__tablename__}


def snapshot(session: Session) -> dict[str, list[tuple]]:
    """Every row of every plugin table but the derived ones, to prove that something
    changed nothing."""
    rows = {}
    for name, table in Base.metadata.tables.items():
        if name in DERIVED:
            continue
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
    database_url: str,
    *args: str,
    config: dict | None = None,
    rules_path: Path = RULES_PATH,
    **popen: Any,
) -> subprocess.Popen:
    """``flask billing ARGS…`` in a process of its own, on the demo host and this database.

    ``config`` goes to the demo's ``create_app`` (plain values: it is written
    into the ``--app`` expression); ``popen`` to :class:`subprocess.Popen`.
    """
    env = {**os.environ, "DEMO_DATABASE_URL": database_url, "BILLING_RULES_PATH": str(rules_path)}
    app = "examples.backoffice:create_app" + (f"({config!r})" if config else "")
    command = [sys.executable, "-m", "flask", "--app", app, "billing", *args]
    return subprocess.Popen(command, cwd=REPOSITORY, env=env, **popen)


def closes_at_once(database_url: str, rules_path: Path, month: str, count: int) -> list[int]:
    """Run ``flask billing close-month MONTH`` in ``count`` processes at once; return how many
    invoices each one issued, sorted (every process must succeed)."""
    processes = [
        billing_process(
            database_url, "close-month", month, rules_path=rules_path,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(count)
    ]
    outputs = [process.communicate(timeout=180) for process in processes]
    assert [process.returncode for process in processes] == [0] * count, outputs
    return sorted(int(out.split(f"Month {month}: ")[1].split(" ")[0]) for out, _ in outputs)


def sample_document(n: int) -> dict:
    """The template document of a small invoice issued before billing details existed."""
    invoice = Invoice(
        number=f"2026-{n:05d}",
        kind="invoice",
        workspace_key=f"ws-{n}",
        workspace_name=f"Team Müller & Söhne GmbH {n}",
        period="2026-10",
        issued_at=datetime(2026, 11, 1, 2, n, tzinfo=UTC),
        variant="user_licences",
        quantity=n,
        currency="EUR",
        tax_rate=Decimal("0.19"),
        net=Decimal(n * 9),
        tax=Decimal(n * 9) * Decimal("0.19"),
        gross=Decimal(n * 9) * Decimal("1.19"),
        lines=[{"description": "Users", "quantity": n, "unit_price": "9.00", "amount": n * 9}],
        seller={"name": "Seller", "address": ["Straße 1"], "vat_id": "DE1", "email": "a@b.example"},
        rules_sha256="0" * 64,
        reason="",
    )
    return invoice_document(invoice)
