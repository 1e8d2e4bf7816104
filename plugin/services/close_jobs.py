"""The month close as a job: asked for in the back-office, done by a worker.

The close page queues a :class:`~plugin.models.CloseJob` (:func:`queue_close`);
``flask billing worker`` claims it like its other jobs (``FOR UPDATE SKIP
LOCKED`` and a lease, :mod:`.job_queue`) and runs
:func:`plugin.services.invoicing.close_month` (:func:`work_next_close`).  The
invoices and the job's outcome commit together, so a worker killed mid-close
leaves nothing half done: once its lease runs out another worker takes the job
over and closes the month from the start.

One close per month at a time: a partial unique index allows one queued or
running job per month, so a second click, or a second browser, finds the job
already queued and queues nothing (:attr:`Queued.created`).  The close itself
issues a workspace at most one current invoice per month, so even a second
job issues nothing more.

The page shows the job's progress from the database (:func:`progress`): the
close, then the PDFs the worker renders and the mails it sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..i18n import _
from ..models import CloseJob, Invoice, OutboxMail
from ..rules import PricingRules
from . import job_queue
from .invoicing import CloseSummary, InvoicingError, close_month, plan_month
from .periods import Month

#: How long a worker may hold a close job before another one takes it over.
CLOSE_LEASE = timedelta(minutes=15)
_TABLE = CloseJob.__table__


@dataclass(frozen=True)
class Queued:
    """The month's close job, and whether this request queued it (``False``: it was
    already queued or running, from another click or browser)."""

    job: CloseJob
    created: bool


def queue_close(
    session: Session, rules: PricingRules, month: Month, now: datetime, *, actor: str
) -> Queued:
    """Queue the close of ``month`` for a worker, unless one is queued or running; commits.

    Refuses (``InvoicingError``, nothing written) a month that is not over, one
    some workspace cannot be priced for, and one with nothing left to issue.
    """
    plan = plan_month(session, rules, month, now)
    if not plan.complete:
        raise InvoicingError(
            _(
                "%(month)s is not over yet in %(zone)s: only past months can be closed",
                month=month,
                zone=rules.timezone,
            )
        )
    running = active_job(session, month)
    if running is not None:
        session.rollback()
        return Queued(running, False)
    if not plan.planned:
        raise InvoicingError(
            _("%(month)s has nothing left to issue: no close is needed", month=month)
        )
    job = CloseJob(
        period=str(month),
        status="queued",
        requested_by=actor,
        requested_at=now,
        planned=len(plan.planned),
        attempts=0,
    )
    session.add(job)
    try:
        session.flush()
    except IntegrityError:
        # Another request queued it between our look and our insert (it waited
        # for that request's commit on PostgreSQL's unique index).
        session.rollback()
        existing = active_job(session, month)
        if existing is None:  # that one finished meanwhile: its invoices are issued
            existing = latest_job(session, month)
        assert existing is not None
        return Queued(existing, False)
    session.commit()
    return Queued(job, True)


def active_job(session: Session, month: Month) -> CloseJob | None:
    """The month's queued or running close job, if any."""
    return session.scalar(
        select(CloseJob).where(
            CloseJob.period == str(month), CloseJob.status.in_(("queued", "running"))
        )
    )


def latest_job(session: Session, month: Month) -> CloseJob | None:
    """The month's newest close job, whatever its state."""
    return session.scalar(
        select(CloseJob).where(CloseJob.period == str(month)).order_by(CloseJob.id.desc()).limit(1)
    )


def close_due(now: datetime) -> Any:
    """Queued, or running under a lease that ran out (its worker died)."""
    return or_(
        _TABLE.c.status == "queued",
        and_(_TABLE.c.status == "running", _TABLE.c.claimed_until < now),
    )


@dataclass(frozen=True)
class ClosedJob:
    """What a worker did with one close job."""

    job_id: int
    month: str
    issued: int
    error: str | None = None


