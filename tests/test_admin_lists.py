"""The list views: teams with bulk archiving, members, invoices with credit notes, audit."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event, func, select, text

from plugin.admin.filters import MentionsFilter
from plugin.models import AuditEntry, Invoice, Person, Team, WorkspaceAccess
from plugin.services import audit
from plugin.services.intervals import team_archived_at
from plugin.types import utcnow
from tests.helpers import QueryCounter


@pytest.fixture
def client(app, demo_cli):
    client = app.test_client()
    client.get("/demo/role/admin")
    return client


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]


def cells(page: str, column: str) -> list[str]:
    """The texts of a list column's cells (without the links some of them hold)."""
    found = re.findall(rf'<td class="col-{re.escape(column)}">(.*?)</td>', page, re.S)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in found]


def archived_keys(session) -> set[str]:
    return set(session.scalars(select(Team.key).where(team_archived_at(utcnow()))))


def test_the_team_list_shows_status_and_filters_by_it(client):
    page = client.get("/admin/billing_teams/").get_data(as_text=True)
    assert sorted(cells(page, "status")) == ["active"] * 7 + ["archived"] * 2
    assert "Archived now" in page
    listing = client.get("/admin/billing_teams/?search=legacy").get_data(as_text=True)
    assert cells(listing, "status") == ["archived"]


def test_archiving_ticked_teams_with_the_bulk_action(client, session):
    page = client.get("/admin/billing_teams/").get_data(as_text=True)
    ids = session.scalars(select(Team.id).where(Team.key.in_(["dispatch", "platform"]))).all()
    response = client.post(
        "/admin/billing_teams/action/",
        data={"csrf_token": csrf(page), "action": "archive", "rowid": [str(i) for i in ids]},
    )
    assert response.status_code == 302
    assert archived_keys(session) == {"legacy", "fleet", "dispatch", "platform"}
    assert (
        session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "archive_team")
        )
        == 2
    )


def test_archiving_everything_matching_the_filter_shows_the_count_first(client, session):
    confirm = client.get("/admin/billing_teams/all/archive?search=s")
    assert confirm.status_code == 200
    text = confirm.get_data(as_text=True)
    matching = int(re.search(r'id="matching-count">(\d+)<', text)[1])
    expected = session.scalar(
        select(func.count())
        .select_from(Team)
        .where(Team.key.contains("s") | Team.name.contains("s"))
    )
    assert matching == expected >= 3
    response = client.post(
        "/admin/billing_teams/all/archive?search=s", data={"csrf_token": csrf(text)}
    )
    assert response.status_code == 302
    assert (
        session.scalar(select(func.count()).select_from(Team).where(team_archived_at(utcnow())))
        >= expected
    )


def test_support_may_archive_but_accounting_may_not(client, session):
    token = csrf(client.get("/admin/billing_teams/").get_data(as_text=True))
    client.get("/demo/role/support")
    assert "Archive all" in client.get("/admin/billing_teams/").get_data(as_text=True)
    client.get("/demo/role/accounting")
    assert client.get("/admin/billing_teams/all/archive").status_code == 403
    page = client.get("/admin/billing_teams/").get_data(as_text=True)
    assert "Archive all" not in page
    team_id = session.scalar(select(Team.id).where(Team.key == "dispatch"))
    refused = client.post(
        "/admin/billing_teams/action/",
        data={"csrf_token": token, "action": "archive", "rowid": [str(team_id)]},
    )
    assert refused.status_code == 403
    assert "Not allowed" in refused.get_data(as_text=True)
    assert archived_keys(session) == {"legacy", "fleet"}


def test_members_filter_active_and_inactive(client):
    page = client.get("/admin/billing_members/?search=mueller").get_data(as_text=True)
    members = dict(zip(cells(page, "person.email"), cells(page, "member"), strict=True))
    assert members["gerda@mueller-soehne.example"] == "inactive"
    assert members["anna@mueller-soehne.example"] == "active"
    assert members["emil@mueller-soehne.example"] == "inactive"


