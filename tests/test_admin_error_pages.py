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


def shown(app, url: str, status: int, language: str = "de", role: str = "accounting") -> str:
    """The HTML page ``url`` answers ``role`` in ``language``, checked to have ``status``."""
    client = app.test_client()
    client.get(f"/demo/role/{role}")
    client.get(f"/demo/language/{language}")
    response = client.get(url)
    assert response.status_code == status
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


@pytest.fixture
def app(database_url):
    app = make_app(database_url)
    yield app
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


PAGES = {
    # The view's own reason, in German, on the admin layout with its menu.
    "unknown workspace": (
        UNKNOWN_WORKSPACE, 404, "de",
        ("Nicht gefunden", "Kein Arbeitsbereich mit dem Schlüssel &#39;nope&#39;.",
         "Abrechnung", 'href="/admin/billing_dashboard/"'),
        ("Not Found",),
    ),
    # A bare abort(404): the plugin explains it, in the page's language.
    "bare 404, German": (
        UNKNOWN_INVOICE_MAIL, 404, "de",
        ("Nicht gefunden", "Diese Seite oder Datei gibt es nicht oder nicht mehr."),
        ("Not Found", "The requested URL was not found on the server"),
    ),
    "bare 404, English": (
        UNKNOWN_INVOICE_MAIL, 404, "en",
        ("Not found", "This page or file does not exist, or no longer exists."),
        ("The requested URL was not found on the server",),
    ),
    "unreadable month": (
        UNREADABLE_MONTH, 400, "de", ("Ungültige Anfrage", "soon"), ("Bad Request",),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", PAGES)
def test_a_refusal_is_a_back_office_page_in_the_page_s_language(app, case):
    url, status, language, present, absent = PAGES[case]
    page = shown(app, url, status, language)
    assert [text for text in present if text not in page] == []
    assert [text for text in absent if text in page] == []


def test_the_403_page_stays_the_403_page(app):
    page = shown(app, "/admin/billing_details/?month=2026-10", 403, role="support")
    assert "Nicht erlaubt" in page
    assert "Nicht gefunden" not in page


def test_a_host_s_own_404_page_is_kept(database_url):
    app = make_app(database_url)
    app.register_error_handler(404, lambda error: ("the host's own page", 404))
    try:
        assert shown(app, UNKNOWN_WORKSPACE, 404) == "the host's own page"
    finally:
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()
