"""What an invoice billed, stored when it is issued: its licence holders, and the closed month.

The month close calls :func:`record_issued` for the invoices it just
inserted, in its transaction.  One INSERT … SELECT copies the licence
holders of every invoiced workspace at once (user licences: a row per person
and billing team; team licences: a row per team with its member count), from
the same selects the export runs (:mod:`.exports`), so the stored list is
the live computation at issue time.  Then the invoiced workspaces' history
is closed up to the month's end (:mod:`.closed`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import (
    ARRAY,
    FromClause,
    Integer,
    bindparam,
    cast,
    column,
    func,
    insert,
    null,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from ..models import Invoice, InvoiceHolder
from .closed import close_periods
from .common import among, chunked
from .export_queries import team_members_query, user_pairs_query
from .quotes import MonthWindow

_COLUMNS = ["invoice_id", "person_id", "email", "name", "team_id", "team_name", "members"]


def record_issued(session: Session, numbers: Iterable[str], window: MonthWindow) -> None:
    """Store the licence holders of the invoices ``numbers``, issued for ``window``'s month,
    and close their workspaces' history up to the month's end.

    One INSERT … SELECT for all the invoices of both variants (plus one lookup
    per 5,000 numbers).  The workspace ids go into it as IN lists: at most one
    per invoice of one month close.
    """
    invoices = [
        row
        for chunk in chunked(numbers)
        for row in session.execute(
            select(Invoice.id, Invoice.workspace_id, Invoice.variant).where(
                Invoice.number.in_(chunk)
            )
        )
    ]
    if not invoices:
        return
    issued = _issued(session, [(row.id, row.workspace_id) for row in invoices])
    # Each query only for the workspaces billed in its variant: computing the pairs
    # of every workspace took twice as long at the benchmarks' scale.
    by_variant: dict[str, list[int]] = {"user_licences": [], "team_licences": []}
    for row in invoices:
        by_variant[row.variant].append(row.workspace_id)
    parts = []
    if by_variant["user_licences"]:
        users = user_pairs_query(window, by_variant["user_licences"]).subquery()
        parts.append(
            select(
                issued.c.invoice_id,
                users.c.id,
                users.c.email,
                users.c.name,
                users.c.team_id,
                users.c.team,
                null(),
            ).join(issued, issued.c.workspace_id == users.c.workspace_id)
        )
    if by_variant["team_licences"]:
        teams = team_members_query(window, by_variant["team_licences"]).subquery()
        parts.append(
            select(
                issued.c.invoice_id,
                null(),
                null(),
                null(),
                teams.c.team_id,
                teams.c.name,
                teams.c.members,
            ).join(issued, issued.c.workspace_id == teams.c.workspace_id)
        )
    rows = parts[0] if len(parts) == 1 else union_all(*parts)
    session.execute(insert(InvoiceHolder).from_select(_COLUMNS, rows))
    close_periods(session, [row.id for row in invoices], window.end)


def _issued(session: Session, pairs: Sequence[tuple[int, int]]) -> FromClause:
    """(invoice_id, workspace_id) of the invoices just issued, as a FROM to join.

    On PostgreSQL an ``unnest()`` of two constant arrays, whose rows the
    planner counts exactly.  The invoices' own rows are younger than their
    table's statistics (on a first close there are none): estimating one
    invoice, the planner put it outside a nested loop and computed every
    billed team's member count again per invoice (measured at the
    benchmarks' small scale: 181 ms for 346 team rows, against about 10 ms).
    SQLite plans the join on the invoice rows well, and has no arrays.
    """
    ids = [invoice for invoice, _ in pairs]
    if session.get_bind().dialect.name != "postgresql":
        return (
            select(Invoice.id.label("invoice_id"), Invoice.workspace_id)
            .where(among(session, Invoice.id, ids))
            .subquery()
        )

    def array(values: list[int]) -> object:
        return cast(
            bindparam(None, values, type_=ARRAY(Integer), literal_execute=True), ARRAY(Integer)
        )

    return (
        func.unnest(array(ids), array([workspace for _, workspace in pairs]))
        .table_valued(column("invoice_id", Integer), column("workspace_id", Integer))
        .render_derived()
    )
