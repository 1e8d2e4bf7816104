"""The mail outbox: invoice mails and mailbox notices, queued in a transaction, sent exactly once.

Transactional outbox.  A mail is a row of ``billing_outbox_mail`` written in
the transaction that makes it necessary (the month close, a mailbox change,
a resend), so it exists exactly when its cause was committed, and its
recipient is the mailbox in force at that moment.  Delivery is a separate
step (:func:`deliver_queued`, run by ``flask billing send-invoices``) that
talks to the SMTP server through a :class:`Transport` (:mod:`plugin.smtp`).

Exactly once.  A worker first *claims* due mails in a short transaction of
its own: one UPDATE sets status ``sending``, its claim token and a lease.  On
PostgreSQL the rows are picked with ``SELECT … FOR UPDATE SKIP LOCKED``, so a
second worker skips them instead of waiting; SQLite has no row locks, but the
UPDATE takes the database's write lock, so the second worker's claim runs
after the first one's has committed and no longer sees those rows as due.
Only after the claim is committed does the worker talk SMTP, and it records
the outcome in another commit, guarded by its token.  A crash between the
server accepting a mail and that commit is the one window in which a mail can
go out twice: the lease expires, another run claims it again and sends it
with the *same* Message-ID (recorded in ``last_error``), so the recipient's
mail system and people can recognise the duplicate.

Failures.  Connection problems, timeouts and 4xx replies are temporary: the
mail is queued again with exponential backoff (:func:`retry_delay`) and
becomes ``failed`` after :data:`MAX_ATTEMPTS`.  A 5xx reply is permanent: the
mail is ``failed`` with the server's reply at once.  Nothing is dropped:
every mail ends ``sent`` or ``failed``, visibly, and accounting can resend.

An invoice mail waits until its invoice has a PDF (PDFs are rendered after
the month close commits).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, case, exists, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..models import PENDING_STATUSES, Invoice, OutboxMail, Workspace
from ..rules import PricingRules
from ..types import utcnow
from . import audit
from .common import chunked

RESEND_ACTION = "resend_invoice"

#: First retry after a temporary failure; each further one waits twice as long ...
RETRY_BASE = timedelta(minutes=1)
#: ... but never longer than this.
RETRY_CAP = timedelta(hours=6)
#: Attempts after which a mail that keeps failing temporarily is ``failed`` (about a day).
MAX_ATTEMPTS = 12
#: Mails claimed per transaction.  One: a worker that dies (even by SIGKILL) holds
#: only the mail in hand, for one lease, and parallel workers share the queue
#: mail by mail.  The claim's commit costs little next to an SMTP session.
BATCH = 1
#: How long a worker may hold one mail by default (see :func:`deliver_queued`).
DEFAULT_LEASE = timedelta(minutes=5)
#: How long a claim waits for another worker's write transaction on SQLite, in ms.
SQLITE_LOCK_WAIT_MS = 60_000

_ERROR_LIMIT = 2000
_TABLE = OutboxMail.__table__
_INSERT = {"postgresql": pg_insert, "sqlite": sqlite_insert}

INTERRUPTED = (
    "the previous attempt was interrupted (the worker stopped before recording its outcome); "
    "if the server had accepted the mail, it is sent again with the same Message-ID"
)


class MailError(ValueError):
    """A mail that cannot be queued (no such invoice or mailbox, already queued): no change."""


class TemporaryFailure(Exception):
    """The server could not take the mail now (connection, timeout, 4xx): try again later.

    ``connection`` is true when the session itself failed (connect, TLS,
    login): then every other mail would fail the same way, so the run stops.
    """

    def __init__(self, message: str, *, connection: bool = False) -> None:
        super().__init__(message)
        self.connection = connection


class PermanentFailure(Exception):
    """The server refused the mail for good (5xx); ``str()`` is its reply."""


@dataclass(frozen=True)
class OutgoingMail:
    """Everything a transport needs to compose and send one claimed mail.

    ``invoice`` holds the invoice's printed facts (number, period, amounts,
    seller) for invoice mails; ``data`` the facts of a notice.
    """

    id: int
    kind: str
    message_key: str
    recipient: str
    attempt: int
    data: Mapping[str, Any]
    invoice: Mapping[str, Any] | None = None
    pdf: bytes | None = None
    #: The e-invoice XML, attached beside the PDF for XRechnung customers.
    xml: bytes | None = None


class Transport(Protocol):
    """What sends mail: :class:`plugin.smtp.SmtpTransport` (an adapter, so not imported here).

    ``send`` returns only once the server has accepted the mail, and raises
    :class:`TemporaryFailure` or :class:`PermanentFailure` otherwise.
    """

    def send(self, mail: OutgoingMail) -> None: ...


@dataclass(frozen=True)
class DeliveryProblem:
    message_key: str
    recipient: str
    error: str


@dataclass
class DeliverySummary:
    sent: list[str] = field(default_factory=list)
    retrying: list[DeliveryProblem] = field(default_factory=list)
    failed: list[DeliveryProblem] = field(default_factory=list)
    stopped: str | None = None

    def lines(self) -> list[str]:
        lines = [
            f"Mail sent: {len(self.sent)}, to be retried: {len(self.retrying)}, "
            f"failed: {len(self.failed)}."
        ]
        lines += [f"  retry {p.message_key} to {p.recipient}: {p.error}" for p in self.retrying]
        lines += [f"  FAILED {p.message_key} to {p.recipient}: {p.error}" for p in self.failed]
        if self.stopped:
            lines.append(f"Stopped early, the other mails stay queued: {self.stopped}")
        return lines


def retry_delay(attempt: int) -> timedelta:
    """How long to wait after failed attempt number ``attempt`` (1, 2, 4, … minutes, capped)."""
    return min(RETRY_BASE * 2 ** (attempt - 1), RETRY_CAP)


def invoice_message_key(number: str, delivery: int = 0) -> str:
    """The key (Message-ID local part) of an invoice's first delivery, or of resend ``delivery``."""
    key = f"invoice-{number}"
    return f"{key}.resend-{delivery}" if delivery else key


