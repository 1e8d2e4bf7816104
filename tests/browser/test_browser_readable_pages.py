"""A credit note issued in the admin has its PDF at once, and the audit, invoice and rules pages
read at a screenshot-sized viewport (1280 × 800) without a clipped table."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from plugin.extension import billing
from plugin.models import Invoice
from tests.browser.test_browser_dashboard import CLIPPED

#: Table containers whose content is wider than their box: a table a person sees cut off.
WIDER_THAN_BOX = """(selector) => Array.from(document.querySelectorAll(selector))
    .filter((element) => element.scrollWidth > element.clientWidth + 1)
    .map((element) => element.id || element.className || element.tagName)"""


def assert_nothing_clipped(page, containers: str) -> None:
    assert page.locator(containers).count() > 0, containers
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert page.evaluate(WIDER_THAN_BOX, containers) == []
    assert page.evaluate(CLIPPED, f"{containers} table") == []


def invoice_number(backoffice, key: str) -> str:
    with backoffice.app.app_context():
        session = billing().session
        number = session.scalar(
            select(Invoice.number).where(Invoice.workspace_key == key, Invoice.kind == "invoice")
        )
        session.remove()
    return number


def test_a_credit_note_from_the_admin_shows_its_pdf_and_the_pages_fit(
    page, backoffice, act_as, screenshot
):
    backoffice.cli("close-month", "2026-10")
    number = invoice_number(backoffice, "acme")
    page.set_viewport_size({"width": 1280, "height": 800})
    act_as("accounting")

    # The invoice's page: lines as a table, the mail, no clipping.
    page.goto(backoffice.url(f"/admin/billing_invoices/?search={number}"))
    page.get_by_role("link", name=number, exact=True).click()
    expect(page.locator("#invoice-lines tbody tr")).not_to_have_count(0)
    expect(page.locator("#invoice-lines .line-vat").first).to_have_text("S 19 %")
    expect(page.locator("#deliveries")).to_contain_text("rechnungen@mueller-soehne.example")
    assert_nothing_clipped(page, "#invoice-detail, #invoice-detail .billing-fit")
    screenshot(page, "invoice-page")

    # Credit it: the credit note's page has its PDF without anybody running a command.
    page.locator("#invoice-credit").click()
    page.get_by_label("Reason (printed on the credit note)").fill("Wrong number of users")
    page.get_by_role("button", name=re.compile("credit note", re.I)).click()
    page.wait_for_url(re.compile(r".*/admin/billing_invoices/details/\?id=\d+"))
    expect(page.locator(".alert").first).to_contain_text("Its PDF is ready.")
    expect(page.locator("#invoice-related-link")).to_have_text(number)
    with page.expect_download() as info:
        page.locator("#invoice-pdf").click()
    download = info.value
    assert download.failure() is None
    assert download.suggested_filename.endswith(".pdf")
    # And back: the credited invoice names its credit note.
    page.locator("#invoice-related-link").click()
    expect(page.locator("#invoice-related")).to_contain_text("Credited by credit note")

    # The audit log: the credit note's entry, every column in view, times with their zone.
    page.goto(backoffice.url("/admin/billing_audit/"))
    expect(page.locator("#audit-list td.col-at").first).to_have_text(
        re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d (CET|CEST)")
    )
    assert_nothing_clipped(page, "#audit-list .table-responsive")
    screenshot(page, "audit-log")

    # The pricing rules with their price tables.
    page.goto(backoffice.url("/admin/billing_rules/"))
    expect(page.locator("#rules-prices-team_licences tr.price-version").first).to_be_visible()
    assert_nothing_clipped(page, "#rules-prices, #rules-in-force")
    screenshot(page, "pricing-rules")
