"""What every billing admin view shares: permissions, CSRF, the 403 and error pages."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NoReturn

from flask import abort, current_app, g, make_response, request, url_for
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.contrib.sqla.filters import FilterConverter
from flask_admin.model import filters, typefmt
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import Unicode, cast, or_
from werkzeug.exceptions import HTTPException

from ..extension import billing
from ..formatting import instant, number
from ..i18n import _, _l, ngettext
from ..manifest import View
from ..services import workers
from ..services.workers import WorkerState
from ..textsearch import search_term
from ..types import utcnow
from .access import action_allowed, allowed
from .error_pages import error_page


class FoldedLike(sqla_filters.FilterLike):
    """Flask-Admin's *contains* filter, in any case on every database (:mod:`plugin.textsearch`)."""

    def apply(self, query: Any, value: Any, alias: Any = None) -> Any:
        return query.filter(search_term(self.get_column(alias), str(value)))


class FoldedNotLike(sqla_filters.FilterNotLike):
    def apply(self, query: Any, value: Any, alias: Any = None) -> Any:
        return query.filter(~search_term(self.get_column(alias), str(value)))


class BillingFilterConverter(FilterConverter):
    """Flask-Admin picks filters by column type name; ours are ``UTCDateTime``, ``ExactDecimal``.

    The text filters *contains* and *not contains* fold case like the search.
    """

    strings = (FoldedLike, FoldedNotLike, *FilterConverter.strings[2:])

    @filters.convert("utcdatetime")
    def conv_utc_datetime(self, column: Any, name: str, **kwargs: Any) -> list[Any]:
        converted: list[Any] = self.conv_datetime(column, name, **kwargs)
        return converted

    @filters.convert("exactdecimal")
    def conv_exact_decimal(self, column: Any, name: str, **kwargs: Any) -> list[Any]:
        converted: list[Any] = self.conv_float(column, name, **kwargs)
        return converted


def refuse_stale_form() -> NoReturn:
    """400 for a POST whose CSRF token is missing, expired or from another page."""
    abort(400, description=_("The form expired or was not sent by this page; try again."))


class CsrfForm(FlaskForm):
    """A form with nothing but its CSRF token, for the plugin's own POST buttons."""


class PermissionMixin:
    """Server-side checks from the view's declaration (:mod:`plugin.manifest`).

    The view needs the declaration's permission; each action its own, and
    an action the host switched off (``BILLING_ACTIONS``) is refused with
    404 whatever the role.  The *With selected* menu is built from the
    declared bulk actions, each run by the view's ``action_<name>`` method.
    """

    declaration: View
    # Set by Flask-Admin's BaseView, which every view combines this mixin with.
    _template_args: dict[str, Any]
    admin: Any

    def __init__(self, *args: Any, declaration: View, **kwargs: Any) -> None:
        self.declaration = declaration
        super().__init__(*args, **kwargs)

    @property
    def permission(self) -> str:
        return self.declaration.permission

    def create_blueprint(self, admin: Any) -> Any:
        """Flask-Admin's blueprint for the view, its HTTP errors shown as back-office pages
        (:mod:`.error_pages`)."""
        blueprint = super().create_blueprint(admin)  # type: ignore[misc]
        blueprint.register_error_handler(HTTPException, lambda error: error_page(self, error))
        return blueprint

    def init_actions(self) -> None:
        self._actions = [
            (action.name, _l(action.text)) for action in self.declaration.actions if action.bulk
        ]
        self._actions_data = {
            action.name: (
                getattr(self, f"action_{action.name}"),
                _l(action.text),
                _l(action.confirmation) if action.confirmation else None,
            )
            for action in self.declaration.actions
            if action.bulk
        }

    def is_accessible(self) -> bool:
        return allowed(self.permission)

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        self.forbid(self.permission)

    def is_action_allowed(self, name: str) -> bool:
        return self.can(name)

    def handle_action(self, return_view: str | None = None) -> Any:
        """Flask-Admin redirects a refused bulk action back to the list, saying nothing:
        refuse it like every other request instead (404 switched off, 403 for the role)."""
        name = request.form.get("action", "")
        if name in self._actions_data and not self.can(name):
            self.require_action(name)
        return super().handle_action(return_view)  # type: ignore[misc]

    def can(self, action: str) -> bool:
        """Whether the action is switched on and the current user may run it."""
        return action_allowed(self.declaration.key, action)

    def require_action(self, action: str) -> None:
        """Stop the request unless :meth:`can` (404 when switched off, 403 for the role)."""
        if not billing().module().action_enabled(self.declaration.key, action):
            abort(
                404,
                description=_("%(action)r is switched off in this back-office.", action=action),
            )
        self.require(self.declaration.action(action).permission)

    def require(self, permission: str) -> None:
        if not allowed(permission):
            self.forbid(permission)

    def forbid(self, permission: str) -> None:
        page = self.render("billing/admin/forbidden.html", permission=permission)
        abort(make_response(page, 403))

    def render(self, template: str, **kwargs: Any) -> str:
        """Every plugin page, on the host's base template, warns when work waits for a worker.

        ``billing/admin/base.html`` extends the host's base template and adds
        the warning above the flashed messages: one query per page
        (:func:`plugin.services.workers.worker_state`).
        """
        self._template_args.update(
            admin_base_template="billing/admin/base.html",
            billing_host_base_template=self.admin.theme.base_template,
            billing_worker=worker_state(),
            billing_waiting=waiting_words,
            billing_when=local_minute,
        )
        page: str = super().render(template, **kwargs)  # type: ignore[misc]
        return page


