"""The synthetic data generator: deterministic, proportional, valid, never twice.

These tests make their own SQLite databases (foreign keys enforced); the
PostgreSQL run comes through the shared fixtures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, create_engine, event, func, insert, select, text
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from plugin.migrate import upgrade
from plugin.models import (
    Person,
    Team,
    TeamArchivePeriod,
    TeamMembership,
    Workspace,
    WorkspaceAccess,
    WorkspaceOwner,
)
from plugin.rules.schema import DEFAULT_CUTOVER as CUTOVER
from plugin.synthetic.generator import GenerateSummary, generate
from plugin.synthetic.scales import PER_WORKSPACE, PRESETS
from plugin.synthetic.writer import TABLES

TZ = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 6, 15, 12, 30, 15, 123456, tzinfo=UTC)
CUTOVER_INSTANT = datetime(2023, 2, 28, 23, tzinfo=UTC)  # 2023-03-01 00:00 in Berlin


def make_engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def enforce_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA foreign_keys = ON")

    upgrade(engine)
    return engine


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return make_engine(tmp_path / "billing.db")


def run(engine: Engine, **options: Any) -> GenerateSummary:
    arguments = {"seed": 7, "scale": "tiny", "tz": TZ, "now": NOW} | options
    with engine.begin() as connection:
        return generate(connection, **arguments)


def dump(engine: Engine) -> dict[str, list[tuple]]:
    """Every generated table, as the database stores it (no type conversion)."""
    with engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(text(f"SELECT * FROM {table.name} ORDER BY 1, 2"))
            ]
            for table in TABLES
        }


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.name: connection.scalar(select(func.count()).select_from(table))
            for table in TABLES
        }


def grouped(rows: Iterable[Any], *attributes: str) -> dict[tuple, list[Any]]:
    groups: dict[tuple, list[Any]] = defaultdict(list)
    for row in rows:
        groups[tuple(getattr(row, name) for name in attributes)].append(row)
    return groups


# -- determinism ----------------------------------------------------------------


def test_same_seed_gives_byte_identical_rows(tmp_path: Path) -> None:
    first, second = make_engine(tmp_path / "a.db"), make_engine(tmp_path / "b.db")
    assert run(first, scale=2) == run(second, scale=2)
    assert dump(first) == dump(second)


def test_different_seed_gives_different_rows(tmp_path: Path) -> None:
    first, second = make_engine(tmp_path / "a.db"), make_engine(tmp_path / "b.db")
    run(first, seed=1)
    run(second, seed=2)
    one, other = dump(first), dump(second)
    assert one["billing_team_membership"] != other["billing_team_membership"]
    assert one["billing_workspace"] != other["billing_workspace"]


# -- proportions ----------------------------------------------------------------


def test_tiny_preset_has_its_documented_size(engine: Engine) -> None:
    summary = run(engine)
    preset = PRESETS["tiny"]
    assert (summary.workspaces, summary.teams, summary.memberships) == (5, 20, 150)
    assert preset.holders * 0.9 <= summary.people < preset.holders
    assert preset.holders <= summary.accesses < preset.holders * 1.1
    assert 5 <= summary.owners <= 10
    assert summary.archive_periods >= 5
    assert counts(engine) == summary.by_table()
    with engine.connect() as connection:
        keys = connection.scalars(select(Workspace.key).order_by(Workspace.key)).all()
    assert keys == [f"gen-{n:05d}" for n in range(1, 6)]


@pytest.mark.parametrize("scale", [3, "3"])
def test_integer_scale_is_proportional_to_workspaces(engine: Engine, scale: int | str) -> None:
    summary = run(engine, scale=scale)
    assert summary.scale == "3"
    assert summary.workspaces == 3
    assert summary.teams == 3 * PER_WORKSPACE.teams
    assert summary.memberships == 3 * PER_WORKSPACE.memberships
    holders = 3 * PER_WORKSPACE.holders
    assert holders * 0.95 <= summary.people < holders
    assert holders <= summary.accesses < holders * 1.1
    assert counts(engine) == summary.by_table()


def test_large_preset_promises_the_benchmark_minimums() -> None:
    large = PRESETS["large"]
    assert large.workspaces >= 2_000
    assert large.teams >= 40_000
    assert large.memberships >= 1_000_000
    # People in two workspaces are counted once; at most 3 % of holders are shared.
    assert large.holders * 0.97 >= 400_000


def test_tiny_data_has_every_case_billing_must_handle(engine: Engine) -> None:
    run(engine)
    with Session(engine) as session:
        workspaces = session.scalars(select(Workspace)).all()
        memberships = session.scalars(select(TeamMembership)).all()
        access = session.scalars(select(WorkspaceAccess)).all()
        periods = session.scalars(select(TeamArchivePeriod)).all()
        teams = {team.id: team for team in session.scalars(select(Team))}

    created = sorted(workspace.created_at for workspace in workspaces)
    assert 1 <= sum(instant < CUTOVER_INSTANT for instant in created) < len(created) / 2
    assert CUTOVER_INSTANT in created, "one workspace is created exactly at the cut-over"
    assert any(workspace.contract_variant for workspace in workspaces)

    workspaces_of = grouped(access, "person_id")
    assert any(len({a.workspace_id for a in rows}) > 1 for rows in workspaces_of.values())
    assert any(row.revoked_at is not None for row in access)

    in_team = {(teams[m.team_id].workspace_id, m.person_id) for m in memberships}
    assert any((a.workspace_id, a.person_id) not in in_team for a in access)
    teams_of = grouped(memberships, "person_id")
    assert any(len({m.team_id for m in rows}) > 1 for rows in teams_of.values())
    assert any(m.left_at == m.joined_at for m in memberships)
    assert any(m.left_at is None for m in memberships)
    assert any(m.left_at is not None and m.left_at > m.joined_at for m in memberships)

    assert any(period.unarchived_at is None for period in periods)
    assert any(period.unarchived_at is not None for period in periods)


# -- invariants -----------------------------------------------------------------


@pytest.mark.parametrize("scale", ["tiny", 2])
def test_every_row_keeps_the_model_invariants(engine: Engine, scale: str | int) -> None:
    run(engine, scale=scale)
    with Session(engine) as session:
        workspaces = {w.id: w for w in session.scalars(select(Workspace))}
        teams = {t.id: t for t in session.scalars(select(Team))}
        people = session.scalars(select(Person)).all()
        owners = session.scalars(select(WorkspaceOwner)).all()
        periods = session.scalars(select(TeamArchivePeriod)).all()
        access = session.scalars(select(WorkspaceAccess)).all()
        memberships = session.scalars(select(TeamMembership)).all()

    def check_instant(instant: datetime | None, workspace_id: int) -> None:
        if instant is not None:
            assert instant.utcoffset() is not None
            assert workspaces[workspace_id].created_at <= instant <= NOW

    for workspace in workspaces.values():
        assert workspace.created_at.tzinfo is not None
        assert workspace.created_at.astimezone(TZ).time().isoformat() == "00:00:00"
    for team in teams.values():
        check_instant(team.created_at, team.workspace_id)
    for person in people:
        assert person.email == person.email.lower()

    for rows in grouped(periods, "team_id").values():
        team = teams[rows[0].team_id]
        for period in rows:
            check_instant(period.archived_from, team.workspace_id)
            check_instant(period.unarchived_at, team.workspace_id)
            assert period.archived_from >= team.created_at
        assert_disjoint([(p.archived_from, p.unarchived_at) for p in rows], touching=False)

    access_of = grouped(access, "workspace_id", "person_id")
    for rows in access_of.values():
        for row in rows:
            check_instant(row.granted_at, row.workspace_id)
            check_instant(row.revoked_at, row.workspace_id)
        assert_disjoint([(a.granted_at, a.revoked_at) for a in rows], touching=True)

    for (team_id, person_id), rows in grouped(memberships, "team_id", "person_id").items():
        team = teams[team_id]
        spans = [(a.granted_at, a.revoked_at) for a in access_of[team.workspace_id, person_id]]
        for row in rows:
            check_instant(row.joined_at, team.workspace_id)
            check_instant(row.left_at, team.workspace_id)
            assert row.joined_at >= team.created_at
            assert any(within((row.joined_at, row.left_at), span) for span in spans)
        assert_disjoint([(m.joined_at, m.left_at) for m in rows], touching=True)

    for owner in owners:
        rows = access_of[owner.workspace_id, owner.person_id]
        assert any(row.revoked_at is None for row in rows), "owners keep their access"


def assert_disjoint(intervals: list[tuple[datetime, datetime | None]], *, touching: bool) -> None:
    """Half-open intervals that never overlap; at most the last one is open."""
    ordered = sorted(intervals, key=lambda interval: interval[0])
    assert all(end is None or end >= start for start, end in ordered)
    for (_, end), (next_start, _) in zip(ordered, ordered[1:], strict=False):
        assert end is not None, "only the last interval may be open"
        assert end <= next_start if touching else end < next_start


def within(inner: tuple[datetime, datetime | None], outer: tuple[datetime, datetime | None]):
    (start, end), (outer_start, outer_end) = inner, outer
    if outer_end is None:
        return start >= outer_start
    return start >= outer_start and end is not None and end <= outer_end


# -- the database -----------------------------------------------------------------


def test_database_constraints_accept_the_data(engine: Engine) -> None:
    run(engine, scale=2)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def test_ids_continue_after_existing_rows_and_after_the_run(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(insert(Person), [{"email": "host@example.org", "name": "Host"}])
    summary = run(engine)
    with Session(engine) as session:
        ids = session.scalars(select(Person.id).order_by(Person.id)).all()
        assert ids == list(range(1, summary.people + 2))
        session.add(Person(email="later@example.org", name="Later"))
        session.commit()
        assert session.scalar(select(func.max(Person.id))) == summary.people + 2


def test_a_second_run_refuses_and_changes_nothing(engine: Engine) -> None:
    run(engine)
    before = dump(engine)
    with pytest.raises(ValueError, match="already holds 5 of the rows .*gen-00001"):
        run(engine, seed=99)
    with pytest.raises(ValueError, match="already holds"):
        run(engine, scale=1)
    assert dump(engine) == before


def test_refuses_when_a_generated_email_is_taken(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(insert(Person), [{"email": "person-000003@example.com", "name": "X"}])
    with pytest.raises(ValueError, match="person-000003@example.com"):
        run(engine)
    assert counts(engine)["billing_workspace"] == 0


@pytest.mark.parametrize("scoped", [False, True], ids=["session", "scoped_session"])
def test_works_in_an_orm_session(engine: Engine, scoped: bool) -> None:
    session = scoped_session(sessionmaker(engine)) if scoped else Session(engine)
    summary = generate(session, seed=1, scale="tiny", tz=TZ, now=NOW)
    session.commit()
    session.close()
    assert counts(engine) == summary.by_table()


def test_progress_counts_every_row_up_to_the_total(engine: Engine) -> None:
    calls: list[tuple[int, int]] = []
    summary = run(engine, scale=1, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, summary.rows)
    assert calls[-1] == (summary.rows, summary.rows)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scale": "huge"}, "unknown scale 'huge'"),
        ({"scale": 0}, "at least 1 workspace"),
        ({"scale": True}, "unknown scale True"),
        ({"now": datetime(2026, 6, 15)}, "timezone-aware"),
        ({"now": datetime(2023, 4, 1, tzinfo=UTC)}, "cut-over"),
    ],
)
def test_bad_arguments_are_refused(engine: Engine, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(engine, **options)
    assert counts(engine)["billing_workspace"] == 0


def test_cutover_is_the_rules_default() -> None:
    assert CUTOVER.isoformat() == "2023-03-01"


def test_a_rules_file_with_another_cutover_moves_the_data_around_it(engine: Engine) -> None:
    """``flask billing generate`` passes the rules' ``cutover_date``; both variants straddle it."""
    run(engine, cutover=date(2024, 7, 1))
    with Session(engine) as session:
        created = sorted(session.scalars(select(Workspace.created_at)))
    cutover = datetime(2024, 6, 30, 22, tzinfo=UTC)  # 2024-07-01 00:00 in Berlin (summer)
    assert cutover in created, "one workspace is created exactly at the rules' cut-over"
    assert 1 <= sum(instant < cutover for instant in created) < len(created) / 2
