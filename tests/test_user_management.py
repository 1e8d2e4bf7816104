"""User management services and the public API: licence consequences computed by hand.

On the demo data (examples/backoffice/demo_data.yaml), acme bills user
licences.  October 2026 bills Anna, Chris, Dora (sales, support) and Emil
(legacy, archived from 15 October): 4.  November bills Anna, Chris and Dora: 3.
Gerda and Frank are members in no team: never billed.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from plugin import api
from plugin.models import AuditEntry, Person, TeamMembership, Workspace, WorkspaceAccess
from plugin.services.licences import count_licences
from plugin.services.periods import Month
from tests.helpers import snapshot

ACTOR = "support@backoffice.example"
NOV_10 = datetime(2026, 11, 10, 9, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, 9, tzinfo=UTC)


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


def test_a_member_added_on_the_20th_is_billed_that_month(session, tz):
    assert licences(session, tz, "2026-11", "acme") == (2, 3)
    change = api.add_to_team(
        workspace="acme", team="sales", email="Gerda@Mueller-Soehne.example", actor=ACTOR, at=NOV_20
    )
    assert change.changed
    assert licences(session, tz, "2026-10", "acme") == (3, 4)
    assert licences(session, tz, "2026-11", "acme") == (2, 4)
    assert licences(session, tz, "2026-12", "acme") == (2, 4)


def test_a_member_taken_out_on_the_10th_is_billed_that_month_and_not_the_next(session, tz):
    change = api.remove_from_team(
        workspace="acme",
        team="support",
        email="dora@mueller-soehne.example",
        actor=ACTOR,
        at=NOV_10,
    )
    assert change.changed
    assert licences(session, tz, "2026-11", "acme") == (2, 3)
    assert licences(session, tz, "2026-12", "acme") == (2, 2)
    assert licences(session, tz, "2026-10", "acme") == (3, 4)
