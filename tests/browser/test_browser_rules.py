"""The pricing-rules page: accounting edits, support only reads, admin may not open it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from playwright.sync_api import expect

RULES_URL = "/admin/billing_rules/"

#: Submit a form the page does not offer, as a user editing the page could.
FORGE_FORM = """([action, fields]) => {
    const form = document.createElement("form");
    form.method = "POST";
    form.action = action;
    for (const [name, value] of Object.entries(fields)) {
        const input = document.createElement("input");
        input.type = "hidden";
        input.name = name;
        input.value = value;
        form.appendChild(input);
    }
    document.body.appendChild(form);
    form.submit();
}"""


def rules_file(backoffice) -> Path:
    return Path(backoffice.app.config["BILLING_RULES_PATH"])


def csrf_token(page, backoffice) -> str:
    """A valid token of this session, from a page that has a form for support (inviting)."""
    page.goto(backoffice.url("/admin/billing_workspaces/w/nordwind/"))
    return page.locator("#invite-form input[name=csrf_token]").first.get_attribute("value")


def test_support_reads_the_rules_but_gets_no_editor_and_cannot_post(
    page, backoffice, act_as, screenshot
):
    before = hashlib.sha256(rules_file(backoffice).read_bytes()).hexdigest()
    act_as("support")
    response = page.goto(backoffice.url(RULES_URL))
    assert response.status == 200
    expect(page.locator("#rules-in-force")).to_be_visible()
    expect(page.get_by_role("heading", name="Pricing rules", exact=True).first).to_be_visible()
    expect(page.locator("#rules-sha256")).to_have_text(before)
    expect(page.locator("#rules-valid")).to_be_visible()
    expect(page.locator("#rules-edit")).to_have_count(0)
    expect(page.locator("#rules-editor")).to_have_count(0)
    expect(page.locator("textarea")).to_have_count(0)
    expect(page.get_by_role("button", name="Check the draft")).to_have_count(0)
    screenshot(page, "pricing-rules-support")

    token = csrf_token(page, backoffice)
    draft = rules_file(backoffice).read_text(encoding="utf-8") + "\n# support was here\n"
    for endpoint in ("check", "save"):
        page.goto(backoffice.url(RULES_URL))
        url = backoffice.url(f"{RULES_URL}{endpoint}")
        fields = {"csrf_token": token, "draft": draft, "expected_sha256": before}
        with page.expect_response(url) as posted:
            page.evaluate(FORGE_FORM, [url, fields])
        assert posted.value.status == 403, endpoint
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
        expect(page.locator("body")).to_contain_text("edit_rules")
    assert hashlib.sha256(rules_file(backoffice).read_bytes()).hexdigest() == before


def test_accounting_gets_the_editor_and_checks_a_draft(page, backoffice, act_as, screenshot):
    act_as("accounting")
    page.goto(backoffice.url(RULES_URL))
    expect(page.locator("#rules-editor")).to_be_visible()
    draft = page.locator("#rules-draft")
    expect(draft).to_be_editable()
    assert draft.input_value() == rules_file(backoffice).read_text(encoding="utf-8")
    screenshot(page, "pricing-rules-accounting")

    page.get_by_role("button", name="Check the draft").click()
    page.wait_for_url(backoffice.url(f"{RULES_URL}check"))
    expect(page.locator("#rules-draft-valid")).to_be_visible()
    expect(page.locator("#rules-diff-none")).to_be_visible()
    expect(page.locator("#rules-preview tr[data-workspace=nordwind]")).to_be_visible()
    screenshot(page, "pricing-rules-accounting-check")


def test_admin_reads_the_rules_page_without_the_editor(page, backoffice, act_as):
    act_as("admin")
    response = page.goto(backoffice.url(RULES_URL))
    assert response.status == 200
    expect(page.locator("#rules-in-force")).to_be_visible()
    expect(page.locator("#rules-prices-team_licences tr.price-version").first).to_be_visible()
    expect(page.locator("#rules-editor")).to_have_count(0)
    expect(page.locator("textarea")).to_have_count(0)
