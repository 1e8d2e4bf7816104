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
from flask import Flask
from flask_admin import Admin
from flask_admin.contrib.sqla import ModelView

from plugin import WorkspaceBilling

from .models import SupportTicket, db

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent.parent


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_path=str(REPOSITORY / "instance"))
    app.config.update(
        SECRET_KEY=os.environ.get("DEMO_SECRET_KEY", "demo-only-secret"),
        SQLALCHEMY_DATABASE_URI=os.environ.get(
            "DEMO_DATABASE_URL", f"sqlite:///{REPOSITORY / 'instance' / 'demo.sqlite'}"
        ),
        BILLING_RULES_PATH=os.environ.get(
            "BILLING_RULES_PATH", str(REPOSITORY / "pricing_rules.yaml")
        ),
    )
    app.config.update(config or {})
    Path(app.instance_path).mkdir(exist_ok=True)

    db.init_app(app)
    admin = Admin(app, name="Demo back-office")
    admin.add_view(ModelView(SupportTicket, db, name="Support tickets", endpoint="tickets"))
    WorkspaceBilling(app, db=db, admin=admin)

    @app.cli.command("host-migrate")
    def host_migrate() -> None:
        """Run the host's own migrations (not the plugin's)."""
        from .host_migrations import upgrade

        upgrade(db.engine)
        click.echo("Host tables are at the latest schema.")

    return app
