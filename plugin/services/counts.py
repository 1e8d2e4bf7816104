"""Current numbers of a workspace: what "Workspace members" and "General" show.

A fixed number of queries whatever the number of workspaces asked about, so a
list page can show them for a whole page of workspaces at once.  Given a
:class:`CountsCache`, workspaces whose stamp has not changed since their
counts were computed cost nothing beyond the one query reading the stamps.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cachetools import LRUCache
from sqlalchemy import ColumnElement, case, func, literal_column, select, true, union_all
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from ..models import (
    Team,
    TeamArchivePeriod,
    TeamMembership,
    Workspace,
    WorkspaceAccess,
    WorkspaceStamp,
)
from ..rules import PricingRules
from .intervals import open_at, team_active_at
from .licences import count_user_licences, instant, team_billed
from .periods import Month


@dataclass(frozen=True)
class WorkspaceCounts:
    variant: str
    variant_reason: str
    members: int
    active_members: int
    active_teams: int
    licences_this_month: int


class CountsCache:
    """Counts computed in this process, each kept under its workspace's stamp.

    An entry serves while the workspace's stamp, contract variant, creation
    date and the pricing rules are those it was computed under, and until the
    first instant at which the counts could change on their own: the next
    start or end of one of the workspace's intervals, or the next month.
    Thread-safe; the least recently used entries go first.

    It also keeps the row counts of whole tables the stamps cover (the member
    and team lists' totals, :meth:`table_count`).
    """

    def __init__(self, size: int) -> None:
        self._entries: LRUCache[tuple[Any, ...], tuple[WorkspaceCounts, datetime]] = LRUCache(size)
        self._tables: dict[str, tuple[bytes, int]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], now: datetime) -> WorkspaceCounts | None:
        with self._lock:
            entry = self._entries.get(key)
        return entry[0] if entry is not None and now < entry[1] else None

    def put(self, key: tuple[Any, ...], counts: WorkspaceCounts, valid_until: datetime) -> None:
        with self._lock:
            self._entries[key] = (counts, valid_until)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._tables.clear()

    def table_count(self, session: Session, table: str, count: Callable[[], int]) -> int:
        """``count()``, the rows of ``table``, computed again only once a stamp changed.

        For the tables whose every insert and delete writes its workspace's
        stamp (teams, workspace access, memberships, archive periods): while
        no workspace's stamp changed, no row was added or removed.  Reading
        the stamps costs a row per workspace; counting the table, a row per
        row (a million members: some 100 ms on PostgreSQL).  The stamps are
        read first, so a count made after a change can only be kept under
        the stamps from before it, which no later request sees again.
        """
        stamps = _all_stamps(session)
        if stamps is None:
            return count()
        with self._lock:
            entry = self._tables.get(table)
        if entry is not None and entry[0] == stamps:
            return entry[1]
        value = count()
        with self._lock:
            self._tables[table] = (stamps, value)
        return value


def current_counts(
    session: Session,
    rules: PricingRules,
    workspaces: Iterable[Workspace],
    now: datetime,
    cache: CountsCache | None = None,
    *,
    stamped: bool = False,
) -> dict[int, WorkspaceCounts]:
    """Counts per workspace id, for workspaces already loaded.

    Without a cache: four queries.  With one: a query for the stamps, and the
    four (plus one for when the new counts stop being valid) only for the
    workspaces the cache cannot answer for.  ``stamped``: the workspaces
    were loaded with :func:`listed_stamp`, so the stamps cost no query.
    """
    workspaces = list(workspaces)
    if cache is None:
        return _computed(session, rules, workspaces, now)
    if stamped:
        stamps = {ws.id: ws.listed_stamp for ws in workspaces if ws.listed_stamp is not None}
    else:
        stamps = _stamps(session, [ws.id for ws in workspaces])
    keys = {
        ws.id: (ws.id, stamps[ws.id], ws.contract_variant, ws.created_at, rules.sha256)
        for ws in workspaces
        if ws.id in stamps
    }
    result = {}
    for ws_id, key in keys.items():
        counts = cache.get(key, now)
        if counts is not None:
            result[ws_id] = counts
    missing = [ws for ws in workspaces if ws.id not in result]
    if missing:
        computed = _computed(session, rules, missing, now)
        valid_until = next_change(session, rules, [ws.id for ws in missing], now)
        for ws_id, counts in computed.items():
            if ws_id in keys:
                cache.put(keys[ws_id], counts, valid_until[ws_id])
        result.update(computed)
    return result


def _stamps(session: Session, ids: list[int]) -> dict[int, int]:
    """The workspaces' stamps, leaving out those written by the session's own transaction.

    On PostgreSQL the stamp is the id of the last transaction that changed the
    workspace, written once per transaction: counts this transaction computes
    after its own changes could be overtaken by its next change, so they are
    not kept.  (SQLite writes a new stamp for every changed row.)
    """
    query = select(WorkspaceStamp.workspace_id, WorkspaceStamp.stamp).where(
        WorkspaceStamp.workspace_id.in_(ids), not_own_stamp(session)
    )
    return dict(session.execute(query).all())


def listed_stamp(session: Session) -> ColumnElement[int | None]:
    """Each workspace's stamp as a column of the query that loads it (for
    ``with_expression(Workspace.listed_stamp, …)``): what :func:`_stamps` reads,
    without a query of its own."""
    return (
        select(WorkspaceStamp.stamp)
        .where(WorkspaceStamp.workspace_id == Workspace.id, not_own_stamp(session))
        .scalar_subquery()
    )


def not_own_stamp(session: Session) -> ColumnElement[bool]:
    """Not a stamp written by the session's own transaction (PostgreSQL; see :func:`_stamps`)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.coalesce(WorkspaceStamp.stamp != func.txid_current_if_assigned(), True)
    return true()


