"""Current counts of a workspace, as the admin's workspace pages show them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from plugin.models import Workspace
from plugin.services.counts import current_counts
from tests.conftest import DEMO

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def test_counts_of_the_demo_workspaces(app):
    assert app.test_cli_runner().invoke(args=["billing", "import", str(DEMO)]).exit_code == 0
    session = app.extensions["sqlalchemy"].session
    workspaces = session.scalars(select(Workspace)).all()
    ids = {ws.key: ws.id for ws in workspaces}
    counts = current_counts(session, app.extensions["billing"].rules(), workspaces, NOW)
    acme = counts[ids["acme"]]
    # Members: Frank and Gerda (no team), Anna, Bob (left his team), Chris, Dora, Emil.
    assert acme.members == 7
    # Active now: Anna, Chris (sales), Dora (support); Emil's team is archived.
    assert acme.active_members == 3
    assert acme.active_teams == 2
    assert (acme.variant, acme.variant_reason) == ("user_licences", "cutover")
    assert acme.licences_this_month == 3
    nordwind = counts[ids["nordwind"]]
    # fleet was archived on 10 November: not active now, but billed this month.
    assert (nordwind.active_teams, nordwind.licences_this_month) == (2, 3)
    assert (nordwind.members, nordwind.active_members) == (4, 3)
    assert nordwind.variant == "team_licences"
    globex = counts[ids["globex"]]
    assert (globex.variant, globex.variant_reason) == ("user_licences", "contract")
    assert (globex.members, globex.active_members, globex.licences_this_month) == (3, 2, 2)
