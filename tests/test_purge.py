"""Removing inactive workspace members: preview, race safety, owners, history, audit, CLI.

Worked out by hand on the demo data (examples/backoffice/demo_data.yaml) at
NOW (25 November 2026).  acme's members: Frank (owner, no team), Gerda (no
team), Anna (sales, support), Bob (left sales on 30 September), Chris
(sales), Dora (support), Emil (only in ``legacy``, archived since 15
October).  So Bob, Emil and Gerda are inactive; Frank is kept as the owner;
Anna, Chris and Dora are kept for their active teams.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from plugin.models import (
    AuditEntry,
    Person,
    Team,
    TeamMembership,
    Workspace,
    WorkspaceAccess,
)
from plugin.services.licences import count_licences
from plugin.services.periods import Month
from plugin.services.purge import (
    InactiveMember,
    KeptMember,
    UnknownWorkspaceId,
    preview_purge,
    purge_inactive,
)
from plugin.services.teams import archive_teams, resolve_teams
from tests.conftest import REPOSITORY, RULES_PATH
from tests.helpers import count_statements, snapshot

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
ACTOR = "alice@backoffice.example"
DOMAIN = "@mueller-soehne.example"
INACTIVE_ACME = ["bob" + DOMAIN, "emil" + DOMAIN, "gerda" + DOMAIN]
KEPT_ACME = [
    ("anna" + DOMAIN, "in active team(s) sales, support"),
    ("chris@consulting.example", "in active team(s) sales"),
    ("dora" + DOMAIN, "in active team(s) support"),
    ("frank" + DOMAIN, "workspace owner"),
]


@pytest.fixture(autouse=True)
def demo(demo_cli):
    """Every test starts from the demo data."""
    return demo_cli


def workspace_id(session, key: str) -> int:
    return session.scalar(select(Workspace.id).where(Workspace.key == key))


def person_id(session, email: str) -> int:
    return session.scalar(select(Person.id).where(Person.email == email))


def members_now(session, key: str, at: datetime = NOW) -> list[str]:
    """E-mails with open access to workspace ``key`` at ``at``."""
    return list(
        session.scalars(
            select(Person.email)
            .join(WorkspaceAccess, WorkspaceAccess.person_id == Person.id)
            .join(Workspace, Workspace.id == WorkspaceAccess.workspace_id)
            .where(
                Workspace.key == key,
                WorkspaceAccess.granted_at <= at,
                (WorkspaceAccess.revoked_at.is_(None)) | (WorkspaceAccess.revoked_at > at),
            )
            .order_by(Person.email)
        )
    )


def emails(members: tuple[InactiveMember, ...]) -> list[str]:
    return [member.email for member in members]


def every_month(session, tz, first: str = "2022-05", last: str = "2026-11") -> dict:
    month, stop, result = Month.parse(first), Month.parse(last), {}
    while month <= stop:
        start, end = month.bounds(tz)
        result[str(month)] = count_licences(session, start, end)
        month = month.next()
    return result


# Preview ------------------------------------------------------------------


def test_preview_lists_who_goes_and_who_stays_and_why(session):
    preview = preview_purge(session, workspace_id(session, "acme"), NOW)
    assert preview.workspace_key == "acme"
    assert emails(preview.removed) == INACTIVE_ACME
    emil = preview.removed[1]
    assert (emil.name, emil.archived_teams) == ("Emil Brandt", ("legacy",))
    assert [(kept.email, kept.reason) for kept in preview.kept] == KEPT_ACME
    frank = preview.kept[-1]
    assert frank == KeptMember(frank.person_id, "frank" + DOMAIN, "Frank Müller", True, ())
    assert preview.expected == {person_id(session, email) for email in INACTIVE_ACME}


def test_preview_of_other_workspaces(session):
    nordwind = preview_purge(session, workspace_id(session, "nordwind"), NOW)
    # fleet was archived on 10 November: Ivan is in no active team any more.
    assert emails(nordwind.removed) == ["ivan@nordwind.example"]
    assert nordwind.removed[0].archived_teams == ("fleet",)
    globex = preview_purge(session, workspace_id(session, "globex"), NOW)
    assert emails(globex.removed) == ["mo@globex.example"]
    initech = preview_purge(session, workspace_id(session, "initech"), NOW)
    assert (initech.removed, len(initech.kept)) == ((), 2)


def test_preview_changes_nothing_and_takes_three_queries(session):
    before = snapshot(session)
    acme = workspace_id(session, "acme")
    assert count_statements(session, lambda: preview_purge(session, acme, NOW)) == 3
    assert snapshot(session) == before


# Removal ------------------------------------------------------------------


def test_purge_revokes_access_and_ends_archived_memberships(session):
    acme = workspace_id(session, "acme")
    result = purge_inactive(session, acme, now=NOW, actor=ACTOR)
    session.commit()
    assert emails(result.removed) == INACTIVE_ACME
    assert result.removed[1].archived_teams == ("legacy",)
    assert (result.kept_since_preview, result.members_left) == ((), 4)
    assert members_now(session, "acme") == [email for email, _ in KEPT_ACME]
    # Closed at NOW, not deleted: the history before NOW is intact.
    revoked = session.execute(
        select(Person.email, WorkspaceAccess.revoked_at)
        .join(Person, Person.id == WorkspaceAccess.person_id)
        .where(WorkspaceAccess.workspace_id == acme, WorkspaceAccess.revoked_at.is_not(None))
        .order_by(Person.email)
    ).all()
    assert [tuple(row) for row in revoked] == [(email, NOW) for email in INACTIVE_ACME]
    legacy = resolve_teams(session, [("acme", "legacy")])[("acme", "legacy")]
    emil = session.scalar(select(TeamMembership).where(TeamMembership.team_id == legacy))
    assert emil.left_at == NOW
    assert emil.joined_at < NOW
    # Bob's old sales membership keeps its own end.
    bob = session.scalar(
        select(TeamMembership.left_at).where(
            TeamMembership.person_id == person_id(session, "bob" + DOMAIN)
        )
    )
    assert bob == datetime(2026, 9, 29, 22, tzinfo=UTC)


def test_other_workspaces_are_untouched(session):
    before = {key: members_now(session, key) for key in ("nordwind", "globex", "initech")}
    purge_inactive(session, workspace_id(session, "acme"), now=NOW, actor=ACTOR)
    session.commit()
    # Chris keeps nordwind, where he is in an active team too.
    assert {key: members_now(session, key) for key in before} == before


def test_purging_twice_removes_nobody_the_second_time(session):
    acme = workspace_id(session, "acme")
    purge_inactive(session, acme, now=NOW, actor=ACTOR)
    session.commit()
    before = snapshot(session)
    again = purge_inactive(session, acme, now=NOW + timedelta(hours=1), actor=ACTOR)
    session.commit()
    assert (again.removed, again.members_left) == ((), 4)
    assert snapshot(session) == before


def test_owners_are_never_removed(session):
    globex = workspace_id(session, "globex")
    research = resolve_teams(session, [("globex", "research")])[("globex", "research")]
    archive_teams(session, [research], now=NOW - timedelta(days=1), actor=ACTOR)
    session.commit()
    preview = preview_purge(session, globex, NOW)
    # Karl, the owner, is now in no active team; Lena is still in ops.
    assert [(kept.email, kept.reason) for kept in preview.kept] == [
        ("karl@globex.example", "workspace owner"),
        ("lena@globex.example", "in active team(s) ops"),
    ]
    result = purge_inactive(session, globex, now=NOW, actor=ACTOR, expected=preview.expected)
    session.commit()
    assert emails(result.removed) == ["mo@globex.example"]
    assert members_now(session, "globex") == ["karl@globex.example", "lena@globex.example"]
    karl = person_id(session, "karl@globex.example")
    karls = session.scalar(
        select(TeamMembership.left_at).where(
            TeamMembership.team_id == research, TeamMembership.person_id == karl
        )
    )
    assert karls is None


def test_people_who_leave_several_archived_teams_get_them_in_key_order(session):
    acme = workspace_id(session, "acme")
    # Made in reverse key order, so the ids and the rows' order are not the keys' order.
    zz, aa = (
        Team(workspace_id=acme, key=key, name=key, created_at=NOW - timedelta(days=60))
        for key in ("zz-old", "aa-old")
    )
    session.add_all([zz, aa])
    session.flush()
    joined = NOW - timedelta(days=30)
    for email, teams in [("bob", (zz, aa)), ("gerda", (zz, aa)), ("emil", (zz,))]:
        session.add_all(
            TeamMembership(
                team_id=team.id, person_id=person_id(session, email + DOMAIN), joined_at=joined
            )
            for team in teams
        )
    archive_teams(session, [zz.id, aa.id], now=NOW - timedelta(days=1), actor=ACTOR)
    session.commit()
    left = {
        "bob" + DOMAIN: ("aa-old", "zz-old"),
        "emil" + DOMAIN: ("legacy", "zz-old"),
        "gerda" + DOMAIN: ("aa-old", "zz-old"),
    }
    preview = preview_purge(session, acme, NOW)
    assert {member.email: member.archived_teams for member in preview.removed} == left
    result = purge_inactive(session, acme, now=NOW, actor=ACTOR, expected=preview.expected)
    session.commit()
    assert {member.email: member.archived_teams for member in result.removed} == left
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "purge_inactive"))
    assert entry.before["removed"] == {email: list(teams) for email, teams in left.items()}
    still_open = session.scalar(
        select(func.count())
        .select_from(TeamMembership)
        .where(TeamMembership.team_id.in_([zz.id, aa.id]), TeamMembership.left_at.is_(None))
    )
    assert still_open == 0


def test_an_owner_cannot_be_forced_out_through_expected(session):
    acme = workspace_id(session, "acme")
    frank = person_id(session, "frank" + DOMAIN)
    result = purge_inactive(session, acme, now=NOW, actor=ACTOR, expected={frank})
    assert result.removed == ()
    assert emails(result.kept_since_preview) == ["frank" + DOMAIN]


# Race safety ----------------------------------------------------------------


def test_a_member_who_joins_an_active_team_after_the_preview_is_kept(session):
    acme = workspace_id(session, "acme")
    preview = preview_purge(session, acme, NOW)
    session.rollback()  # the preview page is one request, the confirmation another
    gerda = person_id(session, "gerda" + DOMAIN)
    sales = resolve_teams(session, [("acme", "sales")])[("acme", "sales")]
    session.rollback()
    with Session(session.get_bind()) as other:  # somebody else, on another connection
        other.add(
            TeamMembership(team_id=sales, person_id=gerda, joined_at=NOW + timedelta(minutes=1))
        )
        other.commit()
    confirm = NOW + timedelta(minutes=2)
    result = purge_inactive(session, acme, now=confirm, actor=ACTOR, expected=preview.expected)
    session.commit()
    assert emails(result.removed) == ["bob" + DOMAIN, "emil" + DOMAIN]
    assert emails(result.kept_since_preview) == ["gerda" + DOMAIN]
    assert "gerda" + DOMAIN in members_now(session, "acme", confirm)
    summary = session.scalar(select(AuditEntry.detail).where(AuditEntry.action == "purge_inactive"))
    assert summary.endswith("kept because no longer inactive since the preview: gerda" + DOMAIN)


def test_only_people_shown_in_the_preview_are_removed(session):
    acme = workspace_id(session, "acme")
    preview = preview_purge(session, acme, NOW)
    # After the preview Dora leaves support, so she is inactive now, but nobody confirmed that.
    dora = person_id(session, "dora" + DOMAIN)
    session.execute(
        TeamMembership.__table__.update()
        .where(TeamMembership.person_id == dora)
        .values(left_at=NOW + timedelta(minutes=1))
    )
    bob = person_id(session, "bob" + DOMAIN)
    confirm = NOW + timedelta(minutes=2)
    result = purge_inactive(session, acme, now=confirm, actor=ACTOR, expected={bob})
    assert emails(result.removed) == ["bob" + DOMAIN]
    result = purge_inactive(session, acme, now=confirm, actor=ACTOR, expected=preview.expected)
    assert emails(result.removed) == ["emil" + DOMAIN, "gerda" + DOMAIN]
    assert "dora" + DOMAIN in members_now(session, "acme", confirm)
    assert purge_inactive(session, acme, now=confirm, actor=ACTOR, expected=set()).removed == ()


# History ------------------------------------------------------------------


def test_past_months_bill_and_export_the_same_after_purge_and_archive(app, session):
    exports = pytest.importorskip("plugin.services.exports")
    rules = app.extensions["billing"].rules()
    exported = [("acme", "2026-10"), ("acme", "2026-09"), ("globex", "2025-12")]
    exported += [("nordwind", "2026-10"), ("nordwind", "2025-03")]

    def export(key: str, month: str) -> bytes:
        out = io.BytesIO()
        exports.export_licence_holders(session, rules, key, Month.parse(month), NOW, "csv", out)
        return out.getvalue()

    before = every_month(session, rules.zoneinfo)
    files = {item: export(*item) for item in exported}
    assert b"emil" + DOMAIN.encode() in files[("acme", "2026-10")]
    assert b"mo@globex.example" in files[("globex", "2025-12")]
    teams = resolve_teams(session, [("acme", "sales"), ("nordwind", "dispatch")])
    archive_teams(session, teams.values(), now=NOW - timedelta(days=1), actor=ACTOR)
    for key in ("acme", "nordwind", "globex", "initech"):
        purge_inactive(session, workspace_id(session, key), now=NOW, actor=ACTOR)
    session.commit()
    # sales archived: Chris is in no active team of acme (nor of nordwind) any more.
    assert members_now(session, "acme") == ["anna" + DOMAIN, "dora" + DOMAIN, "frank" + DOMAIN]
    assert members_now(session, "nordwind") == ["hanna@nordwind.example", "jule@nordwind.example"]
    assert every_month(session, rules.zoneinfo) == before
    assert {item: export(*item) for item in exported} == files


# Set-based ----------------------------------------------------------------


def test_statements_do_not_grow_with_the_number_of_members(session):
    acme = workspace_id(session, "acme")
    few = count_statements(session, lambda: purge_inactive(session, acme, now=NOW, actor=ACTOR))
    session.rollback()
    people = session.scalars(
        insert(Person).returning(Person.id),
        [{"email": f"idle{n}@mueller-soehne.example", "name": f"Idle {n}"} for n in range(40)],
    ).all()
    granted = NOW - timedelta(days=30)
    session.execute(
        insert(WorkspaceAccess),
        [{"workspace_id": acme, "person_id": pid, "granted_at": granted} for pid in people],
    )
    session.commit()
    result = []
    many = count_statements(
        session,
        lambda: result.append(purge_inactive(session, acme, now=NOW, actor=ACTOR)),
    )
    assert len(result[0].removed) == 43
    assert many == few


def test_the_stamp_triggers_run_once_per_statement_not_per_member(session):
    """On PostgreSQL the workspace stamps' triggers (migration 0016) run once per UPDATE,
    not once per revoked access and ended membership: a purge of 110,000 members
    ran them 110,000 times and more, a third of the time of its two UPDATEs."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite's row triggers run in the app's own process, a few µs a row")
    session.execute(text("SET LOCAL track_functions = 'pl'"))
    result = purge_inactive(session, workspace_id(session, "acme"), now=NOW, actor=ACTOR)
    calls = session.scalar(
        text(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions"
            " WHERE funcname LIKE 'billing%stamp%'"
        )
    )
    assert len(result.removed) == 3
    assert calls == 2  # the access UPDATE and the membership UPDATE