def test_invoices_list_downloads_and_credits(app, client, demo_cli, session):
    assert demo_cli("close-month", "2026-10").exit_code == 0
    page = client.get("/admin/billing_invoices/").get_data(as_text=True)
    assert "70.21" in page
    assert ">PDF<" in page
    assert "Credit…" in page  # admin may issue credit notes: all but rules and mailbox
    client.get("/demo/role/support")
    assert "Credit…" not in client.get("/admin/billing_invoices/").get_data(as_text=True)
    client.get("/demo/role/accounting")
    number = session.scalar(select(Invoice.number).where(Invoice.workspace_key == "initech"))
    form = client.get(f"/admin/billing_invoices/credit/{number}").get_data(as_text=True)
    empty = client.post(
        f"/admin/billing_invoices/credit/{number}", data={"csrf_token": csrf(form), "reason": ""}
    )
    assert "This field is required." in empty.get_data(as_text=True)
    done = client.post(
        f"/admin/billing_invoices/credit/{number}",
        data={"csrf_token": csrf(form), "reason": "Wrong volume tier"},
    )
    assert done.status_code == 302
    listing = client.get("/admin/billing_invoices/").get_data(as_text=True)
    assert "credit note" in cells(listing, "kind")
    assert "credited" in cells(listing, "status")
    note = session.scalar(select(Invoice).where(Invoice.kind == "credit_note"))
    assert note.reason == "Wrong volume tier"


def test_audit_log_filters_by_action(client, demo_cli):
    assert demo_cli("archive-team", "acme", "sales").exit_code == 0
    page = client.get("/admin/billing_audit/?search=acme/sales").get_data(as_text=True)
    assert "archive_team" in page
    assert "acme/sales" in page


def mentions_url(app, text: str) -> str:
    """The audit list filtered by the "Mentions" filter."""
    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == "billing_audit")
    index = next(i for i, f in enumerate(view._filters) if isinstance(f, MentionsFilter))
    return f"/admin/billing_audit/?flt0_{index}={text}"


def test_the_audit_list_finds_the_purge_that_removed_somebody(app, client, demo_cli):
    assert demo_cli("purge-inactive", "acme", "--yes").exit_code == 0
    found = client.get(mentions_url(app, "Gerda@Mueller-Soehne.example")).get_data(as_text=True)
    assert cells(found, "action") == ["purge_inactive"]
    assert "gerda@mueller-soehne.example" in found
    missing = client.get(mentions_url(app, "nobody@example.com")).get_data(as_text=True)
    assert cells(missing, "action") == []


def test_the_audit_list_shows_the_start_of_a_long_value_and_its_page_all_of_it(client, session):
    """A purge of many people is one entry of megabytes: the list must not carry it all."""
    people = {f"person-{n:06d}@example.com": ["archived-team"] for n in range(20_000)}
    audit.record(session, "test", "purge_inactive", target="acme", before={"removed": people})
    session.commit()
    listing = client.get("/admin/billing_audit/?search=acme").get_data(as_text=True)
    assert "person-000001@example.com" in listing
    assert "person-019999@example.com" not in listing
    assert len(listing) < 100_000
    entry = session.scalar(select(AuditEntry.id).where(AuditEntry.action == "purge_inactive"))
    link = f"/admin/billing_audit/details/?id={entry}"
    assert link in listing
    assert "person-019999@example.com" in client.get(link).get_data(as_text=True)


def test_exporting_selected_workspaces_gives_a_zip_with_a_file_each(client, session):
    import io
    import zipfile

    from plugin.models import Workspace

    page = client.get("/admin/billing_workspaces/").get_data(as_text=True)
    ids = session.scalars(select(Workspace.id).where(Workspace.key.in_(["acme", "nordwind"])))
    chosen = client.post(
        "/admin/billing_workspaces/action/",
        data={"csrf_token": csrf(page), "action": "export", "rowid": [str(i) for i in ids]},
    )
    assert chosen.status_code == 302
    form = client.get(chosen.headers["Location"])
    assert "Export the licence holders of 2 workspace(s)" in form.get_data(as_text=True)
    download = client.get(chosen.headers["Location"] + "&month=2026-10&format=csv")
    assert download.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(download.get_data()))
    assert sorted(archive.namelist()) == [
        "acme-2026-10-user-licences.csv",
        "nordwind-2026-10-team-licences.csv",
    ]
    teams = archive.read("nordwind-2026-10-team-licences.csv").decode("utf-8-sig").splitlines()
    assert teams[0].startswith("team,members")
    assert len(teams) == 3


def test_exporting_everything_matching_the_filter(client):
    single = client.get(
        "/admin/billing_workspaces/export-selected?all=1&search=globex&month=2026-10&format=csv"
    )
    assert single.status_code == 200
    assert "globex-2026-10-user-licences.csv" in single.headers["Content-Disposition"]
    rows = single.get_data().decode("utf-8-sig").splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["karl@globex.example", "lena@globex.example"]


