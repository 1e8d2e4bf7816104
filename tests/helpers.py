"""Small helpers the tests share."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from plugin.einvoice import HybridOutcome, build_cii, validate
from plugin.models import Base, Invoice
from plugin.services.invoice_pdfs import invoice_document


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