# Audit --------------------------------------------------------------------


def purge_entries(session) -> int:
    """Audit entries of any purge action (the demo data has entries of its own)."""
    return session.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.action.like("purge%"))
    )


def test_one_audit_entry_with_every_removed_person_before_and_after(session):
    acme = workspace_id(session, "acme")
    purge_inactive(session, acme, now=NOW, actor=ACTOR)
    session.commit()
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "purge_inactive"))
    assert (entry.actor, entry.workspace_id, entry.target) == (ACTOR, acme, "acme")
    assert list(entry.before["removed"]) == INACTIVE_ACME
    # Each removed person with the archived teams they left; after, only the count.
    teams_before = {"bob" + DOMAIN: [], "emil" + DOMAIN: ["legacy"], "gerda" + DOMAIN: []}
    assert entry.before == {"members": 7, "removed": teams_before}
    assert entry.after == {"members": 4}
    assert entry.detail == f"removed 3 inactive member(s) at {NOW.isoformat()}"
    assert purge_entries(session) == 1


def test_a_purge_that_removes_nobody_writes_no_audit_entry(session):
    purge_inactive(session, workspace_id(session, "initech"), now=NOW, actor=ACTOR)
    session.commit()
    assert purge_entries(session) == 0


def test_unknown_workspace_id(session):
    with pytest.raises(UnknownWorkspaceId, match="no workspace with the id 987654"):
        preview_purge(session, 987654, NOW)
    with pytest.raises(UnknownWorkspaceId):
        purge_inactive(session, 987654, now=NOW, actor=ACTOR)


