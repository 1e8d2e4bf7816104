"""statement stamps: on PostgreSQL the workspace stamps are written once per statement, not per row

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-14 09:00:00

Migration 0007's triggers ran for every changed row: a purge of 110,000
inactive members (``make bench``) ran the trigger function 110,000 times
for the access rows and again for each ended membership, each time looking
up the stamp row to find it written already.  Statement triggers with
transition tables see every changed row at once and write each workspace's
stamp once per statement, with the same value as before (the writing
transaction's id) and the same ``stamp <> txid_current()`` guard, so the
readers (:mod:`plugin.services.counts`) are unchanged.  A trigger with
transition tables serves one event, so each table gets three.  SQLite keeps
its row triggers (a fresh ``random()`` per changed row), which cost little
in the app's own process.
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

#: The tables whose rows make up the counts, and how a row names its workspace (as in 0007).
WATCHED = {
    "billing_team": "workspace_id",
    "billing_workspace_access": "workspace_id",
    "billing_team_membership": "team_id",
    "billing_team_archive_period": "team_id",
}
#: Per event, the transition tables its trigger declares.
TRANSITIONS = {
    "insert": "NEW TABLE AS new_rows",
    "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "OLD TABLE AS old_rows",
}


def _workspaces_of(table: str, rows: str) -> str:
    """SQL selecting the workspaces of a transition table's rows."""
    if WATCHED[table] == "workspace_id":
        return f"SELECT workspace_id FROM {rows}"
    return f"SELECT t.workspace_id FROM billing_team t JOIN {rows} r ON t.id = r.team_id"


def _stamp(table: str, rows: str) -> str:
    return (
        "UPDATE billing_workspace_stamp SET stamp = txid_current() "
        f"WHERE workspace_id IN ({_workspaces_of(table, rows)}) AND stamp <> txid_current(); "
    )


def _statement_function(table: str) -> str:
    """One function per table; each event's trigger reads only the tables it declares."""
    steps = "".join(
        f"IF TG_OP IN ({events}) THEN {_stamp(table, rows)}END IF; "
        for events, rows in (("'INSERT', 'UPDATE'", "new_rows"), ("'UPDATE', 'DELETE'", "old_rows"))
    )
    return (
        f"CREATE FUNCTION {table}_stamps() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN {steps}RETURN NULL; END $$"
    )


def _row_function(table: str) -> str:
    """Migration 0007's function, for the downgrade."""
    steps = []
    for event, rows in (("INSERT", ("NEW",)), ("UPDATE", ("OLD", "NEW")), ("DELETE", ("OLD",))):
        updates = "".join(
            "UPDATE billing_workspace_stamp SET stamp = txid_current() WHERE workspace_id = "
            + (
                f"{row}.workspace_id"
                if WATCHED[table] == "workspace_id"
                else f"(SELECT workspace_id FROM billing_team WHERE id = {row}.team_id)"
            )
            + " AND stamp <> txid_current(); "
            for row in rows
        )
        steps.append(f"IF TG_OP = '{event}' THEN {updates}END IF; ")
    return (
        f"CREATE FUNCTION {table}_stamp() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN {''.join(steps)}RETURN NULL; END $$"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in WATCHED:
        op.execute(f"DROP TRIGGER {table}_stamp ON {table}")
        op.execute(f"DROP FUNCTION {table}_stamp()")
        op.execute(_statement_function(table))
        for event, transitions in TRANSITIONS.items():
            op.execute(
                f"CREATE TRIGGER {table}_stamps_{event} AFTER {event.upper()} ON {table} "
                f"REFERENCING {transitions} FOR EACH STATEMENT EXECUTE FUNCTION {table}_stamps()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in WATCHED:
        for event in TRANSITIONS:
            op.execute(f"DROP TRIGGER {table}_stamps_{event} ON {table}")
        op.execute(f"DROP FUNCTION {table}_stamps()")
        op.execute(_row_function(table))
        op.execute(
            f"CREATE TRIGGER {table}_stamp AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_stamp()"
        )