def _all_stamps(session: Session) -> bytes | None:
    """A digest of every workspace's stamp; ``None`` inside a transaction that wrote one
    on PostgreSQL, whose further writes would leave it as it is (see :func:`_stamps`).

    On PostgreSQL the server makes the digest (``md5`` of the stamps in
    workspace order) and sends one row: the member and team lists read it on
    every request, and 2,000 rows made into Python tuples and hashed cost the
    web worker some 2.5 ms of CPU, a tenth of the page, where the one row costs
    0.4 ms.  SQLite, in the app's own process, hashes the rows.
    """
    if session.get_bind().dialect.name == "postgresql":
        pair = func.concat(WorkspaceStamp.workspace_id, ":", WorkspaceStamp.stamp)
        in_order: Any = aggregate_order_by(literal_column("','"), WorkspaceStamp.workspace_id)
        digest, txid = session.execute(
            select(func.md5(func.string_agg(pair, in_order)), func.txid_current_if_assigned())
        ).one()
        return None if txid is not None else (digest or "").encode()
    query = select(WorkspaceStamp.workspace_id, WorkspaceStamp.stamp).order_by(
        WorkspaceStamp.workspace_id
    )
    rows = [tuple(row) for row in session.execute(query).all()]
    return hashlib.sha256(repr(rows).encode()).digest()


def next_change(
    session: Session, rules: PricingRules, ids: list[int], now: datetime
) -> dict[int, datetime]:
    """Per workspace, the first instant from ``now`` at which its counts may change by
    themselves: the next month, or an interval of its history starting or ending later.

    The page's teams are read once (a materialised CTE, which also keeps
    PostgreSQL from a parallel plan whose start-up costs more than the scans).
    """
    _, next_month = Month.of(now, rules.zoneinfo).bounds(rules.zoneinfo)
    at = instant(now)
    teams = (
        select(Team.id, Team.workspace_id, Team.created_at)
        .where(Team.workspace_id.in_(ids))
        .cte("page_teams")
        .prefix_with("MATERIALIZED")
    )
    by_team = [
        select(teams.c.workspace_id, column).join(table, team_id == teams.c.id).where(column >= at)
        for table, team_id, columns in (
            (
                TeamMembership,
                TeamMembership.team_id,
                (TeamMembership.joined_at, TeamMembership.left_at),
            ),
            (
                TeamArchivePeriod,
                TeamArchivePeriod.team_id,
                (TeamArchivePeriod.archived_from, TeamArchivePeriod.unarchived_at),
            ),
        )
        for column in columns
    ]
    by_workspace = [
        select(WorkspaceAccess.workspace_id, column).where(
            WorkspaceAccess.workspace_id.in_(ids), column >= at
        )
        for column in (WorkspaceAccess.granted_at, WorkspaceAccess.revoked_at)
    ]
    created = select(teams.c.workspace_id, teams.c.created_at).where(teams.c.created_at >= at)
    changes = union_all(*by_team, *by_workspace, created).subquery()
    found = dict(
        session.execute(
            select(changes.c.workspace_id, func.min(changes.c[1])).group_by(changes.c.workspace_id)
        ).all()
    )
    return {ws_id: min(found.get(ws_id, next_month), next_month) for ws_id in ids}


def _computed(
    session: Session, rules: PricingRules, workspaces: list[Workspace], now: datetime
) -> dict[int, WorkspaceCounts]:
    """The counts, computed (four queries)."""
    ids = [ws.id for ws in workspaces]
    start, _ = Month.of(now, rules.zoneinfo).bounds(rules.zoneinfo)
    members = dict(
        session.execute(
            select(WorkspaceAccess.workspace_id, func.count())
            .where(
                WorkspaceAccess.workspace_id.in_(ids),
                open_at(WorkspaceAccess.granted_at, WorkspaceAccess.revoked_at, now),
            )
            .group_by(WorkspaceAccess.workspace_id)
        ).all()
    )
    teams = {
        ws_id: (active, billed)
        for ws_id, active, billed in session.execute(
            select(
                Team.workspace_id,
                func.count(case((team_active_at(now), 1))),
                func.count(case((team_billed(start, now), 1))),
            )
            .where(Team.workspace_id.in_(ids))
            .group_by(Team.workspace_id)
        )
    }
    active_members = dict(
        session.execute(
            select(Team.workspace_id, func.count(TeamMembership.person_id.distinct()))
            .join(Team, Team.id == TeamMembership.team_id)
            .where(
                Team.workspace_id.in_(ids),
                team_active_at(now),
                open_at(TeamMembership.joined_at, TeamMembership.left_at, now),
            )
            .group_by(Team.workspace_id)
        ).all()
    )
    variants = {ws.id: rules.variant_of(ws) for ws in workspaces}
    # Billed people only for the user-licence workspaces: the distinct-person
    # count is the costly one, and team-licence workspaces do not need it.
    billed_users = count_user_licences(
        session, start, now, [i for i, (v, _) in variants.items() if v == "user_licences"]
    )
    result = {}
    for ws in workspaces:
        variant, reason = variants[ws.id]
        active_teams, billed_teams = teams.get(ws.id, (0, 0))
        billed = billed_teams if variant == "team_licences" else billed_users.get(ws.id, 0)
        result[ws.id] = WorkspaceCounts(
            variant=variant,
            variant_reason=reason,
            members=members.get(ws.id, 0),
            active_members=active_members.get(ws.id, 0),
            active_teams=active_teams,
            licences_this_month=billed,
        )
    return result
