"""Month close, credit notes and the invoice list.

The close is set-based: the licences of every workspace come from two
queries (:func:`count_licences`), the numbers from one UPDATE, the invoices
from one bulk INSERT.  It runs in one transaction that starts by taking the
year's numbering lock (:mod:`.numbering`), so concurrent closes queue up and
the second one finds the first one's invoices and issues nothing; the partial
unique index on ``(workspace_id, period)`` makes a duplicate impossible even
without the lock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, aliased

from ..models import Invoice
from ..rules import NoPriceError, PricingRules
from ..rules.pricing import Quote
from . import audit, outbox
from .holders import record_issued
from .licences import count_licences
from .numbering import lock_numbering, take_numbers
from .periods import Month
from .quotes import MonthWindow, billable_workspaces, price_counted
from .rules_versions import record_rules_version


class InvoicingError(Exception):
    """A month close or credit note that cannot be done; nothing was written."""


@dataclass
class CloseSummary:
    month: Month
    issued: list[str] = field(default_factory=list)
    already_invoiced: int = 0
    nothing_to_bill: int = 0
    gross_by_currency: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        totals = ", ".join(
            f"{amount} {currency}" for currency, amount in sorted(self.gross_by_currency.items())
        )
        return [
            f"Month {self.month}: {len(self.issued)} invoice(s) issued"
            + (f" ({self.issued[0]} to {self.issued[-1]})" if self.issued else ""),
            f"  already invoiced before: {self.already_invoiced}; "
            f"nothing to bill: {self.nothing_to_bill}",
            f"  total gross issued: {totals or 'nothing'}",
        ]


def default_close_month(rules: PricingRules, now: datetime) -> Month:
    """The month before the current one in the billing time zone."""
    return Month.of(now, rules.zoneinfo).previous()


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

    The caller commits.  Refuses (``InvoicingError``) a month that is not over
    in the billing time zone, and a month some workspace cannot be priced for
    (no price version in force), before writing anything.
    """
    try:
        window = MonthWindow.at(month, rules, now)
    except ValueError as exc:
        raise InvoicingError(str(exc)) from exc
    if not window.complete:
        raise InvoicingError(
            f"{month} is not over yet in {rules.timezone}: only past months can be closed"
        )
    year = now.astimezone(rules.zoneinfo).year
    lock_numbering(session, year)
    summary = CloseSummary(month)
    invoiced = set(
        session.scalars(
            select(Invoice.workspace_id).where(
                Invoice.period == str(month), Invoice.kind == "invoice"
            )
        )
    )
    workspaces = billable_workspaces(session, created_before=window.end)
    summary.already_invoiced = sum(1 for ws in workspaces if ws.id in invoiced)
    teams, users = count_licences(session, window.start, window.end)
    priced, problems = [], []
    for ws in workspaces:
        if ws.id in invoiced:
            continue
        try:
            priced_ws = price_counted(rules, ws, month, (teams, users))
        except NoPriceError as exc:
            problems.append(str(exc))
            continue
        if not priced_ws.totals.lines:
            summary.nothing_to_bill += 1
        else:
            priced.append((ws, priced_ws))
    if problems:
        raise InvoicingError("cannot price every workspace:\n" + "\n".join(problems))
    if not priced:
        return summary
    record_rules_version(session, rules)
    numbers = take_numbers(session, year, len(priced))
    rows = [
        _invoice_row(rules, ws, month, priced_quote, year, seq, now)
        for (ws, priced_quote), seq in zip(priced, numbers, strict=True)
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
    for row in rows:
        summary.issued.append(row["number"])
        summary.gross_by_currency[row["currency"]] += row["gross"]
        if progress:
            progress(1)
    return summary


def _invoice_row(
    rules: PricingRules,
    ws: Any,
    month: Month,
    priced: Quote,
    year: int,
    seq: int,
    now: datetime,
) -> dict[str, Any]:
    totals = priced.totals
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
        "tax_rate": rules.tax_rate,
        "net": totals.net,
        "tax": totals.tax,
        "gross": totals.gross,
        "lines": [
            {
                "description": line.description,
                "quantity": line.quantity,
                "unit_price": str(line.unit_price),
                "amount": str(line.amount),
                "kind": line.kind,
            }
            for line in totals.lines
        ],
        "seller": seller_snapshot(rules),
        "rules_sha256": rules.sha256,
        "reason": "",
        "pdf_attempts": 0,
    }


def seller_snapshot(rules: PricingRules) -> dict[str, Any]:
    seller = rules.seller
    return {
        "name": seller.name,
        "address": list(seller.address),
        "vat_id": seller.vat_id,
        "email": seller.email,
        "iban": seller.iban,
    }


def _negated(value: str) -> str:
    return str(-Decimal(value))


def issue_credit_note(
    session: Session,
    rules: PricingRules,
    number: str,
    reason: str,
    now: datetime,
    *,
    actor: str,
) -> Invoice:
    """Credit invoice ``number`` in full: a credit note with negative amounts.

    The credit note takes its own number from the same gap-free sequence; the
    unique reference to the original makes a second credit impossible.
    """
    reason = reason.strip()
    if not reason:
        raise InvoicingError("a credit note needs a reason")
    year = now.astimezone(rules.zoneinfo).year
    lock_numbering(session, year)
    original = session.scalar(select(Invoice).where(Invoice.number == number))
    if original is None:
        raise InvoicingError(f"no invoice with the number {number!r}")
    if original.kind != "invoice":
        raise InvoicingError(f"{number} is a credit note; only invoices can be credited")
    existing = session.scalar(
        select(Invoice.number).where(Invoice.credits_invoice_id == original.id)
    )
    if existing:
        raise InvoicingError(f"{number} is already credited by {existing}")
    (seq,) = take_numbers(session, year, 1)
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
        rules_sha256=original.rules_sha256,
        credits_invoice_id=original.id,
        reason=reason,
        pdf_attempts=0,
    )
    session.add(note)
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
    return note


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
        )


def newest_seller(session: Session) -> dict[str, Any] | None:
    """The seller printed on the newest invoice, as stored: who mail goes out as without rules."""
    return session.scalar(select(Invoice.seller).order_by(Invoice.id.desc()).limit(1))
