"""What an invoice billed, stored when it is issued: its licence holders, and the closed month.

The month close calls :func:`record_issued` for the invoices it just
inserted, in its transaction.  Two INSERT … SELECT statements copy the
licence holders of every invoiced workspace at once (user licences: a row
per person and billing team; team licences: a row per team with its member
count), from the same selects the export runs (:mod:`.exports`), so the
stored list is the live computation at issue time.  Then the invoiced
workspaces' history is closed up to the month's end (:mod:`.closed`).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import insert, null, select
from sqlalchemy.orm import Session

from ..models import Invoice, InvoiceHolder
from .closed import close_periods
from .common import among, chunked
from .exports import team_members_query, user_pairs_query
from .quotes import MonthWindow

_COLUMNS = ["invoice_id", "person_id", "email", "name", "team_id", "team_name", "members"]


def record_issued(session: Session, numbers: Iterable[str], window: MonthWindow) -> None:
    """Store the licence holders of the invoices ``numbers``, issued for ``window``'s month,
    and close their workspaces' history up to the month's end.

    A fixed number of statements whatever the number of invoices (plus one
    lookup per 5,000 numbers).  The workspace ids go into the statements as an
    IN list: at most one per invoice of one month close.
    """
    ids = [
        invoice_id
        for chunk in chunked(numbers)
        for invoice_id in session.scalars(select(Invoice.id).where(Invoice.number.in_(chunk)))
    ]
    if not ids:
        return
    invoices = (
        select(Invoice.id, Invoice.workspace_id, Invoice.variant)
        .where(among(session, Invoice.id, ids))
        .subquery()
    )
    # Each query only for the workspaces billed in its variant: computing the pairs
    # of every workspace took twice as long at the benchmarks' scale.
    by_variant: dict[str, list[int]] = {"user_licences": [], "team_licences": []}
    for workspace_id, variant in session.execute(
        select(invoices.c.workspace_id, invoices.c.variant)
    ):
        by_variant[variant].append(workspace_id)
    users = user_pairs_query(window, by_variant["user_licences"]).subquery()
    teams = team_members_query(window, by_variant["team_licences"]).subquery()
    for variant, source, values in (
        (
            "user_licences",
            users,
            (users.c.id, users.c.email, users.c.name, users.c.team_id, users.c.team, null()),
        ),
        (
            "team_licences",
            teams,
            (null(), null(), null(), teams.c.team_id, teams.c.name, teams.c.members),
        ),
    ):
        rows = (
            select(invoices.c.id, *values)
            .join(invoices, invoices.c.workspace_id == source.c.workspace_id)
            .where(invoices.c.variant == variant)
        )
        session.execute(insert(InvoiceHolder).from_select(_COLUMNS, rows))
    close_periods(session, ids, window.end)