# Queueing ------------------------------------------------------------------


def queue_invoice_mails(
    session: Session,
    rules: PricingRules,
    invoices: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    actor: str,
) -> int:
    """Queue a mail for each just-issued invoice that the rules say is e-mailed.

    Called by the month close in its own transaction with the rows it
    inserted (``number``, ``workspace_key``, ``variant``).  Each mail goes to
    the workspace's mailbox as it is now.  A workspace without a mailbox gets
    its mail recorded as ``failed`` with the reason, never silently skipped.
    Returns the number of mails written.
    """
    numbers = [
        row["number"]
        for row in invoices
        if rules.emails_invoices(row["workspace_key"], row["variant"])
    ]
    written = 0
    for chunk in chunked(numbers):
        targets = session.execute(
            select(
                Invoice.id,
                Invoice.number,
                Invoice.workspace_id,
                Workspace.key,
                Workspace.invoice_mailbox,
            )
            .join(Workspace, Workspace.id == Invoice.workspace_id)
            .where(Invoice.number.in_(chunk))
        ).all()
        rows = [_invoice_mail_row(target, now, actor) for target in targets]
        if rows:
            session.execute(_TABLE.insert(), rows)
        written += len(rows)
    return written


def _invoice_mail_row(target: Any, now: datetime, actor: str) -> dict[str, Any]:
    mailbox = target.invoice_mailbox
    return {
        **_new_mail(now, actor),
        "kind": "invoice",
        "workspace_id": target.workspace_id,
        "invoice_id": target.id,
        "recipient": mailbox,
        "message_key": invoice_message_key(target.number),
        "data": {},
        "status": "queued" if mailbox else "failed",
        "last_error": None if mailbox else _no_mailbox(target.key),
    }


