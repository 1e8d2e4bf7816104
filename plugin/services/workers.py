"""Who works the queue: heartbeats of the workers, and whether waiting work is left alone.

Every ``flask billing worker`` writes a row of ``billing_worker_heartbeat``
when it starts and again every few seconds; ``render-pending`` and
``send-invoices`` keep one row per machine and command, so a back-office that
runs them from cron instead is seen too.  :func:`worker_state` tells the
plugin's pages whether to warn: PDFs, mail or a month close are due *and* no row was written
for longer than the configured time.  A stale heartbeat alone says nothing
(a back-office with nothing to do needs no worker running), and work alone
says nothing (the worker is about to take it).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from ..models import CloseJob, OutboxMail, WorkerHeartbeat
from . import job_queue
from .close_jobs import close_due
from .common import DIALECT_INSERT as _INSERT
from .invoice_pdfs import pdf_due
from .mail_delivery import mail_due

_TABLE = WorkerHeartbeat.__table__
#: Rows of workers not seen for this long are deleted when a worker starts.
FORGET_AFTER = timedelta(days=7)


def worker_id(token: str) -> str:
    """This process's heartbeat id: ``HOST:PID:TOKEN``."""
    return f"{socket.gethostname()}:{os.getpid()}:{token[:8]}"


def cron_id(command: str) -> str:
    """The heartbeat id of a cron command on this machine: one row however often it runs."""
    return f"cron:{socket.gethostname()}:{command}"


def beat(
    session: Session, ident: str, *, now: datetime, kind: str = "worker", jobs_done: int = 0
) -> None:
    """Write the heartbeat of ``ident`` (its row is made on the first beat) and commit."""
    row = {
        "id": ident,
        "kind": kind,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": now,
        "seen_at": now,
        "stopped_at": None,
        "jobs_done": jobs_done,
    }
    statement = _INSERT[session.get_bind().dialect.name](_TABLE).values(row)
    statement = statement.on_conflict_do_update(
        index_elements=["id"],
        set_={"seen_at": now, "stopped_at": None, "pid": row["pid"], "jobs_done": jobs_done},
    )
    job_queue.wait_for_writers(session)
    session.execute(statement)
    session.commit()


def stopped(session: Session, ident: str, *, now: datetime, jobs_done: int) -> None:
    """Record that the worker stopped cleanly, and commit."""
    job_queue.wait_for_writers(session)
    session.execute(
        update(_TABLE)
        .where(_TABLE.c.id == ident)
        .values(seen_at=now, stopped_at=now, jobs_done=jobs_done)
    )
    session.commit()


def forget_old(session: Session, *, now: datetime) -> None:
    """Delete the rows of workers not seen for :data:`FORGET_AFTER`, and commit."""
    job_queue.wait_for_writers(session)
    session.execute(_TABLE.delete().where(_TABLE.c.seen_at < now - FORGET_AFTER))
    session.commit()


@dataclass(frozen=True)
class WorkerState:
    """What the pages need to know: when a worker was last seen, and whether work waits."""

    now: datetime
    last_seen: datetime | None
    pdfs_waiting: bool
    mail_waiting: bool
    #: ``None``: never warn (the host switched the warning off).
    stale_after: timedelta | None
    #: A month close queued on the close page (only a worker runs those).
    close_waiting: bool = False

    @property
    def waiting(self) -> tuple[str, ...]:
        """What is due, of ``pdfs``, ``mail`` and ``close``, in that order."""
        due = (("pdfs", self.pdfs_waiting), ("mail", self.mail_waiting))
        return tuple(kind for kind, is_due in (*due, ("close", self.close_waiting)) if is_due)

    @property
    def stale(self) -> bool:
        """No worker seen within ``stale_after`` (or never)."""
        if self.stale_after is None:
            return False
        return self.last_seen is None or self.now - self.last_seen > self.stale_after

    @property
    def warning(self) -> bool:
        """Work is due and nobody has taken any for too long: the pages say so."""
        return self.stale and bool(self.waiting)

    def as_json(self) -> dict[str, Any]:
        return {
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "pdfs_waiting": self.pdfs_waiting,
            "mail_waiting": self.mail_waiting,
            "close_waiting": self.close_waiting,
            "stale": self.stale,
            "warning": self.warning,
        }


def worker_state(
    session: Session, *, now: datetime, stale_after: timedelta | None
) -> WorkerState:
    """The newest heartbeat and whether PDFs, mails or a month close are due: one query.

    The ``EXISTS`` read the partial indexes of pending PDFs and due mail (and
    the few close jobs), so the query costs the same with a million invoices
    as with ten.
    """
    mail = OutboxMail.__table__
    row = session.execute(
        select(
            select(func.max(_TABLE.c.seen_at)).scalar_subquery().label("last_seen"),
            exists().where(pdf_due(now)).label("pdfs"),
            exists().select_from(mail).where(mail_due(now)).label("mail"),
            exists().select_from(CloseJob.__table__).where(close_due(now)).label("close"),
        )
    ).one()
    return WorkerState(
        now, row.last_seen, bool(row.pdfs), bool(row.mail), stale_after, bool(row.close)
    )
