"""The Flask extension: ``WorkspaceBilling(app, db=db, admin=admin)`` or ``init_app``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, tzinfo
from typing import TYPE_CHECKING, Any, cast
from weakref import WeakKeyDictionary, WeakSet

from flask import Blueprint, Flask, Response, current_app

from . import migrate
from .config import DEFAULTS
from .manifest import Module, configure
from .resources import resource_path
from .rules import PricingRules, RulesStore, RulesUnavailable
from .textsearch import register_sqlite_lower

if TYPE_CHECKING:
    from flask_admin import Admin
    from flask_sqlalchemy import SQLAlchemy
    from sqlalchemy.orm import Session

    from .services.counts import CountsCache


class WorkspaceBilling:
    """Workspace, team and member management and their billing, for a host back-office.

    ``db`` is the host's Flask-SQLAlchemy instance: the plugin's tables use
    its engine and session.  ``admin`` is the host's Flask-Admin ``Admin``;
    when it is not given, the first ``Admin`` already initialised on the app
    is used, and without one no views are registered (the CLI still works).
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        db: SQLAlchemy | None = None,
        admin: Admin | None = None,
    ) -> None:
        self.db = db
        self.admin = admin
        self._rules: WeakKeyDictionary[Flask, RulesStore] = WeakKeyDictionary()
        self._counts: WeakKeyDictionary[Flask, CountsCache | None] = WeakKeyDictionary()
        self._modules: WeakKeyDictionary[Flask, Module] = WeakKeyDictionary()
        self._admins_with_views: WeakSet[Admin] = WeakSet()
        if app is not None:
            self.init_app(app)

    def init_app(
        self, app: Flask, *, db: SQLAlchemy | None = None, admin: Admin | None = None
    ) -> None:
        """Register the plugin on ``app``: its config defaults, CLI, templates and views.

        ``db`` and ``admin`` as for the constructor.  Raises ``RuntimeError``
        without a Flask-SQLAlchemy instance, or when the app has the plugin
        already.  The pricing rules are read now; a broken file is logged and
        refused wherever prices are needed, so the app still starts.

        These config keys are read; each is set to its default
        (:data:`plugin.config.DEFAULTS`) unless the host set it:

        - ``BILLING_RULES_PATH``: accounting's pricing rules file
          (``pricing_rules.yaml`` in the instance folder).
        - ``BILLING_MENU_CATEGORY``: the admin menu category (``"Billing"``).
        - ``BILLING_CURRENT_ACTOR``: a callable naming who acts, for the audit log.
        - ``BILLING_CURRENT_ROLES``: a callable returning the current user's roles.
        - ``BILLING_ACCESS``, ``BILLING_VIEWS``, ``BILLING_ACTIONS``: overrides of
          the access table, views switched off or renamed, actions switched off
          (:mod:`plugin.manifest`).
        - ``BILLING_COUNTS_CACHE_SIZE``: workspaces whose current counts each
          process keeps (``0``: none).
        - ``BILLING_SYNTHETIC_COMMANDS``: register ``flask billing generate``
          (off; only for a demo or a benchmark host).
        - ``BILLING_IMPORT_MAX_BYTES``: the largest import file.
        - ``BILLING_BATCH_NICE``: niceness of the long-running commands.
        - ``BILLING_WKHTMLTOPDF``, ``BILLING_PDF_TIMEOUT``, ``BILLING_PDF_WORKERS``,
          ``BILLING_RENDER_NICE``: the PDF renderer (:mod:`plugin.pdf`).
        - ``BILLING_GHOSTSCRIPT``, ``BILLING_ICC_PROFILE``, ``BILLING_PDFA_TIMEOUT``,
          ``BILLING_PDFA_LONG_RUNNING``: the PDF/A conversion of e-invoices.
        - ``BILLING_SMTP_HOST``, ``BILLING_SMTP_PORT``, ``BILLING_SMTP_SECURITY``,
          ``BILLING_SMTP_USERNAME``, ``BILLING_SMTP_PASSWORD``,
          ``BILLING_SMTP_TIMEOUT``, ``BILLING_MAIL_SENDER``, ``BILLING_MAIL_DOMAIN``:
          invoice mail.
        - ``BILLING_WORKER_POLL_SECONDS``, ``BILLING_WORKER_LISTEN``,
          ``BILLING_WORKER_LEASE_SECONDS``, ``BILLING_WORKER_STALE_SECONDS``: the
          worker and the warning when none was seen.
        - ``BILLING_RENDER_IN_REQUEST``, ``BILLING_SEND_IN_REQUEST``: whether an
          admin action renders its PDF or sends its mails in the request.

        The configuration reference (docs/host-integration.md) gives every
        default and its meaning.
        """
        if db is not None:
            self.db = db
        if self.db is None:
            raise RuntimeError(
                "WorkspaceBilling needs the host's Flask-SQLAlchemy instance: "
                "WorkspaceBilling(app, db=db) or init_app(app, db=db)"
            )
        if "billing" in app.extensions:
            raise RuntimeError("WorkspaceBilling is already initialised on this app")
        register_sqlite_lower()
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        if app.config["BILLING_RULES_PATH"] is None:
            app.config["BILLING_RULES_PATH"] = f"{app.instance_path}/pricing_rules.yaml"
        self._modules[app] = configure(
            app.config["BILLING_VIEWS"], app.config["BILLING_ACTIONS"], app.config["BILLING_ACCESS"]
        )
        self._rules[app] = _rules_store(app)
        app.register_error_handler(RulesUnavailable, _rules_unavailable)
        from .services.counts import CountsCache

        size = app.config["BILLING_COUNTS_CACHE_SIZE"]
        self._counts[app] = CountsCache(size) if size else None
        app.extensions["billing"] = self

        from .cli import billing_group

        app.cli.add_command(billing_group(bool(app.config["BILLING_SYNTHETIC_COMMANDS"])))
        app.register_blueprint(
            Blueprint("billing_plugin", __name__, template_folder=str(resource_path("templates")))
        )
        from .formatting import amount, day, number
        from .i18n import gettext, ngettext

        app.jinja_env.globals.update(_b=gettext, _bn=ngettext)
        # The pages' numbers and dates in the page's locale (plugin.formatting); the
        # names are prefixed: the host's environment is shared.
        app.jinja_env.filters.update(
            billing_amount=amount, billing_number=number, billing_day=day
        )

        admin = admin or self.admin or _admin_of(app)
        if admin is not None:
            self._register_views(admin, app)

    def _register_views(self, admin: Admin, app: Flask) -> None:
        # An Admin shared between apps already holds the views: Flask-Admin
        # registers them on each app it is initialised with.
        if admin in self._admins_with_views:
            return
        from .admin import build_views

        admin.add_views(
            *build_views(self.db, self._modules[app], app.config["BILLING_MENU_CATEGORY"])
        )
        self._admins_with_views.add(admin)

    # What the adapters (CLI, views) use ------------------------------------

    @property
    def database(self) -> SQLAlchemy:
        """The host's Flask-SQLAlchemy instance (``init_app`` refuses to start without one)."""
        if self.db is None:
            raise RuntimeError("WorkspaceBilling is not initialised: init_app(app, db=db)")
        return self.db

    @property
    def session(self) -> Session:
        # The scoped session stands for the request's (or command's) Session.
        return cast("Session", self.database.session)

    def rules_store(self, app: Flask | None = None) -> RulesStore:
        return self._rules[app or _current_app()]

    def rules(self, app: Flask | None = None) -> PricingRules:
        """The pricing rules in force, re-read if accounting changed the file."""
        return self.rules_store(app).current()

    def zone(self, app: Flask | None = None) -> tzinfo:
        """The billing time zone that messages write instants in; UTC while the rules file
        has never loaded (what needs no prices keeps working then)."""
        try:
            return self.rules(app).zoneinfo
        except RulesUnavailable:
            return UTC

    def module(self, app: Flask | None = None) -> Module:
        """The module's declaration as this app configured it (views, menu, actions, access)."""
        return self._modules[app or _current_app()]

    def counts_cache(self, app: Flask | None = None) -> CountsCache | None:
        """This process's cache of the workspaces' current counts (``None``: disabled)."""
        return self._counts[app or _current_app()]

    def actor(self) -> str:
        current_actor: Callable[[], str] = current_app.config["BILLING_CURRENT_ACTOR"]
        return current_actor()

    def migrate(self) -> None:
        """Bring the plugin's tables to the latest schema."""
        migrate.upgrade(self.database.engine)


