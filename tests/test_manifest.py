"""The module declared as data: registration reads it, hosts switch and rename through config."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from plugin.manifest import PERMISSIONS, VIEWS, ManifestError, configure
from plugin.models import Team
from plugin.services.intervals import team_archived_at
from plugin.types import utcnow
from tests.conftest import DEMO, make_app
from tests.helpers import snapshot


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]


@pytest.fixture
def host(database_url):
    """Build the demo host with some config, the demo data imported, acting as admin."""
    made = []

    def build(**config):
        app = make_app(database_url, **config)
        ctx = app.app_context()
        ctx.push()
        made.append((app, ctx))
        result = app.test_cli_runner().invoke(args=["billing", "import", str(DEMO)])
        assert result.exit_code == 0, result.output
        client = app.test_client()
        client.get("/demo/role/admin")
        return app, client, ctx

    yield build
    for app, ctx in made:
        app.extensions["sqlalchemy"].session.remove()
        app.extensions["sqlalchemy"].engine.dispose()
        ctx.pop()


def billing_rules(app) -> set[str]:
    return {rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/admin/bill")}


def test_registration_reads_the_declaration(app):
    admin = app.extensions["admin"][0]
    views = {view.endpoint: view for view in admin._views if view.endpoint.startswith("billing_")}
    assert list(views) == [declared.endpoint for declared in VIEWS]
    for declared in VIEWS:
        view = views[declared.endpoint]
        assert view.name == declared.menu
        assert view.declaration is declared
        bulk = [(action.name, action.text) for action in declared.actions if action.bulk]
        assert getattr(view, "_actions", []) == bulk
    for declared in VIEWS:
        assert declared.permission in PERMISSIONS
        for action in declared.actions:
            assert action.permission in PERMISSIONS, (declared.key, action.name)


def test_a_view_switched_off_has_no_menu_entry_and_no_route(host):
    app, client, _ = host(BILLING_VIEWS={"audit": False, "people": "Persons"})
    rules = billing_rules(app)
    assert not any(rule.startswith("/admin/billing_audit/") for rule in rules)
    assert any(rule.startswith("/admin/billing_people/") for rule in rules)
    assert client.get("/admin/billing_audit/").status_code == 404
    menu = client.get("/admin/").get_data(as_text=True)
    assert "Audit log" not in menu
    assert "Persons" in menu
    assert ">People<" not in menu
    assert client.get("/admin/billing_people/").status_code == 200


def test_pages_of_other_views_leave_out_links_to_a_view_switched_off(host):
    app, client, _ = host(BILLING_VIEWS={"invoices": False})
    assert app.test_cli_runner().invoke(args=["billing", "close-month", "2026-10"]).exit_code == 0
    page = client.get("/admin/billing_workspaces/w/acme/")
    assert page.status_code == 200
    assert "billing_invoices" not in page.get_data(as_text=True)


def test_an_action_switched_off_is_refused_on_the_server(host):
    app, client, _ = host(BILLING_ACTIONS={"teams.archive": False, "workspaces.purge": False})
    session = app.extensions["sqlalchemy"].session
    listing = client.get("/admin/billing_teams/").get_data(as_text=True)
    assert "Archive all" not in listing
    assert "Unarchive all" in listing
    before = snapshot(session)
    team_id = session.scalar(select(Team.id).where(Team.key == "dispatch"))
    posted = client.post(
        "/admin/billing_teams/action/",
        data={"csrf_token": csrf(listing), "action": "archive", "rowid": [str(team_id)]},
    )
    assert posted.status_code == 404
    assert "switched off" in posted.get_data(as_text=True)
    assert client.get("/admin/billing_teams/all/archive").status_code == 404
    refused = client.post("/admin/billing_teams/all/archive", data={"csrf_token": csrf(listing)})
    assert refused.status_code == 404
    assert "switched off" in refused.get_data(as_text=True)
    assert client.get("/admin/billing_workspaces/w/acme/purge").status_code == 404
    page = client.get("/admin/billing_workspaces/w/acme/").get_data(as_text=True)
    assert "Remove inactive workspace members" not in page
    session.expire_all()
    assert snapshot(session) == before
    # What is left on still works.
    legacy = session.scalar(select(Team.id).where(Team.key == "legacy"))
    client.post(
        "/admin/billing_teams/action/",
        data={"csrf_token": csrf(listing), "action": "unarchive", "rowid": [str(legacy)]},
    )
    session.expire_all()
    assert "legacy" not in set(session.scalars(select(Team.key).where(team_archived_at(utcnow()))))


def test_the_host_overrides_the_access_table(host):
    app, client, _ = host(BILLING_ACCESS={"purge_members": ["support"]})
    assert client.get("/admin/billing_workspaces/w/acme/purge").status_code == 403
    client.get("/demo/role/support")
    assert client.get("/admin/billing_workspaces/w/acme/purge").status_code == 200


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"views": {"audits": False}},
            "BILLING_VIEWS: no view 'audits' (views: dashboard, workspaces,",
        ),
        ({"views": {"audit": 0}}, "BILLING_VIEWS['audit']: 0 is neither True, False nor a menu"),
        ({"views": {"audit": ""}}, "BILLING_VIEWS['audit']: '' is neither"),
        ({"actions": {"teams.archiv": False}}, "BILLING_ACTIONS: no action 'teams.archiv'"),
        ({"actions": {"archive": False}}, "BILLING_ACTIONS: no action 'archive' (actions: "),
        ({"actions": {"teams.archive": "no"}}, "BILLING_ACTIONS['teams.archive']: 'no' is neither"),
        ({"access": {"purge": ["admin"]}}, "BILLING_ACCESS: no permission 'purge'"),
        ({"access": {"read": "admin"}}, "BILLING_ACCESS['read']: give a list of roles"),
    ],
)
def test_a_misspelt_override_is_a_clear_error(config, message):
    with pytest.raises(ManifestError) as error:
        configure(**config)
    assert message in str(error.value)


def test_a_misspelt_override_stops_the_app(database_url):
    with pytest.raises(ManifestError, match="no view 'audits'"):
        make_app(database_url, BILLING_VIEWS={"audits": False})


def test_actions_of_a_view_switched_off_are_off():
    module = configure(views={"teams": False})
    assert not module.action_enabled("teams", "archive")
    assert module.action_enabled("workspaces", "purge")
    assert module.view("teams") is None
