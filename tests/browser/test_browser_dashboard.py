"""The billing dashboard at a screenshot-sized viewport: every chart and table in view."""

from __future__ import annotations

from playwright.sync_api import expect

from plugin.services.periods import Month
from plugin.types import utcnow

DASHBOARD_URL = "/admin/billing_dashboard/"

#: The elements (by CSS selector) whose right edge lies beyond the viewport or whose
#: content is wider than their box: what a person would see cut off.
CLIPPED = """(selector) => Array.from(document.querySelectorAll(selector))
    .filter((element) => {
        const box = element.getBoundingClientRect();
        return box.right > window.innerWidth + 0.5 || element.scrollWidth > element.clientWidth + 1
            || (element.parentElement.scrollWidth > element.parentElement.clientWidth + 1);
    })
    .map((element) => element.id || element.tagName)"""


def test_the_dashboard_shows_the_year_without_clipping(page, backoffice, act_as, screenshot):
    rules = backoffice.app.extensions["billing"].rules(backoffice.app)
    closed = Month.of(utcnow(), rules.zoneinfo).previous().previous()
    backoffice.cli("close-month", str(closed))
    page.set_viewport_size({"width": 1280, "height": 800})
    act_as("accounting")
    page.goto(backoffice.url("/admin/"))
    page.get_by_role("link", name="Billing").first.click()
    entries = page.locator(".dropdown-menu.show a")
    expect(entries.first).to_have_text("Dashboard")
    entries.first.click()
    page.wait_for_url(backoffice.url(DASHBOARD_URL))
    expect(page.get_by_role("heading", name="Billing dashboard")).to_be_visible()
    expect(page.locator("svg.billing-chart")).to_have_count(4)
    row = page.locator(f'#dashboard-months tr[data-month="{closed}"]')
    expect(row).to_have_attribute("data-status", "invoiced")
    current = page.locator("#dashboard-months tbody tr").first
    expect(current).to_contain_text("so far, not invoiced")
    for key in ("held", "einvoices_invalid", "pdfs_pending", "mail_failed"):
        expect(page.locator(f"#counter-{key}")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert page.evaluate(CLIPPED, "#dashboard-charts svg, #dashboard-months, .card") == []
    screenshot(page, "billing-dashboard")
    # The invalid-e-invoices counter leads to the invoice list, filtered by it.
    page.locator("#counter-einvoices_invalid a").click()
    page.wait_for_url("**/admin/billing_invoices/?flt0_*=invalid")
    expect(page.locator(".filters")).to_contain_text("E-invoice")
