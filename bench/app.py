"""A bench-only app: the demo host with the plugin, plus plain Flask-Admin views.

The baselines of the admin measurements are Flask-Admin as it comes:
``ModelView`` over the plugin's tables (``/admin/plain_*``), and a
``ModelView`` with ``can_export=True`` over a query yielding the same rows as
the licence-holder export (``/admin/flask_admin_export/export/csv/``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from flask_admin.contrib.sqla import ModelView
from sqlalchemy import event, func

from examples.backoffice import create_app
from plugin.models import Person, Team, Workspace, WorkspaceAccess

from .databases import RULES_PATH
from .sql import licence_holders

#: The plugin's list pages and the plain views over the same tables.
LIST_PAGES = {
    "workspaces": ("/admin/billing_workspaces/", "/admin/plain_workspaces/", Workspace),
    "teams": ("/admin/billing_teams/", "/admin/plain_teams/", Team),
    "members": ("/admin/billing_members/", "/admin/plain_members/", WorkspaceAccess),
}
EXPORT_URL = "/admin/flask_admin_export/export/csv/"


class PlainView(ModelView):
    """An unmodified ModelView, but for the page size: the plugin's 50 rows, not 20."""

    page_size = 50


class FlaskAdminExport(ModelView):
    """Flask-Admin's built-in CSV export over the licence holders of one workspace and month."""

    can_export = True
    column_list = ("email", "name", "teams")
    #: Set by :func:`point_export_at`: (dialect, workspace id, start, end).
    holders: tuple[str, int, Any, Any] | None = None

    def _holders(self) -> Any:
        return licence_holders(*self.holders)

    def get_query(self) -> Any:
        rows = self._holders()
        email = rows.c.email.collate("C") if self.holders[0] == "postgresql" else rows.c.email
        return self.session.query(rows.c.email, rows.c.name, rows.c.teams).order_by(
            email, rows.c.person_id
        )

    def get_count_query(self) -> Any:
        return self.session.query(func.count()).select_from(self._holders())


def bench_app(url: str) -> Flask:
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": secrets.token_hex(16),
            "BILLING_RULES_PATH": str(RULES_PATH),
            "BILLING_CURRENT_ROLES": lambda: {"admin", "accounting"},
            "BILLING_CURRENT_ACTOR": lambda: "bench",
            "BILLING_SYNTHETIC_COMMANDS": True,
        }
    )
    admin = app.extensions["admin"][0]
    session = app.extensions["sqlalchemy"].session
    for name, (_, plain_url, model) in LIST_PAGES.items():
        admin.add_view(
            PlainView(model, session, name=f"plain {name}", endpoint=plain_url.split("/")[2])
        )
    admin.add_view(FlaskAdminExport(Person, session, name="export", endpoint="flask_admin_export"))
    return app


def point_export_at(app: Flask, workspace_id: int, start: Any, end: Any) -> None:
    for view in app.extensions["admin"][0]._views:
        if isinstance(view, FlaskAdminExport):
            with app.app_context():
                dialect = app.extensions["sqlalchemy"].engine.dialect.name
            view.holders = (dialect, workspace_id, start, end)


@contextmanager
def counting_queries(app: Flask) -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs meanwhile."""
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def dispose(app: Flask) -> None:
    """Close the app's pooled connections (PostgreSQL cannot copy a database in use)."""
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


def load_app() -> Flask:
    """The back-office that ``make load`` serves under gunicorn (and its CLI runs on).

    The database comes from ``LOAD_DATABASE_URL``; every request acts as an
    admin with accounting rights (the roles a back-office login would give),
    so the load test needs no login and works whatever the demo's role switch
    does with an anonymous session.  ``LOAD_SECRET_KEY`` is one random key for
    every gunicorn worker (the demo's published key is refused outside the demo).
    """
    import os

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": os.environ["LOAD_DATABASE_URL"],
            "SECRET_KEY": os.environ["LOAD_SECRET_KEY"],
            "BILLING_RULES_PATH": str(RULES_PATH),
            "BILLING_CURRENT_ROLES": lambda: {"admin", "accounting"},
            "BILLING_CURRENT_ACTOR": lambda: "load",
            "BILLING_SYNTHETIC_COMMANDS": True,
        }
    )
