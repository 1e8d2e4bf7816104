"""The billing dashboard: the Billing category's start page.

Licences and net revenue per month and variant for the last twelve months
(charts and a table), the counters that need attention, each linking to the
list it counts, the rules file's error and the worker's state.  The figures
come from :mod:`plugin.services.dashboard`; this module only lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask_admin import BaseView, expose

from ..extension import billing
from ..formatting import amount, number, whole
from ..i18n import _, _l, ngettext
from ..models import VARIANTS
from ..rules import RulesUnavailable
from ..services import dashboard
from ..services.dashboard import CURRENT, INVOICED, MonthFigures
from ..services.rules_editor import rejected_errors
from ..services.workers import WorkerState
from ..types import utcnow
from .base import PermissionMixin, waiting_words, worker_state
from .charts import FINAL, PARTIAL, PROVISIONAL, Chart, Point, bar_chart
from .links import filter_url, page_url

VARIANT_LABELS = {"team_licences": _l("Team licences"), "user_licences": _l("User licences")}
#: Each variant's net revenue column (its own sentence: German does not lower-case nouns).
NET_LABELS = {
    "team_licences": _l("Net, team licences"),
    "user_licences": _l("Net, user licences"),
}
STATUS_LABELS = {
    INVOICED: _l("invoiced"),
    dashboard.NOT_INVOICED: _l("not invoiced"),
    CURRENT: _l("so far, not invoiced"),
}
KINDS = {INVOICED: FINAL, dashboard.NOT_INVOICED: PROVISIONAL, CURRENT: PARTIAL}
#: The note under a bar: a few characters fit the bar's width.
NOTES = {INVOICED: "", dashboard.NOT_INVOICED: _l("not inv."), CURRENT: _l("so far")}


def _label(figures: MonthFigures) -> str:
    return figures.month.first_day.strftime("%m/%y")


def licence_chart(months: list[MonthFigures], variant: str) -> Chart:
    """Invoiced licences (net of credit notes); a month not invoiced: counted live, lighter."""
    return bar_chart(
        f"dashboard-licences-{variant}",
        _("%(variant)s per month", variant=VARIANT_LABELS[variant]),
        [
            Point(
                _label(figures),
                figures.licences[variant],
                number(figures.licences[variant]),
                f"{figures.month}: {number(figures.licences[variant])} "
                f"({STATUS_LABELS[figures.status]})",
                KINDS[figures.status],
                str(NOTES[figures.status]),
            )
            for figures in months
        ],
    )


def revenue_chart(months: list[MonthFigures], variant: str, currency: str) -> Chart:
    """Net revenue invoiced; a month not invoiced has no bar, and says so."""
    points = []
    for figures in months:
        net = figures.net[variant] if figures.net is not None else None
        points.append(
            Point(
                _label(figures),
                net,
                "" if net is None else whole(net),
                f"{figures.month}: "
                + (
                    _(
                        "%(amount)s %(currency)s net",
                        amount=amount(net, currency, code=False),
                        currency=currency,
                    )
                    if net is not None
                    else str(STATUS_LABELS[figures.status])
                ),
                FINAL if net is not None else KINDS[figures.status],
                str(NOTES[figures.status]),
            )
        )
    return bar_chart(
        f"dashboard-revenue-{variant}",
        _("Net revenue, %(variant)s", variant=VARIANT_LABELS[variant]),
        points,
    )


@dataclass(frozen=True)
class WorkerPanel:
    """The background worker as the dashboard shows it: healthy or not, and one line."""

    healthy: bool
    text: str


def worker_panel(state: WorkerState | None) -> WorkerPanel | None:
    """The worker's heartbeat in words; ``None`` when the host switched the warning off."""
    if state is None:
        return None
    waiting = waiting_words(state)
    waits = (
        _("Waiting for a worker: %(what)s.", what=waiting) if waiting else _("Nothing is waiting.")
    )
    idle = not state.waiting
    if state.last_seen is None:
        return WorkerPanel(idle, " ".join((_("No worker has been seen yet."), waits)))
    minutes = int((state.now - state.last_seen).total_seconds() // 60)
    ago = (
        _("less than a minute ago")
        if minutes < 1
        else ngettext("%(num)d min ago", "%(num)d min ago", minutes)
    )
    if state.stale:
        return WorkerPanel(
            idle, " ".join((_("No worker seen for too long: last %(ago)s.", ago=ago), waits))
        )
    return WorkerPanel(True, " ".join((_("Worker running: last seen %(ago)s.", ago=ago), waits)))


def page_context() -> dict[str, Any]:
    """Everything the page shows; without valid rules, only what needs no prices."""
    ext = billing()
    session, now = ext.session, utcnow()
    store = ext.rules_store()
    try:
        rules = ext.rules()
    except RulesUnavailable:
        rules = None
    context: dict[str, Any] = {
        "rules_path": store.path,
        "rules_problem": store.last_error,
        "rules_errors": rejected_errors(store),
        "rules_url": page_url("rules", "index"),
        "worker": worker_panel(worker_state()),
        "variants": VARIANTS,
        "variant_labels": VARIANT_LABELS,
        "net_labels": NET_LABELS,
        "status_labels": STATUS_LABELS,
        "months": None,
        "held": None,
    }
    problems = dict(
        zip(
            ("einvoices_invalid", "pdfs_pending", "mail_failed"),
            dashboard.invoice_problems(session),
            strict=True,
        )
    )
    links = {
        "einvoices_invalid": filter_url("invoices", "E-invoice", "invalid"),
        "pdfs_pending": filter_url("invoices", "PDF", "pending"),
        "mail_failed": filter_url("invoices", "E-mail", "failed"),
    }
    context["problems"], context["problem_links"] = problems, links
    if rules is not None:
        months = dashboard.monthly_figures(session, rules, now)
        held = dashboard.held_workspaces(session, rules, now)
        context.update(
            months=months,
            held=held,
            held_url=page_url("details", "index", month=str(held.month)),
            currency=rules.currency,
            total_net=sum(
                (figures.total_net for figures in months if figures.total_net is not None),
                Decimal(0),
            ),
            licence_charts=[licence_chart(months, variant) for variant in VARIANTS],
            revenue_charts=[revenue_chart(months, variant, rules.currency) for variant in VARIANTS],
        )
    return context


class DashboardView(PermissionMixin, BaseView):
    """The Billing category's first entry; its permission is ``view_dashboard``."""

    @expose("/")
    def index(self) -> Any:
        return self.render("billing/admin/dashboard.html", **page_context())