def _no_mailbox(workspace_key: str) -> str:
    return (
        f"workspace {workspace_key} has no invoice mailbox: set one "
        f"(flask billing set-mailbox {workspace_key} ADDRESS), then resend the invoice"
    )


def _new_mail(now: datetime, actor: str) -> dict[str, Any]:
    return {
        "attempts": 0,
        "next_attempt_at": now,
        "queued_at": now,
        "queued_by": actor,
        "claim_token": None,
        "claimed_until": None,
        "sent_at": None,
    }


@dataclass(frozen=True)
class MailboxNotice:
    """The notice of one workspace's mailbox change: what it says and to whom."""

    workspace_id: int
    #: What the notice says (workspace, old and new address, when).
    facts: Mapping[str, Any]
    recipients: tuple[str, ...]


def queue_mailbox_notices(
    session: Session, notices: Sequence[MailboxNotice], *, now: datetime, actor: str
) -> dict[int, tuple[str, ...]]:
    """Queue every notice to each of its recipients in one statement.

    Returns the message keys by workspace id.
    """
    keys: dict[int, tuple[str, ...]] = {}
    rows = []
    for notice in notices:
        # Short enough that the Message-ID header fits on one line with most domains.
        change = secrets.token_hex(8)
        mails = [
            {
                **_new_mail(now, actor),
                "kind": "mailbox_notice",
                "workspace_id": notice.workspace_id,
                "invoice_id": None,
                "recipient": recipient,
                "message_key": f"mailbox-{change}.{index}",
                "data": dict(notice.facts),
                "status": "queued",
                "last_error": None,
            }
            for index, recipient in enumerate(notice.recipients, start=1)
        ]
        keys[notice.workspace_id] = tuple(mail["message_key"] for mail in mails)
        rows += mails
    if rows:
        session.execute(_TABLE.insert(), rows)
    return keys


@dataclass(frozen=True)
class Resend:
    number: str
    recipient: str
    message_key: str


def resend_invoice(
    session: Session, number: str, *, actor: str, now: datetime | None = None
) -> Resend:
    """Queue a new delivery of invoice ``number`` to the workspace's mailbox as it is now.

    Refused while an earlier delivery is still queued or being sent (a
    double click must not mail twice).  The new delivery has a Message-ID of
    its own that refers to the first one, and an audit entry.  The caller
    commits.
    """
    now = now or utcnow()
    invoice = session.execute(
        select(
            Invoice.id,
            Invoice.number,
            Invoice.workspace_id,
            Invoice.workspace_key,
            Workspace.invoice_mailbox,
        )
        .join(Workspace, Workspace.id == Invoice.workspace_id)
        .where(Invoice.number == number)
    ).one_or_none()
    if invoice is None:
        raise MailError(f"no invoice with the number {number!r}")
    if not invoice.invoice_mailbox:
        raise MailError(_no_mailbox(invoice.workspace_key))
    earlier = _deliveries_so_far(session, invoice.id)
    if earlier.pending:
        raise MailError(
            f"invoice {number} is already on its way ({earlier.pending}): "
            "wait until it is sent or has failed"
        )
    key = invoice_message_key(number, earlier.count)
    row = {
        **_new_mail(now, actor),
        "kind": "invoice",
        "workspace_id": invoice.workspace_id,
        "invoice_id": invoice.id,
        "recipient": invoice.invoice_mailbox,
        "message_key": key,
        "data": {"references": invoice_message_key(number)} if earlier.count else {},
        "status": "queued",
        "last_error": None,
    }
    if not _insert_unless_taken(session, row):
        raise MailError(f"invoice {number} was resent by somebody else just now")
    audit.record(
        session,
        actor,
        RESEND_ACTION,
        workspace_id=invoice.workspace_id,
        target=number,
        after={"recipient": invoice.invoice_mailbox, "message_key": key},
        detail=f"delivery {earlier.count + 1} of {number}",
    )
    return Resend(number, invoice.invoice_mailbox, key)


