"""The back-office's language follows the host's Flask-Babel locale selector."""

from __future__ import annotations

import pytest

from plugin.i18n import gettext, ngettext
from tests.conftest import make_app

URL = "/admin/billing_dashboard/"


@pytest.fixture
def admin_client(database_url):
    """A client whose requests each have their own app context, as under a real server.

    (The ``app`` fixture keeps an app context open, which Flask reuses for the
    test client's requests, and Flask-Babel keeps the locale it chose on ``g``.)
    """
    app = make_app(database_url)
    client = app.test_client()
    client.get("/demo/role/accounting")
    yield client
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


def test_the_dashboard_is_german_when_the_host_chooses_german(admin_client):
    with admin_client.session_transaction() as session:
        session["demo_language"] = "de"
    page = admin_client.get(URL).get_data(as_text=True)
    assert "Abrechnungsübersicht" in page
    assert "Billing dashboard" not in page


def test_the_dashboard_is_english_when_the_browser_asks_for_english(admin_client):
    page = admin_client.get(URL, headers={"Accept-Language": "en-GB"})
    assert "Billing dashboard" in page.get_data(as_text=True)


def test_the_browser_s_german_is_followed_until_a_language_is_chosen(admin_client):
    page = admin_client.get(URL, headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert "Abrechnungsübersicht" in page.get_data(as_text=True)
    admin_client.get("/demo/language/en")
    page = admin_client.get(URL, headers={"Accept-Language": "de-DE"})
    assert "Billing dashboard" in page.get_data(as_text=True)


def test_an_unknown_language_is_not_found(admin_client):
    assert admin_client.get("/demo/language/xx").status_code == 404


def test_without_flask_babel_on_the_host_the_strings_stay_english():
    from flask import Flask

    with Flask("no_babel").app_context():
        assert gettext("Billing dashboard") == "Billing dashboard"
        assert gettext("%(n)s invoices", n=3) == "3 invoices"
        assert ngettext("%(num)d invoice", "%(num)d invoices", 1) == "1 invoice"
