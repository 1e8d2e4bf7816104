"""The month close page at a screenshot-sized viewport: preview, confirmation, the worker's
close shown as it progresses, then the summary linking to the month's invoices."""

from __future__ import annotations

from playwright.sync_api import expect

from plugin.services.periods import Month
from plugin.types import utcnow
from tests.browser.test_browser_dashboard import CLIPPED

CLOSE_URL = "/admin/billing_close/"
TABLES = "#close-totals, #close-held, #close-progress, #close-planned"


def not_clipped(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert page.evaluate(CLIPPED, TABLES) == []


def test_closing_a_month_from_the_page(page, backoffice, act_as, screenshot):
    rules = backoffice.app.extensions["billing"].rules(backoffice.app)
    month = Month.of(utcnow(), rules.zoneinfo).previous()
    page.set_viewport_size({"width": 1280, "height": 800})
    act_as("accounting")
    page.goto(backoffice.url("/admin/"))
    page.get_by_role("link", name="Billing").first.click()
    page.locator(".dropdown-menu.show a", has_text="Month close").last.click()
    page.wait_for_url(f"**{CLOSE_URL}")
    expect(page.locator("#close-totals")).to_be_visible()
    page.locator("#close-planned-details summary").click()
    expect(page.locator("#close-planned tbody tr").first).to_be_visible()
    not_clipped(page)
    screenshot(page, "month-close-preview")

    words = page.locator("#close-month").inner_text().strip()
    # A wrong confirmation is refused, saying what to type.
    page.fill("#close-form-confirm", "close it")
    page.click("#close-month")
    expect(page.locator("#close-form-confirm-error")).to_contain_text(words)
    expect(page.locator("#close-job")).to_have_count(0)

    page.fill("#close-form-confirm", words)
    page.click("#close-month")
    expect(page.locator("#close-job")).to_have_attribute("data-status", "queued")
    expect(page.locator("#close-form")).to_have_count(0)
    not_clipped(page)

    backoffice.cli("worker", "--until-idle")
    # The page reloads itself (a meta refresh, no script) until the PDFs are rendered.
    expect(page.locator("#close-job")).to_have_attribute("data-status", "done")
    expect(page.locator("#close-refresh")).to_have_count(0)
    expect(page.locator("#close-summary")).to_contain_text("Issued")
    not_clipped(page)
    screenshot(page, "month-close-done")

    page.click("#close-invoices-link")
    page.wait_for_url("**/admin/billing_invoices/?flt0_*")
    expect(page.locator(".filters")).to_contain_text("Period")
    expect(page.locator("table.model-list tbody tr").first).to_contain_text(str(month))