@dataclass(frozen=True)
class _SoFar:
    count: int
    pending: str | None


def _deliveries_so_far(session: Session, invoice_id: int) -> _SoFar:
    row = session.execute(
        select(
            func.count(),
            func.max(case((OutboxMail.status.in_(PENDING_STATUSES), OutboxMail.status))),
        ).where(OutboxMail.invoice_id == invoice_id)
    ).one()
    return _SoFar(row[0], row[1])


def _insert_unless_taken(session: Session, row: dict[str, Any]) -> bool:
    """Insert ``row`` unless its message key exists (a concurrent resend); whether it did."""
    dialect = session.get_bind().dialect.name
    statement = (
        _INSERT[dialect](_TABLE)
        .values(row)
        .on_conflict_do_nothing(index_elements=["message_key"])
        .returning(_TABLE.c.id)
    )
    return session.execute(statement).first() is not None


# Delivery ------------------------------------------------------------------


def deliver_queued(
    session: Session,
    transport: Transport,
    *,
    clock: Callable[[], datetime] = utcnow,
    lease: timedelta = DEFAULT_LEASE,
    batch: int = BATCH,
) -> DeliverySummary:
    """Send every due mail once; record each outcome in its own commit.

    ``lease`` is how long one mail may take (connect, TLS, login, sending):
    a batch is claimed for ``batch × lease``, and a mail is only started
    while enough of the lease is left, so no other worker can take it over
    while it is being sent.  ``clock`` is the time source (tests move it on
    instead of sleeping).  Stops early when the SMTP session itself fails.
    It commits as it goes, so call it without a transaction of your own open.
    """
    summary = DeliverySummary()
    token = secrets.token_hex(16)
    while summary.stopped is None:
        now = clock()
        lease_until = now + lease * batch
        claimed = _claim(session, token, now, batch, lease_until)
        if not claimed:
            break
        mails = _load(session, token, claimed)
        _deliver_batch(session, transport, token, mails, clock, lease_until - lease, summary)
    return summary


def _deliver_batch(
    session: Session,
    transport: Transport,
    token: str,
    mails: Sequence[OutgoingMail],
    clock: Callable[[], datetime],
    last_start: datetime,
    summary: DeliverySummary,
) -> None:
    """Send the claimed ``mails`` one by one; give back those not started.

    The first mail is always started (it was just claimed); a later one only
    while a whole ``lease`` is left before ``last_start``.  If anything
    escapes (the database went away, the process is being stopped), the mail
    in hand stays ``sending`` until its lease expires: whether the server
    took it is unknown, which is the documented window.
    """
    started = 0
    try:
        for mail in mails:
            if summary.stopped or (started and clock() > last_start):
                break
            started += 1
            _deliver_one(session, transport, token, mail, clock, summary)
    except BaseException:
        session.rollback()
        _release(session, token, [mail.id for mail in mails[started:]])
        raise
    _release(session, token, [mail.id for mail in mails[started:]])


def _deliver_one(
    session: Session,
    transport: Transport,
    token: str,
    mail: OutgoingMail,
    clock: Callable[[], datetime],
    summary: DeliverySummary,
) -> None:
    try:
        transport.send(mail)
    except PermanentFailure as exc:
        _record(session, token, mail, status="failed", error=str(exc), now=clock())
        summary.failed.append(DeliveryProblem(mail.message_key, mail.recipient, str(exc)))
    except TemporaryFailure as exc:
        _retry_later(session, token, mail, str(exc), clock(), summary)
        if exc.connection:
            summary.stopped = str(exc)
    except Exception as exc:
        # Composing or sending failed in a way the transport did not expect:
        # record it like a temporary failure, so the mail is neither lost nor
        # left claimed, and go on with the others.
        _retry_later(session, token, mail, f"{type(exc).__name__}: {exc}", clock(), summary)
    else:
        _record(session, token, mail, status="sent", error=None, now=clock())
        summary.sent.append(mail.message_key)