def test_support_may_not_export_selected_workspaces(client):
    client.get("/demo/role/support")
    assert client.get("/admin/billing_workspaces/export-selected?ids=1").status_code == 403


LIST_PAGES = (
    "/admin/billing_workspaces/",
    "/admin/billing_teams/",
    "/admin/billing_people/",
    "/admin/billing_members/",
    "/admin/billing_memberships/",
    "/admin/billing_invoices/",
    "/admin/billing_audit/",
)


def test_list_pages_take_a_fixed_number_of_queries_whatever_the_size(app, client, demo_cli):
    engine = app.extensions["sqlalchemy"].engine

    def queries() -> dict[str, int]:
        counts = {}
        for url in LIST_PAGES:
            with QueryCounter(engine) as counter:
                assert client.get(url).status_code == 200
            counts[url] = counter.count
        return counts

    assert demo_cli("close-month", "2026-10").exit_code == 0
    small = queries()
    assert demo_cli("generate", "--scale", "small").exit_code == 0
    assert demo_cli("close-month", "2026-09").exit_code == 0
    assert queries() == small
    assert max(small.values()) <= 8, small


def test_pages_load_nothing_from_other_hosts(client):
    for url in (*LIST_PAGES, "/admin/billing_workspaces/w/acme/", "/admin/"):
        page = client.get(url).get_data(as_text=True)
        assert re.findall(r'(?:src|href)="(?:https?:)?//[^"]*"', page) == [], url


def test_the_purge_action_previews_one_selected_workspace(client, session):
    from plugin.models import Workspace

    page = client.get("/admin/billing_workspaces/").get_data(as_text=True)
    ids = dict(session.execute(select(Workspace.key, Workspace.id)).all())
    one = client.post(
        "/admin/billing_workspaces/action/",
        data={"csrf_token": csrf(page), "action": "purge", "rowid": [str(ids["acme"])]},
    )
    assert one.headers["Location"].endswith("/admin/billing_workspaces/w/acme/purge")
    two = client.post(
        "/admin/billing_workspaces/action/",
        data={
            "csrf_token": csrf(page),
            "action": "purge",
            "rowid": [str(ids["acme"]), str(ids["globex"])],
        },
        follow_redirects=True,
    )
    assert "Select exactly one workspace" in two.get_data(as_text=True)


def list_total(client, url: str, engine) -> tuple[int, int]:
    """The total the list shows, and how many ``count(`` statements it took."""
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        page = client.get(url).get_data(as_text=True)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return int(re.search(r"List \((\d+)\)", page)[1]), sum("count(" in s for s in statements)


def test_the_whole_lists_totals_follow_every_change_and_are_counted_once(
    app, client, demo_cli, session
):
    """The member and team lists' totals are kept while no workspace changed, and
    counted anew after any change, the plugin's or the host's own SQL."""
    engine = app.extensions["sqlalchemy"].engine

    def rows(table) -> int:
        session.rollback()
        return session.scalar(select(func.count()).select_from(table))

    members, teams = "/admin/billing_members/", "/admin/billing_teams/"
    assert list_total(client, members, engine) == (rows(WorkspaceAccess), 1)
    assert list_total(client, members, engine) == (rows(WorkspaceAccess), 0)
    assert list_total(client, teams, engine) == (rows(Team), 1)
    assert list_total(client, teams, engine) == (rows(Team), 0)
    before = rows(WorkspaceAccess)

    assert demo_cli("invite", "acme", "new.member@example.com").exit_code == 0
    assert list_total(client, members, engine) == (before + 1, 1)
    assert demo_cli("create-team", "acme", "brand-new", "Brand new").exit_code == 0
    assert list_total(client, teams, engine) == (rows(Team), 1)

    session.execute(
        text(
            "DELETE FROM billing_workspace_access "
            "WHERE id = (SELECT min(id) FROM billing_workspace_access)"
        )
    )
    session.commit()
    assert list_total(client, members, engine) == (before, 1)
    assert list_total(client, members, engine) == (before, 0)

    # A search or filter counts what it matches, every time.
    searched = list_total(client, members + "?search=mueller", engine)
    assert searched[1] == 1
    assert searched[0] == session.scalar(
        select(func.count())
        .select_from(WorkspaceAccess)
        .join(Person, Person.id == WorkspaceAccess.person_id)
        .where(Person.email.contains("mueller"))
    )
    assert list_total(client, members + "?search=mueller", engine)[1] == 1
