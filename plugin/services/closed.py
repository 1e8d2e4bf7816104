"""Invoiced months are closed: nothing may rewrite the history an invoice was computed from.

Once a workspace has an invoice for a month, no interval of that workspace
(team creation, archived period, team membership, workspace access) may
start, end or move at or before the end of its last invoiced month, its
``closed_until``.  The month close records that instant
(:func:`close_periods`) in the transaction that issues the invoices.

Every service checks it before writing and refuses with a
:class:`ClosedMonth` that names the workspace, the row and the invoice; the
database triggers of migration 0010 refuse the same for any other writer.
A correction after an invoice is a credit note and a new invoice
(docs/user-management.md), never a rewritten month.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ..models import ClosedPeriod, Invoice, Workspace
from .common import among
from .errors import ManagementError


class ClosedMonth(ManagementError):
    """A change inside an invoiced month; ``str()`` names workspace, row and invoice."""

    def __init__(self, closed: Closed, row: str, at: datetime | None = None) -> None:
        self.closed = closed
        self.row = row
        self.at = at
        when = f" at {at.isoformat()}" if at is not None else ""
        super().__init__(
            f"workspace {closed.workspace_key}: {row}{when} would change history at or before "
            f"{closed.closed_until.isoformat()}, the end of {closed.period}, which invoice "
            f"{closed.invoice_number} holds; invoiced months are closed (correct them with a "
            "credit note and a new invoice)",
            field="at",
        )


@dataclass(frozen=True)
class Closed:
    """How far one workspace's history is closed, and by which invoice."""

    workspace_id: int
    workspace_key: str
    closed_until: datetime
    invoice_number: str
    period: str

    def refuse(self, instant: datetime | None, row: str, at: datetime | None = None) -> None:
        """Raise :class:`ClosedMonth` if ``instant`` lies at or before ``closed_until``."""
        if instant is not None and instant <= self.closed_until:
            raise ClosedMonth(self, row, at)


def closed_periods(session: Session, workspace_ids: Iterable[int]) -> dict[int, Closed]:
    """The closed period of each workspace that has one: one query."""
    rows = session.execute(
        select(
            ClosedPeriod.workspace_id,
            Workspace.key,
            ClosedPeriod.closed_until,
            Invoice.number,
            Invoice.period,
        )
        .join(Workspace, Workspace.id == ClosedPeriod.workspace_id)
        .join(Invoice, Invoice.id == ClosedPeriod.invoice_id)
        .where(among(session, ClosedPeriod.workspace_id, workspace_ids))
    )
    return {row.workspace_id: Closed(*row) for row in rows}


def closed_period(session: Session, workspace_id: int) -> Closed | None:
    """The workspace's closed period, or ``None`` while it has no invoice."""
    return closed_periods(session, [workspace_id]).get(workspace_id)


def close_periods(session: Session, invoice_ids: Iterable[int], closed_until: datetime) -> None:
    """Close the history of the invoices' workspaces up to ``closed_until`` (the month end).

    Called by the month close for the invoices it just issued, in its
    transaction: one upsert per workspace row, never moving a closed period
    back (closing an older month late leaves the later end in place).
    """
    ids = list(invoice_ids)
    if not ids:
        return
    invoices = session.execute(
        select(Invoice.workspace_id, Invoice.id).where(among(session, Invoice.id, ids))
    ).all()
    stored = {
        row.workspace_id: row.closed_until
        for row in session.execute(
            select(ClosedPeriod.workspace_id, ClosedPeriod.closed_until).where(
                among(session, ClosedPeriod.workspace_id, [ws for ws, _ in invoices])
            )
        )
    }
    new = [
        {"workspace_id": ws, "closed_until": closed_until, "invoice_id": invoice}
        for ws, invoice in invoices
        if ws not in stored
    ]
    later = [
        {"workspace_id": ws, "closed_until": closed_until, "invoice_id": invoice}
        for ws, invoice in invoices
        if ws in stored and stored[ws] < closed_until
    ]
    if new:
        session.execute(insert(ClosedPeriod), new)
    if later:
        session.execute(update(ClosedPeriod), later)
