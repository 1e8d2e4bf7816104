"""The extension mounts into a host app the pallets way."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_admin import Admin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import select
from sqlalchemy.pool import NullPool

from plugin import WorkspaceBilling
from plugin.models import Workspace
from tests.conftest import REPOSITORY, RULES_PATH, make_app


def host(database_url: str, billing: WorkspaceBilling, db: SQLAlchemy, **config) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database_url,
        SQLALCHEMY_ENGINE_OPTIONS={"poolclass": NullPool},
        BILLING_RULES_PATH=str(RULES_PATH),
        **config,
    )
    db.init_app(app)
    Admin(app, name="Host")
    billing.init_app(app)
    return app


def test_one_extension_serves_two_apps_with_their_own_config(databases, backend):
    db = SQLAlchemy()
    billing = WorkspaceBilling(db=db)
    first = host(databases.migrated(backend), billing, db)
    second = host(databases.migrated(backend), billing, db, BILLING_MENU_CATEGORY="Abrechnung")
    assert first.extensions["billing"] is billing is second.extensions["billing"]
    categories = [
        {view.category for view in app.extensions["admin"][0]._views} for app in (first, second)
    ]
    assert categories[0] & {"Billing", "Abrechnung"} == {"Billing"}
    assert categories[1] & {"Billing", "Abrechnung"} == {"Abrechnung"}
    with first.app_context():
        db.session.add(Workspace(key="only-first", name="First", created_at=_instant()))
        db.session.commit()
    with second.app_context():
        assert db.session.scalars(select(Workspace.key)).all() == []
    for app in (first, second):
        with app.app_context():
            db.engine.dispose()


def _instant():
    from plugin.types import utcnow

    return utcnow()


def test_views_appear_under_the_billing_menu_next_to_the_host_views(app):
    client = app.test_client()
    client.get("/demo/role/admin")
    page = client.get("/admin/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Billing" in text
    assert "Support tickets" in text
    for endpoint in ("billing_workspaces", "billing_teams", "billing_people", "billing_audit"):
        assert client.get(f"/admin/{endpoint}/").status_code == 200


def test_config_defaults_are_set_and_overridable(database_url):
    app = make_app(database_url, BILLING_MENU_CATEGORY="Abrechnung")
    assert app.config["BILLING_MENU_CATEGORY"] == "Abrechnung"
    assert app.config["BILLING_IMPORT_MAX_BYTES"] == 50 * 1024 * 1024
    assert callable(app.config["BILLING_CURRENT_ACTOR"])


def test_initialising_twice_on_one_app_is_an_error(app):
    with pytest.raises(RuntimeError, match="already initialised"):
        app.extensions["billing"].init_app(app)


def test_without_db_the_extension_says_what_it_needs():
    with pytest.raises(RuntimeError, match="Flask-SQLAlchemy instance"):
        WorkspaceBilling(Flask(__name__))


def test_migrate_command(empty_database_url):
    app = make_app(empty_database_url)
    result = app.test_cli_runner().invoke(args=["billing", "migrate"])
    assert result.exit_code == 0, result.output
    assert "latest schema" in result.output
    with app.app_context():
        assert app.extensions["sqlalchemy"].session.scalars(select(Workspace)).all() == []
        app.extensions["sqlalchemy"].engine.dispose()


def test_without_a_role_the_billing_pages_answer_403(database_url):
    app = make_app(database_url, BILLING_CURRENT_ROLES=lambda: ())
    client = app.test_client()
    page = client.get("/admin/billing_workspaces/")
    assert page.status_code == 403
    assert "Not allowed" in page.get_data(as_text=True)
    # The host's own pages are the host's business.
    assert client.get("/admin/").status_code == 200


def test_a_new_demo_visitor_has_no_role(app):
    client = app.test_client()
    page = client.get("/admin/billing_workspaces/")
    assert page.status_code == 403
    assert "Not allowed" in page.get_data(as_text=True)
    assert "(current)" not in client.get("/demo/role").get_data(as_text=True)


def test_the_demo_refuses_its_published_secret_key_outside_the_demo(monkeypatch, database_url):
    from examples.backoffice import DemoSecretKeyError, create_app

    monkeypatch.delenv("DEMO_MODE", raising=False)
    monkeypatch.delenv("DEMO_SECRET_KEY", raising=False)
    settings = {"SQLALCHEMY_DATABASE_URI": database_url, "BILLING_RULES_PATH": str(RULES_PATH)}
    with pytest.raises(DemoSecretKeyError, match="published default"):
        create_app(settings)
    assert create_app({**settings, "SECRET_KEY": "a secret of our own"}).secret_key
    monkeypatch.setenv("DEMO_MODE", "1")
    assert create_app(settings).secret_key == "demo-only-secret"


def test_the_demo_role_switch_sets_the_role(app):
    client = app.test_client()
    assert client.get("/demo/role/support").status_code == 302
    assert client.get("/admin/billing_workspaces/").status_code == 200
    assert client.get("/demo/role/nobody").status_code == 404


def test_importing_the_plugin_does_nothing(tmp_path):
    """Importing every module reads no rules file, opens no database and no socket."""
    import subprocess
    import sys

    from tests.conftest import REPOSITORY

    script = (
        "import importlib, pkgutil, sys\n"
        "seen = []\n"
        "def hook(event, args):\n"
        "    if event == 'open' and str(args[0]).endswith(('.yaml', '.yml', '.sqlite', '.db')):\n"
        "        seen.append(str(args[0]))\n"
        "    elif event in ('sqlite3.connect', 'socket.connect', 'subprocess.Popen'):\n"
        "        seen.append(event)\n"
        "sys.addaudithook(hook)\n"
        "import plugin\n"
        "for module in pkgutil.walk_packages(plugin.__path__, 'plugin.'):\n"
        "    importlib.import_module(module.name)\n"
        "print(seen)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPOSITORY), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_generate_is_only_in_hosts_that_ask_for_the_synthetic_commands(databases, backend):
    plain_db, demo_db = SQLAlchemy(), SQLAlchemy()
    plain = host(databases.migrated(backend), WorkspaceBilling(db=plain_db), plain_db)
    result = plain.test_cli_runner().invoke(args=["billing", "generate", "--scale", "tiny"])
    assert result.exit_code == 2
    assert "No such command 'generate'" in result.output
    assert "generate" not in plain.test_cli_runner().invoke(args=["billing", "--help"]).output
    demo_like = host(
        databases.migrated(backend),
        WorkspaceBilling(db=demo_db),
        demo_db,
        BILLING_SYNTHETIC_COMMANDS=True,
    )
    result = demo_like.test_cli_runner().invoke(args=["billing", "generate", "--scale", "tiny"])
    assert result.exit_code == 0, result.output
    assert "Generated (seed 1, scale tiny): 5 billing_workspace" in result.output
    # The other host's group did not get the command.
    assert "generate" not in plain.test_cli_runner().invoke(args=["billing", "--help"]).output
    for app, db in ((plain, plain_db), (demo_like, demo_db)):
        with app.app_context():
            db.engine.dispose()


def test_init_app_documents_every_config_key_it_reads():
    from plugin.config import DEFAULTS

    doc = WorkspaceBilling.init_app.__doc__
    reference = (REPOSITORY / "docs" / "host-integration.md").read_text()
    assert [key for key in DEFAULTS if f"``{key}``" not in doc] == []
    assert [key for key in DEFAULTS if f"`{key}`" not in reference] == []
