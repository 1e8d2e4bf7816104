"""Where the synthetic rows go: ids assigned here, Core ``INSERT`` executemany in batches.

Primary keys are assigned after each table's current maximum, so no
``RETURNING`` round trip is needed; on PostgreSQL the id sequences are moved
past the new rows afterwards.  Before anything is written, a run whose keys or
e-mail addresses are already taken is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Table, func, insert, literal, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, scoped_session

from ..models import (
    BillingDetails,
    Person,
    Team,
    TeamArchivePeriod,
    TeamMembership,
    Workspace,
    WorkspaceAccess,
    WorkspaceOwner,
)
from ..services.common import chunked
from ..types import UTCDateTime

Progress = Callable[[int, int], None]
#: Where the rows go: a session (Flask-SQLAlchemy's ``db.session`` is scoped) or a connection.
Target = Session | scoped_session[Session] | Connection

#: Rows per executemany statement.
BATCH = 10_000

KEY_PREFIX = "gen-"
EMAIL_PATTERN = re.compile(r"person-(\d{6,})@example\.com")
#: Tables in foreign-key order: parents are always written before children.
TABLES: tuple[Table, ...] = tuple(
    model.__table__
    for model in (
        Workspace,
        Person,
        WorkspaceOwner,
        Team,
        TeamArchivePeriod,
        WorkspaceAccess,
        TeamMembership,
    )
)
WORKSPACE, PERSON, OWNER, TEAM, ARCHIVE, ACCESS, MEMBERSHIP = TABLES


def workspace_key(number: int) -> str:
    return f"{KEY_PREFIX}{number:05d}"


def person_email(number: int) -> str:
    return f"person-{number:06d}@example.com"


class Writer:
    """Buffers rows per table, assigns ids, writes them in foreign-key order."""

    def __init__(self, target: Target, total: int, progress: Progress | None) -> None:
        self.target = target
        self.total = total
        self.progress = progress
        self.done = 0
        self.buffers: dict[Table, list[dict[str, Any]]] = {table: [] for table in TABLES}
        self.written: dict[Table, int] = dict.fromkeys(TABLES, 0)
        self.next_id: dict[Table, int] = {
            table: (target.scalar(select(func.max(table.c.id))) or 0) + 1
            for table in TABLES
            if "id" in table.c
        }
        self._report()

    @property
    def pending(self) -> int:
        return sum(len(rows) for rows in self.buffers.values())

    def add(self, table: Table, row: dict[str, Any]) -> int:
        """Queue a row; return the id it was given (0 for tables without one)."""
        new_id = self.next_id.get(table, 0)
        if new_id:
            row["id"] = new_id
            self.next_id[table] = new_id + 1
        self.buffers[table].append(row)
        return new_id

    def flush(self) -> None:
        for table in TABLES:
            rows = self.buffers[table]
            for start in range(0, len(rows), BATCH):
                batch = rows[start : start + BATCH]
                self.target.execute(insert(table), batch)
                self.written[table] += len(batch)
                self.done += len(batch)
                self._report()
            rows.clear()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total)


def refuse_existing(target: Target, keys: list[str], people: int) -> None:
    """Refuse before writing anything if an earlier run (or anybody) took our keys."""
    wanted = set(keys)
    taken = sorted(
        key
        for key in target.scalars(
            select(WORKSPACE.c.key).where(WORKSPACE.c.key.like(f"{KEY_PREFIX}%"))
        )
        if key in wanted
    )
    if not taken:
        taken = sorted(
            email
            for email in target.scalars(
                select(PERSON.c.email).where(PERSON.c.email.like("person-%@example.com"))
            )
            if _is_generated_email(email, people)
        )
    if taken:
        shown = ", ".join(taken[:3]) + (", …" if len(taken) > 3 else "")
        raise ValueError(
            f"the database already holds {len(taken)} of the rows this would generate "
            f"({shown}): generated data is only added to a database without it"
        )


def write_billing_details(target: Target, keys: list[str], now: datetime) -> None:
    """Complete domestic billing details for the generated workspaces: one INSERT … SELECT.

    Without them the month close would hold every generated workspace.  No
    random draw: the generated history stays what a seed has always made.
    """
    details = BillingDetails.__table__
    for chunk in chunked(keys):
        target.execute(
            insert(details).from_select(
                [
                    "workspace_id",
                    "legal_name",
                    "address_lines",
                    "postcode",
                    "city",
                    "country",
                    "language",
                    "updated_at",
                ],
                select(
                    WORKSPACE.c.id,
                    WORKSPACE.c.name,
                    literal(["Generatorweg 1"], JSON),
                    literal("10115"),
                    literal("Berlin"),
                    literal("DE"),
                    literal("de"),
                    literal(now, UTCDateTime()),
                ).where(WORKSPACE.c.key.in_(chunk)),
            )
        )


def _is_generated_email(email: str, people: int) -> bool:
    match = EMAIL_PATTERN.fullmatch(email)
    if match is None:
        return False
    return 1 <= int(match[1]) <= people and email == person_email(int(match[1]))


def advance_sequences(target: Target, writer: Writer) -> None:
    """Move PostgreSQL's id sequences past the ids assigned here.

    Later inserts that let the database pick the id would otherwise collide
    with generated rows.  SQLite takes the next rowid from the table itself.
    """
    dialect = target.dialect if isinstance(target, Connection) else target.get_bind().dialect
    if dialect.name != "postgresql":
        return
    for table in writer.next_id:
        if writer.written[table]:
            target.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"(SELECT max(id) FROM {table.name}))"
                )
            )
