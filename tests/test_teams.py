"""Archiving and unarchiving teams: billing effect, history invariant, audit, CLI.

Expectations are worked out by hand on the demo data (examples/backoffice/
demo_data.yaml).  acme bills user licences; in November 2026 its billed
members are Anna, Chris (sales) and Dora (support): Emil's team ``legacy`` has
been archived since 15 October, Bob left sales on 30 September.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from plugin.models import AuditEntry, Team, TeamArchivePeriod, Workspace
from plugin.services.licences import count_licences
from plugin.services.periods import Month
from plugin.services.teams import (
    LaterHistory,
    UnknownTeamIds,
    UnknownTeams,
    archive_teams,
    matching_team_ids,
    resolve_teams,
    unarchive_teams,
)
from tests.helpers import count_statements, snapshot

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
MID_NOVEMBER = datetime(2026, 11, 15, 9, 30, tzinfo=UTC)
ACTOR = "alice@backoffice.example"


@pytest.fixture(autouse=True)
def demo(demo_cli):
    """Every test starts from the demo data."""
    return demo_cli


@pytest.fixture
def tz(app):
    return app.extensions["billing"].rules().zoneinfo


@pytest.fixture
def team(session):
    def team_id(workspace_key: str, team_key: str) -> int:
        return resolve_teams(session, [(workspace_key, team_key)])[(workspace_key, team_key)]

    return team_id


def workspace_id(session, key: str) -> int:
    return session.scalar(select(Workspace.id).where(Workspace.key == key))


def licences(session, tz, month: str, key: str) -> tuple[int, int]:
    """(billed teams, billed users) of workspace ``key`` in ``month``."""
    start, end = Month.parse(month).bounds(tz)
    ws = workspace_id(session, key)
    teams, users = count_licences(session, start, end, [ws])
    return teams.get(ws, 0), users.get(ws, 0)


def every_month(session, tz, first: str = "2022-05", last: str = "2026-10") -> dict:
    """Licences of every workspace for every month from ``first`` to ``last``."""
    month, stop, result = Month.parse(first), Month.parse(last), {}
    while month <= stop:
        start, end = month.bounds(tz)
        result[str(month)] = count_licences(session, start, end)
        month = month.next()
    return result


def periods(session, team_id: int) -> list[tuple[datetime, datetime | None]]:
    rows = session.execute(
        select(TeamArchivePeriod.archived_from, TeamArchivePeriod.unarchived_at)
        .where(TeamArchivePeriod.team_id == team_id)
        .order_by(TeamArchivePeriod.archived_from)
    )
    return [tuple(row) for row in rows]


def audit_rows(session, action: str) -> list[tuple]:
    rows = session.execute(
        select(
            AuditEntry.actor,
            AuditEntry.workspace_id,
            AuditEntry.target,
            AuditEntry.before,
            AuditEntry.after,
        )
        .where(AuditEntry.action == action)
        .order_by(AuditEntry.id)
    )
    return [tuple(row) for row in rows]


# Billing effect ------------------------------------------------------------


def test_archiving_mid_month_bills_that_month_and_not_the_next(session, tz, team):
    assert licences(session, tz, "2026-11", "acme") == (2, 3)
    change = archive_teams(session, [team("acme", "sales")], now=MID_NOVEMBER, actor=ACTOR)
    session.commit()
    assert [ref.target for ref in change.changed] == ["acme/sales"]
    assert change.unchanged == ()
    assert periods(session, team("acme", "sales")) == [(MID_NOVEMBER, None)]
    # November: sales (until the 15th) and support; Anna, Chris, Dora.
    assert licences(session, tz, "2026-11", "acme") == (2, 3)
    # December: support only; Anna and Dora (Chris was only in sales).
    assert licences(session, tz, "2026-12", "acme") == (1, 2)


def test_archiving_a_team_licence_workspace_team(session, tz, team):
    # nordwind in November: dispatch, fleet (archived on the 10th), finance.
    assert licences(session, tz, "2026-11", "nordwind")[0] == 3
    archive_teams(session, [team("nordwind", "dispatch")], now=NOW, actor=ACTOR)
    session.commit()
    assert licences(session, tz, "2026-11", "nordwind")[0] == 3
    assert licences(session, tz, "2026-12", "nordwind")[0] == 1


def test_unarchiving_bills_again_from_then_on(session, tz, team):
    legacy = team("acme", "legacy")
    october = licences(session, tz, "2026-10", "acme")
    change = unarchive_teams(session, [legacy], now=NOW, actor=ACTOR)
    session.commit()
    assert [ref.target for ref in change.changed] == ["acme/legacy"]
    start = datetime(2026, 10, 14, 22, tzinfo=UTC)  # 15 October 00:00 in Berlin
    assert periods(session, legacy) == [(start, NOW)]
    assert licences(session, tz, "2026-10", "acme") == october == (3, 4)
    # Emil is billed again in November (from the 25th) and December.
    assert licences(session, tz, "2026-11", "acme") == (3, 4)
    assert licences(session, tz, "2026-12", "acme") == (3, 4)


def test_past_months_do_not_change(session, tz, team):
    before = every_month(session, tz)
    ids = [team("acme", "sales"), team("nordwind", "dispatch"), team("globex", "ops")]
    archive_teams(session, ids, now=NOW, actor=ACTOR)
    unarchive_teams(session, [team("acme", "legacy")], now=NOW, actor=ACTOR)
    session.commit()
    assert every_month(session, tz) == before


# Idempotence and the no-touching invariant --------------------------------


def test_archiving_an_archived_team_changes_nothing(session, team):
    before = snapshot(session)
    change = archive_teams(session, [team("acme", "legacy")], now=NOW, actor=ACTOR)
    session.commit()
    assert change.changed == ()
    assert [ref.target for ref in change.unchanged] == ["acme/legacy"]
    assert change.lines() == ["acme/legacy is already archived: nothing changed"]
    assert snapshot(session) == before


def test_archiving_twice_archives_once(session, team):
    sales = team("acme", "sales")
    archive_teams(session, [sales], now=MID_NOVEMBER, actor=ACTOR)
    session.commit()
    before = snapshot(session)
    again = archive_teams(session, [sales, sales], now=NOW, actor=ACTOR)
    session.commit()
    assert (again.changed, [ref.target for ref in again.unchanged]) == ((), ["acme/sales"])
    assert snapshot(session) == before
    assert periods(session, sales) == [(MID_NOVEMBER, None)]


def test_unarchiving_an_active_team_changes_nothing(session, team):
    before = snapshot(session)
    change = unarchive_teams(session, [team("acme", "sales")], now=NOW, actor=ACTOR)
    session.commit()
    assert change.lines() == ["acme/sales is already active (not archived): nothing changed"]
    assert snapshot(session) == before


def test_mixed_selection_changes_only_what_needs_it(session, team):
    ids = [team("acme", "sales"), team("acme", "legacy"), team("nordwind", "fleet")]
    change = archive_teams(session, ids, now=NOW, actor=ACTOR)
    session.commit()
    assert [ref.target for ref in change.changed] == ["acme/sales"]
    assert [ref.target for ref in change.unchanged] == ["acme/legacy", "nordwind/fleet"]
    assert len(audit_rows(session, "archive_team")) == 1


def test_unarchiving_at_the_instant_of_archiving_leaves_no_empty_period(session, tz, team):
    sales = team("acme", "sales")
    before = every_month(session, tz, last="2026-12")
    archive_teams(session, [sales], now=NOW, actor=ACTOR)
    session.commit()
    change = unarchive_teams(session, [sales], now=NOW, actor=ACTOR)
    session.commit()
    assert [ref.target for ref in change.changed] == ["acme/sales"]
    assert periods(session, sales) == []
    assert every_month(session, tz, last="2026-12") == before
    assert [row[3:] for row in audit_rows(session, "unarchive_team")] == [
        ({"archived": True}, {"archived": False})
    ]


def test_archiving_at_the_instant_of_unarchiving_reopens_the_period(session, tz, team):
    legacy = team("acme", "legacy")
    original = periods(session, legacy)
    before = every_month(session, tz, last="2026-12")
    unarchive_teams(session, [legacy], now=NOW, actor=ACTOR)
    session.commit()
    change = archive_teams(session, [legacy], now=NOW, actor=ACTOR)
    session.commit()
    assert [ref.target for ref in change.changed] == ["acme/legacy"]
    assert periods(session, legacy) == original
    assert every_month(session, tz, last="2026-12") == before


def test_archive_unarchive_archive_again_keeps_periods_apart(session, team):
    sales = team("acme", "sales")
    later = NOW + timedelta(days=3)
    archive_teams(session, [sales], now=MID_NOVEMBER, actor=ACTOR)
    unarchive_teams(session, [sales], now=NOW, actor=ACTOR)
    archive_teams(session, [sales], now=later, actor=ACTOR)
    session.commit()
    assert periods(session, sales) == [(MID_NOVEMBER, NOW), (later, None)]
    archive_teams(session, [sales], now=later + timedelta(days=1), actor=ACTOR)
    unarchive_teams(session, [sales], now=later + timedelta(days=2), actor=ACTOR)
    archive_teams(session, [sales], now=later + timedelta(days=2), actor=ACTOR)
    session.commit()
    assert periods(session, sales) == [(MID_NOVEMBER, NOW), (later, None)]


# Set-based ----------------------------------------------------------------


def test_statements_do_not_grow_with_the_number_of_teams(session):
    acme = matching_team_ids(session, now=NOW, workspace_ids=[workspace_id(session, "acme")])
    everything = matching_team_ids(session, now=NOW)
    assert (len(acme), len(everything)) == (3, 9)
    few = count_statements(session, lambda: archive_teams(session, acme, now=NOW, actor=ACTOR))
    session.rollback()
    many = count_statements(
        session, lambda: archive_teams(session, everything, now=NOW, actor=ACTOR)
    )
    assert many == few
    session.rollback()
    few = count_statements(session, lambda: unarchive_teams(session, acme, now=NOW, actor=ACTOR))
    session.rollback()
    many = count_statements(
        session, lambda: unarchive_teams(session, everything, now=NOW, actor=ACTOR)
    )
    assert many == few


def test_apply_to_everything_matching_the_filter(session):
    names = dict(session.execute(select(Team.id, Team.key)).all())
    archived = matching_team_ids(session, now=NOW, archived=True)
    assert sorted(names[i] for i in archived) == ["fleet", "legacy"]
    nordwind = workspace_id(session, "nordwind")
    active = matching_team_ids(session, now=NOW, workspace_ids=[nordwind], archived=False)
    assert sorted(names[i] for i in active) == ["dispatch", "finance"]
    change = archive_teams(session, active, now=NOW, actor=ACTOR)
    session.commit()
    assert [ref.target for ref in change.changed] == ["nordwind/dispatch", "nordwind/finance"]
    assert matching_team_ids(session, now=NOW, workspace_ids=[nordwind], archived=False) == []


# Audit --------------------------------------------------------------------


def test_audit_entries_name_actor_target_before_and_after(session, team):
    acme = workspace_id(session, "acme")
    archive_teams(session, [team("acme", "sales"), team("acme", "support")], now=NOW, actor=ACTOR)
    unarchive_teams(session, [team("acme", "legacy")], now=NOW, actor="bob@backoffice.example")
    session.commit()
    archived = {"archived": True}
    active = {"archived": False}
    assert audit_rows(session, "archive_team") == [
        (ACTOR, acme, "acme/sales", active, archived),
        (ACTOR, acme, "acme/support", active, archived),
    ]
    assert audit_rows(session, "unarchive_team") == [
        ("bob@backoffice.example", acme, "acme/legacy", archived, active)
    ]
    detail = session.scalar(select(AuditEntry.detail).where(AuditEntry.action == "archive_team"))
    assert NOW.isoformat() in detail


# Bad input ----------------------------------------------------------------


def test_resolve_teams_names_every_unknown_key(session, team):
    found = resolve_teams(session, [("acme", "sales"), ("nordwind", "fleet")])
    assert found == {
        ("acme", "sales"): team("acme", "sales"),
        ("nordwind", "fleet"): team("nordwind", "fleet"),
    }
    with pytest.raises(UnknownTeams) as caught:
        resolve_teams(session, [("acme", "sales"), ("acme", "nope"), ("ghost", "sales")])
    assert str(caught.value) == (
        "no workspace with the key 'ghost'; no team 'nope' in workspace 'acme'"
    )
    # A key of another workspace is not a key of this one.
    with pytest.raises(UnknownTeams, match="no team 'fleet' in workspace 'acme'"):
        resolve_teams(session, [("acme", "fleet")])


def test_unknown_team_ids_change_nothing(session, team):
    before = snapshot(session)
    with pytest.raises(UnknownTeamIds, match="no team with the id"):
        archive_teams(session, [team("acme", "sales"), 987654], now=NOW, actor=ACTOR)
    session.rollback()
    assert snapshot(session) == before


def test_archiving_before_recorded_history_is_refused(session, team):
    before = snapshot(session)
    # support has an archived period from 2024-01-01: archiving it in 2023 would overlap.
    with pytest.raises(LaterHistory, match="acme/support"):
        archive_teams(
            session, [team("acme", "support")], now=datetime(2023, 6, 1, tzinfo=UTC), actor=ACTOR
        )
    session.rollback()
    # finance was created on 2026-11-03.
    with pytest.raises(LaterHistory, match="nordwind/finance"):
        archive_teams(
            session,
            [team("nordwind", "finance")],
            now=datetime(2026, 11, 1, tzinfo=UTC),
            actor=ACTOR,
        )
    session.rollback()
    assert snapshot(session) == before


# CLI ----------------------------------------------------------------------


def test_cli_archive_and_unarchive(demo_cli, session, team):
    result = demo_cli("archive-team", "acme", "sales")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Archived acme/sales at ")
    again = demo_cli("archive-team", "acme", "sales")
    assert again.exit_code == 0, again.output
    assert again.output == "acme/sales is already archived: nothing changed\n"
    [(start, end)] = periods(session, team("acme", "sales"))
    assert end is None
    result = demo_cli("unarchive-team", "acme", "sales")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Unarchived acme/sales at ")
    [(_, end)] = periods(session, team("acme", "sales"))
    assert end is not None
    assert end >= start
    actors = {row[0] for row in audit_rows(session, "archive_team")}
    assert len(actors) == 1
    assert actors.pop().startswith("cli:")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["archive-team", "ghost", "sales"], "no workspace with the key 'ghost'"),
        (["archive-team", "acme", "ghost"], "no team 'ghost' in workspace 'acme'"),
        (["unarchive-team", "acme", "fleet"], "no team 'fleet' in workspace 'acme'"),
        (["unarchive-team", "ghost", "legacy"], "no workspace with the key 'ghost'"),
    ],
)
def test_cli_unknown_keys_fail_and_change_nothing(demo_cli, session, args, message):
    before = snapshot(session)
    result = demo_cli(*args)
    assert result.exit_code == 1
    assert f"Error: {message}; nothing was changed." in result.output
    session.expire_all()
    assert snapshot(session) == before
