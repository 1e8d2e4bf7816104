"""The job queue: claims, leases and retries, for any table whose rows are jobs.

A job is a row (a mail of the outbox, an invoice whose PDF is pending).  A
worker first *claims* due rows in a short transaction of its own: one UPDATE
sets its claim token and a lease.  On PostgreSQL the rows are picked with
``SELECT … FOR UPDATE SKIP LOCKED``, so a second worker skips them instead of
waiting; SQLite has no row locks, but the UPDATE takes the database's write
lock, so the second worker's claim runs after the first one's has committed
and no longer sees those rows as due.  Only after the claim is committed does
the worker do the job, and it records the outcome in another commit guarded
by its token (:func:`settle`): a worker that lost its claim (its lease
expired and another worker took the job over) changes nothing.

A worker that dies, even by SIGKILL, holds its jobs until their lease
expires; then they are due again.  Failed jobs are tried again after
:func:`retry_delay`, which doubles with every attempt.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Table, select, text, update
from sqlalchemy.orm import Session

#: First retry after a temporary failure; each further one waits twice as long ...
RETRY_BASE = timedelta(minutes=1)
#: ... but never longer than this.
RETRY_CAP = timedelta(hours=6)
#: How long a claim waits for another worker's write transaction on SQLite, in ms.
SQLITE_LOCK_WAIT_MS = 60_000


def new_token() -> str:
    """A worker run's claim token: what its claims and outcomes are guarded by."""
    return secrets.token_hex(16)


def retry_delay(attempt: int) -> timedelta:
    """How long to wait after failed attempt number ``attempt`` (1, 2, 4, … minutes, capped)."""
    return min(RETRY_BASE * 2.0 ** (attempt - 1), RETRY_CAP)


def wait_for_writers(session: Session) -> None:
    """On SQLite, wait for another worker's short write transaction instead of failing."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text(f"PRAGMA busy_timeout = {SQLITE_LOCK_WAIT_MS}"))


def claim(
    session: Session,
    table: Table,
    *,
    due: ColumnElement[bool],
    order_by: Sequence[Any],
    limit: int,
    values: dict[str, Any],
) -> list[int]:
    """Set ``values`` (the token, the lease, …) on up to ``limit`` ``due`` rows and commit.

    Returns the ids claimed.  ``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
    SQLAlchemy leaves it out on SQLite, where the UPDATE's database write
    lock does the same (module docstring).
    """
    candidates = (
        select(table.c.id)
        .where(due)
        .order_by(*order_by)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(table)
        .where(table.c.id.in_(candidates.scalar_subquery()))
        .values(values)
        .returning(table.c.id)
    )
    wait_for_writers(session)
    claimed = list(session.scalars(statement))
    session.commit()
    return claimed


def settle(
    session: Session,
    table: Table,
    ids: Sequence[int],
    *,
    held: ColumnElement[bool],
    values: dict[str, Any],
) -> int:
    """Write an outcome on the rows ``ids`` that are still ``held`` by this claim, and commit.

    ``held`` names the claim (its token, and the state a claimed row is in);
    returns how many rows it changed: fewer than ``ids`` when a claim was lost.
    """
    if not ids:
        return 0
    wait_for_writers(session)
    result = session.execute(
        update(table).where(table.c.id.in_(list(ids)), held).values(values)
    )
    session.commit()
    # An UPDATE's result is a CursorResult: it has the count of rows it changed.
    return cast("CursorResult[Any]", result).rowcount
