"""Delivery of the outbox's mails, each exactly once: claim, hand to a transport, record.

A worker claims due mails through :mod:`plugin.services.job_queue` (one UPDATE
sets status ``sending``, its claim token and a lease), hands each one to a
:class:`Transport` (the SMTP adapter, :mod:`plugin.mail.smtp`), and records
the outcome in another commit, guarded by its token.  A crash between the
server accepting a mail and that commit is the one window in which a mail can
go out twice: the lease expires, another run claims it again and sends it
with the *same* Message-ID (recorded in ``last_error``), so the recipient's
mail system and people can recognise the duplicate.

Failures.  Connection problems, timeouts and 4xx replies are temporary: the
mail is queued again with exponential backoff
(:func:`~plugin.services.job_queue.retry_delay`) and becomes ``failed``
after :data:`MAX_ATTEMPTS`.  A 5xx reply is permanent: the mail is ``failed``
with the server's reply at once.  Nothing is dropped: every mail ends
``sent`` or ``failed``, visibly, and accounting can resend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, case, exists, or_, select
from sqlalchemy.orm import Session

from ..models import BillingDetails, Invoice, OutboxMail
from ..types import utcnow
from . import job_queue
from .billing_details import DEFAULT_LANGUAGE
from .job_queue import retry_delay

#: Attempts after which a mail that keeps failing temporarily is ``failed`` (about a day).
MAX_ATTEMPTS = 12
#: Mails claimed per transaction.  One: a worker that dies (even by SIGKILL) holds
#: only the mail in hand, for one lease, and parallel workers share the queue
#: mail by mail.  The claim's commit costs little next to an SMTP session.
BATCH = 1
#: How long a worker may hold one mail by default (see :func:`deliver_queued`).
DEFAULT_LEASE = timedelta(minutes=5)

_ERROR_LIMIT = 2000
_TABLE = OutboxMail.__table__

INTERRUPTED = (
    "the previous attempt was interrupted (the worker stopped before recording its outcome); "
    "if the server had accepted the mail, it is sent again with the same Message-ID"
)


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
    #: The customer's document language (``de``/``en``), the mail's language.
    language: str = DEFAULT_LANGUAGE


class Transport(Protocol):
    """What sends mail: :class:`plugin.mail.smtp.SmtpTransport` (an adapter, so not imported here).

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

    @property
    def handled(self) -> int:
        """Mails tried: sent, to be retried or failed."""
        return len(self.sent) + len(self.retrying) + len(self.failed)


def deliver_queued(
    session: Session,
    transport: Transport,
    *,
    clock: Callable[[], datetime] = utcnow,
    lease: timedelta = DEFAULT_LEASE,
    batch: int = BATCH,
    limit: int | None = None,
    keys: Sequence[str] | None = None,
) -> DeliverySummary:
    """Send every due mail once; record each outcome in its own commit.

    ``limit`` stops after that many mails (the worker takes one at a time);
    ``keys`` takes only the mails with these message keys (an admin action
    sending what it just queued).

    ``lease`` is how long one mail may take (connect, TLS, login, sending):
    a batch is claimed for ``batch × lease``, and a mail is only started
    while enough of the lease is left, so no other worker can take it over
    while it is being sent.  ``clock`` is the time source (tests move it on
    instead of sleeping).  Stops early when the SMTP session itself fails.
    It commits as it goes, so call it without a transaction of your own open.
    """
    summary = DeliverySummary()
    token = job_queue.new_token()
    while summary.stopped is None and (limit is None or summary.handled < limit):
        now = clock()
        size = batch if limit is None else min(batch, limit - summary.handled)
        lease_until = now + lease * size
        claimed = _claim(session, token, now, size, lease_until, keys)
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


def _claim(
    session: Session,
    token: str,
    now: datetime,
    limit: int,
    lease_until: datetime,
    keys: Sequence[str] | None = None,
) -> list[int]:
    """Claim up to ``limit`` due mails for ``token`` and commit: the ids claimed.

    Due: queued and its time has come, or ``sending`` with an expired lease
    (its worker died; that attempt is counted and recorded as interrupted).
    Invoice mails wait for their PDF.
    """
    table = _TABLE
    interrupted = table.c.status == "sending"
    due = mail_due(now)
    if keys is not None:
        due = and_(due, table.c.message_key.in_(list(keys)))
    return job_queue.claim(
        session,
        table,
        due=due,
        order_by=(table.c.next_attempt_at, table.c.id),
        limit=limit,
        values={
            "status": "sending",
            "claim_token": token,
            "claimed_until": lease_until,
            "attempts": table.c.attempts + case((interrupted, 1), else_=0),
            "last_error": case((interrupted, INTERRUPTED), else_=table.c.last_error),
        },
    )


def mail_due(now: datetime) -> ColumnElement[bool]:
    """The mails a worker may take at ``now``: queued and due, or left by a dead worker;
    an invoice mail only once its invoice has a PDF."""
    table = _TABLE
    has_pdf = exists().where(Invoice.id == table.c.invoice_id, Invoice.pdf_sha256.is_not(None))
    return and_(
        or_(
            and_(table.c.status == "queued", table.c.next_attempt_at <= now),
            and_(table.c.status == "sending", table.c.claimed_until <= now),
        ),
        or_(table.c.invoice_id.is_(None), has_pdf),
    )


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
            BillingDetails.language.label("details_language"),
        )
        .outerjoin(Invoice, Invoice.id == OutboxMail.invoice_id)
        .outerjoin(BillingDetails, BillingDetails.workspace_id == OutboxMail.workspace_id)
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
        language=_language(row),
    )


def _language(row: Any) -> str:
    """An invoice mail speaks the language its invoice was issued in; a notice the
    workspace's document language; either defaults to the plugin's (German)."""
    issued = (row.buyer or {}).get("language") if row.kind == "invoice" else None
    return str(issued or row.details_language or DEFAULT_LANGUAGE)


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
    return job_queue.settle(session, _TABLE, [mail.id], held=_held(token), values=values) == 1


def _release(session: Session, token: str, ids: Sequence[int]) -> None:
    """Give claimed mails that were not started back to the queue, unchanged."""
    job_queue.settle(
        session,
        _TABLE,
        ids,
        held=_held(token),
        values={"status": "queued", "claim_token": None, "claimed_until": None},
    )


def _held(token: str) -> ColumnElement[bool]:
    return and_(_TABLE.c.claim_token == token, _TABLE.c.status == "sending")