# CLI ----------------------------------------------------------------------


def test_cli_dry_run_lists_and_changes_nothing(demo_cli, session):
    before = snapshot(session)
    result = demo_cli("purge-inactive", "acme", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "Would remove 3 inactive member(s) of acme:\n"
        "  bob@mueller-soehne.example\n"
        "  emil@mueller-soehne.example  (leaves archived team(s) legacy)\n"
        "  gerda@mueller-soehne.example\n"
        "Kept 4:\n"
        "  anna@mueller-soehne.example  (in active team(s) sales, support)\n"
        "  chris@consulting.example  (in active team(s) sales)\n"
        "  dora@mueller-soehne.example  (in active team(s) support)\n"
        "  frank@mueller-soehne.example  (workspace owner)\n"
        "Dry run: nothing was changed.\n"
    )
    session.expire_all()
    assert snapshot(session) == before


def test_cli_yes_removes_and_lists(demo_cli, session):
    result = demo_cli("purge-inactive", "acme", "--yes")
    assert result.exit_code == 0, result.output
    assert result.output.endswith(
        "Removed 3 inactive member(s) of acme:\n"
        "  bob@mueller-soehne.example\n"
        "  emil@mueller-soehne.example\n"
        "  gerda@mueller-soehne.example\n"
        "acme now has 4 member(s).\n"
    )
    assert members_now(session, "acme", datetime.now(UTC)) == [email for email, _ in KEPT_ACME]
    actor = session.scalar(select(AuditEntry.actor).where(AuditEntry.action == "purge_inactive"))
    assert actor.startswith("cli:")


