"""The back-office in German at a screenshot-sized viewport (1280 × 800): the dashboard, a
workspace page, the invoice list and an invoice, the month close; German headings and
buttons, no English string of the plugin's catalogue, no clipped table."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.test_browser_dashboard import CLIPPED
from tests.browser.test_browser_readable_pages import assert_nothing_clipped, invoice_number
from tests.test_i18n import english_on as english_of


def english_on(page) -> list[str]:
    """The catalogue's English strings the tab shows (none is wanted)."""
    return english_of(page.content())


def test_the_back_office_reads_in_german(page, backoffice, act_as, screenshot):
    backoffice.cli("close-month", "2026-10")
    number = invoice_number(backoffice, "acme")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(backoffice.url("/demo/language/de"))
    act_as("accounting")

    # The dashboard, from the menu: its German name, headings, counters and charts.
    page.get_by_role("link", name="Abrechnung", exact=True).first.click()
    entries = page.locator(".dropdown-menu.show a")
    expect(entries.first).to_have_text("Übersicht")
    entries.first.click()
    expect(page.get_by_role("heading", name="Abrechnungsübersicht")).to_be_visible()
    expect(page.locator("#counter-held")).to_contain_text("Zurückgehaltene Rechnungen")
    expect(page.locator("#dashboard-charts")).to_contain_text("Die letzten 12 Monate")
    expect(page.locator("#dashboard-months tbody tr").first).to_contain_text(
        "bisher, nicht abgerechnet"
    )
    expect(page.locator("#dashboard-months thead")).to_contain_text("Netto, Team-Lizenzen")
    expect(page.locator("#dashboard-revenue-team_licences")).to_have_attribute(
        "aria-label", "Nettoumsatz, Team-Lizenzen"
    )
    assert english_on(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert page.evaluate(CLIPPED, "#dashboard-charts svg, #dashboard-months, .card") == []
    screenshot(page, "billing-dashboard-de")

    # A workspace page.
    page.goto(backoffice.url("/admin/billing_workspaces/w/acme/"))
    expect(page.get_by_role("heading", name="Rechnungen", exact=True)).to_be_visible()
    expect(
        page.locator(".card-header").filter(has_text="Mitglieder des Arbeitsbereichs")
    ).to_be_visible()
    expect(page.locator("#licence-chart")).to_have_attribute(
        "aria-label", "Abgerechnete Lizenzen je Monat"
    )
    assert english_on(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280

    # The invoice list, and one invoice from it.
    page.goto(backoffice.url("/admin/billing_invoices/"))
    expect(page.locator("table.model-list thead")).to_contain_text("Nummer")
    assert english_on(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.get_by_role("link", name=number, exact=True).click()
    expect(page.get_by_role("heading", name=f"Rechnung {number}")).to_be_visible()
    expect(page.locator("#invoice-pdf")).to_have_text("PDF herunterladen")
    expect(page.locator("#deliveries thead")).to_contain_text("Zustellung")
    assert english_on(page) == []
    assert_nothing_clipped(page, "#invoice-detail, #invoice-detail .billing-fit")

    # The month close: the month by its German name, the button that names it.
    page.goto(backoffice.url("/admin/billing_close/?month=2026-11"))
    expect(page.get_by_role("heading", name="Monatsabschluss: November 2026")).to_be_visible()
    expect(page.locator("#close-month")).to_have_text("November 2026 abschließen")
    expect(page.locator("#close-preview-summary")).to_contain_text("Auszustellende Rechnungen")
    assert english_on(page) == []
    assert_nothing_clipped(page, "#close-totals, .table-responsive")

    # A mistyped confirmation, refused in German.
    page.locator("#close-form-confirm").fill("Close November 2026")
    page.locator("#close-month").click()
    expect(page.locator("#close-form-confirm-error")).to_have_text(
        re.compile(r"^Geben Sie „November 2026 abschließen“ ein")
    )
    assert english_on(page) == []
