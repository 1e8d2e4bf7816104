"""The workspace pages of the back-office: list with counts, the workspace page, downloads."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from plugin.models import AuditEntry, Invoice, Team, TeamArchivePeriod, Workspace
from plugin.services.history import licence_history, recent_months
from plugin.services.licences import count_licences
from plugin.types import utcnow
from tests.helpers import QueryCounter


@pytest.fixture
def client(app, demo_cli):
    client = app.test_client()
    client.get("/demo/role/admin")
    return client


def as_role(client, role: str):
    assert client.get(f"/demo/role/{role}").status_code == 302
    return client


def test_the_workspace_list_shows_counts_with_a_fixed_number_of_queries(app, client):
    engine = app.extensions["sqlalchemy"].engine
    with QueryCounter(engine) as counter:
        page = client.get("/admin/billing_workspaces/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Müller &amp; Söhne GmbH" in text
    assert "User licences" in text
    assert "individual contract" in text
    # Initech bills one team this month: singular, with its unit.
    assert re.search(r">\s*1 team\s*<", text)
    assert "1 teams" not in text
    four_workspaces = counter.count
    app.test_cli_runner().invoke(args=["billing", "generate", "--scale", "tiny"])
    with QueryCounter(engine) as counter:
        assert client.get("/admin/billing_workspaces/").status_code == 200
    assert counter.count == four_workspaces <= 8


def test_the_workspace_page_has_the_products_sections(client):
    page = client.get("/admin/billing_workspaces/w/acme/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for section in (
        "Settings › General",
        "Settings › Teams",
        "Workspace members",
        "Remove inactive workspace members",
        "licence-chart",
    ):
        assert section in text
    assert '<dd class="col-sm-9" id="count-members">7</dd>' in text
    # The creation date as in the billing time zone (00:00 Berlin is 22:00 UTC the day before).
    assert "by creation date, 2022-05-10" in text
    assert "<svg" in text
    assert "cdn" not in text.lower()


def test_an_unknown_workspace_is_a_404(client):
    assert client.get("/admin/billing_workspaces/w/nope/").status_code == 404


def test_the_licence_export_downloads_for_a_chosen_month(client):
    response = client.get("/admin/billing_workspaces/w/acme/export?month=2026-10&format=csv")
    assert response.status_code == 200
    assert 'filename="acme-2026-10-user-licences.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert rows[0][:3] == ["email", "name", "teams"]
    assert [row[0] for row in rows[1:]] == [
        "anna@mueller-soehne.example",
        "chris@consulting.example",
        "dora@mueller-soehne.example",
        "emil@mueller-soehne.example",
    ]
    bad = client.get("/admin/billing_workspaces/w/acme/export?month=2026-13&format=csv")
    assert bad.status_code == 400


def test_support_may_not_export(client):
    as_role(client, "support")
    assert client.get("/admin/billing_workspaces/w/acme/export?month=2026-10").status_code == 403


def test_archiving_a_team_from_its_page_is_recorded(app, client, session):
    page = client.get("/admin/billing_workspaces/w/nordwind/").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    response = client.post(
        "/admin/billing_workspaces/w/nordwind/teams/dispatch",
        data={"csrf_token": token, "archived": "yes"},
    )
    assert response.status_code == 302
    team_id = session.scalar(select(Team.id).where(Team.key == "dispatch"))
    assert (
        session.scalar(
            select(TeamArchivePeriod.unarchived_at).where(TeamArchivePeriod.team_id == team_id)
        )
        is None
    )
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "archive_team"))
    assert entry.target == "nordwind/dispatch"
    assert entry.actor == "demo-admin"


def test_a_post_without_csrf_token_changes_nothing(client, session):
    response = client.post(
        "/admin/billing_workspaces/w/nordwind/teams/dispatch", data={"archived": "yes"}
    )
    assert response.status_code == 400
    assert (
        session.scalars(select(AuditEntry).where(AuditEntry.action == "archive_team")).all() == []
    )


def test_the_invoice_pdf_downloads_byte_identical(app, client, demo_cli, session):
    assert demo_cli("close-month", "2026-10").exit_code == 0
    assert demo_cli("render-pending", "--workers", "1").exit_code == 0
    invoice = session.scalar(select(Invoice).where(Invoice.workspace_key == "nordwind"))
    response = client.get(f"/admin/billing_invoices/pdf/{invoice.number}")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert hashlib.sha256(response.get_data()).hexdigest() == invoice.pdf_sha256
    page = client.get("/admin/billing_workspaces/w/nordwind/").get_data(as_text=True)
    assert invoice.number in page
    assert client.get("/admin/billing_invoices/pdf/1999-00001").status_code == 404


def csrf_token(page: str) -> str:
    return page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]


def test_the_purge_previews_then_removes_only_who_is_still_inactive(client, session, demo_cli):
    preview = client.get("/admin/billing_workspaces/w/acme/purge")
    assert preview.status_code == 200
    text = preview.get_data(as_text=True)
    removed = text.split('id="purge-removed"')[1].split("</table>")[0]
    kept = text.split('id="purge-kept"')[1].split("</table>")[0]
    for email in ("gerda@", "bob@", "emil@"):
        assert email in removed
    for email in ("frank@", "anna@", "chris@", "dora@"):
        assert email in kept
    assert "owner" in kept
    # Between preview and confirmation, Emil's team is unarchived: he is kept.
    assert demo_cli("unarchive-team", "acme", "legacy").exit_code == 0
    people = [part.split('"')[0] for part in text.split('name="person" value="')[1:]]
    response = client.post(
        "/admin/billing_workspaces/w/acme/purge",
        data={"csrf_token": csrf_token(text), "person": people},
    )
    assert response.status_code == 302
    page = client.get("/admin/billing_workspaces/w/acme/").get_data(as_text=True)
    assert "Removed 2 inactive members." in page
    assert "emil@mueller-soehne.example" in page
    assert '<strong id="current-users">5</strong>' in page


def test_the_purge_is_for_admins_only(client):
    as_role(client, "support")
    assert client.get("/admin/billing_workspaces/w/acme/purge").status_code == 403
    as_role(client, "accounting")
    assert client.post("/admin/billing_workspaces/w/acme/purge").status_code == 403


# The licence chart -------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "now", "expected"),
    [
        # Bob left sales on 30 September (still billed then); Altprojekte was
        # archived on 15 October (Emil billed in October); November so far.
        ("acme", datetime(2026, 11, 25, 12, tzinfo=UTC), [5] * 10 + [4, 3]),
        # Fuhrpark archived on 10 November is billed that month; Finanzen from 3 November.
        ("nordwind", datetime(2026, 11, 25, 12, tzinfo=UTC), [2] * 11 + [3]),
        # Fuhrpark archived for all of January to May 2025: not billed then.
        ("nordwind", datetime(2025, 7, 15, 12, tzinfo=UTC), [2] * 5 + [1] * 5 + [2] * 2),
    ],
)
def test_the_chart_counts_the_licences_of_the_last_twelve_months(
    app, session, demo_cli, key, now, expected
):
    rules = app.extensions["billing"].rules(app)
    workspace = session.scalar(select(Workspace).where(Workspace.key == key))
    history = licence_history(session, rules, workspace, now)
    assert [str(month) for month, _ in history] == [
        str(month) for month in recent_months(now, rules)
    ]
    assert str(history[-1][0]) == f"{now:%Y-%m}"
    assert [count for _, count in history] == expected


def test_the_chart_is_one_query_that_agrees_with_the_monthly_counts(app, session, demo_cli):
    """On generated data of both variants: each month's figure is what the invoices'
    own count gives for that month, and all twelve come from one statement."""
    assert demo_cli("generate", "--scale", "tiny").exit_code == 0
    rules = app.extensions["billing"].rules(app)
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    workspaces = session.scalars(select(Workspace).order_by(Workspace.key)).all()
    variants = set()
    for workspace in workspaces:
        with QueryCounter(session.get_bind()) as counter:
            history = licence_history(session, rules, workspace, now)
        assert counter.count == 1
        variant = rules.variant_of(workspace)[0]
        variants.add(variant)
        expected = []
        for month in recent_months(now, rules):
            start, end = month.bounds(rules.zoneinfo)
            teams, users = count_licences(session, start, min(end, now), [workspace.id])
            billed = teams if variant == "team_licences" else users
            expected.append((month, billed.get(workspace.id, 0)))
        assert history == expected, workspace.key
    assert variants == {"team_licences", "user_licences"}
    assert any(count for ws in workspaces for _, count in licence_history(session, rules, ws, now))


def test_the_workspace_page_draws_that_history(app, client, session):
    rules = app.extensions["billing"].rules(app)
    workspace = session.scalar(select(Workspace).where(Workspace.key == "nordwind"))
    text = client.get("/admin/billing_workspaces/w/nordwind/").get_data(as_text=True)
    chart = text.split('id="licence-chart"')[1].split("</svg>")[0]
    drawn = re.findall(r"<title>(\d{4}-\d{2}): (\d+)</title>", chart)
    history = licence_history(session, rules, workspace, utcnow())
    assert drawn == [(str(month), str(count)) for month, count in history]
    assert len(drawn) == 12
