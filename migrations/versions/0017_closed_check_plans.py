"""closed-month checks without LIMIT 1: PostgreSQL plans them for every changed row, not the first

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-14 10:00:00

Migration 0010's statement triggers look for the first changed row that
would alter an invoiced month (``SELECT … INTO hit … LIMIT 1``).  The
``LIMIT 1`` made PostgreSQL plan for finding that row at once: for an
UPDATE it joined the old and new transition tables in a nested loop,
reading every new row once per old row.  A change that alters no invoiced
month (the usual case) reads them all, so the purge of 110,000 inactive
members, once any month had been closed, spent 18 of its 20 s in the check
of its access UPDATE (1.6 s before the first close).  ``SELECT INTO`` keeps
only the first row anyway and PL/pgSQL stops the query there: without the
``LIMIT`` the planner plans for reading every row (a hash join), which is
what a change that passes the check does.  The checks, the messages and the
SQLite triggers are unchanged.

The function text is 0010's, kept here as it was (a migration does not
import another), with the ``LIMIT`` as the only difference.
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

#: Table -> (how a row names its workspace, start column, end column or None, other keys).
GUARDED = {
    "billing_team": ("workspace_id", "created_at", None, ("workspace_id",)),
    "billing_workspace_access": (
        "workspace_id",
        "granted_at",
        "revoked_at",
        ("workspace_id", "person_id"),
    ),
    "billing_team_membership": ("team_id", "joined_at", "left_at", ("team_id", "person_id")),
    "billing_team_archive_period": ("team_id", "archived_from", "unarchived_at", ("team_id",)),
}
EVENTS = ("insert", "update", "delete")


def _workspace_of(table: str, row: str) -> str:
    column = GUARDED[table][0]
    if column == "workspace_id":
        return f"{row}.workspace_id"
    return f"(SELECT workspace_id FROM billing_team WHERE id = {row}.team_id)"


def _closed(table: str, row: str) -> str:
    return (
        "(SELECT closed_until FROM billing_closed_period "
        f"WHERE workspace_id = {_workspace_of(table, row)})"
    )


def _condition(table: str, event: str) -> str:
    """The refusal condition of ``event`` over the rows ``o`` (old) and ``n`` (new)."""
    _, start, end, keys = GUARDED[table]
    old_closed, new_closed = _closed(table, "o"), _closed(table, "n")
    if event == "insert":
        return f"n.{start} <= {new_closed}"
    if event == "delete":
        return f"o.{start} <= {old_closed}"
    moved = " OR ".join(f"n.{column} IS DISTINCT FROM o.{column}" for column in (start, *keys))
    update = f"(({moved}) AND (o.{start} <= {old_closed} OR n.{start} <= {new_closed}))"
    if end:
        update += (
            f" OR (n.{end} IS DISTINCT FROM o.{end} AND "
            f"(o.{end} <= {old_closed} OR n.{end} <= {new_closed}))"
        )
    return update


def _function(table: str, event: str, limit: str) -> str:
    """The statement trigger's function: the first offending row of the transition tables."""
    rows = {
        "insert": "new_rows AS n",
        "delete": "old_rows AS o",
        "update": "old_rows AS o JOIN new_rows AS n ON n.id = o.id",
    }[event]
    row = "o" if event == "delete" else "n"
    return (
        f"CREATE OR REPLACE FUNCTION {table}_closed_{event}() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ "
        "DECLARE hit record; "
        "BEGIN "
        "IF NOT EXISTS (SELECT 1 FROM billing_closed_period) THEN RETURN NULL; END IF; "
        f"SELECT {row}.id AS id, w.key AS workspace, i.number AS invoice, "
        "c.closed_until AS closed_until INTO hit "
        f"FROM {rows} "
        f"JOIN billing_closed_period c ON c.workspace_id = {_workspace_of(table, row)} "
        "JOIN billing_workspace w ON w.id = c.workspace_id "
        "JOIN billing_invoice i ON i.id = c.invoice_id "
        f"WHERE {_condition(table, event)}{limit}; "
        "IF FOUND THEN RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = format("
        f"'invoiced months are closed: {table} row %s of workspace %s starts, ends or moves "
        "at or before %s, the end of the month invoiced by %s; correct an invoiced month "
        "with a credit note and a new invoice', hit.id, hit.workspace, hit.closed_until, "
        "hit.invoice); END IF; "
        "RETURN NULL; END $$"
    )


def _replace(limit: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in GUARDED:
        for event in EVENTS:
            op.execute(_function(table, event, limit))


def upgrade() -> None:
    _replace("")


def downgrade() -> None:
    _replace(" LIMIT 1")
