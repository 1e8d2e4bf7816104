"""The baselines written by hand: plain SQL, as a developer would write it without the plugin.

Instants are bound through the plugin's column type, so SQLite compares the
same text format that is stored.  SQLite spells GREATEST/LEAST as max/min.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, TextClause, bindparam, text
from sqlalchemy.engine import Connection

from plugin.types import UTCDateTime

INSTANTS = ("start", "end", "now")


def _sql(statement: str, dialect: str) -> TextClause:
    if dialect == "sqlite":
        statement = statement.replace("GREATEST(", "max(").replace("LEAST(", "min(")
    names = [name for name in INSTANTS if f":{name}" in statement]
    return text(statement).bindparams(*(bindparam(n, type_=UTCDateTime()) for n in names))


# What "billed in [start, end)" means (docs/design.md, the billing rules),
# for a membership m of team t.
_LO = "GREATEST(m.joined_at, t.created_at, :start)"
_HI = "LEAST(COALESCE(m.left_at, :end), :end)"
BILLING_MEMBERSHIP = f"""
    m.joined_at < :end AND (m.left_at IS NULL OR m.left_at > :start) AND {_LO} < {_HI}
    AND NOT EXISTS (
        SELECT 1 FROM billing_team_archive_period a
        WHERE a.team_id = t.id AND a.archived_from <= {_LO}
          AND (a.unarchived_at IS NULL OR a.unarchived_at >= {_HI}))"""

LICENCE_TEAMS = """
SELECT t.workspace_id, count(*) FROM billing_team t
WHERE GREATEST(t.created_at, :start) < :end
  AND NOT EXISTS (
      SELECT 1 FROM billing_team_archive_period a
      WHERE a.team_id = t.id AND a.archived_from <= GREATEST(t.created_at, :start)
        AND (a.unarchived_at IS NULL OR a.unarchived_at >= :end))
GROUP BY t.workspace_id"""

LICENCE_USERS = f"""
SELECT t.workspace_id, count(DISTINCT m.person_id)
FROM billing_team_membership m JOIN billing_team t ON t.id = m.team_id
WHERE {BILLING_MEMBERSHIP}
GROUP BY t.workspace_id"""


def licence_counts(
    connection: Connection, start: datetime, end: datetime
) -> tuple[dict[int, int], dict[int, int]]:
    """Billed teams and billed people per workspace, like ``count_licences``."""
    dialect = connection.dialect.name
    window = {"start": start, "end": end}
    teams = connection.execute(_sql(LICENCE_TEAMS, dialect), window).all()
    users = connection.execute(_sql(LICENCE_USERS, dialect), window).all()
    return dict(teams), dict(users)  # type: ignore[arg-type]


_PAIRS = f"""
    SELECT DISTINCT m.person_id, m.team_id
    FROM billing_team_membership m JOIN billing_team t ON t.id = m.team_id
    WHERE t.workspace_id = :workspace_id AND {BILLING_MEMBERSHIP}"""

#: One row per billed person: e-mail, name, the teams that billed them.
HOLDERS = {
    "postgresql": f"""
SELECT p.id AS person_id, p.email, p.name,
       string_agg(t.name, '; ' ORDER BY t.name COLLATE "C", t.id) AS teams
FROM ({_PAIRS}) pairs
JOIN billing_person p ON p.id = pairs.person_id JOIN billing_team t ON t.id = pairs.team_id
GROUP BY p.id, p.email, p.name""",
    # group_concat takes the rows in the order the ordered subquery gives them.
    "sqlite": f"""
SELECT person_id, email, name, group_concat(team_name, '; ') AS teams FROM (
    SELECT p.id AS person_id, p.email, p.name, t.name AS team_name
    FROM ({_PAIRS}) pairs
    JOIN billing_person p ON p.id = pairs.person_id JOIN billing_team t ON t.id = pairs.team_id
    ORDER BY p.id, t.name, t.id)
GROUP BY person_id""",
}


def licence_holders(dialect: str, workspace_id: int, start: datetime, end: datetime) -> Any:
    """The holders' SELECT (columns person_id, email, name, teams) as a subquery."""
    statement = _sql(HOLDERS[dialect], dialect).bindparams(
        workspace_id=workspace_id, start=start, end=end
    )
    columns = {"person_id": Integer, "email": String, "name": String, "teams": String}
    return statement.columns(**columns).subquery("holders")


_OPEN_NOW = "{0}.{1} <= :now AND ({0}.{2} IS NULL OR {0}.{2} > :now)"
_TEAM_ACTIVE_NOW = f"""t.created_at <= :now AND NOT EXISTS (
    SELECT 1 FROM billing_team_archive_period a
    WHERE a.team_id = t.id AND {_OPEN_NOW.format("a", "archived_from", "unarchived_at")})"""

PURGE_ACCESS = f"""
UPDATE billing_workspace_access SET revoked_at = :now
WHERE workspace_id = :workspace_id
  AND {_OPEN_NOW.format("billing_workspace_access", "granted_at", "revoked_at")}
  AND NOT EXISTS (
      SELECT 1 FROM billing_workspace_owner o
      WHERE o.workspace_id = :workspace_id AND o.person_id = billing_workspace_access.person_id)
  AND NOT EXISTS (
      SELECT 1 FROM billing_team_membership m JOIN billing_team t ON t.id = m.team_id
      WHERE m.person_id = billing_workspace_access.person_id AND t.workspace_id = :workspace_id
        AND {_OPEN_NOW.format("m", "joined_at", "left_at")} AND {_TEAM_ACTIVE_NOW})"""

PURGE_MEMBERSHIPS = f"""
UPDATE billing_team_membership SET left_at = :now
WHERE {_OPEN_NOW.format("billing_team_membership", "joined_at", "left_at")}
  AND person_id IN (
      SELECT person_id FROM billing_workspace_access
      WHERE workspace_id = :workspace_id AND revoked_at = :now)
  AND team_id IN (
      SELECT t.id FROM billing_team t
      WHERE t.workspace_id = :workspace_id AND NOT ({_TEAM_ACTIVE_NOW}))"""


def purge(connection: Connection, workspace_id: int, now: datetime) -> None:
    """Revoke the inactive members' access and end their memberships in archived teams."""
    dialect = connection.dialect.name
    values = {"workspace_id": workspace_id, "now": now}
    connection.execute(_sql(PURGE_ACCESS, dialect), values)
    connection.execute(_sql(PURGE_MEMBERSHIPS, dialect), values)
