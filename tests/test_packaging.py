"""A non-editable install works: the wheel carries migrations, templates and rules."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from plugin import migrate

REPOSITORY = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=REPOSITORY,
        check=True,
        capture_output=True,
    )
    return next(out.glob("*.whl"))


@pytest.mark.slow
def test_wheel_ships_migrations_templates_and_rules(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "plugin/migrations/env.py" in names
    assert "plugin/migrations/versions/0001_initial.py" in names
    assert "plugin/pricing_rules.yaml" in names
    assert "plugin/templates/billing/invoice_pdf.html" in names
    assert "plugin/templates/billing/admin/workspace.html" in names
    assert "plugin/translations/de/LC_MESSAGES/billing.mo" in names
    assert not any(name.startswith("tests/") for name in names)


@pytest.mark.slow
def test_wheel_says_the_package_is_typed(wheel):
    """A host's type checker reads the plugin's annotations (PEP 561) only with the marker."""
    names = zipfile.ZipFile(wheel).namelist()
    assert "plugin/py.typed" in names
    assert "plugin/synthetic/generator.py" in names
    assert "plugin/documents/yaml_reader.py" in names


@pytest.mark.slow
def test_installed_wheel_migrates_a_database_outside_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    script = (
        "import plugin, sqlalchemy\n"
        "from plugin import migrate\n"
        "assert plugin.__file__.startswith({site!r}), plugin.__file__\n"
        "engine = sqlalchemy.create_engine('sqlite:///' + {db!r})\n"
        "migrate.upgrade(engine)\n"
        "from plugin.resources import resource_path\n"
        "templates = resource_path('templates')\n"
        "assert str(templates).startswith({site!r}), templates\n"
        "assert (templates / 'billing' / 'invoice_pdf.html').is_file()\n"
        "import flask, flask_babel\n"
        "from plugin.i18n import gettext\n"
        "app = flask.Flask('host')\n"
        "flask_babel.Babel(app)\n"
        "with app.test_request_context(), flask_babel.force_locale('de'):\n"
        "    assert gettext('Billing dashboard') == 'Abrechnungsübersicht'\n"
        "print(migrate.current_revision(engine))\n"
    ).format(site=str(target), db=str(tmp_path / "db.sqlite"))
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == migrate.head_revision()