def _retry_later(
    session: Session,
    token: str,
    mail: OutgoingMail,
    error: str,
    now: datetime,
    summary: DeliverySummary,
) -> None:
    problem = DeliveryProblem(mail.message_key, mail.recipient, error)
    if mail.attempt >= MAX_ATTEMPTS:
        error = f"gave up after {mail.attempt} attempts; last error: {error}"
        _record(session, token, mail, status="failed", error=error, now=now)
        summary.failed.append(DeliveryProblem(mail.message_key, mail.recipient, error))
        return
    _record(
        session,
        token,
        mail,
        status="queued",
        error=error,
        now=now,
        next_attempt_at=now + retry_delay(mail.attempt),
    )
    summary.retrying.append(problem)


def _wait_for_writers(session: Session) -> None:
    """On SQLite, wait for another worker's short write transaction instead of failing."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text(f"PRAGMA busy_timeout = {SQLITE_LOCK_WAIT_MS}"))


def _claim(
    session: Session, token: str, now: datetime, limit: int, lease_until: datetime
) -> list[int]:
    """Claim up to ``limit`` due mails for ``token`` and commit: the ids claimed.

    Due: queued and its time has come, or ``sending`` with an expired lease
    (its worker died; that attempt is counted and recorded as interrupted).
    Invoice mails wait for their PDF.
    """
    table = _TABLE
    due = or_(
        and_(table.c.status == "queued", table.c.next_attempt_at <= now),
        and_(table.c.status == "sending", table.c.claimed_until <= now),
    )
    has_pdf = exists().where(Invoice.id == table.c.invoice_id, Invoice.pdf_sha256.is_not(None))
    # FOR UPDATE SKIP LOCKED on PostgreSQL; SQLAlchemy leaves it out on SQLite,
    # where the UPDATE's database write lock does the same (module docstring).
    candidates = (
        select(table.c.id)
        .where(due, or_(table.c.invoice_id.is_(None), has_pdf))
        .order_by(table.c.next_attempt_at, table.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    interrupted = table.c.status == "sending"
    statement = (
        update(table)
        .where(table.c.id.in_(candidates.scalar_subquery()))
        .values(
            status="sending",
            claim_token=token,
            claimed_until=lease_until,
            attempts=table.c.attempts + case((interrupted, 1), else_=0),
            last_error=case((interrupted, INTERRUPTED), else_=table.c.last_error),
        )
        .returning(table.c.id)
    )
    _wait_for_writers(session)
    claimed = list(session.scalars(statement))
    session.commit()
    return claimed


def _load(session: Session, token: str, ids: Sequence[int]) -> list[OutgoingMail]:
    """The claimed mails with their invoices' facts and PDFs, in one query; ends the transaction."""
    rows = session.execute(
        select(
            OutboxMail.id,
            OutboxMail.kind,
            OutboxMail.message_key,
            OutboxMail.recipient,
            OutboxMail.attempts,
            OutboxMail.data,
            Invoice.number,
            Invoice.kind.label("invoice_kind"),
            Invoice.period,
            Invoice.issued_at,
            Invoice.workspace_key,
            Invoice.workspace_name,
            Invoice.currency,
            Invoice.net,
            Invoice.tax,
            Invoice.gross,
            Invoice.seller,
            Invoice.pdf,
            Invoice.buyer,
            Invoice.einvoice_xml,
            Invoice.einvoice_status,
        )
        .outerjoin(Invoice, Invoice.id == OutboxMail.invoice_id)
        .where(OutboxMail.id.in_(ids), OutboxMail.claim_token == token)
        .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
    ).all()
    session.commit()
    return [_outgoing(row) for row in rows]


