"""Each role logs in through the demo's role switch and finds the Billing menu."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

#: role -> whether the pricing-rules page is in its Billing menu.
ROLES = {"support": True, "admin": True, "accounting": True}


@pytest.mark.parametrize("role", list(ROLES))
def test_each_role_logs_in_and_sees_the_billing_menu(page, backoffice, act_as, screenshot, role):
    act_as(role)
    switch = page.goto(backoffice.url("/demo/role"))
    assert switch.ok
    expect(page.locator("li", has_text=role)).to_contain_text("(current)")
    page.goto(backoffice.url("/admin/"))

    navbar = page.locator("#admin-navbar-collapse")
    billing = navbar.locator("a.dropdown-toggle", has_text="Billing")
    expect(billing).to_be_visible()
    billing.click()
    menu = navbar.locator("li.dropdown", has=page.locator("a.dropdown-toggle", has_text="Billing"))
    menu = menu.locator(".dropdown-menu")
    expect(menu.get_by_role("link", name="Workspaces", exact=True)).to_be_visible()
    expect(menu.get_by_role("link", name="Audit log", exact=True)).to_be_visible()
    rules = menu.get_by_role("link", name="Pricing rules", exact=True)
    if ROLES[role]:
        expect(rules).to_be_visible()
    else:
        expect(rules).to_have_count(0)

    menu.get_by_role("link", name="Workspaces", exact=True).click()
    page.wait_for_url(backoffice.url("/admin/billing_workspaces/"))
    table = page.locator("table.model-list")
    for name in ("Müller & Söhne GmbH", "Nordwind Logistik AG", "Globex Corporation"):
        expect(table.get_by_role("link", name=name, exact=True)).to_be_visible()
    if role == "support":
        screenshot(page, "workspace-list")


def test_the_browser_cannot_leave_the_test_server(page, backoffice, chromium):
    """The guard every test runs under: other hosts, and other ports, are blocked and reported."""
    page.goto(backoffice.url("/demo/role"))
    elsewhere = ["http://example.com/tracker.js", "http://127.0.0.1:9/other-server.png"]
    page.evaluate(
        """(urls) => Promise.all(urls.map((url) => fetch(url).catch(() => null)))""", elsewhere
    )
    assert sorted(chromium.guard.foreign) == sorted(elsewhere)
    chromium.guard.foreign.clear()
