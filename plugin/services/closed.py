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
(docs/user-management.md), never a rewritten month.  Crediting an invoice
reopens the workspace's history back to the end of its last month whose
invoice still stands (:func:`reopen_after_credit`); while an invoice of a
later month stands, that month keeps the history closed, and the reopening
names it.  Every check reads the stored period, so each path honours the
reopening at once; the next close of the month closes the history again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from ..formatting import instant
from ..i18n import _
from ..models import ClosedPeriod, Invoice, Workspace
from ..types import AnySelect
from . import audit
from .common import among
from .errors import ManagementError
from .periods import Month


class ClosedMonth(ManagementError):
    """A change inside an invoiced month; ``str()`` names workspace, row and invoice."""

    def __init__(self, closed: Closed, row: str, at: datetime | None = None) -> None:
        self.closed = closed
        self.row = row
        self.at = at
        what = _("%(row)s at %(at)s", row=row, at=at.isoformat()) if at is not None else row
        super().__init__(
            _(
                "workspace %(key)s: %(what)s would change history at or before %(until)s, the "
                "end of %(period)s, which invoice %(number)s holds; invoiced months are closed "
                "(correct them with a credit note and a new invoice)",
                key=closed.workspace_key,
                what=what,
                until=closed.closed_until.isoformat(),
                period=closed.period,
                number=closed.invoice_number,
            ),
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


@dataclass(frozen=True)
class Standing:
    """An invoice no credit note credits: its number and month."""

    number: str
    period: str


@dataclass(frozen=True)
class Reopening:
    """What crediting an invoice of ``period`` did to its workspace's closed history.

    ``closed_until`` is the end of the history's closed part afterwards (``None``:
    nothing is closed, no invoice of the workspace stands), ``closed_by`` the
    invoice that holds it.  ``later`` are the standing invoices of months after
    ``period``: while there are any, the history stays closed and the credited
    month cannot be corrected (they have to be credited first).
    """

    workspace_key: str
    period: str
    closed_until: datetime | None
    closed_by: Standing | None
    later: tuple[Standing, ...]

    @property
    def reopened(self) -> bool:
        """Whether the history of the credited month is open for corrections now."""
        return not self.later

    def lines(self, zone: tzinfo = UTC) -> list[str]:
        """What it means for support, as the CLI prints it and the back-office shows it
        (in the page's language); the instant written in ``zone`` (the billing time zone),
        in the page's form."""
        close = f"flask billing close-month {self.period}"
        key, period = self.workspace_key, self.period
        if self.later:
            numbers = ", ".join(f"{item.number} ({item.period})" for item in self.later)
            return [
                _(
                    "The history of workspace %(key)s stays closed until the end of %(until)s: "
                    "invoice(s) of later months still stand: %(numbers)s. Credit them too to "
                    "correct the history of %(period)s (in any order: it reopens once none of "
                    "them stands).",
                    key=key,
                    until=self.later[0].period,
                    numbers=numbers,
                    period=period,
                ),
                _(
                    "%(command)s issues a new invoice for %(period)s from the history as it is "
                    "(a correction of the price or the billing details).",
                    command=close,
                    period=period,
                ),
            ]
        if self.closed_by is None or self.closed_until is None:
            head = _("The history of workspace %(key)s is open again: no invoice of it stands.",
                     key=key)
        else:
            head = _(
                "The history of workspace %(key)s is reopened after %(at)s, the end of "
                "%(month)s (invoice %(number)s still stands).",
                key=key,
                at=instant(self.closed_until, zone),
                month=self.closed_by.period,
                number=self.closed_by.number,
            )
        return [
            " ".join((head, _("%(period)s is reopened for that workspace.", period=period))),
            _(
                "Correct its history (import, back-office, API or CLI), then issue the new "
                "invoice with %(command)s; workspaces whose invoice for %(period)s stands are "
                "not invoiced again.",
                command=close,
                period=period,
            ),
        ]


def _standing(workspace_id: int) -> AnySelect:
    return (
        select(Invoice.id, Invoice.number, Invoice.period)
        .where(
            Invoice.workspace_id == workspace_id,
            Invoice.kind == "invoice",
            Invoice.credited_by_id.is_(None),
        )
        .order_by(Invoice.period.desc())
    )


def standing_after(session: Session, workspace_id: int, period: str) -> tuple[Standing, ...]:
    """The workspace's standing invoices of months after ``period``, newest first.

    While there are any, crediting the invoice of ``period`` leaves the history
    closed (the credit note page says so before it is issued).
    """
    return tuple(
        Standing(row.number, row.period)
        for row in session.execute(_standing(workspace_id).where(Invoice.period > period))
    )


def reopen_after_credit(
    session: Session,
    workspace_id: int,
    period: str,
    zone: ZoneInfo,
    *,
    actor: str,
    credit_note: str,
) -> Reopening:
    """Reopen the workspace's history after its invoice for ``period`` was credited.

    Called by :func:`~.invoicing.issue_credit_note` in its transaction, once
    the credited invoice is marked.  The closed period moves back to the end
    (in ``zone``) of the last month whose invoice still stands, or goes when
    none does.  A standing invoice of a later month keeps it where it is: the
    history those months were billed from cannot change while they stand, so
    they are credited first; the credit note itself is never refused for
    that, since a price or an address may need correcting in any month.
    Audited (``reopen_history``) when the period moves.
    """
    later = standing_after(session, workspace_id, period)
    stored = session.execute(
        select(ClosedPeriod.closed_until, Invoice.number)
        .join(Invoice, Invoice.id == ClosedPeriod.invoice_id)
        .where(ClosedPeriod.workspace_id == workspace_id)
    ).first()
    key = session.execute(select(Workspace.key).where(Workspace.id == workspace_id)).scalar_one()
    if later or stored is None:
        closed_by = later[0] if later else None
        closed_until = stored.closed_until if stored is not None else None
        return Reopening(key, period, closed_until, closed_by, later)
    latest = session.execute(_standing(workspace_id).limit(1)).first()
    if latest is None:
        session.execute(delete(ClosedPeriod).where(ClosedPeriod.workspace_id == workspace_id))
        closed_until, closed_by = None, None
    else:
        closed_until = Month.parse(latest.period).bounds(zone)[1]
        closed_by = Standing(latest.number, latest.period)
        session.execute(
            update(ClosedPeriod)
            .where(ClosedPeriod.workspace_id == workspace_id)
            .values(closed_until=closed_until, invoice_id=latest.id)
        )
    audit.record(
        session,
        actor,
        "reopen_history",
        workspace_id=workspace_id,
        target=key,
        before={"closed_until": stored.closed_until.isoformat(), "invoice": stored.number},
        after={
            "closed_until": closed_until.isoformat() if closed_until else None,
            "invoice": closed_by.number if closed_by else None,
        },
        detail=f"credit note {credit_note} credits the invoice for {period}",
    )
    return Reopening(key, period, closed_until, closed_by, ())
