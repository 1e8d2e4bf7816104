"""Three big workspaces the generator's data set lacks, added next to it.

The generator spreads 1M memberships over 2,000 workspaces; the largest has
about 1,500 members.  The issue asks for an export of at least 100,000 rows
and a purge of at least 100,000 inactive members, so the bench adds:

- ``xl-export-10x``: a user-licence workspace whose previous month bills
  about 10 × ``export`` people (1 to 3 memberships each, some left, some
  teams archived for a while);
- ``xl-export-1x``: the same shape with a tenth of the people (the memory
  comparison);
- ``xl-purge``: ``purge`` inactive members (in archived teams only, left
  every team, or in no team), a tenth as many active ones, and two owners.

Rows are written with Core executemany, ids after each table's maximum, like
the generator; deterministic for a seed and ``now``.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.engine import Connection

from plugin.synthetic.generator import FIRST_NAMES, LAST_NAMES, TEAM_NAMES
from plugin.synthetic.writer import (
    ACCESS,
    ARCHIVE,
    MEMBERSHIP,
    OWNER,
    PERSON,
    TABLES,
    TEAM,
    WORKSPACE,
)

#: "xl-" sorts after the generator's "gen-" keys: the default first page of the workspace
#: list shows generated workspaces (the bench reports the page of these three apart).
EXPORT_KEY, EXPORT_SMALL_KEY, PURGE_KEY = "xl-export-10x", "xl-export-1x", "xl-purge"
DAY = 86_400


class _Rows:
    """Rows per table with ids assigned after the table's current maximum."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.rows: dict[Table, list[dict[str, Any]]] = {table: [] for table in TABLES}
        self.next_id = {
            table: (connection.scalar(select(func.max(table.c.id))) or 0) + 1
            for table in TABLES
            if "id" in table.c
        }

    def add(self, table: Table, **row: Any) -> int:
        if table in self.next_id:
            row["id"] = self.next_id[table]
            self.next_id[table] += 1
        self.rows[table].append(row)
        return row.get("id", 0)

    def write(self) -> None:
        for table in TABLES:
            rows = self.rows[table]
            for start in range(0, len(rows), 10_000):
                self.connection.execute(insert(table), rows[start : start + 10_000])
            rows.clear()


def _at(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _midnight(day: date, tz: ZoneInfo) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


class _Builder:
    def __init__(self, connection: Connection, seed: int, now: datetime, tz: ZoneInfo) -> None:
        self.rng = random.Random(seed)
        self.rows = _Rows(connection)
        self.now = int(now.timestamp())
        self.tz = tz
        self.people = 0

    def workspace(self, key: str, created: date, teams: int) -> tuple[int, int, list[int]]:
        start = _midnight(created, self.tz)
        ws = self.rows.add(
            WORKSPACE,
            key=key,
            name=f"Bench {key}",
            created_at=_at(start),
            contract_variant=None,
            invoice_mailbox=f"invoices@{key}.example.com",
        )
        team_ids = [
            self.rows.add(
                TEAM,
                workspace_id=ws,
                key=f"team-{i + 1:04d}",
                name=f"{TEAM_NAMES[i % len(TEAM_NAMES)]} {i // len(TEAM_NAMES) + 1}",
                created_at=_at(start),
            )
            for i in range(teams)
        ]
        return ws, start, team_ids

    def person(self, ws: int, granted: int) -> int:
        self.people += 1
        name = f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"
        pid = self.rows.add(PERSON, email=f"bench-{self.people:07d}@bench.example", name=name)
        self.rows.add(
            ACCESS, workspace_id=ws, person_id=pid, granted_at=_at(granted), revoked_at=None
        )
        return pid

    def member(self, team: int, person: int, joined: int, left: int | None) -> None:
        self.rows.add(
            MEMBERSHIP, team_id=team, person_id=person, joined_at=_at(joined), left_at=_at(left)
        )

    def export_workspace(self, key: str, people: int) -> None:
        """People with 1-3 memberships since before last month; most still in."""
        rng = self.rng
        ws, start, teams = self.workspace(key, date(2022, 6, 1), max(20, people // 500))
        last_month = self.now - 45 * DAY
        for team in rng.sample(teams, len(teams) // 10):
            archived = rng.randint(start + 30 * DAY, self.now - 10 * DAY)
            back = None if rng.random() < 1 / 3 else rng.randint(archived + 3600, self.now)
            self.rows.add(
                ARCHIVE, team_id=team, archived_from=_at(archived), unarchived_at=_at(back)
            )
        for _ in range(people):
            granted = rng.randint(start, last_month - 30 * DAY)
            pid = self.person(ws, granted)
            for n, team in enumerate(rng.sample(teams, rng.choice((1, 1, 2, 3)))):
                joined = granted if n == 0 else rng.randint(granted, self.now - DAY)
                stays = rng.random() < (0.85 if n == 0 else 0.5)
                self.member(team, pid, joined, None if stays else rng.randint(joined, self.now))
        self.rows.write()

    def purge_workspace(self, inactive: int) -> None:
        """``inactive`` members to remove, a tenth as many active ones, two owners."""
        rng = self.rng
        total = inactive + inactive // 10
        ws, start, teams = self.workspace(PURGE_KEY, date(2023, 6, 1), max(10, total // 1000))
        archived = {team: self.now - rng.randint(2, 200) * DAY for team in teams[::2]}
        for team, since in archived.items():
            self.rows.add(ARCHIVE, team_id=team, archived_from=_at(since), unarchived_at=None)
        active = [team for team in teams if team not in archived]
        for _ in range(2):
            owner = self.person(ws, start)
            self.rows.add(OWNER, workspace_id=ws, person_id=owner)
        for n in range(total):
            granted = rng.randint(start, self.now - 300 * DAY)
            pid = self.person(ws, granted)
            joined = granted + rng.randint(0, 30 * DAY)
            if n >= inactive:  # active: in an active team, perhaps in an archived one too
                self.member(rng.choice(active), pid, joined, None)
                if rng.random() < 0.3:
                    self.member(rng.choice(list(archived)), pid, joined, None)
            elif n % 20 < 14:  # only in archived teams, still "in" them
                for team in rng.sample(list(archived), rng.choice((1, 1, 2))):
                    self.member(team, pid, joined, None)
            elif n % 20 < 17:  # left every team
                self.member(rng.choice(teams), pid, joined, joined + rng.randint(DAY, 200 * DAY))
            # else: in no team at all
        self.rows.write()


def add_bench_workspaces(
    connection: Connection, *, export: int, purge: int, seed: int, now: datetime, tz: ZoneInfo
) -> None:
    """Add the three workspaces to the caller's transaction (see the module docstring)."""
    builder = _Builder(connection, seed, now, tz)
    builder.export_workspace(EXPORT_KEY, export)
    builder.export_workspace(EXPORT_SMALL_KEY, export // 10)
    builder.purge_workspace(purge)
    if connection.dialect.name == "postgresql":
        for table in builder.rows.next_id:
            connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"(SELECT max(id) FROM {table.name}))"
                )
            )
