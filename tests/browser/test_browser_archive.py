"""Support archives a team on its workspace page: billed this month, no more from next month."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from plugin.extension import billing
from plugin.models import Workspace
from plugin.services.licences import count_licences
from plugin.services.periods import Month
from plugin.types import utcnow


def billed_teams(backoffice, key: str) -> tuple[int, int]:
    """Teams of workspace ``key`` billed this month (so far) and next month (whole month)."""
    with backoffice.app.app_context():
        ext = billing()
        session, tz = ext.session, ext.rules().zoneinfo
        workspace_id = session.scalar(select(Workspace.id).where(Workspace.key == key))
        now = utcnow()
        this_start, _ = Month.of(now, tz).bounds(tz)
        next_start, next_end = Month.of(now, tz).next().bounds(tz)
        this_month, _ = count_licences(session, this_start, now, [workspace_id])
        next_month, _ = count_licences(session, next_start, next_end, [workspace_id])
        session.remove()
    return this_month.get(workspace_id, 0), next_month.get(workspace_id, 0)


def test_support_archives_a_team_that_is_then_billed_no_more_next_month(
    page, backoffice, act_as, screenshot
):
    this_before, next_before = billed_teams(backoffice, "nordwind")
    act_as("support")
    page.goto(backoffice.url("/admin/billing_workspaces/"))
    page.get_by_role("link", name="Nordwind Logistik AG", exact=True).click()
    page.wait_for_url(backoffice.url("/admin/billing_workspaces/w/nordwind/"))
    expect(page.locator("#general")).to_contain_text("Team licences")
    licences = page.locator("#count-licences")
    expect(licences).to_have_text(f"{this_before} teams")
    # Support may archive, but neither export nor purge.
    expect(page.locator("#export-form")).to_have_count(0)
    expect(page.locator("#purge-button")).to_have_count(0)

    dispatch = page.locator("#teams tr[data-team=dispatch]")
    expect(dispatch).to_contain_text("Disposition")
    expect(dispatch).to_contain_text("active")
    dispatch.get_by_role("link", name="Archive…", exact=True).click()
    # The confirmation step, like the list's.
    expect(page.locator("#team-question")).to_contain_text("still billed this month")
    page.get_by_role("button", name="Archive dispatch", exact=True).click()

    page.wait_for_url(backoffice.url("/admin/billing_workspaces/w/nordwind/"))
    dispatch = page.locator("#teams tr[data-team=dispatch]")
    expect(dispatch.locator("td").nth(2)).to_have_text("archived")
    expect(dispatch.get_by_role("link", name="Unarchive…", exact=True)).to_be_visible()
    expect(page.locator(".alert")).to_contain_text(
        "Archived dispatch: it is billed for this month, no more from the next."
    )
    screenshot(page, "workspace-page-nordwind")

    # Billed for this month still (it was active in it), no more from next month on.
    expect(licences).to_have_text(f"{this_before} teams")
    this_after, next_after = billed_teams(backoffice, "nordwind")
    assert this_after == this_before
    assert next_after == next_before - 1

    page.goto(backoffice.url("/admin/billing_audit/"))
    expect(page.locator("table.model-list")).to_contain_text("archive_team")
    expect(page.locator("table.model-list")).to_contain_text("demo-support")


def test_support_archives_a_ticked_team_with_the_bulk_action(page, backoffice, act_as, screenshot):
    _, next_before = billed_teams(backoffice, "nordwind")
    act_as("support")
    page.goto(backoffice.url("/admin/billing_teams/"))
    page.locator("input[name=search]").fill("finance")
    # The list's action menu calls Flask-Admin's actions.js, loaded at the end of the page:
    # wait for the whole page, not only its rows, before using it.
    with page.expect_navigation(wait_until="load"):
        page.keyboard.press("Enter")
    rows = page.locator("table.model-list tbody tr")
    expect(rows).to_have_count(1)
    row = rows.filter(has_text="nordwind")
    expect(row).to_contain_text("Finanzen")
    expect(row).to_contain_text("active")
    row.locator("input.action-checkbox").check()

    questions = []

    def accept(dialog) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    actions = page.locator(".nav-item.dropdown, li.dropdown").filter(has_text="With selected")
    actions.locator(".dropdown-toggle").click()
    actions.locator(".dropdown-menu").get_by_text("Archive", exact=True).click()
    expect(page.locator(".alert")).to_contain_text("Archived 1 team(s); 0 already were.")
    assert len(questions) == 1
    assert "no more from the next" in questions[0]
    expect(page.locator("table.model-list tbody tr", has_text="Finanzen")).to_contain_text(
        "archived"
    )
    screenshot(page, "team-list-after-bulk-archive")
    _, next_after = billed_teams(backoffice, "nordwind")
    assert next_after == next_before - 1


def test_support_archives_every_team_matching_a_search(page, backoffice, act_as):
    act_as("support")
    page.goto(backoffice.url("/admin/billing_teams/?search=globex"))
    expect(page.locator("table.model-list tbody tr")).to_have_count(2)
    page.locator("#all-matching").click()
    page.get_by_role("link", name="Archive all 2", exact=True).click()
    expect(page.locator("#matching-count")).to_have_text("2")
    page.locator("#confirm-all").click()
    expect(page.locator(".alert")).to_contain_text("Archived 2 team(s); 0 already were.")
    assert "search=globex" in page.url
    _, next_month = billed_teams(backoffice, "globex")
    assert next_month == 0
