"""`flask billing import`: loading workspaces, teams, people and their history."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from plugin.models import (
    AuditEntry,
    Person,
    Team,
    TeamArchivePeriod,
    TeamMembership,
    Workspace,
    WorkspaceAccess,
)
from tests.conftest import DEMO
from tests.helpers import snapshot


def write(tmp_path: Path, text: str, name: str = "import.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_demo_file_imports_everything(cli, session):
    result = cli("import", str(DEMO))
    assert result.exit_code == 0, result.output
    assert "created 15 people, 4 workspaces" in result.output
    assert count(session, Workspace) == 4
    assert count(session, Team) == 9
    # Chris is in two workspaces: one person, access to both.
    chris = session.scalar(select(Person).where(Person.email == "chris@consulting.example"))
    workspaces = session.scalars(
        select(Workspace.key).join(WorkspaceAccess).where(WorkspaceAccess.person_id == chris.id)
    ).all()
    assert sorted(workspaces) == ["acme", "nordwind"]
    acme = session.scalar(select(Workspace).where(Workspace.key == "acme"))
    assert acme.name == "Müller & Söhne GmbH"
    assert [owner.email for owner in acme.owners] == ["frank@mueller-soehne.example"]
    # A date is 00:00 in the billing time zone (Europe/Berlin, summer time here).
    assert acme.created_at == datetime(2022, 5, 9, 22, 0, tzinfo=UTC)


def test_team_membership_implies_workspace_access_from_joining(cli, session):
    assert cli("import", str(DEMO)).exit_code == 0
    bob_access = session.execute(
        select(WorkspaceAccess.granted_at, WorkspaceAccess.revoked_at)
        .join(Person)
        .where(Person.email == "bob@mueller-soehne.example")
    ).all()
    # Bob left his team, but stays a workspace member until purged.
    assert bob_access == [(datetime(2022, 6, 30, 22, 0, tzinfo=UTC), None)]


def test_archive_history_is_kept(cli, session):
    assert cli("import", str(DEMO)).exit_code == 0
    periods = session.execute(
        select(TeamArchivePeriod.archived_from, TeamArchivePeriod.unarchived_at)
        .join(Team)
        .where(Team.key == "fleet")
        .order_by(TeamArchivePeriod.archived_from)
    ).all()
    assert periods == [
        (datetime(2024, 12, 31, 23, 0, tzinfo=UTC), datetime(2025, 5, 31, 22, 0, tzinfo=UTC)),
        (datetime(2026, 11, 9, 23, 0, tzinfo=UTC), None),
    ]


def test_reimporting_the_same_file_changes_nothing(cli, session):
    assert cli("import", str(DEMO)).exit_code == 0
    before = snapshot(session)
    result = cli("import", str(DEMO))
    assert result.exit_code == 0, result.output
    assert "Nothing to change" in result.output
    session.expire_all()
    assert snapshot(session) == before


def test_a_changed_file_updates_by_key_and_never_duplicates(cli, session, tmp_path):
    assert cli("import", str(DEMO)).exit_code == 0
    changed = DEMO.read_text(encoding="utf-8")
    changed = changed.replace('name: "Nordwind Logistik AG"', 'name: "Nordwind Logistik SE"')
    changed = changed.replace(
        "{email: hanna@nordwind.example, name: Hanna Berg, joined: 2023-06-01}",
        "{email: hanna@nordwind.example, name: Hanna Berg, joined: 2023-06-01, left: 2026-11-20}",
    )
    changed = changed.replace("          - {from: 2025-01-01, to: 2025-06-01}\n", "")
    result = cli("import", write(tmp_path, changed))
    assert result.exit_code == 0, result.output
    assert count(session, Workspace) == 4
    assert count(session, Person) == 15
    nordwind = session.scalar(select(Workspace).where(Workspace.key == "nordwind"))
    assert nordwind.name == "Nordwind Logistik SE"
    hanna_left = session.scalars(
        select(TeamMembership.left_at).join(Person).where(Person.email == "hanna@nordwind.example")
    ).all()
    assert hanna_left == [datetime(2026, 11, 19, 23, 0, tzinfo=UTC)]
    fleet_periods = session.scalar(
        select(func.count()).select_from(TeamArchivePeriod).join(Team).where(Team.key == "fleet")
    )
    assert fleet_periods == 1
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "import.update_workspace"))
    assert entry.target == "nordwind"
    assert entry.before == {"name": "Nordwind Logistik AG"}
    assert entry.after == {"name": "Nordwind Logistik SE"}


BAD = """\
workspaces:
  - key: acme
    name: Acme
    created: 2022-05-10
  - key: Bad Key
    name: Beta
    created: 2023-13-01
    colour: blue
    owners: [nobody@beta.example]
    teams:
      - key: sales
        name: Sales
        created: 2023-01-01
        members:
          - {email: a@beta.example, joined: 2023-01-01}
          - {email: not-an-address, joined: 2023-01-01}
          - {email: c@beta.example, joined: 31.01.2023}
