"""The list page's counts cache: kept under each workspace's stamp, never stale.

Every change to what the counts are made of must change the workspace's stamp,
whoever makes it (here: plain SQLAlchemy Core, behind the services' back), and
counts from the cache must always equal counts computed afresh.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, insert, select, update

from plugin.models import (
    Person,
    Team,
    TeamArchivePeriod,
    TeamMembership,
    Workspace,
    WorkspaceAccess,
    WorkspaceStamp,
)
from plugin.rules import load_rules_file
from plugin.services.counts import CountsCache, current_counts
from plugin.services.intervals import team_active_at
from tests.conftest import DEMO, RULES_PATH, make_app
from tests.helpers import QueryCounter

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.fixture
def demo(app, session):
    assert app.test_cli_runner().invoke(args=["billing", "import", str(DEMO)]).exit_code == 0
    return {ws.key: ws for ws in session.scalars(select(Workspace))}


def stamps(session) -> dict[int, int]:
    return dict(session.execute(select(WorkspaceStamp.workspace_id, WorkspaceStamp.stamp)).all())


def ids_of(session, workspace_id: int) -> tuple[int, int]:
    """An active team of the workspace and a person with access to it."""
    team = session.scalar(
        select(Team.id).where(Team.workspace_id == workspace_id, team_active_at(NOW)).limit(1)
    )
    person = session.scalar(
        select(WorkspaceAccess.person_id).where(WorkspaceAccess.workspace_id == workspace_id)
    )
    return team, person


def changes(team: int, person: int, workspace: int, at: datetime):
    """One change per table and kind of statement, in an order that leaves valid data."""
    period = TeamArchivePeriod.team_id == team
    joined = TeamMembership.joined_at == at
    return {
        "new team": insert(Team).values(
            workspace_id=workspace, key="new", name="New", created_at=at
        ),
        "renamed team": update(Team).where(Team.key == "new").values(name="Renamed"),
        "removed team": delete(Team).where(Team.key == "new"),
        "new membership": insert(TeamMembership).values(
            team_id=team, person_id=person, joined_at=at
        ),
        "ended membership": update(TeamMembership).where(joined).values(left_at=at),
        "removed membership": delete(TeamMembership).where(joined),
        "new archive period": insert(TeamArchivePeriod).values(team_id=team, archived_from=at),
        "ended archive period": update(TeamArchivePeriod)
        .where(period, TeamArchivePeriod.archived_from == at)
        .values(unarchived_at=at + timedelta(days=1)),
        "removed archive period": delete(TeamArchivePeriod).where(
            period, TeamArchivePeriod.archived_from == at
        ),
        # Access of somebody who has access already: a past interval.
        "new access": insert(WorkspaceAccess).values(
            workspace_id=workspace,
            person_id=person,
            granted_at=at - timedelta(days=999),
            revoked_at=at - timedelta(days=998),
        ),
        "changed access": update(WorkspaceAccess)
        .where(WorkspaceAccess.granted_at == at - timedelta(days=999))
        .values(revoked_at=at - timedelta(days=997)),
        "removed access": delete(WorkspaceAccess).where(
            WorkspaceAccess.granted_at == at - timedelta(days=999)
        ),
    }


def test_every_change_to_a_workspace_changes_its_stamp_and_only_its(session, demo):
    acme, nordwind = demo["acme"].id, demo["nordwind"].id
    team, person = ids_of(session, acme)
    at = datetime(2030, 1, 1, tzinfo=UTC)
    for what, statement in changes(team, person, acme, at).items():
        before = stamps(session)
        result = session.execute(statement)
        assert statement.is_insert or result.rowcount == 1, what
        session.commit()
        after = stamps(session)
        assert after[acme] != before[acme], what
        assert after[nordwind] == before[nordwind], what


def test_a_new_workspace_has_a_stamp(session, demo):
    session.execute(insert(Workspace).values(key="new", name="New", created_at=NOW))
    session.commit()
    new = session.scalar(select(Workspace.id).where(Workspace.key == "new"))
    assert new in stamps(session)


def test_cached_counts_follow_every_change(app, session, demo):
    """After each change (committed), the cache answers what a fresh computation does."""
    rules, cache = app.extensions["billing"].rules(), CountsCache(100)
    workspaces = list(demo.values())
    acme = demo["acme"].id
    team, person = ids_of(session, acme)
    # Changes from a minute ago, so that they count now.
    at = NOW - timedelta(minutes=1)
    first = current_counts(session, rules, workspaces, NOW, cache)
    assert first == current_counts(session, rules, workspaces, NOW)
    seen = {first[acme]}
    for what, statement in changes(team, person, acme, at).items():
        session.execute(statement)
        session.commit()
        cached = current_counts(session, rules, workspaces, NOW, cache)
        assert cached == current_counts(session, rules, workspaces, NOW), what
        seen.add(cached[acme])
    # The changes did move the numbers (the new team, the new member…).
    assert len(seen) > 2


def test_an_unchanged_page_is_served_from_the_cache(app, session, demo):
    rules, cache = app.extensions["billing"].rules(), CountsCache(100)
    workspaces = list(demo.values())
    engine = session.get_bind()
    with QueryCounter(engine) as cold:
        current_counts(session, rules, workspaces, NOW, cache)
    with QueryCounter(engine) as warm:
        current_counts(session, rules, workspaces, NOW, cache)
    assert (cold.count, warm.count) == (6, 1)


def test_cached_counts_end_when_the_month_turns(app, session, demo):
    rules, cache = app.extensions["billing"].rules(), CountsCache(100)
    workspaces = list(demo.values())
    nordwind = demo["nordwind"].id
    november = current_counts(session, rules, workspaces, NOW, cache)
    december = NOW + timedelta(days=10)
    cached = current_counts(session, rules, workspaces, december, cache)
    assert cached == current_counts(session, rules, workspaces, december)
    # fleet was archived on 10 November: billed in November, not in December.
    assert (november[nordwind].licences_this_month, cached[nordwind].licences_this_month) == (
        3,
        2,
    )


def test_cached_counts_end_where_a_recorded_interval_starts_or_ends(app, session, demo):
    """History written ahead of time (a leave already booked) changes the counts by itself."""
    rules, cache = app.extensions["billing"].rules(), CountsCache(100)
    workspaces = list(demo.values())
    acme = demo["acme"].id
    team, _ = ids_of(session, acme)
    newcomer = session.execute(
        insert(Person).values(email="new@acme.example")
    ).inserted_primary_key[0]
    session.execute(
        insert(WorkspaceAccess).values(workspace_id=acme, person_id=newcomer, granted_at=NOW)
    )
    starts, ends = NOW + timedelta(hours=1), NOW + timedelta(hours=2)
    session.execute(
        insert(TeamMembership).values(
            team_id=team, person_id=newcomer, joined_at=starts, left_at=ends
        )
    )
    session.commit()
    before = current_counts(session, rules, workspaces, NOW, cache)[acme]
    during = current_counts(session, rules, workspaces, starts + timedelta(minutes=1), cache)[acme]
    after = current_counts(session, rules, workspaces, ends + timedelta(minutes=1), cache)[acme]
    assert during.active_members == before.active_members + 1
    assert after.active_members == before.active_members
    assert after.licences_this_month == before.licences_this_month + 1


def test_counts_computed_by_the_writing_transaction_are_not_kept(app, session, demo):
    """PostgreSQL stamps a workspace once per transaction: what this transaction computes
    between two of its own changes must not outlive the second one."""
    rules, cache = app.extensions["billing"].rules(), CountsCache(100)
    workspaces = list(demo.values())
    acme = demo["acme"].id
    team, person = ids_of(session, acme)
    current_counts(session, rules, workspaces, NOW, cache)
    at = NOW - timedelta(minutes=1)
    session.execute(insert(Team).values(workspace_id=acme, key="one", name="One", created_at=at))
    current_counts(session, rules, workspaces, NOW, cache)
    session.execute(insert(Team).values(workspace_id=acme, key="two", name="Two", created_at=at))
    session.commit()
    cached = current_counts(session, rules, workspaces, NOW, cache)
    assert cached == current_counts(session, rules, workspaces, NOW)


def test_counts_follow_a_change_of_contract_or_of_the_rules(app, session, demo, tmp_path):
    rules, cache = app.extensions["billing"].rules(), CountsCache(100)
    workspaces = list(demo.values())
    acme = demo["acme"]
    assert current_counts(session, rules, workspaces, NOW, cache)[acme.id].variant == (
        "user_licences"
    )
    acme.contract_variant = "team_licences"
    session.commit()
    assert current_counts(session, rules, workspaces, NOW, cache)[acme.id].variant == (
        "team_licences"
    )
    acme.contract_variant = None
    session.commit()
    # New rules: the cut-over moves before acme's creation, so acme bills teams.
    edited = tmp_path / "pricing_rules.yaml"
    edited.write_text(
        RULES_PATH.read_text().replace("cutover_date: 2023-03-01", "cutover_date: 2000-01-01")
    )
    new_rules = load_rules_file(edited)
    counts = current_counts(session, new_rules, workspaces, NOW, cache)[acme.id]
    assert (counts.variant, counts.variant_reason) == ("team_licences", "cutover")


@pytest.mark.parametrize(("size", "queries"), [(10_000, 3), (0, 7)])
def test_the_list_page_reads_only_stamps_unless_the_cache_is_off(database_url, size, queries):
    """The second view of an unchanged list page: count, page with its stamps (or the four
    counts again), and the worker state that every plugin page reads."""
    app = make_app(database_url, BILLING_COUNTS_CACHE_SIZE=size)
    assert app.test_cli_runner().invoke(args=["billing", "import", str(DEMO)]).exit_code == 0
    client = app.test_client()
    client.get("/demo/role/support")
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
    assert client.get("/admin/billing_workspaces/").status_code == 200
    with QueryCounter(engine) as again:
        page = client.get("/admin/billing_workspaces/")
    assert page.status_code == 200
    assert "nordwind" in page.get_data(as_text=True)
    assert again.count == queries
    engine.dispose()
