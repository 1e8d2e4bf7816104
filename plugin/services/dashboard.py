"""The billing dashboard's figures: the year at a glance and what needs attention.

Every figure comes from a fixed number of set-based queries, however many
workspaces there are:

- months with invoices: one aggregate over the stored invoices of the last
  twelve months, *net of credit notes* (a credit note counts against the
  month it credits, its licences and its net amount both subtracted), so a
  month shows what stays billed for it;
- months without invoices (the current one, and any month not closed yet):
  the licences computed live from the history, two queries per such month
  (each variant over its own workspaces), kept in the counts cache while no
  workspace's history changes, and no revenue, since nothing was invoiced
  for them;
- the counters: one query for the invoices (e-invoices invalid, PDFs
  pending, invoice mail failed) and the workspaces the month close would
  hold (:func:`plugin.services.invoicing.held_in_month`: only the workspaces
  not invoiced yet whose billing details look incomplete are priced).

The conditions behind the counters are the ones the invoice list's filters
apply, so a counter and the list it links to always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Float, Integer, and_, case, cast, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from ..models import VARIANTS, Invoice, OutboxMail, Workspace
from ..rules import PricingRules
from .counts import CountsCache
from .history import recent_months
from .invoicing import InvoicingError, default_close_month, held_in_month
from .licences import count_team_licences, count_user_licences
from .periods import Month

#: A month's status: invoices issued for it, none issued (yet), or still running.
INVOICED, NOT_INVOICED, CURRENT = "invoiced", "not_invoiced", "current"
#: SQLite sums money as integers of this many units per currency unit (exact; its
#: decimal text would be summed as floating point).
_SQLITE_MONEY_SCALE = 10_000
#: How long the current month's live licences are kept at most: time alone adds to them.
CURRENT_MONTH_KEPT = timedelta(minutes=1)


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
    session: Session,
    rules: PricingRules,
    now: datetime,
    count: int = 12,
    cache: CountsCache | None = None,
) -> list[MonthFigures]:
    """Licences and net revenue per variant for the last ``count`` months, oldest first.

    With a ``cache``, the months without invoices come from it while no
    workspace's history changed (:func:`_live_licences`).
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
    figures = []
    for month in months:
        if str(month) in invoiced:
            licences, revenue = invoiced[str(month)]
            figures.append(MonthFigures(month, INVOICED, licences, revenue))
            continue
        counted = _live_licences(session, rules, month, now, cache, current=month == current)
        status = CURRENT if month == current else NOT_INVOICED
        figures.append(MonthFigures(month, status, counted, None))
    return figures


def _live_licences(
    session: Session,
    rules: PricingRules,
    month: Month,
    now: datetime,
    cache: CountsCache | None,
    *,
    current: bool,
) -> dict[str, int]:
    """A month without invoices: its licences per variant, counted from the history.

    Each variant's count only over its own workspaces (the distinct people of
    the user-licence ones are the costly count).  Kept in the counts cache
    under the workspaces' stamps; the current month's for
    :data:`CURRENT_MONTH_KEPT` at most too, since time alone adds to it
    (history dated ahead of now).
    """

    def count() -> dict[str, int]:
        start, end = month.bounds(rules.zoneinfo)
        end = min(end, now)
        by_variant: dict[str, list[int]] = {variant: [] for variant in VARIANTS}
        for workspace_id, variant in _variants(session, rules).items():
            by_variant[variant].append(workspace_id)
        counted = dict.fromkeys(VARIANTS, 0)
        if by_variant["team_licences"]:
            teams = count_team_licences(session, start, end, by_variant["team_licences"])
            counted["team_licences"] = sum(teams.values())
        if by_variant["user_licences"]:
            users = count_user_licences(session, start, end, by_variant["user_licences"])
            counted["user_licences"] = sum(users.values())
        return counted

    if cache is None:
        return count()
    return cache.kept(
        session,
        f"dashboard-licences:{month}:{rules.sha256}",
        count,
        now=now,
        valid_for=CURRENT_MONTH_KEPT if current else None,
    )


def _variants(session: Session, rules: PricingRules) -> dict[int, str]:
    """Each workspace's variant as the rules say now: one query."""
    rows = session.execute(
        select(Workspace.id, Workspace.key, Workspace.created_at, Workspace.contract_variant)
    )
    return {row.id: rules.variant_of(row)[0] for row in rows}


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
