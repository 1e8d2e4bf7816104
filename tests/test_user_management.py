"""User-management services through the public API: licence consequences computed by hand.

On the demo data (examples/backoffice/demo_data.yaml), acme bills user
licences.  October 2026 bills Anna, Chris, Dora (sales, support) and Emil
(legacy, archived from 15 October): 4 people, 3 teams active.  November
bills Anna, Chris and Dora: 3 people, 2 teams (sales, support).  Frank (the
owner) and Gerda are members in no team: never billed.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from plugin import api
from plugin.models import (
    AuditEntry,
    Person,
    Team,
    TeamMembership,
    Workspace,
    WorkspaceAccess,
    WorkspaceOwner,
)
from plugin.services import members
from plugin.services.licences import count_licences
from plugin.services.periods import Month
from plugin.types import utcnow
from tests.helpers import snapshot

ACTOR = "support@backoffice.example"
NOV_10 = datetime(2026, 11, 10, 9, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, 9, tzinfo=UTC)
ANNA = "anna@mueller-soehne.example"
DORA = "dora@mueller-soehne.example"
GERDA = "gerda@mueller-soehne.example"
FRANK = "frank@mueller-soehne.example"


@pytest.fixture(autouse=True)
def demo(demo_cli):
    return demo_cli


@pytest.fixture
def tz(app):
    return app.extensions["billing"].rules().zoneinfo


def licences(session, tz, month: str, key: str) -> tuple[int, int]:
    """(billed teams, billed users) of workspace ``key`` in ``month``."""
    start, end = Month.parse(month).bounds(tz)
    ws = session.scalar(select(Workspace.id).where(Workspace.key == key))
    teams, users = count_licences(session, start, end, [ws])
    return teams.get(ws, 0), users.get(ws, 0)


def last_audit(session, action: str) -> AuditEntry:
    return session.scalar(
        select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id.desc())
    )


def open_memberships(session, key: str, team: str, email: str) -> int:
    return session.scalar(
        select(func.count())
        .select_from(TeamMembership)
        .join(Team, Team.id == TeamMembership.team_id)
        .join(Workspace, Workspace.id == Team.workspace_id)
        .join(Person, Person.id == TeamMembership.person_id)
        .where(
            Workspace.key == key,
            Team.key == team,
            Person.email == email,
            TeamMembership.left_at.is_(None),
        )
    )


# Licence consequences ------------------------------------------------------------


def test_a_member_added_on_the_20th_is_billed_that_month(session, tz):
    assert licences(session, tz, "2026-11", "acme") == (2, 3)
    change = api.add_to_team(
        workspace="acme", team="sales", email="Gerda@Mueller-Soehne.EXAMPLE", actor=ACTOR, at=NOV_20
    )
    assert change.changed
    assert change.target == f"acme/sales/{GERDA}"
    # Anna, Chris, Dora and now Gerda; October is recomputed unchanged.
    assert licences(session, tz, "2026-11", "acme") == (2, 4)
    assert licences(session, tz, "2026-12", "acme") == (2, 4)
    assert licences(session, tz, "2026-10", "acme") == (3, 4)
    entry = last_audit(session, "add_to_team")
    assert (entry.actor, entry.target) == (ACTOR, f"acme/sales/{GERDA}")
    assert entry.before == {"in_team": False}
    assert entry.after == {"in_team": True, "since": NOV_20.isoformat()}


def test_a_member_taken_out_on_the_10th_is_billed_that_month_and_not_the_next(session, tz):
    change = api.remove_from_team(
        workspace="acme", team="support", email=DORA, actor=ACTOR, at=NOV_10
    )
    assert change.changed
    # Dora was in support until the 10th: still billed in November, not in December.
    assert licences(session, tz, "2026-11", "acme") == (2, 3)
    assert licences(session, tz, "2026-12", "acme") == (2, 2)
    assert licences(session, tz, "2026-10", "acme") == (3, 4)
    # She stays a workspace member.
    assert session.scalar(
        select(func.count())
        .select_from(WorkspaceAccess)
        .join(Person)
        .where(Person.email == DORA, WorkspaceAccess.revoked_at.is_(None))
    )


def test_removing_a_member_ends_access_and_every_membership_there(session, tz):
    change = api.remove_member(workspace="acme", email=ANNA, actor=ACTOR, at=NOV_10)
    assert change.changed
    assert "leaving sales, support" in change.message
    # Anna (sales and support) is billed in November, not in December: Chris and Dora.
    assert licences(session, tz, "2026-11", "acme") == (2, 3)
    assert licences(session, tz, "2026-12", "acme") == (2, 2)
    assert open_memberships(session, "acme", "sales", ANNA) == 0
    assert open_memberships(session, "acme", "support", ANNA) == 0
    revoked = session.scalars(
        select(WorkspaceAccess.revoked_at).join(Person).where(Person.email == ANNA)
    ).all()
    assert revoked == [NOV_10]
    entry = last_audit(session, "remove_member")
    assert entry.before == {"member": True, "teams": ["sales", "support"]}
    assert entry.after == {"member": False, "teams": [], "until": NOV_10.isoformat()}


def test_invite_creates_the_person_grants_access_and_bills_nothing(session, tz):
    invitation = api.invite(
        workspace="acme", email="Paula@Mueller-Soehne.example", name="Paula Kern", actor=ACTOR
    )
    assert invitation.changed
    assert invitation.person_created
    person = session.scalar(select(Person).where(Person.email == "paula@mueller-soehne.example"))
    assert person.name == "Paula Kern"
    assert licences(session, tz, "2026-12", "acme") == (2, 3)
    again = api.invite(workspace="acme", email="PAULA@mueller-soehne.example", actor=ACTOR)
    assert not again.changed
    assert not again.person_created
    assert again.person_id == person.id
    # Chris is in acme already and now joins globex: the same person, billed in each.
    chris = api.invite(workspace="globex", email="chris@consulting.example", actor=ACTOR)
    assert chris.changed
    assert not chris.person_created
    api.add_to_team(workspace="globex", team="ops", email="chris@consulting.example", actor=ACTOR)
    assert licences(session, tz, "2026-12", "globex")[1] == 3


def test_a_hosts_signup_flow_bills_from_the_signup_month(session, tz):
    signup = datetime(2026, 11, 20, 8, tzinfo=UTC)
    row = api.create_workspace(
        key="umbrella",
        name="Umbrella AG",
        owner_email="Olga@Umbrella.example",
        owner_name="Olga",
        actor="signup-service",
        at=signup,
    )
    assert (row.key, row.name, row.created_at) == ("umbrella", "Umbrella AG", signup)
    api.create_team(
        workspace="umbrella", key="general", name="General", actor="signup-service", at=signup
    )
    api.add_to_team(
        workspace="umbrella",
        team="general",
        email="olga@umbrella.example",
        actor="signup-service",
        at=signup,
    )
    workspace = session.scalar(select(Workspace).where(Workspace.key == "umbrella"))
    assert [owner.email for owner in workspace.owners] == ["olga@umbrella.example"]
    # Created after the cut-over: team licences, one team from November on.
    assert licences(session, tz, "2026-11", "umbrella") == (1, 1)
    assert licences(session, tz, "2026-10", "umbrella") == (0, 0)
    actions = session.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.workspace_id == workspace.id)
        .order_by(AuditEntry.id)
    ).all()
    assert actions == [
        "create_workspace",
        "invite_member",
        "add_owner",
        "create_team",
        "add_to_team",
    ]


def test_a_team_created_on_the_20th_bills_team_licences_that_month(session, tz):
    # nordwind (team licences): November bills dispatch, fleet (archived on the 10th), finance.
    assert licences(session, tz, "2026-11", "nordwind")[0] == 3
    ref = api.create_team(
        workspace="nordwind", key="sales", name="Vertrieb", actor=ACTOR, at=NOV_20
    )
    assert ref.target == "nordwind/sales"
    assert licences(session, tz, "2026-11", "nordwind")[0] == 4
    assert licences(session, tz, "2026-10", "nordwind")[0] == 2
    api.archive_team(workspace="nordwind", team="sales", actor=ACTOR, at=NOV_20 + timedelta(days=5))
    assert licences(session, tz, "2026-11", "nordwind")[0] == 4
    assert licences(session, tz, "2026-12", "nordwind")[0] == 2


def test_renames_are_audited_and_change_no_licence(session, tz):
    before = licences(session, tz, "2026-11", "acme")
    assert api.rename_workspace(workspace="acme", name="Müller & Töchter", actor=ACTOR).changed
    assert api.rename_team(workspace="acme", team="sales", name="Verkauf", actor=ACTOR).changed
    assert api.rename_person(email=DORA, name="Dora Weiß-Berg", actor=ACTOR).changed
    assert licences(session, tz, "2026-11", "acme") == before
    assert last_audit(session, "rename_workspace").before == {"name": "Müller & Söhne GmbH"}
    assert last_audit(session, "rename_team").after == {"name": "Verkauf"}
    assert last_audit(session, "rename_person").before == {"name": "Dora Weiß"}
    same = api.rename_team(workspace="acme", team="sales", name="  Verkauf ", actor=ACTOR)
    assert not same.changed


def test_changing_an_email_address_keeps_the_person(session):
    dora_id = session.scalar(select(Person.id).where(Person.email == DORA))
    change = api.change_email(
        email="DORA@mueller-soehne.example", new_email="Dora.Weiss@Example.org", actor=ACTOR
    )
    assert change.changed
    assert (
        session.scalar(select(Person.email).where(Person.id == dora_id)) == "dora.weiss@example.org"
    )
    entry = last_audit(session, "change_email")
    assert (entry.before, entry.after) == ({"email": DORA}, {"email": "dora.weiss@example.org"})


# Owners ------------------------------------------------------------------------


def test_owners_must_be_members_and_the_last_owner_stays(session):
    before = snapshot(session)
    with pytest.raises(api.Conflict, match="not a member of acme: invite them first") as error:
        api.add_owner(workspace="acme", email="hanna@nordwind.example", actor=ACTOR)
    assert error.value.field == "email"
    with pytest.raises(api.Conflict, match="last owner of acme"):
        api.remove_owner(workspace="acme", email=FRANK, actor=ACTOR)
    with pytest.raises(api.Conflict, match="is an owner of acme"):
        api.remove_member(workspace="acme", email=FRANK, actor=ACTOR)
    session.expire_all()
    assert snapshot(session) == before
    assert api.add_owner(workspace="acme", email=GERDA, actor=ACTOR).changed
    assert api.remove_owner(workspace="acme", email=FRANK, actor=ACTOR).changed
    owners = session.scalars(
        select(Person.email).join(WorkspaceOwner).join(Workspace).where(Workspace.key == "acme")
    ).all()
    assert owners == [GERDA]
    entry = last_audit(session, "remove_owner")
    assert (entry.before, entry.after) == ({"owners": [FRANK, GERDA]}, {"owners": [GERDA]})


# Bad input: a clear error with its field, and nothing changed --------------------------


REFUSALS = [
    (
        lambda: api.invite(workspace="nope", email=GERDA, actor=ACTOR),
        "workspace",
        "no workspace with the key 'nope'",
    ),
    (
        lambda: api.invite(workspace="Bad Key", email=GERDA, actor=ACTOR),
        "workspace",
        "not a valid workspace key",
    ),
    (
        lambda: api.invite(workspace="acme", email="not-an-address", actor=ACTOR),
        "email",
        "not a valid e-mail address",
    ),
    (
        lambda: api.invite(workspace="acme", email="a@b.example\r\nBcc: x@y.example", actor=ACTOR),
        "email",
        "contains a line break (U+000D) at character 12",
    ),
    (
        lambda: api.add_to_team(workspace="acme", team="nope", email=GERDA, actor=ACTOR),
        "team",
        "no team 'nope' in workspace 'acme'",
    ),
    (
        lambda: api.add_to_team(
            workspace="acme", team="sales", email="nobody@x.example", actor=ACTOR
        ),
        "email",
        "nobody has the e-mail address nobody@x.example",
    ),
    (
        lambda: api.add_to_team(
            workspace="acme", team="sales", email="hanna@nordwind.example", actor=ACTOR
        ),
        "email",
        "not a member of workspace acme: invite them first",
    ),
    (
        lambda: api.add_to_team(
            workspace="acme",
            team="sales",
            email=GERDA,
            actor=ACTOR,
            at=utcnow() + timedelta(hours=1),
        ),
        "at",
        "is in the future",
    ),
    (
        lambda: api.add_to_team(
            workspace="acme", team="sales", email=GERDA, actor=ACTOR, at=datetime(2026, 11, 20)
        ),
        "at",
        "not a timezone-aware instant",
    ),
    (
        lambda: api.remove_from_team(
            workspace="acme",
            team="sales",
            email="chris@consulting.example",
            actor=ACTOR,
            at=datetime(2023, 1, 15, tzinfo=UTC),
        ),
        "at",
        "starts at 2023-01-31T23:00:00+00:00, after 2023-01-15",
    ),
    (
        lambda: api.create_workspace(key="acme", name="Again", actor=ACTOR),
        "key",
        "already a workspace with the key 'acme'",
    ),
    (
        lambda: api.create_workspace(key="-x", name="X", actor=ACTOR),
        "key",
        "not a valid workspace key",
    ),
    (
        lambda: api.create_workspace(key="newco", name="   ", actor=ACTOR),
        "name",
        "must not be empty",
    ),
    (lambda: api.create_workspace(key="newco", name="x" * 201, actor=ACTOR), "name", "at most 200"),
    (lambda: api.create_workspace(key="newco", name="New\nCo", actor=ACTOR), "name", "line break"),
    (
        lambda: api.create_workspace(key="newco", name="New", owner_email="bad", actor=ACTOR),
        "owner_email",
        "not a valid e-mail address",
    ),
    (
        lambda: api.create_team(workspace="acme", key="sales", name="Sales", actor=ACTOR),
        "key",
        "already has a team with the key 'sales'",
    ),
    (
        lambda: api.rename_team(workspace="acme", team="sales", name="", actor=ACTOR),
        "name",
        "must not be empty",
    ),
    (
        lambda: api.change_email(email=DORA, new_email="ANNA@Mueller-Soehne.example", actor=ACTOR),
        "new_email",
        "anna@mueller-soehne.example is already the e-mail address of somebody else",
    ),
    (
        lambda: api.change_email(
            email=DORA, new_email="two@x.example, three@x.example", actor=ACTOR
        ),
        "new_email",
        "not a valid e-mail address",
    ),
    (
        lambda: api.rename_person(email="nobody@x.example", name="N", actor=ACTOR),
        "email",
        "nobody has the e-mail address",
    ),
]


@pytest.mark.parametrize(("call", "field", "message"), REFUSALS)
def test_refusals_name_the_field_and_change_nothing(session, call, field, message):
    before = snapshot(session)
    with pytest.raises(api.ManagementError) as error:
        call()
    assert message in str(error.value)
    assert error.value.field == field
    session.expire_all()
    assert snapshot(session) == before


def test_doing_again_what_is_done_changes_nothing(session):
    api.add_to_team(workspace="acme", team="sales", email=GERDA, actor=ACTOR)
    before = snapshot(session)
    assert not api.add_to_team(workspace="acme", team="sales", email=GERDA, actor=ACTOR).changed
    assert not api.invite(workspace="acme", email=GERDA, actor=ACTOR).changed
    assert not api.remove_from_team(
        workspace="acme", team="support", email=GERDA, actor=ACTOR
    ).changed
    assert not api.add_owner(workspace="acme", email=FRANK, actor=ACTOR).changed
    session.expire_all()
    assert snapshot(session) == before


def test_commit_false_joins_the_callers_transaction(session):
    api.invite(workspace="acme", email="late@x.example", actor=ACTOR, commit=False)
    session.rollback()
    assert session.scalar(select(Person).where(Person.email == "late@x.example")) is None


def test_the_api_works_without_a_request_with_an_explicit_session(database_url, app):
    engine = create_engine(database_url, poolclass=NullPool)
    with Session(engine) as own:
        api.invite(workspace="acme", email="host@x.example", actor="host-job", session=own)
    engine.dispose()
    session = app.extensions["sqlalchemy"].session
    assert session.scalar(select(Person.id).where(Person.email == "host@x.example"))
    assert last_audit(session, "invite_member").actor == "host-job"


# Concurrency ---------------------------------------------------------------------


def test_two_supports_adding_the_same_person_at_once_give_one_membership(database_url, backend):
    """Real concurrent transactions: the second waits for the workspace lock, then sees
    the first one's membership and changes nothing."""
    if backend != "postgresql":
        pytest.skip("SQLite serialises writers itself; the row lock is PostgreSQL's")
    engine = create_engine(database_url, poolclass=NullPool)
    first, second = Session(engine), Session(engine)
    results: dict[str, object] = {}
    first_change = members.add_to_team(
        first, workspace="acme", team="sales", email=GERDA, actor="alice", at=utcnow()
    )
    started = threading.Event()

    def other() -> None:
        started.set()
        results["second"] = members.add_to_team(
            second, workspace="acme", team="sales", email=GERDA, actor="bob", at=utcnow()
        )
        second.commit()

    thread = threading.Thread(target=other)
    thread.start()
    started.wait()
    thread.join(timeout=1)
    assert thread.is_alive(), "the second support must wait for the first one's transaction"
    first.commit()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert first_change.changed
    assert not results["second"].changed
    with Session(engine) as check:
        count = check.scalar(
            select(func.count())
            .select_from(TeamMembership)
            .join(Person)
            .where(Person.email == GERDA)
        )
        actors = check.scalars(
            select(AuditEntry.actor).where(AuditEntry.action == "add_to_team")
        ).all()
    assert count == 1
    assert actors == ["alice"]
    first.close()
    second.close()
    engine.dispose()
