"""4. Purge of the inactive members of ``bench-purge`` against raw SQL doing the same
removal, each run on a fresh copy of the data set."""

from __future__ import annotations

import statistics
from datetime import datetime

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from plugin.models import TeamMembership, Workspace, WorkspaceAccess
from plugin.services.purge import preview_purge, purge_inactive

from . import sql
from .databases import Scale
from .harness import MAX_RUNS_FACTOR, SPREAD_GOAL, Figure, Ratio, check, seconds, timed
from .workspaces import PURGE_KEY


def _outcome(session: Session, workspace_id: int, at: datetime) -> tuple[int, int, int, int]:
    """Count and id sum of the access rows revoked and the memberships ended at ``at``."""
    access = session.execute(
        select(func.count(), func.sum(WorkspaceAccess.person_id)).where(
            WorkspaceAccess.workspace_id == workspace_id, WorkspaceAccess.revoked_at == at
        )
    ).one()
    ended = session.execute(
        select(func.count(), func.sum(TeamMembership.id)).where(TeamMembership.left_at == at)
    ).one()
    return (*access, *ended)


def _once(data, side: str, at: datetime) -> tuple[float, float, tuple]:
    url = data.copy()
    engine = create_engine(url, poolclass=NullPool)
    preview_seconds = 0.0
    with Session(engine) as session:
        ws_id = session.scalar(select(Workspace.id).where(Workspace.key == PURGE_KEY))
        if side == "plugin":
            preview_seconds, preview = timed(lambda: preview_purge(session, ws_id, at))
            session.commit()

            def purge() -> None:
                purge_inactive(session, ws_id, now=at, actor="bench", expected=preview.expected)
                session.commit()

        else:

            def purge() -> None:
                with engine.begin() as connection:
                    sql.purge(connection, ws_id, at)

        elapsed, _ = timed(purge)
        outcome = _outcome(session, ws_id, at)
    engine.dispose()
    data.drop(url)
    return elapsed, preview_seconds, outcome


def run(data, scale: Scale, now: datetime, runs: int) -> list[Figure]:
    times: dict[str, list[float]] = {"plugin": [], "sql": []}
    previews, outcomes = [], set()
    number = 0
    # Pairs as interleaved() adds them: at least ``runs``, more until the spread is known.
    while number < runs or (
        number < MAX_RUNS_FACTOR * runs
        and Ratio.of(times["plugin"], times["sql"]).spread >= SPREAD_GOAL
    ):
        number += 1
        for side in ("plugin", "sql") if number % 2 else ("sql", "plugin"):
            elapsed, preview, outcome = _once(data, side, now)
            times[side].append(elapsed)
            previews += [preview] if side == "plugin" else []
            outcomes.add(outcome)
    check(len(outcomes) == 1, f"purge outcomes differ: {outcomes}")
    removed = outcomes.pop()[0]
    check(removed == scale.purge, f"{removed} members removed, {scale.purge} expected")
    plugin, baseline = statistics.median(times["plugin"]), statistics.median(times["sql"])
    return [
        Figure.of_ratio(
            f"purge of {removed:,} inactive members ({PURGE_KEY}) vs raw SQL",
            data.name,
            Ratio.of(times["plugin"], times["sql"]),
            key="purge_vs_sql",
            plugin=seconds(plugin),
            baseline=seconds(baseline),
        ),
        Figure(
            "purge preview (not in the ratio)",
            data.name,
            statistics.median(previews),
            plugin=seconds(statistics.median(previews)),
            unit="s",
        ),
    ]
