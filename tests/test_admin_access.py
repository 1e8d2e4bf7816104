"""Every billing endpoint, for every role: allowed is served, the rest is a 403.

The table below must name every route the plugin registers (a test checks
it), so a new page cannot ship without its permission being decided here.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from plugin.admin.access import DEFAULT_ACCESS
from plugin.models import Invoice, Person, Team, Workspace
from tests.helpers import snapshot

ROLES = ("support", "admin", "accounting")
LISTS = ("workspaces", "teams", "people", "members", "memberships", "invoices", "audit")


def flask_admin_routes() -> list[tuple[str, str, str]]:
    """Flask-Admin's own routes of every list: switched off here, but still guarded."""
    return [
        (method, f"/admin/billing_{name}/{path}", "read")
        for name in LISTS
        for method, path in (
            ("GET", "new/"),
            ("POST", "new/"),
            ("GET", "edit/?id=1"),
            ("POST", "edit/?id=1"),
            ("POST", "delete/"),
            ("GET", "export/csv/"),
            ("GET", "ajax/lookup/"),
            ("POST", "ajax/update/"),
            ("GET", "details/?id=1"),
            ("POST", "action/"),
        )
    ]


MANAGE = {
    "invite": "manage_members",
    "add_to_team": "manage_members",
    "remove_from_team": "manage_members",
    "remove_member": "manage_members",
    "add_owner": "manage_members",
    "remove_owner": "manage_members",
    "create_team": "manage_workspaces",
    "rename_team": "manage_workspaces",
    "rename_workspace": "manage_workspaces",
}


def routes(
    number: str, workspace_id: int, team_id: int, person_id: int
) -> list[tuple[str, str, str]]:
    """(method, url, permission) of every billing endpoint."""
    manage = [
        ("POST", f"/admin/billing_workspaces/w/acme/manage/{action}", permission)
        for action, permission in MANAGE.items()
    ]
    return flask_admin_routes() + manage + [
        (
            "GET",
            "/admin/billing_workspaces/w/acme/manage/remove_member?email=gerda@mueller-soehne.example",
            "manage_members",
        ),
        ("GET", "/admin/billing_workspaces/new-workspace", "manage_workspaces"),
        ("POST", "/admin/billing_workspaces/new-workspace", "manage_workspaces"),
        ("GET", "/admin/billing_workspaces/w/acme/teams/sales?archived=yes", "archive_teams"),
        ("GET", f"/admin/billing_people/p/{person_id}/", "read"),
        ("POST", f"/admin/billing_people/p/{person_id}/rename_person", "manage_members"),
        ("POST", f"/admin/billing_people/p/{person_id}/change_email", "manage_members"),
        ("GET", "/admin/billing_dashboard/", "view_dashboard"),
        ("GET", "/admin/billing_workspaces/", "read"),
        ("GET", f"/admin/billing_workspaces/details/?id={workspace_id}", "read"),
        ("GET", "/admin/billing_workspaces/w/acme/", "read"),
        ("GET", "/admin/billing_workspaces/w/acme/export?month=2026-10", "export_licences"),
        ("GET", f"/admin/billing_workspaces/export-selected?ids={workspace_id}", "export_licences"),
        ("POST", "/admin/billing_workspaces/w/acme/teams/sales", "archive_teams"),
        ("GET", f"/admin/billing_workspaces/mailbox?ids={workspace_id}", "change_mailbox"),
        ("POST", f"/admin/billing_workspaces/mailbox?ids={workspace_id}", "change_mailbox"),
        ("GET", "/admin/billing_workspaces/w/acme/purge", "purge_members"),
        ("POST", "/admin/billing_workspaces/w/acme/purge", "purge_members"),
        ("GET", "/admin/billing_teams/", "read"),
        ("GET", f"/admin/billing_teams/details/?id={team_id}", "read"),
        ("GET", "/admin/billing_teams/all/archive", "archive_teams"),
        ("POST", "/admin/billing_teams/all/unarchive", "archive_teams"),
        ("GET", "/admin/billing_people/", "read"),
        ("GET", "/admin/billing_members/", "read"),
        ("GET", "/admin/billing_memberships/", "read"),
        ("GET", "/admin/billing_invoices/", "read"),
        # The dashboard's counters link to the list filtered by these.
        ("GET", "/admin/billing_invoices/?flt0_46=invalid", "read"),
        ("GET", "/admin/billing_invoices/?flt0_47=pending", "read"),
        ("GET", "/admin/billing_invoices/?flt0_48=failed", "read"),
        ("GET", f"/admin/billing_invoices/pdf/{number}", "download_invoices"),
        ("GET", f"/admin/billing_invoices/xml/{number}", "download_invoices"),
        ("GET", f"/admin/billing_invoices/mail/{number}", "read"),
        ("POST", f"/admin/billing_invoices/mail/{number}", "resend_invoices"),
        ("GET", f"/admin/billing_invoices/credit/{number}", "credit_notes"),
        ("POST", f"/admin/billing_invoices/credit/{number}", "credit_notes"),
        ("GET", "/admin/billing_audit/", "read"),
        ("GET", "/admin/billing_rules/", "view_rules"),
        ("POST", "/admin/billing_rules/check", "edit_rules"),
        ("POST", "/admin/billing_rules/save", "edit_rules"),
        ("GET", "/admin/billing_details/?month=2026-10", "check_month"),
        ("GET", "/admin/billing_details/w/acme", "edit_billing_details"),
        ("POST", "/admin/billing_details/w/acme", "edit_billing_details"),
        ("GET", "/admin/billing_details/upload", "edit_billing_details"),
        ("POST", "/admin/billing_details/upload", "edit_billing_details"),
        ("GET", "/admin/billing_close/?month=2026-10", "check_month"),
        ("POST", "/admin/billing_close/close", "close_month"),
    ]