def _rules_store(app: Flask) -> RulesStore:
    """The app's rules; a broken file is logged, and refused wherever prices are needed.

    The app starts anyway, so that what needs no prices goes on (the mail of
    invoices already issued, ``flask billing rules check``, the rules editor)
    and every other command and page names the file's errors instead of a
    traceback.
    """
    store = RulesStore(app.config["BILLING_RULES_PATH"])
    if store.last_error is not None:
        for error in store.last_error.errors:
            app.logger.error("%s: %s", store.path, error)
    return store


def _rules_unavailable(error: RulesUnavailable) -> Response:
    """The page of any request that needed prices while the rules file is broken."""
    lines = [
        f"Billing is unavailable: {error.path} has no valid pricing rules.",
        *(f"{error.path.name}: {problem}" for problem in error.errors),
        "Fix the file; `flask billing rules check` lists the same errors.",
    ]
    return Response("\n".join(lines) + "\n", status=503, mimetype="text/plain")


def _admin_of(app: Flask) -> Any:
    for admin in app.extensions.get("admin", ()):
        if getattr(admin, "app", None) is app:
            return admin
    return None


def billing() -> WorkspaceBilling:
    """The extension of the current app."""
    ext: WorkspaceBilling = current_app.extensions["billing"]
    return ext


def _current_app() -> Flask:
    """The app behind ``current_app`` (a weak key must be the app itself, not the proxy)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return app
