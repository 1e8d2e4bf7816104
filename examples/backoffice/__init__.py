"""A small host back-office that mounts the billing plugin the way the README says.

It has its own model, its own Flask-Admin view and its own Alembic history
(``host_migrations/``), so the demo and the tests show the plugin living next
to a host's own tables and migrations.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from flask import Blueprint, Flask, abort, has_request_context, redirect, request, session
from flask_admin import Admin
from flask_admin.contrib.sqla import ModelView
from flask_admin.menu import MenuLink
from flask_babel import Babel

from plugin import WorkspaceBilling
from plugin.config import default_actor

from .models import SupportTicket, db

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent.parent


DEMO_ROLES = ("support", "admin", "accounting")

#: The demo's stand-in for a real login: the role is kept in the session.
demo_roles_blueprint = Blueprint("demo_roles", __name__, url_prefix="/demo")


def demo_roles() -> set[str]:
    """The role chosen under Demo › Switch role; a new visitor has none, so may do nothing."""
    role = session.get("demo_role")
    return {role} if role in DEMO_ROLES else set()


def demo_actor() -> str:
    """Who the audit log names: the demo role in the browser, the OS user on the CLI."""
    if has_request_context():
        return f"demo-{session.get('demo_role', 'anonymous')}"
    return default_actor()


@demo_roles_blueprint.get("/role")
def choose_role() -> str:
    current = session.get("demo_role")
    links = "".join(
        f'<li><a href="/demo/role/{role}">{role}</a>{" (current)" if role == current else ""}</li>'
        for role in DEMO_ROLES
    )
    return f"<h1>Demo: act as</h1><ul>{links}</ul><p><a href='/admin/'>Back-office</a></p>"


@demo_roles_blueprint.get("/role/<role>")
def switch_role(role: str) -> Any:
    if role not in DEMO_ROLES:
        abort(404)
    session["demo_role"] = role
    return redirect("/admin/")


#: The back-office's languages; the plugin and Flask-Admin ship both.
DEMO_LANGUAGES = {"de": "Deutsch", "en": "English"}


def demo_locale() -> str | None:
    """The language chosen under Demo › Language, else the browser's preferred one.

    Outside a request (the CLI, a filter built in an app context) there is no
    browser to ask: ``None`` is Flask-Babel's default locale.
    """
    if not has_request_context():
        return None
    chosen = session.get("demo_language")
    if chosen in DEMO_LANGUAGES:
        return chosen
    return request.accept_languages.best_match(DEMO_LANGUAGES) or "en"


@demo_roles_blueprint.get("/language/<language>")
def switch_language(language: str) -> Any:
    if language not in DEMO_LANGUAGES:
        abort(404)
    session["demo_language"] = language
    return redirect(request.referrer or "/admin/")


#: Signs the demo's sessions; known to everybody, so fit for nothing but the demo.
DEMO_SECRET_KEY = "demo-only-secret"


class DemoSecretKeyError(RuntimeError):
    """The published demo secret key outside the demo: anyone could forge a session."""


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_path=str(REPOSITORY / "instance"))
    app.config.update(
        SECRET_KEY=os.environ.get("DEMO_SECRET_KEY", DEMO_SECRET_KEY),
        SQLALCHEMY_DATABASE_URI=os.environ.get(
            "DEMO_DATABASE_URL", f"sqlite:///{REPOSITORY / 'instance' / 'demo.sqlite'}"
        ),
        BILLING_RULES_PATH=os.environ.get(
            "BILLING_RULES_PATH", str(REPOSITORY / "pricing_rules.yaml")
        ),
    )
    app.config.update(config or {})
    demo = os.environ.get("DEMO_MODE") == "1" or app.debug or app.testing
    if app.config["SECRET_KEY"] == DEMO_SECRET_KEY and not demo:
        raise DemoSecretKeyError(
            "SECRET_KEY is the demo's published default: set DEMO_SECRET_KEY to a secret of "
            "your own (or DEMO_MODE=1 for the demo on this machine only)"
        )
    Path(app.instance_path).mkdir(exist_ok=True)

    app.config.setdefault("BILLING_CURRENT_ROLES", demo_roles)
    app.config.setdefault("BILLING_CURRENT_ACTOR", demo_actor)
    # The demo fills itself with `flask billing generate` (make demo).
    app.config.setdefault("BILLING_SYNTHETIC_COMMANDS", True)

    db.init_app(app)
    Babel(app, locale_selector=demo_locale)
    admin = Admin(app, name="Demo back-office")
    admin.add_view(ModelView(SupportTicket, db, name="Support tickets", endpoint="tickets"))
    admin.add_link(MenuLink(name="Switch role", url="/demo/role", category="Demo"))
    for code, name in DEMO_LANGUAGES.items():
        admin.add_link(MenuLink(name=name, url=f"/demo/language/{code}", category="Demo"))
    WorkspaceBilling(app, db=db, admin=admin)
    app.register_blueprint(demo_roles_blueprint)

    @app.cli.command("host-migrate")
    def host_migrate() -> None:
        """Run the host's own migrations (not the plugin's)."""
        from .host_migrations import upgrade

        upgrade(db.engine)
        click.echo("Host tables are at the latest schema.")

    return app
