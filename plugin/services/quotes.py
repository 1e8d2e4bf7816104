"""What a workspace owes for a month: its licences priced by the rules in force."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from ..i18n import _
from ..models import Workspace
from ..rules import PricingRules, explain, quote
from ..rules.pricing import Quote
from ..types import AnyRow
from . import billing_details
from .licences import count_licences
from .periods import Month
from .workspace_lookup import get_workspace


@dataclass(frozen=True)
class MonthWindow:
    """The part of ``month`` that can be billed at ``now``: all of it, or up to now."""

    month: Month
    start: datetime
    end: datetime
    complete: bool

    @classmethod
    def at(cls, month: Month, rules: PricingRules, now: datetime) -> MonthWindow:
        start, end = month.bounds(rules.zoneinfo)
        if start > now:
            raise ValueError(
                _("%(month)s is in the future: nothing is billed for it yet", month=month)
            )
        return cls(month, start, min(end, now), end <= now)


def billable_workspaces(
    session: Session,
    created_before: datetime | None = None,
    *conditions: ColumnElement[bool],
) -> list[AnyRow]:
    """The columns pricing needs, of every workspace (created before an instant, meeting
    ``conditions``): one query."""
    query = select(
        Workspace.id,
        Workspace.key,
        Workspace.name,
        Workspace.created_at,
        Workspace.contract_variant,
        Workspace.invoice_mailbox,
    ).order_by(Workspace.key)
    if created_before is not None:
        query = query.where(Workspace.created_at < created_before)
    if conditions:
        query = query.where(*conditions)
    return list(session.execute(query).all())


def price_counted(
    rules: PricingRules,
    workspace: AnyRow | Workspace,
    month: Month,
    counts: tuple[dict[int, int], dict[int, int]],
) -> Quote:
    """Price a workspace's month from the ``(teams, users)`` counts of :func:`count_licences`.

    The month close and the rules editor's preview both price every workspace
    this way, from counts computed once for all of them.
    """
    variant = rules.variant_of(workspace)[0]
    teams, users = counts
    quantity = (teams if variant == "team_licences" else users).get(workspace.id, 0)
    return quote(
        rules,
        workspace.key,
        created_on=workspace.created_at.astimezone(rules.zoneinfo).date(),
        month=month.first_day,
        quantity=quantity,
        contract_variant=workspace.contract_variant,
    )


def _inputs(rules: PricingRules, workspace: Workspace, month: Month) -> dict[str, Any]:
    return {
        "created_on": workspace.created_at.astimezone(rules.zoneinfo).date(),
        "month": month.first_day,
        "contract_variant": workspace.contract_variant,
    }


def workspace_quote(
    session: Session,
    rules: PricingRules,
    workspace: Workspace,
    month: Month,
    now: datetime,
    quantity: int | None = None,
) -> Quote:
    """Price ``workspace`` for ``month`` (so far, for the current month).

    ``quantity`` overrides the computed number of licences (what-if questions).
    """
    if quantity is None:
        window = MonthWindow.at(month, rules, now)
        counts = count_licences(session, window.start, window.end, [workspace.id])
        return price_counted(rules, workspace, month, counts)
    return quote(rules, workspace.key, quantity=quantity, **_inputs(rules, workspace, month))


def explain_month(
    session: Session,
    rules: PricingRules,
    key: str,
    month: Month,
    now: datetime,
    quantity: int | None = None,
) -> list[str]:
    """The arithmetic of a workspace's month, line by line, as the invoice will use it:
    with the VAT the close decides from the workspace's billing details."""
    workspace = get_workspace(session, key)
    priced = workspace_quote(session, rules, workspace, month, now, quantity)
    record = billing_details.details_by_workspace(session, [workspace.id]).get(workspace.id)
    vat = billing_details.customer_vat(rules, record, workspace.invoice_mailbox)
    lines = explain(
        rules,
        workspace.key,
        quantity=priced.quantity,
        vat=vat.treatment,
        **_inputs(rules, workspace, month),
    )
    window_end = month.bounds(rules.zoneinfo)[1]
    if quantity is None and window_end > now:
        lines.insert(1, f"(month in progress: licences counted up to {now:%Y-%m-%d %H:%M} UTC)")
    elif quantity is not None:
        lines.insert(1, "(quantity given on the command line, not counted)")
    if vat.missing:
        lines.insert(
            -1,
            f"(billing details incomplete, missing {', '.join(vat.missing)}: "
            "the close holds this workspace until they are complete)",
        )
    return lines