def work_next_close(
    session: Session,
    rules: PricingRules,
    now: datetime,
    *,
    lease: timedelta = CLOSE_LEASE,
) -> ClosedJob | None:
    """Claim the next due close job and close its month; ``None`` when none is due.

    The claim is a commit of its own; the invoices and the job's outcome are
    the next one, guarded by the claim's token: a worker that lost its claim
    writes nothing.  A close the rules refuse marks the job failed, with why.
    Call it without a transaction of your own open.
    """
    # A read first: the worker asks before every job, and a claim is a write.
    waiting = session.scalar(select(_TABLE.c.id).where(close_due(now)).limit(1))
    session.rollback()
    if waiting is None:
        return None
    token = job_queue.new_token()
    claimed = job_queue.claim(
        session,
        _TABLE,
        due=close_due(now),
        order_by=(_TABLE.c.id,),
        limit=1,
        values={
            "status": "running",
            "claim_token": token,
            "claimed_until": now + lease,
            "started_at": now,
            "attempts": _TABLE.c.attempts + 1,
        },
    )
    if not claimed:
        return None
    (job_id,) = claimed
    period = session.scalar(select(CloseJob.period).where(CloseJob.id == job_id))
    assert period is not None
    month = Month.parse(period)
    requested_by = session.scalar(select(CloseJob.requested_by).where(CloseJob.id == job_id))
    held = and_(_TABLE.c.claim_token == token, _TABLE.c.status == "running")
    try:
        summary = close_month(session, rules, month, now, actor=requested_by or "worker")
    except InvoicingError as exc:
        session.rollback()
        job_queue.settle(
            session,
            _TABLE,
            [job_id],
            held=held,
            values={
                "status": "failed",
                "error": str(exc),
                "finished_at": now,
                "claim_token": None,
                "claimed_until": None,
            },
        )
        return ClosedJob(job_id, period, 0, str(exc))
    except BaseException:
        session.rollback()
        _give_back(session, job_id, token)
        raise
    # One commit for the invoices and the outcome: a lost claim keeps neither.
    result = cast(
        CursorResult[Any],
        session.execute(
            update(_TABLE)
            .where(_TABLE.c.id == job_id, held)
            .values(
                status="done",
                summary=summary_record(session, summary),
                finished_at=now,
                claim_token=None,
                claimed_until=None,
                error=None,
            )
        ),
    )
    if result.rowcount != 1:
        session.rollback()
        return None
    session.commit()
    return ClosedJob(job_id, period, len(summary.issued))


def _give_back(session: Session, job_id: int, token: str) -> None:
    """A stop signal or a lost database mid-close: the job is due again at once."""
    try:
        job_queue.settle(
            session,
            _TABLE,
            [job_id],
            held=_TABLE.c.claim_token == token,
            values={"status": "queued", "claim_token": None, "claimed_until": None},
        )
    except Exception:  # the lease gives it back anyway
        session.rollback()


def summary_record(session: Session, summary: CloseSummary) -> dict[str, Any]:
    """The close's summary as the job keeps it: what the page shows afterwards."""
    ids: list[int] = []
    if summary.issued:
        ids = list(
            session.scalars(
                select(Invoice.id).where(
                    Invoice.number.in_((summary.issued[0], summary.issued[-1]))
                )
            )
        )
    return {
        "issued": len(summary.issued),
        "first": summary.issued[0] if summary.issued else None,
        "last": summary.issued[-1] if summary.issued else None,
        "first_id": min(ids) if ids else None,
        "last_id": max(ids) if ids else None,
        "already_invoiced": summary.already_invoiced,
        "nothing_to_bill": summary.nothing_to_bill,
        "gross": {currency: str(amount) for currency, amount in summary.gross_by_currency.items()},
        "held": [
            {"key": held.key, "name": held.name, "missing": list(held.missing)}
            for held in summary.held
        ],
        "by_category": [
            {
                "category": total.category,
                "currency": total.currency,
                "count": total.count,
                "net": str(total.net),
                "tax": str(total.tax),
                "gross": str(total.gross),
            }
            for total in summary.by_category
        ],
        "reissued": [list(item) for item in summary.reissued],
    }


@dataclass(frozen=True)
class Progress:
    """How far a close job got: the close, then the worker's PDFs and mails."""

    status: str
    planned: int
    issued: int
    pdfs_done: int
    mails_queued: int
    mails_sent: int

    @property
    def finished(self) -> bool:
        """Nothing more to wait for: the close is over and every PDF is rendered."""
        return self.status in ("done", "failed") and self.pdfs_done >= self.issued


def progress(session: Session, job: CloseJob) -> Progress:
    """The job's progress from the database: one query for its invoices' PDFs and mails."""
    summary = job.summary or {}
    issued = int(summary.get("issued") or 0)
    if not issued:
        return Progress(job.status, job.planned, 0, 0, 0, 0)
    own = and_(Invoice.id >= summary["first_id"], Invoice.id <= summary["last_id"])
    mails = (
        select(OutboxMail.status)
        .join(Invoice, Invoice.id == OutboxMail.invoice_id)
        .where(own, OutboxMail.kind == "invoice")
        .subquery()
    )
    pdfs, queued, sent = session.execute(
        select(
            select(func.count())
            .select_from(Invoice)
            .where(own, Invoice.pdf_sha256.is_not(None))
            .scalar_subquery(),
            select(func.count()).select_from(mails).scalar_subquery(),
            select(func.count()).where(mails.c.status == "sent").scalar_subquery(),
        )
    ).one()
    return Progress(job.status, job.planned, issued, int(pdfs), int(queued), int(sent))
