"""Support manages a workspace's members in the browser, and opens a person's page."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def users(count: int) -> str:
    return f"{count} user" if count == 1 else f"{count} users"


def test_support_invites_adds_to_a_team_takes_out_and_removes(
    page, backoffice, act_as, screenshot
):
    act_as("support")
    page.goto(backoffice.url("/admin/billing_workspaces/"))
    page.get_by_role("link", name="Globex Corporation", exact=True).click()
    page.wait_for_url(backoffice.url("/admin/billing_workspaces/w/globex/"))
    members = page.locator("#count-members")
    licences = page.locator("#count-licences")
    members_before = int(members.inner_text())
    licences_before = int(licences.inner_text().split()[0])

    # A refusal is shown next to the field, and nothing is invited.
    page.locator("#invite-email").fill("not an address")
    page.locator("#invite-button").click()
    expect(page.locator("#invite-email-error")).to_be_visible()
    expect(page.locator("#invite-email")).to_have_value("not an address")
    expect(members).to_have_text(str(members_before))

    page.locator("#invite-email").fill("Pia@Globex.example")
    page.locator("#invite-name").fill("Pia Lind")
    page.locator("#invite-button").click()
    page.wait_for_url(re.compile(r".*/w/globex/#members$"))
    pia = page.locator('#member-table tr[data-member="pia@globex.example"]')
    expect(pia).to_contain_text("Pia Lind")
    expect(pia).to_contain_text("in no team")
    expect(members).to_have_text(str(members_before + 1))
    # Access alone bills nothing.
    expect(licences).to_have_text(users(licences_before))

    page.locator("#add-to-team-email").fill("pia@globex.example")
    page.locator("#add-to-team-team").select_option(label="Research & Development")
    page.locator("#add-to-team-button").click()
    pia = page.locator('#member-table tr[data-member="pia@globex.example"]')
    expect(pia.locator('[data-team="research"]')).to_contain_text("Research & Development")
    # In an active team this month: billed this month.
    expect(licences).to_have_text(users(licences_before + 1))
    screenshot(page, "workspace-page-globex-members")

    pia.get_by_role("button", name="take out").click()
    pia = page.locator('#member-table tr[data-member="pia@globex.example"]')
    expect(pia).to_contain_text("in no team")
    # Taken out today, still billed for this month.
    expect(licences).to_have_text(users(licences_before + 1))

    pia.get_by_role("link", name="Remove…").click()
    expect(page.locator("#remove-question")).to_contain_text("Their access to globex ends now")
    page.locator("#confirm-remove").click()
    page.wait_for_url(re.compile(r".*/w/globex/#members$"))
    expect(page.locator('#member-table tr[data-member="pia@globex.example"]')).to_have_count(0)
    expect(members).to_have_text(str(members_before))

    # The owner cannot be removed from here: no button.
    owner = page.locator('#member-table tr[data-member="karl@globex.example"]')
    expect(owner).to_contain_text("owner")
    expect(owner.get_by_role("link", name="Remove…")).to_have_count(0)


def test_the_person_page_from_the_member_list(page, backoffice, act_as, screenshot):
    backoffice.cli("close-month", "2026-10")
    act_as("support")
    page.goto(backoffice.url("/admin/billing_members/?search=CHRIS"))
    page.get_by_role("link", name="chris@consulting.example").first.click()
    page.wait_for_url(re.compile(r".*/admin/billing_people/p/\d+/$"))
    expect(page.get_by_role("heading", name=re.compile("Chris Olsen"))).to_be_visible()
    workspaces = page.locator("#access tbody tr")
    expect(workspaces).to_have_count(2)
    expect(page.locator('#access tr[data-workspace="acme"]')).to_contain_text("member")
    expect(page.locator('#memberships tr[data-team="nordwind/dispatch"]')).to_contain_text(
        "Disposition"
    )
    october = page.locator('#billed tr[data-month="2026-10"]')
    expect(october).to_have_count(2)
    expect(october.filter(has_text="Müller & Söhne GmbH")).to_contain_text("a user licence")
    expect(october.filter(has_text="Nordwind Logistik AG")).to_contain_text(
        "a member of a billed team"
    )
    screenshot(page, "person-page-chris")
    page.locator("#access").get_by_role("link", name="Nordwind Logistik AG").click()
    page.wait_for_url(backoffice.url("/admin/billing_workspaces/w/nordwind/"))
    expect(page.locator('#member-table tr[data-member="chris@consulting.example"]')).to_be_visible()
