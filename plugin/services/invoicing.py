"""Month close, credit notes and the invoice list.

The close is set-based: the licences of every workspace come from two
queries (:func:`count_licences`), the numbers from one UPDATE, the invoices
from one bulk INSERT.  It runs in one transaction that starts by taking the
year's numbering lock (:mod:`.numbering`), so concurrent closes queue up and
the second one finds the first one's invoices and issues nothing; the partial
unique index on ``(workspace_id, period)`` of the *current* invoices (those
no credit note credits) makes a duplicate impossible even without the lock.

A credited invoice is no longer current: the next close of its month issues
the workspace a new invoice, with the next number, its own stored licence
holders and its own PDF.  The credit note reopens the workspace's history
for the correction in between (:func:`.closed.reopen_after_credit`).

It stays one module (about 640 lines): the close, the credit note and the
invoice list write and read the same invoice rows with the same numbering and
seller snapshot, and their transactions' order is easiest to check side by
side; the pieces with a job of their own are already apart (:mod:`.numbering`,
:mod:`.closed`, :mod:`.invoice_pdfs`, :mod:`.holders`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, exists, insert, select
from sqlalchemy.orm import Session, aliased

from .. import validators, wording
from ..formatting import amount
from ..i18n import _
from ..models import Invoice, Workspace
from ..rules import NoPriceError, PricingRules
from ..rules.pricing import Quote, Totals, with_tax_rate
from ..rules.vat import VatTreatment
from . import audit, billing_details, outbox
from .closed import Reopening, reopen_after_credit
from .holders import record_issued
from .licences import count_licences, licensed_workspaces
from .numbering import lock_numbering, take_numbers
from .periods import Month
from .quotes import MonthWindow, billable_workspaces, price_counted
from .rules_versions import record_rules_version


class InvoicingError(Exception):
    """A month close or credit note that cannot be done; nothing was written.

    ``field`` names the input at fault where there is one (``reason``).
    """

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class HeldWorkspace:
    """A workspace with something to bill whose billing details are incomplete."""

    key: str
    name: str
    missing: tuple[str, ...]

    def line(self) -> str:
        return f"{self.key} ({self.name}): missing {', '.join(self.missing)}"


@dataclass(frozen=True)
class CategoryTotal:
    """What a close issues in one VAT category and currency."""

    category: str
    currency: str
    count: int
    net: Decimal
    tax: Decimal
    gross: Decimal


@dataclass
class CloseSummary:
    month: Month
    issued: list[str] = field(default_factory=list)
    already_invoiced: int = 0
    nothing_to_bill: int = 0
    gross_by_currency: Counter[str] = field(default_factory=Counter)
    held: list[HeldWorkspace] = field(default_factory=list)
    by_category: list[CategoryTotal] = field(default_factory=list)
    #: (workspace key, new invoice, the credited invoice it replaces).
    reissued: list[tuple[str, str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        totals = ", ".join(
            f"{gross} {currency}" for currency, gross in sorted(self.gross_by_currency.items())
        )
        return [
            f"Month {self.month}: {len(self.issued)} invoice(s) issued"
            + (f" ({self.issued[0]} to {self.issued[-1]})" if self.issued else ""),
            f"  already invoiced before: {self.already_invoiced}; "
            f"nothing to bill: {self.nothing_to_bill}",
            f"  total gross issued: {totals or 'nothing'}",
            *_reissue_lines(
                f"{number} for {key} (replaces the credited {replaced})"
                for key, number, replaced in self.reissued
            ),
            *_category_lines(self.by_category),
            *_held_lines(self.held, "close the month again once they are complete"),
        ]


def _reissue_lines(items: Iterable[str]) -> list[str]:
    items = list(items)
    if not items:
        return []
    return [f"  new invoice(s) for credited ones: {len(items)}", *(f"    {i}" for i in items)]


def _category_lines(totals: Sequence[CategoryTotal]) -> list[str]:
    return [
        f"  VAT category {total.category}: {total.count} invoice(s), net {total.net} "
        f"tax {total.tax} gross {total.gross} {total.currency}"
        for total in totals
    ]


def _held_lines(held: Sequence[HeldWorkspace], then: str) -> list[str]:
    if not held:
        return []
    return [
        f"  held, billing details incomplete: {len(held)} workspace(s) ({then}):",
        *(f"    {workspace.line()}" for workspace in held),
    ]


@dataclass(frozen=True)
class PlannedInvoice:
    """One invoice a close would issue, before it has a number."""

    workspace: Any
    quote: Quote
    buyer: dict[str, Any]
    vat: VatTreatment
    totals: Totals
    currency: str
    #: The credited invoice of the month this one replaces, if any.
    replaces: str | None = None


@dataclass
class MonthPlan:
    """What closing ``month`` now would issue and hold; computed without writing anything."""

    month: Month
    complete: bool
    planned: list[PlannedInvoice] = field(default_factory=list)
    held: list[HeldWorkspace] = field(default_factory=list)
    already_invoiced: int = 0
    nothing_to_bill: int = 0

    def by_category(self) -> list[CategoryTotal]:
        sums: dict[tuple[str, str], list[Any]] = {}
        for item in self.planned:
            entry = sums.setdefault(
                (item.vat.category, item.currency), [0, Decimal(0), Decimal(0), Decimal(0)]
            )
            entry[0] += 1
            entry[1] += item.totals.net
            entry[2] += item.totals.tax
            entry[3] += item.totals.gross
        return [
            CategoryTotal(category, currency, count, net, tax, gross)
            for (category, currency), (count, net, tax, gross) in sorted(sums.items())
        ]

    def lines(self) -> list[str]:
        """The preview as ``flask billing check-month`` prints it."""
        head = f"Month {self.month}: a close would issue {len(self.planned)} invoice(s)"
        if not self.complete:
            head += " (the month is not over yet: it cannot be closed before it ends)"
        return [
            head,
            f"  already invoiced before: {self.already_invoiced}; "
            f"nothing to bill: {self.nothing_to_bill}",
            *_reissue_lines(
                f"{item.workspace.key} (replaces the credited {item.replaces})"
                for item in self.planned
                if item.replaces
            ),
            *_category_lines(self.by_category()),
            *_held_lines(self.held, "complete their billing details to issue them"),
        ]


def default_close_month(rules: PricingRules, now: datetime) -> Month:
    """The month before the current one in the billing time zone."""
    return Month.of(now, rules.zoneinfo).previous()


def plan_month(session: Session, rules: PricingRules, month: Month, now: datetime) -> MonthPlan:
    """What a close of ``month`` at ``now`` would issue, hold and skip: reads only.

    ``flask billing check-month``, the back-office preview and the close page
    show it; the close issues exactly it.  Refuses (``InvoicingError``) a
    month in the future and one some workspace cannot be priced for.
    """
    window = _window(month, rules, now)
    invoiced: set[int] = set()
    credited: dict[int, str] = {}
    for row in session.execute(
        select(Invoice.workspace_id, Invoice.number, Invoice.credited_by_id)
        .where(Invoice.period == str(month), Invoice.kind == "invoice")
        .order_by(Invoice.year, Invoice.seq)
    ):
        if row.credited_by_id is None:
            invoiced.add(row.workspace_id)
        else:
            credited[row.workspace_id] = row.number
    workspaces = billable_workspaces(session, window.end)
    plan = MonthPlan(month, window.complete)
    plan.already_invoiced = sum(1 for ws in workspaces if ws.id in invoiced)
    _plan_workspaces(
        session,
        rules,
        plan,
        window,
        [ws for ws in workspaces if ws.id not in invoiced],
        credited,
        count_licences(session, window.start, window.end),
        billing_details.details_by_workspace(session),
    )
    return plan


def held_in_month(
    session: Session, rules: PricingRules, month: Month, now: datetime
) -> list[HeldWorkspace]:
    """The workspaces :func:`plan_month` would hold, without planning the rest.

    Only the workspaces without a current invoice for ``month`` whose billing
    details look incomplete are read and priced (the dashboard's counter), and
    their licences are not counted, only found (:func:`_presence`): four
    queries whose cost follows those workspaces, not all of them, nor their
    size.  The same per-workspace decision as :func:`plan_month`.
    """
    window = _window(month, rules, now)
    workspaces = billable_workspaces(
        session, window.end, ~current_invoice(month), billing_details.maybe_incomplete()
    )
    plan = MonthPlan(month, window.complete)
    if workspaces:
        ids = [ws.id for ws in workspaces]
        _plan_workspaces(
            session,
            rules,
            plan,
            window,
            workspaces,
            {},
            _presence(session, window, ids),
            billing_details.details_by_workspace(session, ids),
            held_only=True,
        )
    return plan.held


def _presence(
    session: Session, window: MonthWindow, ids: list[int]
) -> tuple[dict[int, int], dict[int, int]]:
    """Licences as 1 (some) or absent (none) per workspace, in place of the counts.

    Whether a workspace has something to bill depends on its quantity only
    through whether it is zero (:func:`plugin.rules.pricing.usage_lines`: no
    line for 0, at least one otherwise), so the held workspaces need no count
    of their people, only whether there is one (:func:`licensed_workspaces`).
    """
    teams, people = licensed_workspaces(session, window.start, window.end, ids)
    return dict.fromkeys(teams, 1), dict.fromkeys(people, 1)


def current_invoice(month: Month) -> ColumnElement[bool]:
    """The workspace (``Workspace`` in the query) has a current invoice for ``month``."""
    return exists(
        select(Invoice.id).where(
            Invoice.workspace_id == Workspace.id,
            Invoice.period == str(month),
            Invoice.kind == "invoice",
            Invoice.credited_by_id.is_(None),
        )
    )


def _window(month: Month, rules: PricingRules, now: datetime) -> MonthWindow:
    try:
        return MonthWindow.at(month, rules, now)
    except ValueError as exc:
        raise InvoicingError(str(exc)) from exc


def _plan_workspaces(
    session: Session,
    rules: PricingRules,
    plan: MonthPlan,
    window: MonthWindow,
    workspaces: Sequence[Any],
    credited: dict[int, str],
    counts: tuple[dict[int, int], dict[int, int]],
    details: dict[int, dict[str, Any]],
    *,
    held_only: bool = False,
) -> None:
    """Price each workspace not invoiced yet and sort it into ``plan``: planned, held or
    nothing to bill.  Refuses the month when some workspace cannot be priced."""
    problems = []
    for ws in workspaces:
        try:
            priced = price_counted(rules, ws, plan.month, counts)
        except NoPriceError as exc:
            problems.append(str(exc))
            continue
        if not priced.totals.lines:
            plan.nothing_to_bill += 1
            continue
        record = details.get(ws.id) or billing_details.empty_details()
        vat = billing_details.customer_vat(rules, record, ws.invoice_mailbox)
        if vat.missing:
            plan.held.append(HeldWorkspace(ws.key, ws.name, vat.missing))
            continue
        if held_only:
            continue
        buyer = billing_details.buyer_snapshot(record, ws.invoice_mailbox)
        totals = with_tax_rate(priced.totals, vat.treatment.rate, rules.currency_exponent)
        plan.planned.append(
            PlannedInvoice(
                ws, priced, buyer, vat.treatment, totals, rules.currency, credited.get(ws.id)
            )
        )
    if problems:
        raise InvoicingError(
            _("cannot price every workspace:") + "\n" + "\n".join(problems)
        )


def close_month(
    session: Session,
    rules: PricingRules,
    month: Month,
    now: datetime,
    *,
    actor: str,
    progress: Callable[[int], None] | None = None,
) -> CloseSummary:
    """Issue the invoices of ``month`` that are not issued yet, in the session's transaction.

    A workspace whose invoice for ``month`` was credited gets a new one, from
    its history as it is now; a workspace with a current invoice gets nothing.
    The caller commits.  Refuses (``InvoicingError``) a month that is not over
    in the billing time zone, and a month some workspace cannot be priced for
    (no price version in force), before writing anything.  A workspace whose
    billing details are incomplete is held: it gets no invoice and no number,
    and the summary names it and what it lacks; closing the month again once
    its details are complete issues it, with the next numbers of the year.
    """
    window = _window(month, rules, now)
    if not window.complete:
        raise InvoicingError(
            _(
                "%(month)s is not over yet in %(zone)s: only past months can be closed",
                month=month,
                zone=rules.timezone,
            )
        )
    year = now.astimezone(rules.zoneinfo).year
    lock_numbering(session, year)
    plan = plan_month(session, rules, month, now)
    summary = CloseSummary(
        month,
        already_invoiced=plan.already_invoiced,
        nothing_to_bill=plan.nothing_to_bill,
        held=plan.held,
        by_category=plan.by_category(),
    )
    if plan.held:
        audit.record(
            session,
            actor,
            "close_month_held",
            target=str(month),
            detail="; ".join(held.line() for held in plan.held),
        )
    if not plan.planned:
        return summary
    record_rules_version(session, rules)
    numbers = take_numbers(session, year, len(plan.planned))
    rows = [
        _invoice_row(rules, item, month, year, seq, now)
        for item, seq in zip(plan.planned, numbers, strict=True)
    ]
    session.execute(insert(Invoice), rows)
    record_issued(session, [row["number"] for row in rows], window)
    outbox.queue_invoice_mails(session, rules, rows, now=now, actor=actor)
    audit.record(
        session,
        actor,
        "close_month",
        target=str(month),
        detail=f"{len(rows)} invoice(s) {rows[0]['number']} to {rows[-1]['number']}",
    )
    summary.reissued = [
        (item.workspace.key, row["number"], item.replaces)
        for item, row in zip(plan.planned, rows, strict=True)
        if item.replaces
    ]
    for row in rows:
        summary.issued.append(row["number"])
        summary.gross_by_currency[row["currency"]] += row["gross"]
        if progress:
            progress(1)
    return summary


def _issue_day(rules: PricingRules, now: datetime) -> date:
    return now.astimezone(rules.zoneinfo).date()


def _invoice_row(
    rules: PricingRules,
    item: PlannedInvoice,
    month: Month,
    year: int,
    seq: int,
    now: datetime,
) -> dict[str, Any]:
    ws, priced, totals = item.workspace, item.quote, item.totals
    language = item.buyer["language"]
    due = _issue_day(rules, now) + timedelta(days=rules.seller.payment_terms_days)
    return {
        "number": rules.invoice_number(year, seq),
        "year": year,
        "seq": seq,
        "kind": "invoice",
        "workspace_id": ws.id,
        "workspace_key": ws.key,
        "workspace_name": ws.name,
        "period": str(month),
        "issued_at": now,
        "variant": priced.variant,
        "quantity": priced.quantity,
        "currency": rules.currency,
        **item.vat.as_columns(),
        "net": totals.net,
        "tax": totals.tax,
        "gross": totals.gross,
        "lines": [
            {
                "description": wording.line_description(
                    line,
                    model=priced.version.model,
                    variant=priced.variant,
                    first_day=month.first_day,
                    total=priced.quantity,
                    currency=rules.currency,
                    language=language,
                    minimum=priced.version.minimum_monthly_charge,
                ),
                "quantity": line.quantity,
                "unit_price": str(line.unit_price),
                "amount": str(line.amount),
                "kind": line.kind,
            }
            for line in totals.lines
        ],
        "seller": seller_snapshot(rules),
        "buyer": item.buyer,
        "service_start": month.first_day,
        "service_end": month.next().first_day - timedelta(days=1),
        "due_date": due,
        "payment_terms": wording.payment_terms(due, language),
        "rules_sha256": rules.sha256,
        "reason": "",
        "pdf_attempts": 0,
    }


def seller_snapshot(rules: PricingRules) -> dict[str, Any]:
    """The seller as an invoice records it (``Invoice.seller``)."""
    seller = rules.seller
    return {
        "name": seller.name,
        "address_lines": list(seller.address_lines),
        "postcode": seller.postcode,
        "city": seller.city,
        "country": seller.country,
        "vat_id": seller.vat_id,
        "tax_number": seller.tax_number,
        "register_court": seller.register_court,
        "register_number": seller.register_number,
        "managing_directors": list(seller.managing_directors),
        "email": seller.email,
        "contact": {
            "name": seller.contact_name,
            "phone": seller.contact_phone,
            "email": seller.contact_email,
        },
        "iban": seller.iban,
        "bic": seller.bic,
        "bank_name": seller.bank_name,
    }


def _negated(value: str) -> str:
    return str(-Decimal(value))


#: How long a credit note's reason may be (the admin form's limit too).
REASON_MAX = 500


@dataclass(frozen=True)
class CreditNote:
    """An issued credit note, and what it did to its workspace's closed history."""

    note: Invoice
    #: The number of the invoice it credits.
    credits: str
    reopening: Reopening

    def lines(self, zone: tzinfo = UTC) -> list[str]:
        """What it did, the reopened history's instant written in ``zone``."""
        return [
            _(
                "Credit note %(number)s issued for %(invoice)s: %(gross)s",
                number=self.note.number,
                invoice=self.credits,
                gross=amount(self.note.gross, self.note.currency),
            ),
            *self.reopening.lines(zone),
        ]


def issue_credit_note(
    session: Session,
    rules: PricingRules,
    number: str,
    reason: str,
    now: datetime,
    *,
    actor: str,
) -> CreditNote:
    """Credit invoice ``number`` in full: a credit note with negative amounts.

    The credit note takes its own number from the same gap-free sequence; the
    unique reference to the original makes a second credit impossible.  The
    reason is printed on it: :func:`plugin.validators.text_block`, up to
    :data:`REASON_MAX` characters on one or more lines.  The credited invoice
    is no longer current (``credited_by_id``), so the next close of its month
    issues a new one, and the workspace's history is reopened for the
    correction (:func:`.closed.reopen_after_credit`).
    """
    if isinstance(reason, str) and not reason.strip():
        raise InvoicingError(_("a credit note needs a reason"), field="reason")
    try:
        reason = validators.text_block(reason, max_length=REASON_MAX)
    except validators.InvalidValue as exc:
        raise InvoicingError(_("the reason %(problem)s", problem=exc), field="reason") from None
    year = now.astimezone(rules.zoneinfo).year
    lock_numbering(session, year)
    original = session.scalar(select(Invoice).where(Invoice.number == number))
    if original is None:
        raise InvoicingError(_("no invoice with the number %(number)r", number=number))
    if original.kind != "invoice":
        raise InvoicingError(
            _("%(number)s is a credit note; only invoices can be credited", number=number)
        )
    existing = session.scalar(
        select(Invoice.number).where(Invoice.credits_invoice_id == original.id)
    )
    if existing:
        raise InvoicingError(
            _("%(number)s is already credited by %(credit)s", number=number, credit=existing)
        )
    (seq,) = take_numbers(session, year, 1)
    terms = {}
    if original.buyer is not None:
        due = _issue_day(rules, now) + timedelta(days=rules.seller.payment_terms_days)
        terms = {
            "due_date": due,
            "payment_terms": wording.payment_terms(due, original.buyer["language"], credit=True),
        }
    note = Invoice(
        number=rules.invoice_number(year, seq),
        year=year,
        seq=seq,
        kind="credit_note",
        workspace_id=original.workspace_id,
        workspace_key=original.workspace_key,
        workspace_name=original.workspace_name,
        period=original.period,
        issued_at=now,
        variant=original.variant,
        quantity=original.quantity,
        currency=original.currency,
        tax_rate=original.tax_rate,
        net=-original.net,
        tax=-original.tax,
        gross=-original.gross,
        lines=[{**line, "amount": _negated(line["amount"])} for line in original.lines],
        seller=original.seller,
        buyer=original.buyer,
        vat_category=original.vat_category,
        vat_exemption_code=original.vat_exemption_code,
        vat_note=original.vat_note,
        service_start=original.service_start,
        service_end=original.service_end,
        **terms,
        rules_sha256=original.rules_sha256,
        credits_invoice_id=original.id,
        reason=reason,
        pdf_attempts=0,
    )
    session.add(note)
    session.flush()
    original.credited_by_id = note.id
    session.flush()
    audit.record(
        session,
        actor,
        "credit_note",
        workspace_id=original.workspace_id,
        target=note.number,
        before={"invoice": number, "status": "issued"},
        after={"invoice": number, "status": "credited", "credit_note": note.number},
        detail=f"credits {number}: {reason}",
    )
    reopening = reopen_after_credit(
        session,
        original.workspace_id,
        original.period,
        rules.zoneinfo,
        actor=actor,
        credit_note=note.number,
    )
    return CreditNote(note, number, reopening)


@dataclass(frozen=True)
class InvoiceListing:
    number: str
    kind: str
    workspace: str
    period: str
    variant: str
    quantity: int
    currency: str
    net: Decimal
    tax: Decimal
    gross: Decimal
    status: str
    pdf_sha256: str | None
    credits: str | None
    #: ``valid``, ``invalid`` (held: neither mailed nor downloadable) or ``None``.
    einvoice_status: str | None = None
    einvoice_failures: tuple[dict[str, str], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "kind": self.kind,
            "workspace": self.workspace,
            "period": self.period,
            "variant": self.variant,
            "quantity": self.quantity,
            "currency": self.currency,
            "net": f"{self.net:.2f}",
            "tax": f"{self.tax:.2f}",
            "gross": f"{self.gross:.2f}",
            "status": self.status,
            "pdf_sha256": self.pdf_sha256,
            "credits": self.credits,
            "einvoice_status": self.einvoice_status,
            "einvoice_failures": list(self.einvoice_failures),
        }


def list_invoices(
    session: Session, *, month: Month | None = None, workspace_key: str | None = None
) -> Iterable[InvoiceListing]:
    """Invoices and credit notes by number, with their status: one query."""
    credit = aliased(Invoice)
    original = aliased(Invoice)
    query = (
        select(
            Invoice.number,
            Invoice.kind,
            Invoice.workspace_key,
            Invoice.period,
            Invoice.variant,
            Invoice.quantity,
            Invoice.currency,
            Invoice.net,
            Invoice.tax,
            Invoice.gross,
            Invoice.pdf_sha256,
            Invoice.einvoice_status,
            Invoice.einvoice_failures,
            credit.number.label("credited_by"),
            original.number.label("credits"),
        )
        .outerjoin(credit, credit.credits_invoice_id == Invoice.id)
        .outerjoin(original, original.id == Invoice.credits_invoice_id)
        .order_by(Invoice.year, Invoice.seq)
    )
    if month is not None:
        query = query.where(Invoice.period == str(month))
    if workspace_key is not None:
        query = query.where(Invoice.workspace_key == workspace_key)
    for row in session.execute(query):
        yield InvoiceListing(
            number=row.number,
            kind=row.kind,
            workspace=row.workspace_key,
            period=row.period,
            variant=row.variant,
            quantity=row.quantity,
            currency=row.currency,
            net=row.net,
            tax=row.tax,
            gross=row.gross,
            status="credited" if row.credited_by else "issued",
            pdf_sha256=row.pdf_sha256,
            credits=row.credits,
            einvoice_status=row.einvoice_status,
            einvoice_failures=tuple(row.einvoice_failures or ()),
        )


def newest_seller(session: Session) -> dict[str, Any] | None:
    """The seller printed on the newest invoice, as stored: who mail goes out as without rules."""
    return session.scalar(select(Invoice.seller).order_by(Invoice.id.desc()).limit(1))
