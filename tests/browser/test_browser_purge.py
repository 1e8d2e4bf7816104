"""An admin removes the inactive members of a workspace: preview, confirmation, result."""

from __future__ import annotations

from playwright.sync_api import expect


def emails(table) -> list[str]:
    return sorted(
        text.strip() for text in table.locator("tbody tr td:first-child").all_inner_texts()
    )


def test_admin_previews_then_removes_the_inactive_members(page, backoffice, act_as, screenshot):
    act_as("admin")
    page.goto(backoffice.url("/admin/billing_workspaces/w/acme/"))
    expect(page.locator("#count-members")).to_have_text("7")
    expect(page.locator("#current-users")).to_have_text("7")

    page.locator("#purge-button").click()
    page.wait_for_url(backoffice.url("/admin/billing_workspaces/w/acme/purge"))
    removed, kept = page.locator("#purge-removed"), page.locator("#purge-kept")
    expect(page.get_by_role("heading", name="Will lose access (3)")).to_be_visible()
    assert emails(removed) == [
        "bob@mueller-soehne.example",
        "emil@mueller-soehne.example",
        "gerda@mueller-soehne.example",
    ]
    expect(removed.locator("tr", has_text="emil@")).to_contain_text("only in archived teams")
    expect(removed.locator("tr", has_text="gerda@")).to_contain_text("in no team")
    assert emails(kept) == [
        "anna@mueller-soehne.example",
        "chris@consulting.example",
        "dora@mueller-soehne.example",
        "frank@mueller-soehne.example",
    ]
    expect(kept.locator("tr", has_text="frank@")).to_contain_text("owner")
    screenshot(page, "purge-preview-acme")

    confirm = page.locator("#purge-confirm")
    expect(confirm).to_have_text("Remove 3 inactive members")
    confirm.click()

    page.wait_for_url(backoffice.url("/admin/billing_workspaces/w/acme/#members"))
    expect(page.locator(".alert")).to_contain_text("Removed 3 inactive members.")
    expect(page.locator("#current-users")).to_have_text("4")
    expect(page.locator("#count-members")).to_have_text("4")
    screenshot(page, "workspace-page-acme-after-purge")

    # A second preview has nobody left to remove.
    page.locator("#purge-button").click()
    expect(page.locator("#purge-removed")).to_have_count(0)
    expect(page.get_by_role("heading", name="Will lose access (0)")).to_be_visible()
