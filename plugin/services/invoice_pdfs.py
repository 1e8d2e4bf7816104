"""Invoice PDFs on record: render the pending ones, hand out the stored bytes.

An invoice is issued whether or not its PDF could be rendered; one without a
PDF (``pdf_sha256 IS NULL``) is *pending* and every run of
:func:`render_pending` tries it again.  The bytes and their sha256 are stored,
so a download is always byte-identical to what was rendered at issue.

An invoice issued with billing details (``buyer`` set) is an e-invoice: its
document carries the :class:`~plugin.einvoice.EInvoice` under ``"einvoice"``,
and the renderer returns a :class:`~plugin.einvoice.HybridOutcome` (the
Factur-X PDF/A-3 and its validated XML).  When the XML fails validation the
XML and the broken rules are stored, but no PDF: the invoice stays pending,
is not mailed and cannot be downloaded, and the admin shows the rules.

Each pending PDF is also a job of ``flask billing worker``
(:func:`render_next`): a worker claims it through
:mod:`plugin.services.job_queue`, so no two workers render the same invoice,
and a failed render waits :func:`~plugin.services.job_queue.retry_delay`
before a worker tries it again.  :func:`render_pending` (the
``render-pending`` command, the cron alternative to the worker) takes no
claims: it renders every pending invoice that no worker holds, failed ones
included, at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, bindparam, case, or_, select, update
from sqlalchemy.orm import Session, aliased

from ..einvoice.hybrid import HybridOutcome
from ..i18n import _, ngettext
from ..models import Invoice
from ..types import AnyRow, utcnow
from . import job_queue
from .einvoices import einvoice_of, is_einvoice
from .job_queue import retry_delay

#: Invoices rendered between two commits: a crash loses at most one batch of work.
BATCH = 100
#: How long a worker may hold one PDF by default (several renderer timeouts).
DEFAULT_LEASE = timedelta(minutes=5)

INTERRUPTED = (
    "the previous render was interrupted (its worker stopped before recording the outcome)"
)

#: Longest error text kept on an invoice.
_ERROR_LIMIT = 4000

_Credited = aliased(Invoice)
_TABLE = Invoice.__table__

#: The columns the template prints, and nothing else (above all not ``pdf``).
_DOCUMENT_COLUMNS = (
    Invoice.id,
    Invoice.number,
    Invoice.kind,
    Invoice.workspace_key,
    Invoice.workspace_name,
    Invoice.period,
    Invoice.issued_at,
    Invoice.variant,
    Invoice.quantity,
    Invoice.currency,
    Invoice.tax_rate,
    Invoice.net,
    Invoice.tax,
    Invoice.gross,
    Invoice.lines,
    Invoice.seller,
    Invoice.rules_sha256,
    Invoice.reason,
    Invoice.buyer,
    Invoice.vat_category,
    Invoice.vat_exemption_code,
    Invoice.vat_note,
    Invoice.service_start,
    Invoice.service_end,
    Invoice.due_date,
    Invoice.payment_terms,
    Invoice.pdf_attempts,
    _Credited.number.label("credits_number"),
    _Credited.issued_at.label("credits_issued_at"),
)

# The updates leave an invoice alone once it has a PDF: with two runs at
# once, the first stored PDF stays (the bytes are the same anyway).  Each
# ends the worker's claim; a failure sets when the next try may start.
_DONE = {"pdf_claim_token": None, "pdf_claimed_until": None, "pdf_next_attempt_at": None}
_RETRY: dict[str, Any] = {**_DONE, "pdf_next_attempt_at": bindparam("b_next")}
_STORE_PDF = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("b_id"), _TABLE.c.pdf_sha256.is_(None))
    .values(pdf=bindparam("b_pdf"), pdf_sha256=bindparam("b_sha256"), pdf_error=None, **_DONE)
)
_RECORD_FAILURE = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("b_id"), _TABLE.c.pdf_sha256.is_(None))
    .values(pdf_error=bindparam("b_error"), pdf_attempts=_TABLE.c.pdf_attempts + 1, **_RETRY)
)
_STORE_EINVOICE = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("b_id"), _TABLE.c.pdf_sha256.is_(None))
    .values(
        pdf=bindparam("b_pdf"),
        pdf_sha256=bindparam("b_sha256"),
        pdf_error=None,
        einvoice_xml=bindparam("b_xml"),
        einvoice_sha256=bindparam("b_xml_sha256"),
        einvoice_status="valid",
        einvoice_failures=None,
        **_DONE,
    )
)
_RECORD_INVALID = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("b_id"), _TABLE.c.pdf_sha256.is_(None))
    .values(
        einvoice_xml=bindparam("b_xml"),
        einvoice_sha256=bindparam("b_xml_sha256"),
        einvoice_status="invalid",
        einvoice_failures=bindparam("b_failures"),
        pdf_error=bindparam("b_error"),
        pdf_attempts=_TABLE.c.pdf_attempts + 1,
        **_RETRY,
    )
)

Outcome = bytes | HybridOutcome | Exception


class Renderer(Protocol):
    """What renders documents: :class:`plugin.pdf.PdfRenderer` (an adapter, so not imported here).

    Each outcome is the PDF's bytes, for a document with an ``"einvoice"`` the
    :class:`HybridOutcome`, or the exception that says why it failed.
    """

    def render_many(self, documents: Iterable[Mapping[str, Any]]) -> Sequence[Outcome]: ...


class PdfNotAvailable(LookupError):
    """No such invoice, or its PDF is not rendered yet: the message says which."""


@dataclass(frozen=True)
class RenderFailure:
    number: str
    error: str


@dataclass(frozen=True)
class RenderSummary:
    rendered: int
    failures: tuple[RenderFailure, ...]

    @property
    def failed(self) -> int:
        return len(self.failures)


@dataclass(frozen=True)
class RenderedJob:
    """One PDF a worker took: rendered and stored, or failed (``error``) until ``retry_at``."""

    number: str
    error: str | None = None
    retry_at: datetime | None = None


def invoice_document(
    invoice: Any,
    *,
    credits_number: str | None = None,
    credits_issued_at: datetime | None = None,
    tz: tzinfo = UTC,
) -> dict[str, Any]:
    """What the PDF template prints, as plain picklable values.

    ``invoice`` is an :class:`Invoice` or a row with the same attribute
    names.  ``tz`` is the billing time zone, for the issue date: an invoice
    issued at 00:30 on 1 December in Berlin is dated 1 December, not 30 November.
    Amounts stay decimal strings; the template rounds and formats them in
    the document's language.  An invoice issued before billing details
    existed (no ``buyer``) is printed in English with the workspace as its
    customer and its period as the service period.
    """
    buyer = dict(invoice.buyer) if invoice.buyer else None
    first = date.fromisoformat(f"{invoice.period}-01")
    service_start = invoice.service_start or first
    service_end = invoice.service_end or (
        (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    )
    return {
        "number": invoice.number,
        "kind": invoice.kind,
        "language": buyer["language"] if buyer else "en",
        "issued_at": invoice.issued_at.astimezone(UTC).isoformat(),
        "issued_on": invoice.issued_at.astimezone(tz).date().isoformat(),
        "period": invoice.period,
        "service_start": service_start.isoformat(),
        "service_end": service_end.isoformat(),
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        "payment_terms": invoice.payment_terms,
        "variant": invoice.variant,
        "workspace_key": invoice.workspace_key,
        "workspace_name": invoice.workspace_name,
        "quantity": invoice.quantity,
        "currency": invoice.currency,
        "tax_rate": str(invoice.tax_rate),
        "vat_category": invoice.vat_category or "S",
        "vat_exemption_code": invoice.vat_exemption_code,
        "vat_note": invoice.vat_note,
        "net": str(invoice.net),
        "tax": str(invoice.tax),
        "gross": str(invoice.gross),
        "lines": [_line(line) for line in invoice.lines],
        "seller": _seller(dict(invoice.seller)),
        "buyer": buyer,
        "rules_sha256": invoice.rules_sha256,
        "credits_number": credits_number,
        "credits_issued_on": (
            credits_issued_at.astimezone(tz).date().isoformat() if credits_issued_at else None
        ),
        "reason": invoice.reason or "",
    }


def _seller(seller: dict[str, Any]) -> dict[str, Any]:
    """The seller in the shape of today's snapshot, from either shape an invoice may hold.

    Invoices issued before the structured seller details have ``address``
    (printed lines) and no register, contact or payment terms.
    """
    contact = seller.get("contact") or {}
    return {
        "name": seller["name"],
        "address_lines": [
            str(line) for line in seller.get("address_lines", seller.get("address", ()))
        ],
        "postcode": seller.get("postcode"),
        "city": seller.get("city"),
        "country": seller.get("country"),
        "vat_id": seller.get("vat_id"),
        "tax_number": seller.get("tax_number"),
        "register_court": seller.get("register_court"),
        "register_number": seller.get("register_number"),
        "managing_directors": list(seller.get("managing_directors", ())),
        "email": seller.get("email"),
        "contact": {key: contact.get(key) for key in ("name", "phone", "email")},
        "iban": seller.get("iban"),
        "bic": seller.get("bic"),
        "bank_name": seller.get("bank_name"),
    }


def _line(line: dict[str, Any]) -> dict[str, str]:
    keys = ("description", "quantity", "unit_price", "amount")
    return {key: str(line[key]) for key in keys}


def pending_invoices(
    session: Session, *, limit: int | None = None, now: datetime | None = None
) -> Sequence[AnyRow]:
    """The invoices without a PDF that no worker holds, in one query, least tried first.

    Least-tried first, so that with a ``limit`` one invoice that keeps failing
    cannot hold back the new ones.
    """
    now = now or utcnow()
    query = (
        select(*_DOCUMENT_COLUMNS)
        .outerjoin(_Credited, Invoice.credits_invoice_id == _Credited.id)
        .where(
            Invoice.pdf_sha256.is_(None),
            or_(Invoice.pdf_claimed_until.is_(None), Invoice.pdf_claimed_until <= now),
        )
        .order_by(Invoice.pdf_attempts, Invoice.id)
        .limit(limit)
    )
    return session.execute(query).all()


def pdf_due(now: datetime) -> ColumnElement[bool]:
    """The PDFs a worker may take at ``now``: pending, past their retry pause, held by none
    (or by a worker whose lease ran out)."""
    table = _TABLE
    return and_(
        table.c.pdf_sha256.is_(None),
        or_(table.c.pdf_next_attempt_at.is_(None), table.c.pdf_next_attempt_at <= now),
        or_(table.c.pdf_claimed_until.is_(None), table.c.pdf_claimed_until <= now),
    )


def render_next(
    session: Session,
    renderer: Renderer,
    *,
    tz: tzinfo = UTC,
    lease: timedelta = DEFAULT_LEASE,
    clock: Callable[[], datetime] = utcnow,
    numbers: Sequence[str] | None = None,
) -> RenderedJob | None:
    """Claim the next due PDF (of ``numbers`` only, if given), render and store it.

    ``None`` when there is none.  The claim, the read and the outcome are
    three short commits; nothing is held open while the renderer runs.  A
    claim taken over from a worker whose lease ran out counts that attempt
    as interrupted.  If anything escapes (a stop signal, the database went
    away), the claim is given back so that another worker can take the job
    at once.  Call it without a transaction of your own open.
    """
    token = job_queue.new_token()
    now = clock()
    due = pdf_due(now)
    if numbers is not None:
        due = and_(due, _TABLE.c.number.in_(list(numbers)))
    interrupted = _TABLE.c.pdf_claim_token.is_not(None)
    claimed = job_queue.claim(
        session,
        _TABLE,
        due=due,
        order_by=(_TABLE.c.pdf_attempts, _TABLE.c.id),
        limit=1,
        values={
            "pdf_claim_token": token,
            "pdf_claimed_until": now + lease,
            "pdf_attempts": _TABLE.c.pdf_attempts + case((interrupted, 1), else_=0),
            "pdf_error": case((interrupted, INTERRUPTED), else_=_TABLE.c.pdf_error),
        },
    )
    if not claimed:
        return None
    try:
        rows = session.execute(
            select(*_DOCUMENT_COLUMNS)
            .outerjoin(_Credited, Invoice.credits_invoice_id == _Credited.id)
            .where(Invoice.id.in_(claimed), Invoice.pdf_claim_token == token)
        ).all()
        session.commit()
        outcomes = _render(renderer, [_document(row, tz) for row in rows])
        finished = clock()
        _, failures = _store(session, rows, outcomes, now=finished)
        session.commit()
    except BaseException:
        _give_back(session, token, claimed)
        raise
    if not rows:
        return None
    (row,) = rows
    if not failures:
        return RenderedJob(row.number)
    return RenderedJob(
        row.number, failures[0].error, finished + retry_delay(row.pdf_attempts + 1)
    )


def _give_back(session: Session, token: str, ids: Sequence[int]) -> None:
    """End the claim unchanged; if the database cannot be reached, its lease runs out."""
    try:
        session.rollback()
        job_queue.settle(
            session,
            _TABLE,
            ids,
            held=_TABLE.c.pdf_claim_token == token,
            values={"pdf_claim_token": None, "pdf_claimed_until": None},
        )
    except Exception:
        session.rollback()


def render_pending(
    session: Session,
    renderer: Renderer,
    *,
    tz: tzinfo = UTC,
    limit: int | None = None,
    batch: int = BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> RenderSummary:
    """Render and store every pending invoice PDF; record the errors of those that fail.

    Commits after each batch, so what is rendered is kept even if a later
    batch crashes.  A failed invoice keeps no PDF, gets its error and one more
    attempt recorded, and stays pending for the next run: nothing is lost.
    ``progress(done, total)`` is called after each batch.
    """
    rows = pending_invoices(session, limit=limit)
    rendered, failures = 0, []
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        outcomes = _render(renderer, [_document(row, tz) for row in chunk])
        stored, failed = _store(session, chunk, outcomes, now=utcnow())
        session.commit()
        rendered += stored
        failures.extend(failed)
        if progress:
            progress(start + len(chunk), len(rows))
    return RenderSummary(rendered, tuple(failures))


def _document(row: AnyRow, tz: tzinfo) -> dict[str, Any] | Exception:
    """The template's document, with the e-invoice of an invoice issued with billing details.

    Stored data that cannot be mapped (a bug, or a hand-edited row) is that
    invoice's error, not a crash of the whole run.
    """
    try:
        document = invoice_document(
            row, credits_number=row.credits_number, credits_issued_at=row.credits_issued_at, tz=tz
        )
        if is_einvoice(row):
            document["einvoice"] = einvoice_of(row, tz=tz)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        return ValueError(f"the invoice's stored data cannot be rendered: {exc!r}")
    return document


def _render(renderer: Renderer, documents: list[dict[str, Any] | Exception]) -> list[Outcome]:
    """Render the documents that could be built; the others keep their error."""
    ready = [document for document in documents if not isinstance(document, Exception)]
    rendered = iter(renderer.render_many(ready))
    return [document if isinstance(document, Exception) else next(rendered)
            for document in documents]


def _store(
    session: Session, rows: Sequence[AnyRow], outcomes: Sequence[Outcome], *, now: datetime
) -> tuple[int, list[RenderFailure]]:
    """Write one batch's outcomes: one UPDATE statement per kind, whatever the batch size."""
    plain, hybrid, invalid, failed = [], [], [], []
    failures = []

    def next_try(row: AnyRow) -> datetime:
        return now + retry_delay(row.pdf_attempts + 1)

    for row, outcome in zip(rows, outcomes, strict=True):
        if isinstance(outcome, bytes) and is_einvoice(row):
            # A plain renderer given an e-invoice: never store it as the final document.
            outcome = TypeError("the renderer made a plain PDF for an e-invoice; "
                                "use plugin.einvoice.HybridRenderer")
        if isinstance(outcome, bytes):
            plain.append({"b_id": row.id, "b_pdf": outcome, "b_sha256": _sha256(outcome)})
        elif isinstance(outcome, HybridOutcome) and outcome.pdf is not None:
            hybrid.append({"b_id": row.id, "b_pdf": outcome.pdf, "b_sha256": _sha256(outcome.pdf),
                           "b_xml": outcome.xml, "b_xml_sha256": _sha256(outcome.xml)})
        elif isinstance(outcome, HybridOutcome):
            error = f"the e-invoice failed validation: {outcome.validation.summary()}"
            invalid.append({
                "b_id": row.id, "b_xml": outcome.xml, "b_xml_sha256": _sha256(outcome.xml),
                "b_failures": [f.as_dict() for f in outcome.validation.failures],
                "b_error": error[:_ERROR_LIMIT], "b_next": next_try(row),
            })
            failures.append(RenderFailure(row.number, error[:_ERROR_LIMIT]))
        else:
            failed.append({"b_id": row.id, "b_error": str(outcome)[:_ERROR_LIMIT],
                           "b_next": next_try(row)})
            failures.append(RenderFailure(row.number, str(outcome)[:_ERROR_LIMIT]))
    for statement, parameters in ((_STORE_PDF, plain), (_STORE_EINVOICE, hybrid),
                                  (_RECORD_INVALID, invalid), (_RECORD_FAILURE, failed)):
        if parameters:
            session.execute(statement, parameters)
    return len(plain) + len(hybrid), failures


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_pdf(session: Session, number: str) -> bytes:
    """The PDF of invoice ``number`` exactly as stored; :class:`PdfNotAvailable` otherwise."""
    row = session.execute(
        select(Invoice.pdf, Invoice.pdf_error, Invoice.pdf_attempts, Invoice.einvoice_status)
        .where(Invoice.number == number)
    ).one_or_none()
    if row is None:
        raise PdfNotAvailable(_("there is no invoice numbered %(number)r", number=number))
    if row.pdf is None and row.einvoice_status == "invalid":
        raise PdfNotAvailable(
            _(
                "invoice %(number)s is not final: %(error)s; fix the cause and run `flask "
                "billing render-pending`",
                number=number,
                error=row.pdf_error,
            )
        )
    if row.pdf is None:
        raise PdfNotAvailable(_not_rendered(number, row.pdf_error, row.pdf_attempts))
    return bytes(row.pdf)


def _not_rendered(number: str, error: str | None, attempts: int) -> str:
    if error:
        return ngettext(
            "the PDF of invoice %(number)s is not rendered yet (failed %(num)d time, last error: "
            "%(error)s); run `flask billing render-pending`",
            "the PDF of invoice %(number)s is not rendered yet (failed %(num)d times, last "
            "error: %(error)s); run `flask billing render-pending`",
            attempts,
            number=number,
            error=error,
        )
    return _(
        "the PDF of invoice %(number)s is not rendered yet; run `flask billing render-pending`",
        number=number,
    )
