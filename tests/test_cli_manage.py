"""``flask billing`` user-management commands: what they change, and refusals on stderr.

The commands call :mod:`plugin.api`; the services' behaviour is tested in
test_user_management.py.  Here: each command does its change and says so,
and every refusal goes to standard error with exit status 1 and changes
nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from plugin.models import AuditEntry, Person, Team, TeamMembership, Workspace
from tests.helpers import snapshot

GERDA = "gerda@mueller-soehne.example"


@pytest.fixture(autouse=True)
def demo(demo_cli):
    return demo_cli


def ok(cli, *args: str) -> str:
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result.stdout


def test_a_workspace_from_creation_to_removing_a_member(cli, session):
    assert ok(
        cli, "create-workspace", "umbrella", "Umbrella AG", "--owner", "Olga@Umbrella.example"
    ).startswith("Created workspace umbrella (Umbrella AG) at ")
    assert ok(cli, "rename-workspace", "umbrella", "Umbrella SE") == (
        "Renamed umbrella from 'Umbrella AG' to 'Umbrella SE'\n"
    )
    assert ok(cli, "create-team", "umbrella", "ops", "Operations") == "Created team umbrella/ops\n"
    assert ok(cli, "rename-team", "umbrella", "ops", "Betrieb") == (
        "Renamed umbrella/ops from 'Operations' to 'Betrieb'\n"
    )
    assert ok(cli, "invite", "umbrella", "piet@umbrella.example", "--name", "Piet").startswith(
        "Invited piet@umbrella.example to umbrella at "
    )
    assert ok(cli, "add-to-team", "umbrella", "ops", "piet@umbrella.example").startswith(
        "Added piet@umbrella.example to umbrella/ops at "
    )
    assert ok(cli, "add-to-team", "umbrella", "ops", "piet@umbrella.example") == (
        "piet@umbrella.example is already in ops: nothing changed.\n"
    )
    assert ok(cli, "add-owner", "umbrella", "piet@umbrella.example") == (
        "piet@umbrella.example now owns umbrella\n"
    )
    assert ok(cli, "remove-owner", "umbrella", "olga@umbrella.example") == (
        "olga@umbrella.example no longer owns umbrella\n"
    )
    assert ok(cli, "remove-from-team", "umbrella", "ops", "piet@umbrella.example").startswith(
        "Took piet@umbrella.example out of umbrella/ops at "
    )
    assert ok(cli, "remove-member", "umbrella", "olga@umbrella.example").startswith(
        "Removed olga@umbrella.example from umbrella at "
    )
    workspace = session.scalar(select(Workspace).where(Workspace.key == "umbrella"))
    assert workspace.name == "Umbrella SE"
    assert [owner.email for owner in workspace.owners] == ["piet@umbrella.example"]
    team = session.scalar(select(Team).where(Team.workspace_id == workspace.id))
    assert (team.key, team.name) == ("ops", "Betrieb")
    left = session.scalar(select(TeamMembership.left_at).where(TeamMembership.team_id == team.id))
    assert left is not None
    actors = set(
        session.scalars(select(AuditEntry.actor).where(AuditEntry.workspace_id == workspace.id))
    )
    assert len(actors) == 1
    assert actors.pop().startswith("cli:")


def test_people_are_renamed_and_get_new_addresses(cli, session):
    assert ok(cli, "rename-person", GERDA, "Gerda Vogel-Lang") == (
        f"Renamed {GERDA} from 'Gerda Vogel' to 'Gerda Vogel-Lang'\n"
    )
    assert ok(cli, "change-email", "GERDA@mueller-soehne.example", "Gerda@Vogel.example") == (
        f"Changed {GERDA} to gerda@vogel.example\n"
    )
    person = session.scalar(select(Person).where(Person.email == "gerda@vogel.example"))
    assert person.name == "Gerda Vogel-Lang"


def test_at_takes_a_date_in_the_billing_time_zone(cli, session):
    ok(cli, "add-to-team", "acme", "sales", GERDA, "--at", "2026-11-20")
    joined = session.scalar(
        select(TeamMembership.joined_at).join(Person).where(Person.email == GERDA)
    )
    assert joined == datetime(2026, 11, 19, 23, tzinfo=UTC)


REFUSED = [
    (("create-workspace", "acme", "Again"), "there is already a workspace with the key 'acme'"),
    (("create-workspace", "Bad Key", "X"), "'Bad Key' is not a valid workspace key"),
    (("create-workspace", "newco", "New", "--owner", "not-an-address"), "not a valid e-mail"),
    (("rename-workspace", "nope", "X"), "no workspace with the key 'nope'"),
    (("rename-workspace", "acme", ""), "the workspace name must not be empty"),
    (("add-owner", "acme", "hanna@nordwind.example"), "not a member of acme: invite them first"),
    (("remove-owner", "acme", "frank@mueller-soehne.example"), "is the last owner of acme"),
    (("create-team", "acme", "sales", "Sales"), "already has a team with the key 'sales'"),
    (("create-team", "acme", "new", "New", "--at", "2020-01-01"), "starts at"),
    (("rename-team", "acme", "nope", "X"), "no team 'nope' in workspace 'acme'"),
    (("invite", "acme", "a@b.example, c@d.example"), "not a valid e-mail address"),
    (("add-to-team", "acme", "sales", "hanna@nordwind.example"), "invite them first"),
    (("add-to-team", "acme", "sales", GERDA, "--at", "2099-01-01"), "is in the future"),
    (("remove-from-team", "acme", "sales", "nobody@x.example"), "nobody has the e-mail address"),
    (("remove-member", "acme", "frank@mueller-soehne.example"), "is an owner of acme"),
    (("rename-person", "nobody@x.example", "N"), "nobody has the e-mail address"),
    (
        ("change-email", GERDA, "Anna@Mueller-Soehne.example"),
        "anna@mueller-soehne.example is already the e-mail address of somebody else",
    ),
]


@pytest.mark.parametrize(("args", "message"), REFUSED)
def test_refusals_go_to_stderr_with_status_1_and_change_nothing(cli, session, args, message):
    before = snapshot(session)
    result = cli(*args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stderr.rstrip().endswith("nothing was changed.")
    assert result.stdout == ""
    session.expire_all()
    assert snapshot(session) == before


def test_a_malformed_instant_is_a_usage_error(cli, session):
    before = snapshot(session)
    result = cli("add-to-team", "acme", "sales", GERDA, "--at", "20.11.2026")
    assert result.exit_code == 2
    assert "Not a valid date or instant" in result.stderr
    session.expire_all()
    assert snapshot(session) == before