"""


def test_a_bad_file_reports_every_error_with_its_place_and_imports_nothing(cli, session, tmp_path):
    assert cli("import", str(DEMO)).exit_code == 0
    before = snapshot(session)
    result = cli("import", write(tmp_path, BAD))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    expected = [
        "import.yaml: line 5: workspaces[1].key: must be 1-63 lower-case letters",
        "import.yaml: line 7: workspaces[1].created: Not a valid date or instant",
        "import.yaml: line 8: workspaces[1].colour: Unknown field.",
        "import.yaml: line 16: workspaces[1].teams[0].members[1].email: is not a valid e-mail",
        "import.yaml: line 17: workspaces[1].teams[0].members[2].joined: Not a valid date",
    ]
    for start in expected:
        assert any(line.startswith(start) for line in lines), (start, result.output)
    assert "5 error(s) in import.yaml; nothing was imported." in result.output
    session.expire_all()
    assert snapshot(session) == before


def test_cross_field_errors_are_located(cli, session, tmp_path):
    text = """\
workspaces:
  - key: beta
    name: Beta
    created: 2023-05-01
    owners: [nobody@beta.example]
    teams:
      - key: sales
        name: Sales
        created: 2023-04-01
      - key: sales
        name: Sales again
        created: 2023-06-01
        members:
          - {email: a@beta.example, joined: 2023-06-01, left: 2023-09-01}
"""
    result = cli("import", write(tmp_path, text))
    assert result.exit_code == 1
    for fragment in (
        "workspaces[0].teams[1].key: duplicate of teams[0].key",
        "workspaces[0].teams[0].created: must not be before the workspace's 'created'",
        "workspaces[0].owners[0]: nobody@beta.example is not a member of this workspace",
    ):
        assert fragment in result.output
    assert count(session, Workspace) == 0


def test_team_history_errors_are_located(cli, session, tmp_path):
    text = """\
workspaces:
  - key: beta
    name: Beta
    created: 2023-05-01
    teams:
      - key: sales
        name: Sales
        created: 2023-06-01
        archived:
          - {from: 2023-07-01, to: 2023-08-01}
          - {from: 2023-08-01}
          - {from: 2023-05-01, to: 2023-05-01}
        members:
          - {email: a@beta.example, joined: 2023-06-01, left: 2023-09-01}
          - {email: a@beta.example, joined: 2023-08-01}
          - {email: b@beta.example, joined: 2023-06-05, left: 2023-06-04}