@pytest.fixture
def walk(app, demo_cli, session):
    assert demo_cli("close-month", "2026-10").exit_code == 0
    number = session.scalar(select(Invoice.number).where(Invoice.workspace_key == "acme"))
    workspace_id = session.scalar(select(Workspace.id).where(Workspace.key == "acme"))
    team_id = session.scalar(select(Team.id).where(Team.key == "sales"))
    person_id = session.scalar(select(Person.id).where(Person.email.startswith("anna@")))
    return routes(number, workspace_id, team_id, person_id)


def test_every_route_of_the_plugin_is_in_the_table(app, walk):
    walked = {re.sub(r"\?.*", "", url) for _, url, _ in walk}
    generic = {
        "/admin/billing_workspaces/w/acme/",
        "/admin/billing_invoices/pdf/x",
        "/admin/billing_workspaces/w/acme/export",
        "/admin/billing_people/p/1/",
    }
    registered = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin/billing_") or rule.endpoint.endswith(".static"):
            continue
        view = rule.endpoint.split(".")[1]
        if view in {
            "create_view",
            "edit_view",
            "delete_view",
            "export",
            "ajax_lookup",
            "ajax_update",
        }:
            continue  # Flask-Admin's own, switched off for these read-only lists
        registered.add(rule.rule)
    patterns = {re.sub(r"<[^>]+>", "[^/]+", rule) for rule in registered}
    for pattern in patterns:
        assert any(re.fullmatch(pattern, url) for url in walked | generic), pattern


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_what_the_table_allows(app, walk, role, session):
    client = app.test_client()
    client.get(f"/demo/role/{role}")
    _walk(client, walk, {role}, session)


def test_without_a_role_everything_is_403(database_url, demo_cli, walk):
    from tests.conftest import make_app

    app = make_app(database_url, BILLING_CURRENT_ROLES=lambda: ())
    with app.app_context():
        _walk(app.test_client(), walk, set(), app.extensions["sqlalchemy"].session)
        app.extensions["sqlalchemy"].engine.dispose()


def _walk(client, walk, roles: set[str], session) -> None:
    before = snapshot(session)
    for method, url, permission in walk:
        allowed = bool(roles & DEFAULT_ACCESS[permission])
        response = client.open(url, method=method)
        if allowed:
            assert response.status_code != 403, (roles, method, url)
        else:
            assert response.status_code == 403, (roles, method, url, response.status_code)
            assert "Not allowed" in response.get_data(as_text=True)
    # The POSTs carried no CSRF token: whatever the role, nothing changed.
    session.expire_all()
    assert snapshot(session) == before


def test_without_a_token_no_post_changes_anything(app, walk, session):
    client = app.test_client()
    before = snapshot(session)
    for role in ROLES:
        client.get(f"/demo/role/{role}")
        for method, url, permission in walk:
            if method == "POST" and role in DEFAULT_ACCESS[permission]:
                response = client.post(
                    url,
                    data={
                        "action": "archive",
                        "rowid": ["1"],
                        "archived": "yes",
                        "reason": "x",
                        "person": ["1"],
                    },
                )
                status = response.status_code
                assert status in (302, 400, 403, 404), (role, url, status)
    session.expire_all()
    assert snapshot(session) == before
