"""The month close as a page: the preview, a confirmation that names the month, the
close done by the worker, its progress and then its summary.

The preview is :func:`plugin.services.invoicing.plan_month`, as ``flask
billing check-month`` prints it; the close is queued as a job
(:func:`plugin.services.close_jobs.queue_close`) that ``flask billing
worker`` runs through :func:`plugin.services.invoicing.close_month`, as
``flask billing close-month`` does.  The page reloads itself (a ``<meta>``
refresh: no script, so nothing a strict Content-Security-Policy blocks) while
the job is queued or running and while its PDFs are being rendered.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import Length

from ..extension import billing
from ..i18n import _, _l
from ..services.close_jobs import active_job, latest_job, progress, queue_close
from ..services.invoicing import InvoicingError, default_close_month, plan_month
from ..services.periods import Month
from ..types import utcnow
from .base import PermissionMixin, local_minute, refuse_stale_form
from .links import filter_url

#: Seconds between two reloads of the page while the close is under way.
REFRESH_SECONDS = 2


class CloseForm(FlaskForm):
    month = HiddenField()
    confirm = StringField(_l("Type the confirmation"), [Length(max=200)])


def month_name(month: Month) -> str:
    """``November 2026`` in the back-office's language (Flask-Babel's, if the host has it)."""
    if "babel" in current_app.extensions:
        from flask_babel import format_date

        return str(format_date(month.first_day, "MMMM yyyy"))
    return month.first_day.strftime("%B %Y")


def confirmation(month: Month) -> str:
    """The words the user types to close ``month``."""
    return _("Close %(month)s", month=month_name(month))


def _same_words(typed: str, expected: str) -> bool:
    return " ".join(typed.split()).casefold() == " ".join(expected.split()).casefold()


class ClosePage(PermissionMixin, BaseView):
    """The page (``check_month``: admin and accounting see it); closing needs the
    ``close`` action's permission (``close_month``: accounting)."""

    @expose("/")
    def index(self) -> Any:
        try:
            month = Month.parse(request.args["month"]) if "month" in request.args else None
        except ValueError as exc:
            abort(400, description=str(exc))
        form = CloseForm()
        return self._page(month, form)

    @expose("/close", methods=["POST"])
    def close(self) -> Any:
        """Queue the close of the month the form names, once its confirmation is typed."""
        self.require_action("close")
        form = CloseForm()
        if not form.validate():
            if "csrf_token" in form.errors:
                refuse_stale_form()
            return self._page(None, form), 400
        try:
            month = Month.parse(form.month.data or "")
        except ValueError as exc:
            form.month.errors = [*form.month.errors, str(exc)]
            return self._page(None, form), 400
        expected = confirmation(month)
        if not _same_words(form.confirm.data or "", expected):
            form.confirm.errors = [
                _("Type “%(words)s” to close the month: nothing was closed.", words=expected)
            ]
            return self._page(month, form), 400
        ext = billing()
        try:
            queued = queue_close(ext.session, ext.rules(), month, utcnow(), actor=ext.actor())
        except InvoicingError as exc:
            ext.session.rollback()
            flash(_("Nothing was closed: %(reason)s.", reason=str(exc)), "error")
            return self._page(month, form), 400
        if queued.created:
            flash(
                _(
                    "The close of %(month)s is queued: the worker issues the invoices.",
                    month=month_name(month),
                ),
                "success",
            )
        else:
            flash(
                _(
                    "The close of %(month)s was already asked for: nothing more is queued.",
                    month=month_name(month),
                ),
                "info",
            )
        return redirect(url_for(".index", month=str(month)))

    def _page(self, month: Month | None, form: CloseForm) -> Any:
        ext = billing()
        session, rules, now = ext.session, ext.rules(), utcnow()
        month = month or default_close_month(rules, now)
        form.month.data = str(month)
        job = latest_job(session, month)
        shown = progress(session, job) if job is not None else None
        try:
            plan, error = plan_month(session, rules, month, now), None
        except InvoicingError as exc:
            plan, error = None, str(exc)
        running = active_job(session, month) is not None
        session.rollback()
        return self.render(
            "billing/admin/close_month.html",
            month=month,
            month_name=month_name(month),
            previous=month.previous(),
            following=month.next(),
            confirmation=confirmation(month),
            plan=plan,
            error=error,
            job=job,
            progress=shown,
            running=running,
            refresh=REFRESH_SECONDS if shown is not None and not shown.finished else None,
            can_close=self.can("close") and plan is not None and plan.complete and not running,
            form=form,
            invoices_url=filter_url("invoices", "Period", str(month)),
            local_minute=local_minute,
        )