def worker_state() -> WorkerState | None:
    """Whether PDFs or mail wait with no worker seen; ``None`` when the host switched it off.

    Read once per request (the warning and the dashboard's panel share it).
    """
    stale = current_app.config["BILLING_WORKER_STALE_SECONDS"]
    if not stale:
        return None
    # On the request, not on ``g``: an app context can outlive many requests.
    cached = request.environ.get("billing.worker_state")
    if cached is None:
        cached = request.environ["billing.worker_state"] = workers.worker_state(
            billing().session, now=utcnow(), stale_after=timedelta(seconds=float(stale))
        )
    return cached


#: What may wait for a worker (:attr:`WorkerState.waiting`), as the pages name it.
WAITING_WORDS = {"pdfs": _l("invoice PDFs"), "mail": _l("mail"), "close": _l("a month close")}


def waiting_words(state: WorkerState) -> str:
    """``invoice PDFs, mail``: what waits for a worker, in the back-office's language."""
    return ", ".join(str(WAITING_WORDS[kind]) for kind in state.waiting)


def licences_label(count: int, variant: str) -> str:
    """``1 team``, ``3 users``, ``1.234 Benutzer``: a licence count, in the page's locale,
    with its unit."""
    if variant == "team_licences":
        return ngettext("%(count)s team", "%(count)s teams", count, count=number(count))
    return ngettext("%(count)s user", "%(count)s users", count, count=number(count))


def local_minute(value: datetime) -> str:
    """Instants as the back-office reads them: minutes, in the billing time zone, with its
    name, in the page's locale (:func:`plugin.formatting.instant`)."""
    return instant(value, billing().rules().zoneinfo)


def local_time(view: Any, value: datetime, name: str) -> str:
    """:func:`local_minute` as a Flask-Admin column type formatter."""
    return local_minute(value)


def link(view_key: str, endpoint: str, text: str, **values: Any) -> Markup:
    """A link to a page of another view, or the bare text when the host switched it off."""
    if billing().module().view(view_key) is None:
        return Markup("{}").format(text)
    return Markup('<a href="{}">{}</a>').format(
        url_for(f"billing_{view_key}.{endpoint}", **values), text
    )


def person_link(person_id: int, email: str) -> Markup:
    """A person's e-mail, linking to their page."""
    return link("people", "person_page", email, person_id=person_id)


def workspace_link(key: str, text: str | None = None) -> Markup:
    return link("workspaces", "workspace_page", text or key, key=key)


def formatter(render: Any) -> Any:
    """A Flask-Admin column formatter from ``render(model)``."""
    return lambda view, context, model, name: render(model)


class _TableCount:
    """What Flask-Admin takes for the count query of an unfiltered list."""

    def __init__(self, scalar: Any) -> None:
        self.scalar = scalar


class BillingModelView(PermissionMixin, ModelView):
    """Read-only lists: every change goes through a domain service and the audit log."""

    column_type_formatters = {**typefmt.BASE_FORMATTERS, datetime: local_time}
    column_type_formatters_detail = column_type_formatters
    form_base_class = FlaskForm
    filter_converter = BillingFilterConverter()
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    page_size = 50
    #: The unfiltered list's total comes from the counts cache, kept under the
    #: workspaces' stamps (:meth:`CountsCache.table_count`): only for a model
    #: whose table the stamps cover.
    stamped_total = False

    def get_list(
        self,
        page: Any,
        sort_column: Any,
        sort_desc: Any,
        search: Any,
        filters: Any,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[int | None, list[Any]]:
        g.billing_unfiltered = not search and not filters
        try:
            count, rows = super().get_list(
                page, sort_column, sort_desc, search, filters, *args, **kwargs
            )
        finally:
            g.billing_unfiltered = False
        if kwargs.get("execute", True):
            for name, value in self.page_data(rows).items():
                setattr(g, f"billing_{name}", value)
        return count, rows

    def page_data(self, rows: list[Any]) -> dict[str, Any]:
        """What the list's formatters read about the page's rows, in a few set-based queries.

        Each entry is put on ``g`` as ``billing_<name>`` before the page is
        rendered, so that a column's formatter looks its row up instead of
        querying once per row.  Nothing by default.
        """
        return {}

    def get_count_query(self) -> Any:
        """Flask-Admin's ``SELECT count(*)``; for the whole table, through the counts cache.

        Flask-Admin calls only ``scalar()`` on it when no search or filter
        narrows the list (:meth:`get_list` notes which).
        """
        query = super().get_count_query()
        ext = billing()
        cache = ext.counts_cache()
        if not (self.stamped_total and g.get("billing_unfiltered") and cache is not None):
            return query
        return _TableCount(
            lambda: cache.table_count(ext.session, self.model.__tablename__, query.scalar)
        )

    def _apply_search(
        self,
        query: Any,
        count_query: Any,
        joins: dict[str, Any],
        count_joins: dict[str, Any],
        search: str,
    ) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
        """Flask-Admin's search (every word in some searchable column), in any case.

        Flask-Admin compares with ``ILIKE``, which SQLite and PostgreSQL under
        the ``C`` locale fold for ASCII only; :func:`plugin.textsearch.folded`
        folds every letter on both.
        """
        for term in search.split():
            matches, count_matches = [], []
            for field, path in self._search_fields:
                query, joins, alias = self._apply_path_joins(query, joins, path, inner_join=False)
                column = field if alias is None else getattr(alias, field.key)
                matches.append(search_term(cast(column, Unicode), term))
                if count_query is not None:
                    count_query, count_joins, count_alias = self._apply_path_joins(
                        count_query, count_joins, path, inner_join=False
                    )
                    column = field if count_alias is None else getattr(count_alias, field.key)
                    count_matches.append(search_term(cast(column, Unicode), term))
            query = query.filter(or_(*matches))
            if count_query is not None:
                count_query = count_query.filter(or_(*count_matches))
        return query, count_query, joins, count_joins