"""
    result = cli("import", write(tmp_path, text))
    assert result.exit_code == 1
    for fragment in (
        "line 12: workspaces[0].teams[0].archived[2].to: must be after 'from'",
        "line 16: workspaces[0].teams[0].members[2].left: must not be before 'joined'",
    ):
        assert fragment in result.output, result.output
    result = cli(
        "import",
        write(
            tmp_path,
            text.replace("          - {from: 2023-05-01, to: 2023-05-01}\n", "").replace(
                "          - {email: b@beta.example, joined: 2023-06-05, left: 2023-06-04}\n", ""
            ),
        ),
    )
    for fragment in (
        "line 11: workspaces[0].teams[0].archived[1].from: must be after the end of archived[0]",
        "line 14: workspaces[0].teams[0].members[1].joined: overlaps the same person's "
        "membership in members[0]",
    ):
        assert fragment in result.output, result.output
    assert count(session, Workspace) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("workspaces:\n  - key: a\n    name: [unclosed\n", "line 4"),
        ("workspaces: []\nworkspaces: []\n", "line 2"),
        ("base: &b {key: a}\nworkspaces: [*b]\n", "line 1"),
        ("- just\n- a list\n", "line 1"),
    ],
    ids=["syntax", "duplicate-key", "alias", "not-a-mapping"],
)
def test_unreadable_files_are_refused_with_a_line(cli, session, tmp_path, text, message):
    result = cli("import", write(tmp_path, text))
    assert result.exit_code == 1
    assert f"import.yaml: {message}" in result.output
    assert count(session, Workspace) == 0


def test_json_files_import_too(cli, session, tmp_path):
    document = {
        "workspaces": [
            {
                "key": "jsonco",
                "name": "JSON & Co",
                "created": "2024-01-01T09:30:00+01:00",
                "teams": [
                    {
                        "key": "t1",
                        "name": "Team 1",
                        "created": "2024-01-02",
                        "members": [{"email": "X@JSON.example", "joined": "2024-01-02"}],
                    }
                ],
            }
        ]
    }
    result = cli("import", write(tmp_path, json.dumps(document), "data.json"))
    assert result.exit_code == 0, result.output
    workspace = session.scalar(select(Workspace).where(Workspace.key == "jsonco"))
    assert workspace.created_at == datetime(2024, 1, 1, 8, 30, tzinfo=UTC)
    # E-mail addresses are unique case-insensitively: stored lower-case.
    assert session.scalar(select(Person.email)) == "x@json.example"


def test_json_errors_name_their_line(cli, session, tmp_path):
    text = (
        '{"workspaces": [\n'
        '  {"key": "ok", "name": "OK", "created": "2024-01-01"},\n'
        '  {"key": "bad",\n'
        '   "name": "Bad",\n'
        '   "created": "yesterday"}\n'
        "]}\n"
    )
    result = cli("import", write(tmp_path, text, "data.json"))
    assert result.exit_code == 1
    assert "data.json: line 5: workspaces[1].created:" in result.output
    assert count(session, Workspace) == 0


def test_a_json_file_nested_too_deep_is_refused(cli, session, tmp_path):
    text = '{"workspaces": ' + "[" * 100_000 + "]" * 100_000 + "}"
    result = cli("import", write(tmp_path, text, "deep.json"))
    assert result.exit_code == 1
    assert "deep.json: line 1, column 79: nested more than 64 levels deep" in result.output
    assert "Traceback" not in result.output
    assert count(session, Workspace) == 0


def test_an_instant_without_offset_is_refused(cli, session, tmp_path):
    text = "workspaces:\n  - {key: a, name: A, created: '2024-01-01T09:00:00'}\n"
    result = cli("import", write(tmp_path, text))
    assert result.exit_code == 1
    assert "line 2: workspaces[0].created: An instant needs its UTC offset" in result.output


def test_an_oversized_file_is_refused(app, cli, session, tmp_path):
    app.config["BILLING_IMPORT_MAX_BYTES"] = 100
    result = cli("import", write(tmp_path, "workspaces: []\n" + "#" * 200 + "\n"))
    assert result.exit_code == 1
    assert "too large" in result.output.lower()


def test_yaml_1_1_surprises_are_refused_where_text_is_expected(cli, session, tmp_path):
    text = "workspaces:\n  - key: norway\n    name: NO\n    created: 2024-01-01\n"
    result = cli("import", write(tmp_path, text))
    assert result.exit_code == 1
    assert "line 3: workspaces[0].name:" in result.output
    assert "quotes" in result.output
    assert count(session, Workspace) == 0
    result = cli("import", write(tmp_path, text.replace("name: NO", 'name: "NO"')))
    assert result.exit_code == 0, result.output
    assert session.scalar(select(Workspace.name)) == "NO"