def test_cli_without_yes_and_without_a_terminal_refuses(demo_cli, session):
    before = snapshot(session)
    result = demo_cli("purge-inactive", "acme")
    assert result.exit_code == 1
    assert "Would remove 3 inactive member(s) of acme:" in result.output
    assert "Error: not removing anybody without confirmation" in result.output
    assert "pass --yes" in result.output
    session.expire_all()
    assert snapshot(session) == before


def test_cli_without_stdin_refuses_rather_than_hangs(demo_cli, database_url, session):
    before = snapshot(session)
    session.rollback()
    env = {**os.environ, "DEMO_DATABASE_URL": database_url, "BILLING_RULES_PATH": str(RULES_PATH)}
    command = [sys.executable, "-m", "flask", "--app", "examples.backoffice:create_app"]
    done = subprocess.run(
        [*command, "billing", "purge-inactive", "acme"],
        cwd=REPOSITORY,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "no terminal to ask on" in done.stderr
    session.expire_all()
    assert snapshot(session) == before


@pytest.fixture
def terminal(monkeypatch):
    monkeypatch.setattr("plugin.cli.members.stdin_is_terminal", lambda: True)


def test_cli_on_a_terminal_asks_first(app, terminal, session):
    runner = app.test_cli_runner()
    before = snapshot(session)
    declined = runner.invoke(args=["billing", "purge-inactive", "acme"], input="n\n")
    assert declined.exit_code == 1
    assert "Remove these 3 member(s) from acme? [y/N]: n" in declined.output
    assert "Aborted!" in declined.output
    session.expire_all()
    assert snapshot(session) == before
    accepted = runner.invoke(args=["billing", "purge-inactive", "acme"], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "Removed 3 inactive member(s) of acme:" in accepted.output
    assert len(members_now(session, "acme", datetime.now(UTC))) == 4


def test_cli_nothing_to_remove(demo_cli):
    result = demo_cli("purge-inactive", "initech")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Nothing to remove: initech has no inactive members.\n")


def test_cli_unknown_workspace_fails_and_changes_nothing(demo_cli, session):
    before = snapshot(session)
    for args in (["ghost"], ["ghost", "--yes"], ["ghost", "--dry-run"]):
        result = demo_cli("purge-inactive", *args)
        assert result.exit_code == 1
        assert "Error: no workspace with the key 'ghost'; nothing was changed." in result.output
    session.expire_all()
    assert snapshot(session) == before