def _outgoing(row: Any) -> OutgoingMail:
    invoice = None
    if row.kind == "invoice":
        invoice = {
            "number": row.number,
            "kind": row.invoice_kind,
            "period": row.period,
            "issued_at": row.issued_at,
            "workspace_key": row.workspace_key,
            "workspace_name": row.workspace_name,
            "currency": row.currency,
            "net": row.net,
            "tax": row.tax,
            "gross": row.gross,
            "seller": dict(row.seller),
        }
    return OutgoingMail(
        id=row.id,
        kind=row.kind,
        message_key=row.message_key,
        recipient=row.recipient,
        attempt=row.attempts + 1,
        data=dict(row.data or {}),
        invoice=invoice,
        pdf=row.pdf if invoice else None,
        xml=row.einvoice_xml if invoice and _wants_xml(row) else None,
    )


def _wants_xml(row: Any) -> bool:
    """XRechnung customers get the XML as a file of its own (their portals read that)."""
    return (
        row.buyer is not None
        and row.buyer.get("einvoice_syntax") == "xrechnung"
        and row.einvoice_status == "valid"
    )


def _record(
    session: Session,
    token: str,
    mail: OutgoingMail,
    *,
    status: str,
    error: str | None,
    now: datetime,
    next_attempt_at: datetime | None = None,
) -> bool:
    """Write one attempt's outcome and commit; false if the claim was lost meanwhile."""
    values: dict[str, Any] = {
        "status": status,
        "attempts": mail.attempt,
        "claim_token": None,
        "claimed_until": None,
    }
    if status == "sent":
        values["sent_at"] = now
    if error is not None:
        values["last_error"] = error[:_ERROR_LIMIT]
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    _wait_for_writers(session)
    result = session.execute(
        update(_TABLE)
        .where(_TABLE.c.id == mail.id, _TABLE.c.claim_token == token, _TABLE.c.status == "sending")
        .values(values)
    )
    session.commit()
    return result.rowcount == 1


def _release(session: Session, token: str, ids: Sequence[int]) -> None:
    """Give claimed mails that were not started back to the queue, unchanged."""
    if not ids:
        return
    _wait_for_writers(session)
    session.execute(
        update(_TABLE)
        .where(_TABLE.c.id.in_(ids), _TABLE.c.claim_token == token, _TABLE.c.status == "sending")
        .values(status="queued", claim_token=None, claimed_until=None)
    )
    session.commit()


# What the admin shows ------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One queued, sent or failed mail, as the admin and ``mail-status`` show it."""

    id: int
    kind: str
    invoice_number: str | None
    workspace_key: str
    recipient: str | None
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    queued_at: datetime
    queued_by: str
    sent_at: datetime | None
    message_key: str
    waiting_for_pdf: bool
    #: The rules the invoice's e-invoice broke: it is held, neither mailed nor downloadable.
    einvoice_failures: tuple[Mapping[str, str], ...] = ()

    @property
    def einvoice_invalid(self) -> bool:
        return bool(self.einvoice_failures)

    @property
    def problem(self) -> str | None:
        """The last error, or why the mail is held: the broken e-invoice rules with their ids."""
        if self.einvoice_invalid and self.status == "queued":
            rules = "; ".join(f"{f['rule']}: {f['message']}" for f in self.einvoice_failures)
            return f"e-invoice failed validation, not sent: {rules}"
        return self.last_error

    @property
    def pending(self) -> bool:
        """Still on its way (queued or being sent): the invoice cannot be resent yet."""
        return self.status in PENDING_STATUSES

    @property
    def state(self) -> str:
        """The status in words: ``waiting for PDF`` for a queued invoice mail without one,
        ``e-invoice invalid`` when its e-invoice failed validation."""
        if self.waiting_for_pdf and self.einvoice_invalid:
            return "e-invoice invalid"
        return "waiting for PDF" if self.waiting_for_pdf else self.status

    def as_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "kind": self.kind,
            "invoice": self.invoice_number,
            "workspace": self.workspace_key,
            "recipient": self.recipient,
            "status": self.status,
            "waiting_for_pdf": self.waiting_for_pdf,
            "einvoice_failures": [dict(f) for f in self.einvoice_failures],
            "attempts": self.attempts,
            "last_error": self.last_error,
            "next_attempt_at": iso(self.next_attempt_at) if self.status == "queued" else None,
            "queued_at": iso(self.queued_at),
            "queued_by": self.queued_by,
            "sent_at": iso(self.sent_at),
            "message_key": self.message_key,
        }


