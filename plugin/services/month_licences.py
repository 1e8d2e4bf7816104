"""Every workspace's licences in the months not invoiced, counted once per change.

The dashboard shows the licences of the months without invoices (the
current one, and any month not closed yet) across all workspaces.  Counted
from the history, that is every membership of the month: at the
benchmarks' full scale, the distinct billed people of 529 user-licence
workspaces, six times what the workspace list's first view costs.  So each
workspace's count is kept in the database (:class:`~plugin.models.MonthLicences`),
with what it was counted under, and counted again only when that changed:

- the workspace's stamp (:class:`~plugin.models.WorkspaceStamp`, written by
  triggers on every change to its teams, memberships, archive periods and
  access, whoever makes it: a service, the host or raw SQL);
- its variant as the rules say now, or the month's first instant (the
  billing time zone);
- for the current month, the first instant at which the count may change by
  itself (an interval of its history starting or ending after the count, or
  the month's end; :func:`plugin.services.counts.next_change`).

A view thus costs two queries reading the workspaces with their stamps and
the kept counts, plus the counting queries and one write for the workspaces
that changed since the last view, in whatever process it ran.

That write is a transaction of its own (:func:`_keep`), never the caller's:
the dashboard is a GET inside the host's request, whose session may hold
the host's own changes, which are the host's to commit or roll back.  The counts
are the ones :func:`plugin.services.licences.count_team_licences` and
:func:`~plugin.services.licences.count_user_licences` make for an invoice,
so a kept figure is the figure counted live.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from ..models import VARIANTS, MonthLicences, Workspace, WorkspaceStamp
from ..rules import PricingRules
from .counts import next_change, not_own_stamp
from .licences import count_team_licences, count_user_licences
from .periods import Month

COUNTERS = {"team_licences": count_team_licences, "user_licences": count_user_licences}
#: Pools that hand every caller the same connection: no transaction of its own there.
SHARED_POOLS = (SingletonThreadPool, StaticPool)
#: How long keeping the counts waits for a row lock on PostgreSQL.
KEEP_LOCK_TIMEOUT = "2s"

log = logging.getLogger("plugin.dashboard")


@dataclass(frozen=True)
class _Workspace:
    id: int
    variant: str
    #: ``None``: changed by this session's own transaction (PostgreSQL), not to be kept.
    stamp: int | None


def month_licences(
    session: Session, rules: PricingRules, months: list[Month], now: datetime
) -> dict[Month, dict[str, int]]:
    """Licences per variant in each of ``months`` (so far, for the current one).

    Counts what changed since it was last counted and keeps it for the next
    view, in a transaction of its own (:func:`_keep`): nothing of the
    session's own transaction is committed (its queries may autoflush the
    session's pending changes, as any query does; they stay uncommitted).
    """
    if not months:
        return {}
    workspaces = _workspaces(session, rules)
    table = MonthLicences.__table__
    kept = {
        (row.workspace_id, row.period): row
        for row in session.execute(
            select(table).where(table.c.period.in_([str(month) for month in months]))
        )
    }
    totals = {month: dict.fromkeys(VARIANTS, 0) for month in months}
    current = Month.of(now, rules.zoneinfo)
    fresh: list[dict[str, Any]] = []
    for month in months:
        start, end = month.bounds(rules.zoneinfo)
        stale: dict[str, list[_Workspace]] = {variant: [] for variant in VARIANTS}
        for ws in workspaces:
            row = kept.get((ws.id, str(month)))
            if row is not None and _serves(row, ws, start, now):
                totals[month][ws.variant] += row.licences
            else:
                stale[ws.variant].append(ws)
        ids = [ws.id for variant in VARIANTS for ws in stale[variant]]
        if not ids:
            continue
        until = next_change(session, rules, ids, now) if month == current else {}
        for variant, listed in stale.items():
            if not listed:
                continue
            counted = COUNTERS[variant](session, start, min(end, now), [ws.id for ws in listed])
            totals[month][variant] += sum(counted.values())
            fresh += [
                {
                    "workspace_id": ws.id,
                    "period": str(month),
                    "starts_at": start,
                    "variant": variant,
                    "stamp": ws.stamp,
                    "licences": counted.get(ws.id, 0),
                    "valid_until": until.get(ws.id),
                }
                for ws in listed
                if ws.stamp is not None
            ]
    _keep(session, fresh)
    return totals


def _serves(row: Row[Any], ws: _Workspace, start: datetime, now: datetime) -> bool:
    return (
        row.stamp == ws.stamp
        and row.variant == ws.variant
        and row.starts_at == start
        and (row.valid_until is None or now < row.valid_until)
    )


def _workspaces(session: Session, rules: PricingRules) -> list[_Workspace]:
    """Every workspace with its variant as the rules say now and its stamp: one query."""
    rows = session.execute(
        select(
            Workspace.id,
            Workspace.key,
            Workspace.created_at,
            Workspace.contract_variant,
            select(WorkspaceStamp.stamp)
            .where(WorkspaceStamp.workspace_id == Workspace.id, not_own_stamp(session))
            .scalar_subquery()
            .label("stamp"),
        )
    )
    return [_Workspace(row.id, rules.variant_of(row)[0], row.stamp) for row in rows]


def _keep(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert or replace the counts in a transaction of its own, committed at once.

    One statement, in key order (two views keeping the same rows on
    PostgreSQL lock them in the same order, and so cannot deadlock); a Core
    statement on the table, because the ORM's bulk insert would split the
    rows by which of their values are ``None`` and send some one by one.

    Nothing is kept where a transaction of its own could wait for the
    session's: when the session runs on one connection the host gave it,
    when the pool hands every caller the same connection (SQLite in memory),
    or when the session has written on SQLite (the second connection would
    wait for its lock).  On PostgreSQL a lock held by the session's
    transaction (the host deleting a workspace in the same request) is
    waited for :data:`KEEP_LOCK_TIMEOUT` at most.  A failure is logged: the
    next view counts those workspaces again.
    """
    if not rows:
        return
    bind = session.get_bind()
    if not isinstance(bind, Engine) or isinstance(bind.pool, SHARED_POOLS):
        return
    dialect = bind.dialect.name
    if dialect == "sqlite" and _sqlite_writing(session):
        return
    rows.sort(key=lambda row: (row["workspace_id"], row["period"]))
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(MonthLicences.__table__)
    columns = ("starts_at", "variant", "stamp", "licences", "valid_until")
    upsert = statement.on_conflict_do_update(
        index_elements=["workspace_id", "period"],
        set_={column: statement.excluded[column] for column in columns},
    )
    try:
        with bind.begin() as connection:
            if dialect == "postgresql":
                connection.execute(text(f"SET LOCAL lock_timeout = '{KEEP_LOCK_TIMEOUT}'"))
            connection.execute(upsert, rows)
    except SQLAlchemyError as exc:
        log.warning("licences not kept for the next view: %s", exc)


def _sqlite_writing(session: Session) -> bool:
    """Whether the session's SQLite connection is inside a transaction that wrote."""
    dbapi = session.connection().connection.dbapi_connection
    return bool(getattr(dbapi, "in_transaction", False))
