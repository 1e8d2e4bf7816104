"""Custom list filters: "right now" questions of the history tables, and fixed choices."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, time
from typing import Any

from flask import has_app_context
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_babel import LazyString
from sqlalchemy import and_, exists, false, or_, select
from sqlalchemy.orm import aliased

from ..extension import billing
from ..i18n import _l
from ..models import AuditEntry, Invoice, Team, TeamMembership, Workspace, WorkspaceAccess
from ..services.dashboard import mail_failed, pdf_pending
from ..services.intervals import open_at, team_active_at, team_archived_at
from ..services.person_overview import mentions
from ..types import utcnow

YES_NO = (("yes", _l("yes")), ("no", _l("no")))
VARIANT_CHOICES = (
    ("team_licences", _l("Team licences")),
    ("user_licences", _l("User licences")),
)


class NowFilter(BaseSQLAFilter):
    """A yes/no filter on a condition evaluated at the moment the page is built."""

    def __init__(self, column: Any, name: str) -> None:
        super().__init__(column, name, options=YES_NO)

    def condition(self) -> Any:
        raise NotImplementedError

    def apply(self, query: Any, value: Any, alias: Any = None) -> Any:
        condition = self.condition()
        return query.filter(condition if value == "yes" else ~condition)

    def operation(self) -> LazyString:
        return _l("is")


class TeamArchivedFilter(NowFilter):
    def __init__(self) -> None:
        super().__init__(Team.id, _l("Archived now"))

    def condition(self) -> Any:
        return team_archived_at(utcnow())


class HasAccessFilter(NowFilter):
    def __init__(self) -> None:
        super().__init__(WorkspaceAccess.id, _l("Has access now"))

    def condition(self) -> Any:
        return open_at(WorkspaceAccess.granted_at, WorkspaceAccess.revoked_at, utcnow())


def in_active_team_now() -> Any:
    """The access row's person is, right now, in an active team of its workspace."""
    now = utcnow()
    return exists(
        select(TeamMembership.id)
        .join(Team, Team.id == TeamMembership.team_id)
        .where(
            TeamMembership.person_id == WorkspaceAccess.person_id,
            Team.workspace_id == WorkspaceAccess.workspace_id,
            open_at(TeamMembership.joined_at, TeamMembership.left_at, now),
            team_active_at(now),
        )
    )


class ActiveMemberFilter(NowFilter):
    def __init__(self) -> None:
        super().__init__(WorkspaceAccess.id, _l("Active member now"))

    def condition(self) -> Any:
        return in_active_team_now()


class MentionsFilter(BaseSQLAFilter):
    """Audit entries whose target, detail, before or after contain the text (any case).

    How to find the purge that removed somebody: its one entry lists every
    removed person's e-mail in ``before``.
    """

    def __init__(self) -> None:
        super().__init__(AuditEntry.id, _l("Mentions"))

    def apply(self, query: Any, value: Any, alias: Any = None) -> Any:
        return query.filter(mentions(str(value)))

    def operation(self) -> LazyString:
        return _l("contains")


class ChoiceFilter(BaseSQLAFilter):
    """A drop-down of values, each a condition (a value not offered matches nothing)."""

    def __init__(self, column: Any, name: str, options: Any) -> None:
        super().__init__(column, name, options=options)

    def condition(self, value: str) -> Any:
        return self.column == value

    def apply(self, query: Any, value: Any, alias: Any = None) -> Any:
        if isinstance(self.options, tuple | list) and value not in dict(self.options):
            return query.filter(false())
        return query.filter(self.condition(value))

    def operation(self) -> LazyString:
        return _l("is")


def variant_is(variant: str) -> Any:
    """SQL for "the workspace bills ``variant``": :meth:`PricingRules.variant_for` as a condition.

    The rules file's contracts first, then the workspace's own contract
    variant, then the creation instant against the cut-over date's midnight
    in the billing time zone.
    """
    rules = billing().rules()
    named = [key for key, contract in rules.contracts.items() if contract.variant == variant]
    cutover = datetime.combine(rules.cutover_date, time(), rules.zoneinfo)
    by_date = Workspace.created_at >= cutover
    return or_(
        Workspace.key.in_(named),
        and_(
            Workspace.key.not_in(list(rules.contracts)),
            or_(
                Workspace.contract_variant == variant,
                and_(
                    Workspace.contract_variant.is_(None),
                    by_date if variant == "team_licences" else ~by_date,
                ),
            ),
        ),
    )


class VariantFilter(ChoiceFilter):
    """The variant the workspace bills (the *Variant* column), contract or creation date."""

    def __init__(self) -> None:
        super().__init__(Workspace.id, _l("Variant"), VARIANT_CHOICES)

    def condition(self, value: str) -> Any:
        return variant_is(value)


class InvoiceStatusFilter(ChoiceFilter):
    """``issued`` or ``credited`` (a credit note refers to it), as the *Status* column."""

    def __init__(self) -> None:
        super().__init__(
            Invoice.id, _l("Status"), (("issued", _l("issued")), ("credited", _l("credited")))
        )

    def condition(self, value: str) -> Any:
        credit = aliased(Invoice)
        credited = exists(select(credit.id).where(credit.credits_invoice_id == Invoice.id))
        return credited if value == "credited" else ~credited


class InvoicePeriods:
    """The months that have invoices, newest first: the *Period* filter's choices.

    Flask-Admin reads a filter's options once, when the view is built, but
    iterates them on every page: read from the database then (one query).
    """

    def __bool__(self) -> bool:
        return True

    def __iter__(self) -> Iterator[tuple[str, str]]:
        if not has_app_context():
            return iter(())
        periods = billing().session.scalars(
            select(Invoice.period).distinct().order_by(Invoice.period.desc())
        )
        return iter([(period, period) for period in periods])


class InMembershipNowFilter(NowFilter):
    """Team memberships open right now."""

    def __init__(self) -> None:
        super().__init__(TeamMembership.id, _l("In the team now"))

    def condition(self) -> Any:
        return open_at(TeamMembership.joined_at, TeamMembership.left_at, utcnow())


class InvoiceConditionFilter(ChoiceFilter):
    """One named condition of the dashboard's counters, so that a counter's link lists
    exactly the invoices it counted (:mod:`plugin.services.dashboard`)."""

    def __init__(self, name: str, value: str, condition: Callable[[], Any]) -> None:
        super().__init__(Invoice.id, name, ((value, value),))
        self._condition = condition

    def condition(self, value: str) -> Any:
        return self._condition()


def invoice_problem_filters() -> tuple[ChoiceFilter, ...]:
    """The invoice list's filters behind the dashboard's counters: *E-invoice*, *PDF*, *E-mail*."""
    return (
        ChoiceFilter(
            Invoice.einvoice_status,
            _l("E-invoice"),
            (("valid", _l("valid")), ("invalid", _l("invalid"))),
        ),
        InvoiceConditionFilter(_l("PDF"), "pending", pdf_pending),
        InvoiceConditionFilter(_l("E-mail"), "failed", mail_failed),
    )