@dataclass(frozen=True)
class DeliveryStatus:
    """An invoice's mail at a glance: its latest delivery and how many there were."""

    latest: Delivery
    deliveries: int

    @property
    def status(self) -> str:
        return self.latest.state

    @property
    def attempts(self) -> int:
        return self.latest.attempts

    @property
    def last_error(self) -> str | None:
        return self.latest.last_error


def _delivery_query() -> Any:
    waiting = and_(
        OutboxMail.status == "queued",
        OutboxMail.invoice_id.is_not(None),
        Invoice.pdf_sha256.is_(None),
    )
    return (
        select(
            OutboxMail.id,
            OutboxMail.kind,
            Invoice.number.label("invoice_number"),
            Workspace.key.label("workspace_key"),
            OutboxMail.recipient,
            OutboxMail.status,
            OutboxMail.attempts,
            OutboxMail.last_error,
            OutboxMail.next_attempt_at,
            OutboxMail.queued_at,
            OutboxMail.queued_by,
            OutboxMail.sent_at,
            OutboxMail.message_key,
            case((waiting, True), else_=False).label("waiting_for_pdf"),
            Invoice.einvoice_status,
            Invoice.einvoice_failures,
        )
        .join(Workspace, Workspace.id == OutboxMail.workspace_id)
        .outerjoin(Invoice, Invoice.id == OutboxMail.invoice_id)
    )


def _delivery(row: Any) -> Delivery:
    """A row of :func:`_delivery_query` (extra columns, if any, left out) as a :class:`Delivery`."""
    fields = {
        name: row._mapping[name] for name in Delivery.__dataclass_fields__
        if name != "einvoice_failures"
    }
    failures = tuple(row.einvoice_failures or ()) if row.einvoice_status == "invalid" else ()
    return Delivery(
        **{**fields, "waiting_for_pdf": bool(row.waiting_for_pdf)}, einvoice_failures=failures
    )


def deliveries(
    session: Session,
    *,
    invoice_number: str | None = None,
    workspace_key: str | None = None,
    status: str | None = None,
) -> list[Delivery]:
    """Every mail (invoices and notices), oldest first, optionally filtered: one query."""
    query = _delivery_query().order_by(OutboxMail.id)
    if invoice_number is not None:
        query = query.where(Invoice.number == invoice_number)
    if workspace_key is not None:
        query = query.where(Workspace.key == workspace_key)
    if status is not None:
        query = query.where(OutboxMail.status == status)
    return [_delivery(row) for row in session.execute(query)]


def delivery_status(session: Session, numbers: Iterable[str]) -> dict[str, DeliveryStatus]:
    """The mail status of each of these invoices, by number; one query per 5,000 numbers.

    Invoices that were never queued for mail (downloaded ones) are absent.
    """
    statuses: dict[str, DeliveryStatus] = {}
    for chunk in chunked(dict.fromkeys(numbers)):
        per_invoice = (
            select(
                OutboxMail.invoice_id,
                func.max(OutboxMail.id).label("latest_id"),
                func.count().label("deliveries"),
            )
            .join(Invoice, Invoice.id == OutboxMail.invoice_id)
            .where(Invoice.number.in_(chunk))
            .group_by(OutboxMail.invoice_id)
            .subquery()
        )
        query = _delivery_query().add_columns(per_invoice.c.deliveries)
        query = query.join(per_invoice, per_invoice.c.latest_id == OutboxMail.id)
        for row in session.execute(query):
            latest = _delivery(row)
            statuses[latest.invoice_number] = DeliveryStatus(latest, row.deliveries)
    return statuses
