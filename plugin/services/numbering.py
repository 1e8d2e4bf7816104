"""Invoice numbers: unique and gap-free per year, enforced by the database.

A number is taken in the transaction that inserts the invoice, by
incrementing the year's row in ``billing_invoice_sequence``.  The row lock
that this UPDATE takes serialises concurrent month closes and credit notes on
PostgreSQL; on SQLite the first write of the transaction takes the database's
write lock, which does the same.  If the transaction rolls back, so does the
increment: no number is ever lost or used twice.
"""

from __future__ import annotations

from sqlalchemy import text, update
from sqlalchemy.orm import Session

from ..models import InvoiceSequence
from .common import DIALECT_INSERT as _INSERT

#: How long a second month close waits for the first on SQLite, in ms.
SQLITE_LOCK_WAIT_MS = 10 * 60 * 1000


def lock_numbering(session: Session, year: int) -> None:
    """Take the year's numbering lock; the first statement of a numbering transaction.

    Everything the transaction reads after this sees every invoice committed
    by whoever held the lock before, which is what makes a concurrent second
    close find the first close's invoices and issue nothing.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        session.execute(text(f"PRAGMA busy_timeout = {SQLITE_LOCK_WAIT_MS}"))
    session.execute(
        _INSERT[dialect](InvoiceSequence)
        .values(year=year, last_seq=0)
        .on_conflict_do_nothing(index_elements=["year"])
    )
    session.execute(
        update(InvoiceSequence)
        .where(InvoiceSequence.year == year)
        .values(last_seq=InvoiceSequence.last_seq)
    )


def take_numbers(session: Session, year: int, count: int) -> range:
    """Reserve ``count`` consecutive sequence numbers of ``year`` (after :func:`lock_numbering`)."""
    last = session.execute(
        update(InvoiceSequence)
        .where(InvoiceSequence.year == year)
        .values(last_seq=InvoiceSequence.last_seq + count)
        .returning(InvoiceSequence.last_seq)
    ).scalar_one()
    return range(last - count + 1, last + 1)
