"""The billing dashboard's figures: the year at a glance and what needs attention.

Every figure comes from a fixed number of set-based queries, however many
workspaces there are:

- months with invoices: one aggregate over the stored invoices of the last
  twelve months, *net of credit notes* (a credit note counts against the
  month it credits, its licences and its net amount both subtracted), so a
  month shows what stays billed for it;
- months without invoices (the current one, and any month not closed yet):
  the licences counted from the history, each workspace's count kept in the
  database until its history changes (:mod:`plugin.services.month_licences`:
  two queries, and the counting only for the workspaces that changed since
  the last view), and no revenue, since nothing was invoiced for them;
- the counters: one query for the invoices (e-invoices invalid, PDFs
  pending, invoice mail failed) and the workspaces the month close would
  hold (:func:`plugin.services.invoicing.held_in_month`: only the workspaces
  not invoiced yet whose billing details look incomplete are priced).

The conditions behind the counters are the ones the invoice list's filters
apply, so a counter and the list it links to always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Float, Integer, and_, case, cast, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from ..models import VARIANTS, Invoice, OutboxMail
from ..rules import PricingRules
from .history import recent_months
from .invoicing import InvoicingError, default_close_month, held_in_month
from .month_licences import month_licences
from .periods import Month

#: A month's status: invoices issued for it, none issued (yet), or still running.
INVOICED, NOT_INVOICED, CURRENT = "invoiced", "not_invoiced", "current"
#: SQLite sums money as integers of this many units per currency unit (exact; its
#: decimal text would be summed as floating point).
_SQLITE_MONEY_SCALE = 10_000


@dataclass(frozen=True)
class MonthFigures:
    """One month of the dashboard, per variant.

    ``net`` is ``None`` for a month without invoices: its licences are the
    live count, and no revenue is shown for it.
    """

    month: Month
    status: str
    licences: dict[str, int]
    net: dict[str, Decimal] | None

    @property
    def invoiced(self) -> bool:
        return self.status == INVOICED

    @property
    def total_net(self) -> Decimal | None:
        return None if self.net is None else sum(self.net.values(), Decimal(0))


@dataclass(frozen=True)
class Held:
    """The workspaces a close of ``month`` would hold now; ``count`` is ``None`` (and
    ``error`` says why) when the close cannot be previewed."""

    month: Month
    count: int | None
    error: str | None = None


def einvoice_invalid() -> ColumnElement[bool]:
    """The invoice's e-invoice failed validation: it is held, not final."""
    return Invoice.einvoice_status == "invalid"


def pdf_pending() -> ColumnElement[bool]:
    """The invoice's PDF is still to be rendered (an invalid e-invoice is counted apart)."""
    return and_(
        Invoice.pdf_sha256.is_(None),
        or_(Invoice.einvoice_status.is_(None), Invoice.einvoice_status != "invalid"),
    )


def mail_failed() -> ColumnElement[bool]:
    """The invoice's latest mail delivery failed (a later resend that went out clears it)."""
    later = aliased(OutboxMail)
    newer = select(later.id).where(
        later.invoice_id == OutboxMail.invoice_id, later.id > OutboxMail.id
    )
    return exists(
        select(OutboxMail.id)
        .where(OutboxMail.invoice_id == Invoice.id, OutboxMail.status == "failed", ~exists(newer))
        .correlate(Invoice)
    )


def _money_sum(column: Any, dialect: str) -> Any:
    if dialect == "sqlite":
        return func.sum(cast(func.round(cast(column, Float) * _SQLITE_MONEY_SCALE), Integer))
    return func.sum(column)


def _money(value: Any, dialect: str, exponent: int) -> Decimal:
    amount = Decimal(value or 0)
    if dialect == "sqlite":
        amount /= _SQLITE_MONEY_SCALE
    return amount.quantize(Decimal(1).scaleb(-exponent))


def monthly_figures(
    session: Session, rules: PricingRules, now: datetime, count: int = 12
) -> list[MonthFigures]:
    """Licences and net revenue per variant for the last ``count`` months, oldest first.

    The counts it makes for the months without invoices are kept for the
    next view in a transaction of their own (:func:`month_licences`).
    """
    months = recent_months(now, rules, count)
    dialect = session.get_bind().dialect.name
    signed_quantity = case((Invoice.kind == "invoice", Invoice.quantity), else_=-Invoice.quantity)
    rows = session.execute(
        select(
            Invoice.period,
            Invoice.variant,
            func.sum(signed_quantity),
            _money_sum(Invoice.net, dialect),
        )
        .where(Invoice.period.in_([str(month) for month in months]))
        .group_by(Invoice.period, Invoice.variant)
    ).all()
    invoiced: dict[str, tuple[dict[str, int], dict[str, Decimal]]] = {}
    for period, variant, quantity, net in rows:
        licences, revenue = invoiced.setdefault(
            period, (dict.fromkeys(VARIANTS, 0), dict.fromkeys(VARIANTS, Decimal("0.00")))
        )
        licences[variant] = int(quantity)
        revenue[variant] = _money(net, dialect, rules.currency_exponent)
    current = months[-1]
    counted = month_licences(
        session, rules, [month for month in months if str(month) not in invoiced], now
    )
    figures = []
    for month in months:
        if str(month) in invoiced:
            licences, revenue = invoiced[str(month)]
            figures.append(MonthFigures(month, INVOICED, licences, revenue))
        else:
            status = CURRENT if month == current else NOT_INVOICED
            figures.append(MonthFigures(month, status, counted[month], None))
    return figures


def held_workspaces(session: Session, rules: PricingRules, now: datetime) -> Held:
    """What the month close's preview holds for the month a close would take now."""
    month = default_close_month(rules, now)
    try:
        return Held(month, len(held_in_month(session, rules, month, now)))
    except InvoicingError as exc:
        return Held(month, None, str(exc))


def invoice_problems(session: Session) -> tuple[int, int, int]:
    """(e-invoices invalid, PDFs pending, invoice mail failed): one query, no rules needed.

    The mail is counted from the outbox (its failed deliveries that no later
    one replaced, one per invoice), not per invoice, so that the partial
    indexes serve and the invoices are not read once per mail.
    """
    later = aliased(OutboxMail)
    row = session.execute(
        select(
            select(func.count()).where(einvoice_invalid()).scalar_subquery(),
            select(func.count()).where(pdf_pending()).scalar_subquery(),
            select(func.count())
            .select_from(OutboxMail)
            .where(
                OutboxMail.kind == "invoice",
                OutboxMail.status == "failed",
                ~exists(
                    select(later.id).where(
                        later.invoice_id == OutboxMail.invoice_id, later.id > OutboxMail.id
                    )
                ),
            )
            .scalar_subquery(),
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2])
