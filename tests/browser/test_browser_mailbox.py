"""Accounting changes a workspace's invoice mailbox in the browser; a bad address is refused."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from plugin.extension import billing
from plugin.models import OutboxMail, Workspace

OLD = "rechnungen@mueller-soehne.example"
NEW = "buchhaltung@mueller-soehne.example"


def mailbox_and_notices(backoffice, key: str) -> tuple[str | None, list[str]]:
    with backoffice.app.app_context():
        session = billing().session
        mailbox = session.scalar(select(Workspace.invoice_mailbox).where(Workspace.key == key))
        notices = sorted(
            session.scalars(
                select(OutboxMail.recipient)
                .join(Workspace, Workspace.id == OutboxMail.workspace_id)
                .where(OutboxMail.kind == "mailbox_notice", Workspace.key == key)
            )
        )
        session.remove()
    return mailbox, notices


def test_accounting_changes_the_invoice_mailbox(page, backoffice, act_as, screenshot):
    act_as("accounting")
    page.goto(backoffice.url("/admin/billing_workspaces/w/acme/"))
    expect(page.locator("#invoice-mailbox")).to_have_text(OLD)
    page.locator("#change-mailbox-link").click()
    expect(page.locator("#mailbox-targets")).to_contain_text(OLD)

    # A header smuggled in after the address is refused on the form; nothing changes.
    page.locator("#address").fill("evil@attacker.example, " + NEW)
    page.locator("#change-mailbox").click()
    expect(page.locator(".alert")).to_contain_text("Nothing was changed")
    expect(page.locator(".alert")).to_contain_text("is a list")
    assert mailbox_and_notices(backoffice, "acme") == (OLD, [])
    screenshot(page, "mailbox-refused")

    page.locator("#address").fill(NEW)
    page.locator("#change-mailbox").click()
    page.wait_for_url(backoffice.url("/admin/billing_workspaces/w/acme/"))
    expect(page.locator("#invoice-mailbox")).to_have_text(NEW)
    expect(page.locator(".alert")).to_contain_text(f"Invoice mailbox of acme: {OLD} → {NEW}")
    assert mailbox_and_notices(backoffice, "acme") == (NEW, sorted([OLD, NEW]))

    page.goto(backoffice.url("/admin/billing_audit/"))
    expect(page.locator("table.model-list")).to_contain_text("change_mailbox")
    expect(page.locator("table.model-list")).to_contain_text("demo-accounting")


def test_support_and_admin_cannot_change_it(page, backoffice, act_as):
    for role in ("support", "admin"):
        act_as(role)
        page.goto(backoffice.url("/admin/billing_workspaces/w/globex/"))
        expect(page.locator("#change-mailbox-link")).to_have_count(0)
        with backoffice.app.app_context():
            globex = billing().session.scalar(select(Workspace.id).where(Workspace.key == "globex"))
            billing().session.remove()
        response = page.goto(backoffice.url(f"/admin/billing_workspaces/mailbox?ids={globex}"))
        assert response.status == 403
        expect(page.locator("body")).to_contain_text("Not allowed")
