"""Who or what is billed for a month: every billing rule of docs/design.md, hand-computed."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from plugin.models import Workspace
from plugin.services.importer import import_file
from plugin.services.licences import count_licences
from plugin.services.periods import Month

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def load(app):
    session = app.extensions["sqlalchemy"].session

    def load(yaml_text: str) -> None:
        import_file(session, yaml_text, source="t.yaml", tz=BERLIN, actor="test")
        session.commit()

    return load


@pytest.fixture
def licences(app):
    session = app.extensions["sqlalchemy"].session

    def licences(month: str, key: str = "w") -> tuple[int, int]:
        """(teams, users) billed for ``key`` in ``month``."""
        start, end = Month.parse(month).bounds(BERLIN)
        workspace_id = session.scalar(select(Workspace.id).where(Workspace.key == key))
        teams, users = count_licences(session, start, end)
        return teams.get(workspace_id, 0), users.get(workspace_id, 0)

    return licences


def workspace(teams: str, key: str = "w", created: str = "2024-01-01") -> str:
    return f"workspaces:\n  - key: {key}\n    name: W\n    created: {created}\n    teams:\n{teams}"


def team(key: str, *, created: str = "2024-01-01", archived: str = "", members: str = "") -> str:
    text = f"      - key: {key}\n        name: Team {key}\n        created: {created}\n"
    if archived:
        text += f"        archived:\n{archived}"
    if members:
        text += f"        members:\n{members}"
    return text


def member(email: str, joined: str, left: str | None = None) -> str:
    end = f", left: {left}" if left else ""
    return f"          - {{email: {email}, joined: {joined}{end}}}\n"


def period(start: str, end: str | None = None) -> str:
    return f"          - {{from: {start}" + (f", to: {end}}}\n" if end else "}\n")


def test_archived_mid_month_is_billed_that_month_and_not_the_next(load, licences):
    load(
        workspace(
            team("a", archived=period("2026-03-15"), members=member("x@w.example", "2024-01-01"))
        )
    )
    assert licences("2026-03") == (1, 1)
    assert licences("2026-04") == (0, 0)


def test_unarchived_mid_month_is_billed_from_that_month(load, licences):
    load(
        workspace(
            team(
                "a",
                archived=period("2026-01-01", "2026-03-20"),
                members=member("x@w.example", "2024-01-01"),
            )
        )
    )
    assert licences("2026-02") == (0, 0)
    assert licences("2026-03") == (1, 1)


def test_archived_and_unarchived_within_one_month_is_billed(load, licences):
    load(
        workspace(
            team(
                "a",
                archived=period("2026-03-05", "2026-03-25"),
                members=member("x@w.example", "2024-01-01"),
            )
        )
    )
    assert licences("2026-03") == (1, 1)


def test_archived_for_exactly_the_whole_month_is_not_billed(load, licences):
    load(
        workspace(
            team(
                "a",
                archived=period("2026-03-01", "2026-04-01"),
                members=member("x@w.example", "2024-01-01"),
            )
        )
    )
    assert licences("2026-03") == (0, 0)
    assert licences("2026-02") == (1, 1)
    assert licences("2026-04") == (1, 1)


def test_joining_on_the_last_day_of_the_month_bills_that_month(load, licences):
    load(workspace(team("a", members=member("x@w.example", "2026-03-31"))))
    assert licences("2026-03") == (1, 1)
    assert licences("2026-02") == (1, 0)


def test_joining_and_leaving_at_the_same_instant_bills_nothing(load, licences):
    load(workspace(team("a", members=member("x@w.example", "2026-03-10", "2026-03-10"))))
    assert licences("2026-03") == (1, 0)


def test_leaving_at_the_first_instant_of_a_month_bills_only_before(load, licences):
    load(workspace(team("a", members=member("x@w.example", "2026-01-10", "2026-03-01"))))
    assert licences("2026-02") == (1, 1)
    assert licences("2026-03") == (1, 0)


def test_a_member_of_several_teams_counts_once(load, licences):
    load(
        workspace(
            team(
                "a",
                members=member("x@w.example", "2024-01-01") + member("y@w.example", "2024-01-01"),
            )
            + team("b", members=member("x@w.example", "2024-01-01"))
        )
    )
    assert licences("2026-03") == (2, 2)


def test_membership_only_in_an_archived_team_bills_nothing(load, licences):
    load(
        workspace(
            team("a", archived=period("2025-01-01"), members=member("x@w.example", "2024-01-01"))
            + team("b", members=member("y@w.example", "2024-01-01"))
        )
    )
    assert licences("2026-03") == (1, 1)


def test_membership_while_the_team_was_archived_bills_nothing(load, licences):
    # x was in team a only from the 10th to the 20th, while it was archived.
    load(
        workspace(
            team(
                "a",
                archived=period("2026-03-05", "2026-03-25"),
                members=member("x@w.example", "2026-03-10", "2026-03-20"),
            )
        )
    )
    assert licences("2026-03") == (1, 0)


def test_a_person_in_two_workspaces_is_billed_in_each(load, licences):
    load(
        workspace(team("a", members=member("x@w.example", "2024-01-01")), key="w1")
        + workspace(team("a", members=member("x@w.example", "2024-01-01")), key="w2").removeprefix(
            "workspaces:\n"
        )
    )
    assert licences("2026-03", "w1") == (1, 1)
    assert licences("2026-03", "w2") == (1, 1)


def test_a_team_created_after_the_month_is_not_billed(load, licences):
    load(workspace(team("a", created="2026-04-01", members=member("x@w.example", "2026-04-01"))))
    assert licences("2026-03") == (0, 0)
    assert licences("2026-04") == (1, 1)


def test_month_boundaries_follow_the_billing_time_zone_across_daylight_saving(load, licences, app):
    # October 2026 in Berlin: 2026-09-30 22:00 UTC (summer time) to
    # 2026-10-31 23:00 UTC (winter time; clocks went back on the 25th).
    assert Month(2026, 10).bounds(BERLIN) == (
        datetime(2026, 9, 30, 22, tzinfo=UTC),
        datetime(2026, 10, 31, 23, tzinfo=UTC),
    )
    load(
        workspace(
            # Archived 2026-10-31 23:30 UTC = 1 November 00:30 in Berlin: billed
            # for all of October, not for November.
            team("a", archived=period("2026-10-31T23:30:00Z"))
            # Created 2026-10-31 23:00 UTC = 1 November 00:00 in Berlin: a November team.
            + team("b", created="2026-10-31T23:00:00Z")
            # Archived 2026-09-30 22:00 UTC = 1 October 00:00 in Berlin: not in October.
            + team("c", archived=period("2026-09-30T22:00:00Z"))
        )
    )
    assert licences("2026-10") == (1, 0)
    assert licences("2026-11") == (2, 0)
    assert licences("2026-09") == (2, 0)


def test_one_query_serves_all_workspaces(load, app):
    load(
        workspace(team("a", members=member("x@w.example", "2024-01-01")), key="w1")
        + workspace(team("a") + team("b"), key="w2").removeprefix("workspaces:\n")
    )
    session = app.extensions["sqlalchemy"].session
    ids = dict(session.execute(select(Workspace.key, Workspace.id)).all())
    start, end = Month(2026, 3).bounds(BERLIN)
    teams, users = count_licences(session, start, end)
    assert teams == {ids["w1"]: 1, ids["w2"]: 2}
    assert users == {ids["w1"]: 1}
