"""Accounting downloads a licence export and, once the month is closed, an invoice PDF."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

from playwright.sync_api import expect
from sqlalchemy import select

from plugin.extension import billing
from plugin.models import Invoice


def test_accounting_downloads_the_licence_export_of_a_chosen_month(page, backoffice, act_as):
    act_as("accounting")
    page.goto(backoffice.url("/admin/billing_workspaces/w/acme/"))
    form = page.locator("#export-form")
    # The form offers the last 13 months. October 2026 (Altprojekte archived on the
    # 15th: Emil still billed) while it is among them; later the oldest month offered,
    # after the demo data's last change (10 November 2026): Anna, Chris and Dora.
    offered = form.locator("#export-month option").evaluate_all("os => os.map(o => o.value)")
    month = "2026-10" if "2026-10" in offered else offered[-1]
    form.locator("#export-month").select_option(month)
    form.locator("select[name=format]").select_option("csv")
    with page.expect_download() as info:
        form.get_by_role("button", name="Download export").click()
    download = info.value
    assert download.failure() is None
    assert download.suggested_filename == f"acme-{month}-user-licences.csv"
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8-sig"))))
    assert rows[0][:3] == ["email", "name", "teams"]
    billed = [
        "anna@mueller-soehne.example",
        "chris@consulting.example",
        "dora@mueller-soehne.example",
    ]
    if month == "2026-10":
        billed.append("emil@mueller-soehne.example")
        emil = next(row for row in rows if row[0] == "emil@mueller-soehne.example")
        assert emil[1] == "Emil Brandt"
        assert emil[2] == "Altprojekte"
    assert [row[0] for row in rows[1:]] == billed


def test_accounting_downloads_an_invoice_pdf_after_the_month_close(
    page, backoffice, act_as, screenshot
):
    backoffice.cli("close-month", "2026-10")
    act_as("accounting")
    page.goto(backoffice.url("/admin/billing_workspaces/w/nordwind/"))
    invoices = page.locator("#invoices")
    row = invoices.locator("tbody tr", has_text="2026-10").first
    expect(row).to_contain_text("issued")
    number = row.locator("td").first.inner_text().strip()
    screenshot(page, "workspace-page-nordwind-invoices")

    with page.expect_download() as info:
        row.get_by_role("link", name="Download").click()
    download = info.value
    assert download.failure() is None
    assert download.suggested_filename == f"invoice-{number}.pdf"
    pdf = Path(download.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    with backoffice.app.app_context():
        session = billing().session
        stored = session.scalar(select(Invoice.pdf_sha256).where(Invoice.number == number))
        session.remove()
    assert stored is not None
    assert hashlib.sha256(pdf).hexdigest() == stored
