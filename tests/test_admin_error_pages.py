"""The plugin's refusals (404, 400, …) are back-office pages in the page's language.

Werkzeug's own error page is English and has no menu: a German back-office
showed "Not Found" after a click on an invoice that no longer exists.
"""

from __future__ import annotations

import pytest

from tests.conftest import make_app

UNKNOWN_WORKSPACE = "/admin/billing_workspaces/w/nope/"
#: A bare ``abort(404)``: the view gives no description of its own.
UNKNOWN_INVOICE_MAIL = "/admin/billing_invoices/mail/RE-1999-99999"
UNREADABLE_MONTH = "/admin/billing_details/?month=soon"


def client_of(app, language: str):
    client = app.test_client()
    client.get("/demo/role/accounting")
    client.get(f"/demo/language/{language}")
    return client


@pytest.fixture
def app(database_url):
    app = make_app(database_url)
    yield app
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


def test_an_unknown_workspace_is_a_german_page_of_the_back_office(app):
    response = client_of(app, "de").get(UNKNOWN_WORKSPACE)
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "Nicht gefunden" in page
    assert "Kein Arbeitsbereich mit dem Schlüssel &#39;nope&#39;." in page
    # On the admin layout: the menu is there to go on from.
    assert "Abrechnung" in page
    assert 'href="/admin/billing_dashboard/"' in page
    assert "Not Found" not in page


def test_a_404_without_a_description_explains_itself_in_the_page_s_language(app):
    german = client_of(app, "de").get(UNKNOWN_INVOICE_MAIL)
    assert german.status_code == 404
    assert "Diese Seite oder Datei gibt es nicht oder nicht mehr." in german.get_data(as_text=True)
    english = client_of(app, "en").get(UNKNOWN_INVOICE_MAIL)
    assert english.status_code == 404
    page = english.get_data(as_text=True)
    assert "Not found" in page
    assert "This page or file does not exist, or no longer exists." in page
    assert "The requested URL was not found on the server" not in page


def test_a_bad_request_is_a_german_page_with_its_reason(app):
    response = client_of(app, "de").get(UNREADABLE_MONTH)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Ungültige Anfrage" in page
    assert "soon" in page
    assert "Bad Request" not in page


def test_the_403_page_stays_the_403_page(app):
    client = app.test_client()
    client.get("/demo/role/support")
    client.get("/demo/language/de")
    response = client.get("/admin/billing_details/?month=2026-10")
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "Nicht erlaubt" in page
    assert "Nicht gefunden" not in page


def test_a_host_s_own_404_page_is_kept(database_url):
    app = make_app(database_url)
    app.register_error_handler(404, lambda error: ("the host's own page", 404))
    try:
        response = client_of(app, "de").get(UNKNOWN_WORKSPACE)
        assert response.status_code == 404
        assert response.get_data(as_text=True) == "the host's own page"
    finally:
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()
