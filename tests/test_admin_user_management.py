"""User management in the back-office: lists, the person page and the workspace page's forms."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from plugin.models import AuditEntry, Person, Team, TeamMembership, Workspace, WorkspaceAccess
from plugin.services.intervals import open_at
from plugin.types import utcnow
from tests.helpers import QueryCounter, snapshot
from tests.test_admin_lists import cells, csrf


@pytest.fixture
def client(app, demo_cli):
    client = app.test_client()
    client.get("/demo/role/support")
    return client


def filter_url(app, endpoint: str, name: str, operation: str, value: str) -> str:
    """The list filtered by the filter called ``name`` with ``operation``."""
    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == endpoint)
    with app.test_request_context():  # filter names and operations are lazy (gettext)
        index = next(
            i
            for i, f in enumerate(view._filters)
            if str(f.name) == name and str(f.operation()) == operation
        )
    return f"/admin/{endpoint}/?flt0_{index}={value}"


def person_id(session, email: str) -> int:
    return session.scalar(select(Person.id).where(Person.email == email))


def page(client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.get_data(as_text=True)


# Lists ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "column", "expected"),
    [
        ("/admin/billing_people/?search=MÜLLER", "email", ["frank@mueller-soehne.example"]),
        ("/admin/billing_people/?search=müller", "email", ["frank@mueller-soehne.example"]),
        ("/admin/billing_people/?search=SCHÄFER", "email", ["anna@mueller-soehne.example"]),
        ("/admin/billing_members/?search=WEIß", "person.email", ["dora@mueller-soehne.example"]),
        ("/admin/billing_workspaces/?search=SÖHNE", "key", ["acme"]),
        ("/admin/billing_teams/?search=KUNDENDIENST", "key", ["support"]),
        ("/admin/billing_memberships/?search=FISCHER", "person.email", ["lena@globex.example"] * 2),
        # LIKE's wildcards are plain characters in a search.
        ("/admin/billing_people/?search=%25", "email", []),
        ("/admin/billing_people/?search=_", "email", []),
    ],
)
def test_search_finds_a_name_in_any_case(client, url, column, expected):
    assert sorted(cells(page(client, url), column)) == expected


def test_a_contains_filter_finds_a_name_in_any_case(app, client):
    url = filter_url(app, "billing_people", "Name", "contains", "ÖLSEN".replace("Ö", "O"))
    assert cells(page(client, url), "email") == ["chris@consulting.example"]
    url = filter_url(app, "billing_people", "Name", "contains", "SCHÄF")
    assert cells(page(client, url), "email") == ["anna@mueller-soehne.example"]


def test_memberships_show_the_workspace_and_filter_by_workspace_and_team(app, client):
    listing = page(client, "/admin/billing_memberships/")
    rows = list(
        zip(cells(listing, "team.workspace.key"), cells(listing, "team.name"), strict=True)
    )
    assert ("acme", "Vertrieb") in rows
    assert ("nordwind", "Disposition") in rows
    by_workspace = page(
        client, filter_url(app, "billing_memberships", "Workspace", "equals", "globex")
    )
    assert set(cells(by_workspace, "team.workspace.key")) == {"globex"}
    assert sorted(cells(by_workspace, "person.email")) == [
        "karl@globex.example",
        "lena@globex.example",
        "lena@globex.example",
        "mo@globex.example",
    ]
    by_team = page(client, filter_url(app, "billing_memberships", "Team key", "equals", "support"))
    assert sorted(cells(by_team, "person.email")) == [
        "anna@mueller-soehne.example",
        "dora@mueller-soehne.example",
    ]
    now = page(client, filter_url(app, "billing_memberships", "In the team now", "is", "no"))
    assert sorted(cells(now, "person.email")) == [
        "bob@mueller-soehne.example",
        "mo@globex.example",
    ]


def test_the_variant_filter_follows_contracts_and_the_creation_date(app, client):
    teams = page(client, filter_url(app, "billing_workspaces", "Variant", "is", "team_licences"))
    users = page(client, filter_url(app, "billing_workspaces", "Variant", "is", "user_licences"))
    shown_teams, shown_users = set(cells(teams, "key")), set(cells(users, "key"))
    assert shown_teams | shown_users == {"acme", "nordwind", "globex", "initech"}
    assert not shown_teams & shown_users
    assert "nordwind" in shown_teams
    assert "acme" in shown_users
    # Whatever the list computes for each row, the filter agrees with it.
    listing = page(client, "/admin/billing_workspaces/")
    for key, variant in zip(cells(listing, "key"), cells(listing, "variant"), strict=True):
        assert (key in shown_teams) == variant.startswith("Team licences"), key
    junk = page(client, filter_url(app, "billing_workspaces", "Variant", "is", "free"))
    assert cells(junk, "key") == []


def test_invoice_filters_offer_choices(app, client, demo_cli):
    assert demo_cli("close-month", "2026-10").exit_code == 0
    listing = page(client, "/admin/billing_invoices/")
    # The choices are the months invoiced, the kinds, the variants and the statuses.
    assert '"2026-10"' in listing
    for value in ("credit note", "Team licences", "credited"):
        assert value in listing
    october = page(client, filter_url(app, "billing_invoices", "Period", "is", "2026-10"))
    assert len(cells(october, "number")) == 4
    september = filter_url(app, "billing_invoices", "Period", "is", "2026-09")
    assert cells(page(client, september), "number") == []
    team = page(client, filter_url(app, "billing_invoices", "Variant", "is", "team_licences"))
    user = page(client, filter_url(app, "billing_invoices", "Variant", "is", "user_licences"))
    assert "nordwind" in cells(team, "workspace_key")
    assert "acme" in cells(user, "workspace_key")
    assert len(cells(team, "number")) + len(cells(user, "number")) == 4
    credited = page(client, filter_url(app, "billing_invoices", "Status", "is", "credited"))
    assert cells(credited, "number") == []
    issued = page(client, filter_url(app, "billing_invoices", "Status", "is", "issued"))
    assert len(cells(issued, "number")) == 4


def test_lists_that_show_a_person_link_to_their_page(client, session):
    anna = person_id(session, "anna@mueller-soehne.example")
    link = f'href="/admin/billing_people/p/{anna}/"'
    for url in (
        "/admin/billing_people/",
        "/admin/billing_members/",
        "/admin/billing_memberships/",
        "/admin/billing_workspaces/w/acme/",
    ):
        assert link in page(client, url), url


# The person page ------------------------------------------------------------------------


def test_the_person_page_shows_workspaces_teams_billed_months_and_audit(client, demo_cli, session):
    assert demo_cli("close-month", "2026-10").exit_code == 0
    chris = person_id(session, "chris@consulting.example")
    text = page(client, f"/admin/billing_people/p/{chris}/")
    access = re.findall(r'<tr data-workspace="([^"]+)">', text)
    assert access == ["acme", "nordwind"]
    teams = re.findall(r'<tr data-team="([^"]+)">', text)
    assert teams == ["acme/sales", "nordwind/dispatch"]
    # Billed in October 2026: a user licence in acme, a member of a billed team in nordwind.
    billed = re.findall(
        r'<tr data-month="2026-10"><td>2026-10</td><td>.*?</td>\s*'
        r"<td>([^<]+)</td>\s*<td>([^<]+)</td>\s*<td>([^<]*)</td>",
        text,
        re.S,
    )
    assert sorted((kind, teams) for _, kind, teams in billed) == [
        ("a member of a billed team", "Disposition"),
        ("a user licence", "Vertrieb"),
    ]
    assert "Not on any invoice yet" not in text


def test_the_person_page_lists_the_audit_entries_that_mention_them(client, session):
    token = csrf(page(client, "/admin/billing_workspaces/w/globex/"))
    client.post(
        "/admin/billing_workspaces/w/globex/manage/add_to_team",
        data={"csrf_token": token, "email": "KARL@globex.example", "team": "ops"},
    )
    karl = person_id(session, "karl@globex.example")
    section = page(client, f"/admin/billing_people/p/{karl}/").split('id="person-audit"')[1]
    assert "add_to_team" in section
    assert "Not on any invoice yet" in page(client, f"/admin/billing_people/p/{karl}/")


def test_the_person_page_takes_a_fixed_number_of_queries(app, client, demo_cli, session):
    engine = app.extensions["sqlalchemy"].engine
    assert demo_cli("close-month", "2026-10").exit_code == 0

    def queries(email: str) -> int:
        url = f"/admin/billing_people/p/{person_id(session, email)}/"
        with QueryCounter(engine) as counter:
            page(client, url)
        return counter.count

    assert queries("chris@consulting.example") == queries("otto@initech.example") <= 8


def test_an_unknown_person_is_a_404(client):
    assert client.get("/admin/billing_people/p/999999/").status_code == 404


# The workspace page: members and their teams -----------------------------------------


def members_now(session, key: str) -> set[str]:
    session.expire_all()
    return set(
        session.scalars(
            select(Person.email)
            .join(WorkspaceAccess, WorkspaceAccess.person_id == Person.id)
            .join(Workspace, Workspace.id == WorkspaceAccess.workspace_id)
            .where(
                Workspace.key == key,
                open_at(WorkspaceAccess.granted_at, WorkspaceAccess.revoked_at, utcnow()),
            )
        )
    )


def teams_now(session, email: str) -> set[str]:
    session.expire_all()
    return set(
        session.scalars(
            select(Team.key)
            .join(TeamMembership, TeamMembership.team_id == Team.id)
            .join(Person, Person.id == TeamMembership.person_id)
            .where(
                Person.email == email,
                open_at(TeamMembership.joined_at, TeamMembership.left_at, utcnow()),
            )
        )
    )


def test_the_workspace_page_lists_members_with_their_teams_and_since_when(client, session):
    text = page(client, "/admin/billing_workspaces/w/acme/")
    table = text.split('id="member-table"')[1].split("</table>")[0]
    rows = dict(re.findall(r'<tr data-member="([^"]+)">(.*?)</tr>', table, re.S))
    assert set(rows) == members_now(session, "acme")
    assert len(rows) == 7  # the page's "Workspace members" count
    assert "owner" in rows["frank@mueller-soehne.example"]
    assert re.findall(r'data-team="([^"]+)"', rows["anna@mueller-soehne.example"]) == [
        "support",
        "sales",
    ]
    assert "2022-05-12" in rows["anna@mueller-soehne.example"]  # in Vertrieb since
    assert "in no team" in rows["gerda@mueller-soehne.example"]


def test_invite_add_to_team_take_out_and_remove(client, session):
    token = csrf(page(client, "/admin/billing_workspaces/w/globex/"))
    invited = client.post(
        "/admin/billing_workspaces/w/globex/manage/invite",
        data={"csrf_token": token, "email": "Pia@Globex.example", "name": "Pia Lind"},
    )
    assert invited.status_code == 302
    assert "pia@globex.example" in members_now(session, "globex")
    assert teams_now(session, "pia@globex.example") == set()
    added = client.post(
        "/admin/billing_workspaces/w/globex/manage/add_to_team",
        data={"csrf_token": token, "email": "pia@globex.example", "team": "research"},
        follow_redirects=True,
    )
    assert added.status_code == 200
    assert teams_now(session, "pia@globex.example") == {"research"}
    client.post(
        "/admin/billing_workspaces/w/globex/manage/remove_from_team",
        data={"csrf_token": token, "email": "pia@globex.example", "team": "research"},
    )
    assert teams_now(session, "pia@globex.example") == set()
    assert "pia@globex.example" in members_now(session, "globex")
    confirm = page(
        client, "/admin/billing_workspaces/w/globex/manage/remove_member?email=pia@globex.example"
    )
    assert "Their access to globex ends now" in confirm
    assert "pia@globex.example" in members_now(session, "globex")  # the question changes nothing
    removed = client.post(
        "/admin/billing_workspaces/w/globex/manage/remove_member",
        data={"csrf_token": csrf(confirm), "email": "pia@globex.example"},
    )
    assert removed.status_code == 302
    assert "pia@globex.example" not in members_now(session, "globex")
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.actor == "demo-support").order_by(AuditEntry.id)
    ).all()
    assert actions == ["invite_member", "add_to_team", "remove_from_team", "remove_member"]


def test_team_create_and_rename_from_the_workspace_page(client, session):
    token = csrf(page(client, "/admin/billing_workspaces/w/globex/"))
    created = client.post(
        "/admin/billing_workspaces/w/globex/manage/create_team",
        data={"csrf_token": token, "key": "legal", "name": "Legal"},
        follow_redirects=True,
    )
    assert "Legal" in created.get_data(as_text=True)
    client.post(
        "/admin/billing_workspaces/w/globex/manage/rename_team",
        data={"csrf_token": token, "team": "legal", "name": "Legal & Compliance"},
    )
    session.expire_all()
    names = dict(
        session.execute(
            select(Team.key, Team.name).join(Workspace).where(Workspace.key == "globex")
        ).all()
    )
    assert names["legal"] == "Legal & Compliance"
    client.post(
        "/admin/billing_workspaces/w/globex/manage/rename_workspace",
        data={"csrf_token": token, "name": "Globex Corp."},
    )
    session.expire_all()
    assert session.scalar(select(Workspace.name).where(Workspace.key == "globex")) == "Globex Corp."


def test_creating_a_workspace_from_the_list(client, session):
    form = page(client, "/admin/billing_workspaces/new-workspace")
    done = client.post(
        "/admin/billing_workspaces/new-workspace",
        data={"csrf_token": csrf(form), "key": "hooli", "name": "Hooli"},
    )
    assert done.status_code == 302
    assert done.headers["Location"].endswith("/admin/billing_workspaces/w/hooli/")
    assert session.scalar(select(Workspace.name).where(Workspace.key == "hooli")) == "Hooli"
    taken = client.post(
        "/admin/billing_workspaces/new-workspace",
        data={"csrf_token": csrf(form), "key": "hooli", "name": "Hooli again"},
    )
    assert taken.status_code == 422
    assert 'id="new-workspace-key-error"' in taken.get_data(as_text=True)


@pytest.mark.parametrize(
    ("action", "data", "field"),
    [
        ("invite", {"email": "not an address", "name": ""}, "invite-email"),
        ("invite", {"email": "", "name": "Nobody"}, "invite-email"),
        ("add_to_team", {"email": "karl@globex.example", "team": "nope"}, "add-to-team-team"),
        ("add_to_team", {"email": "nobody@globex.example", "team": "ops"}, "add-to-team-email"),
        ("create_team", {"key": "research", "name": "Research again"}, "create-team-key"),
        ("create_team", {"key": "Bad Key!", "name": "Bad"}, "create-team-key"),
        ("create_team", {"key": "ok-key", "name": ""}, "create-team-name"),
        ("rename_team", {"team": "research", "name": ""}, "rename-research"),
        ("rename_workspace", {"name": ""}, "rename-workspace-name"),
    ],
)
def test_a_refused_form_shows_the_reason_next_to_the_field_and_changes_nothing(
    client, session, action, data, field
):
    token = csrf(page(client, "/admin/billing_workspaces/w/globex/"))
    before = snapshot(session)
    response = client.post(
        f"/admin/billing_workspaces/w/globex/manage/{action}", data={"csrf_token": token, **data}
    )
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    error = re.search(rf'id="{field}-error">([^<]+)<', text)
    assert error, text[text.find("is-invalid") - 400 : text.find("is-invalid") + 400]
    assert error[1].strip()
    session.expire_all()
    assert snapshot(session) == before


def test_removing_an_owner_is_refused_with_the_reason(client, session):
    owner = "frank@mueller-soehne.example"
    confirm = page(client, f"/admin/billing_workspaces/w/acme/manage/remove_member?email={owner}")
    before = snapshot(session)
    refused = client.post(
        "/admin/billing_workspaces/w/acme/manage/remove_member",
        data={"csrf_token": csrf(confirm), "email": owner},
    )
    assert refused.status_code == 422
    assert 'id="remove_member-error"' in refused.get_data(as_text=True)
    session.expire_all()
    assert snapshot(session) == before


def test_archiving_from_the_workspace_page_is_confirmed_first(client, session):
    question = page(client, "/admin/billing_workspaces/w/nordwind/teams/dispatch?archived=yes")
    assert (
        "Archive the team Disposition (dispatch) of the workspace Nordwind Logistik AG "
        "(nordwind)? It is still billed this month"
    ) in question
    archived = select(AuditEntry).where(AuditEntry.action == "archive_team")
    assert session.scalars(archived).all() == []
    client.post(
        "/admin/billing_workspaces/w/nordwind/teams/dispatch",
        data={"csrf_token": csrf(question), "archived": "yes"},
    )
    assert len(session.scalars(archived).all()) == 1


def test_without_the_token_or_the_permission_nothing_changes(client, session):
    before = snapshot(session)
    stale = client.post(
        "/admin/billing_workspaces/w/globex/manage/invite", data={"email": "x@globex.example"}
    )
    assert stale.status_code == 400
    token = csrf(page(client, "/admin/billing_workspaces/w/globex/"))
    client.get("/demo/role/accounting")
    assert "invite-form" not in page(client, "/admin/billing_workspaces/w/globex/")
    forbidden = client.post(
        "/admin/billing_workspaces/w/globex/manage/invite",
        data={"csrf_token": token, "email": "x@globex.example"},
    )
    assert forbidden.status_code == 403
    assert client.post("/admin/billing_workspaces/w/globex/manage/nope").status_code == 404
    session.expire_all()
    assert snapshot(session) == before


# The person page: name and e-mail address --------------------------------------------


def test_renaming_a_person_and_changing_their_address(client, session):
    anna = person_id(session, "anna@mueller-soehne.example")
    form = page(client, f"/admin/billing_people/p/{anna}/")
    renamed = client.post(
        f"/admin/billing_people/p/{anna}/rename_person",
        data={"csrf_token": csrf(form), "name": "Anna Schäfer-Lind"},
        follow_redirects=True,
    )
    assert "Anna Schäfer-Lind" in renamed.get_data(as_text=True)
    moved = client.post(
        f"/admin/billing_people/p/{anna}/change_email",
        data={"csrf_token": csrf(form), "new_email": "Anna.Lind@Mueller-Soehne.example"},
    )
    assert moved.status_code == 302
    session.expire_all()
    person = session.get(Person, anna)
    assert (person.email, person.name) == ("anna.lind@mueller-soehne.example", "Anna Schäfer-Lind")
    # Her page still lists her old entries: the change itself names both addresses.
    section = page(client, f"/admin/billing_people/p/{anna}/").split('id="person-audit"')[1]
    assert "change_email" in section


def test_an_address_somebody_else_has_is_refused_next_to_the_field(client, session):
    anna = person_id(session, "anna@mueller-soehne.example")
    form = page(client, f"/admin/billing_people/p/{anna}/")
    before = snapshot(session)
    clash = client.post(
        f"/admin/billing_people/p/{anna}/change_email",
        data={"csrf_token": csrf(form), "new_email": "DORA@mueller-soehne.example"},
    )
    assert clash.status_code == 422
    error = re.search(r'id="change-email-new_email-error">([^<]+)<', clash.get_data(as_text=True))
    assert "already the e-mail address of somebody else" in error[1]
    session.expire_all()
    assert snapshot(session) == before


def test_owners_are_made_and_the_last_one_is_kept(client, session):
    token = csrf(page(client, "/admin/billing_workspaces/w/globex/"))
    made = client.post(
        "/admin/billing_workspaces/w/globex/manage/add_owner",
        data={"csrf_token": token, "email": "lena@globex.example"},
    )
    assert made.status_code == 302
    owners = select(Person.email).join(Workspace.owners).where(Workspace.key == "globex")
    session.expire_all()
    assert set(session.scalars(owners)) == {"karl@globex.example", "lena@globex.example"}
    client.post(
        "/admin/billing_workspaces/w/globex/manage/remove_owner",
        data={"csrf_token": token, "email": "karl@globex.example"},
    )
    before = snapshot(session)
    last = client.post(
        "/admin/billing_workspaces/w/globex/manage/remove_owner",
        data={"csrf_token": token, "email": "lena@globex.example"},
    )
    assert last.status_code == 422
    assert 'id="remove_owner-error"' in last.get_data(as_text=True)
    session.expire_all()
    assert snapshot(session) == before
    assert set(session.scalars(owners)) == {"lena@globex.example"}
