"""workspace stamps: triggers mark every change to what a workspace's counts are made of

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:00:00

The workspace list shows each workspace's members, active members, active
teams and licences this month.  Computing them reads every membership of the
page's teams (about 12,000 rows a page at 1M memberships), which made the
list 2.2–2.4 times slower than a plain Flask-Admin list (``make bench``).  The
counts change only when a row they are made of changes (or when time passes
an interval's end or the month turns, which the cache checks itself), so the
list computes them once and keeps them under the workspace's stamp.

The stamp must change on every write, including the host's own SQL, which is
why triggers write it rather than the services.  On SQLite each changed row
writes a fresh ``random()``.  On PostgreSQL a trigger per row that rewrote
the stamp row every time made a bulk load ten times slower (each update
leaves a dead row version behind for the next one to step over), so the
stamp is the writing transaction's id, written once per transaction and
workspace: ``WHERE stamp <> txid_current()`` makes the later updates no-ops.
The reader does not keep counts computed inside the transaction that wrote
the stamp (``txid_current_if_assigned()``), since that transaction may write
again without changing it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: The tables whose rows make up the counts, and how a row names its workspace.
WATCHED = {
    "billing_team": "workspace_id",
    "billing_workspace_access": "workspace_id",
    "billing_team_membership": "team_id",
    "billing_team_archive_period": "team_id",
}
EVENTS = ("insert", "update", "delete")


def _workspace_of(table: str, row: str) -> str:
    """SQL naming the workspace of the trigger's ``row`` (NEW or OLD)."""
    if WATCHED[table] == "workspace_id":
        return f"{row}.workspace_id"
    return f"(SELECT workspace_id FROM billing_team WHERE id = {row}.team_id)"


def _rows(event: str) -> tuple[str, ...]:
    return {"insert": ("NEW",), "update": ("OLD", "NEW"), "delete": ("OLD",)}[event]


def _sqlite_upgrade() -> None:
    op.execute(
        "CREATE TRIGGER billing_workspace_stamp_new AFTER INSERT ON billing_workspace "
        "BEGIN INSERT INTO billing_workspace_stamp (workspace_id, stamp) "
        "VALUES (NEW.id, random()); END"
    )
    for table in WATCHED:
        for event in EVENTS:
            workspaces = ", ".join(_workspace_of(table, row) for row in _rows(event))
            op.execute(
                f"CREATE TRIGGER {table}_stamp_{event} AFTER {event.upper()} ON {table} "
                f"BEGIN UPDATE billing_workspace_stamp SET stamp = random() "
                f"WHERE workspace_id IN ({workspaces}); END"
            )


def _postgresql_function(table: str) -> str:
    steps = []
    for event in EVENTS:
        updates = "".join(
            f"UPDATE billing_workspace_stamp SET stamp = txid_current() "
            f"WHERE workspace_id = {_workspace_of(table, row)} AND stamp <> txid_current(); "
            for row in _rows(event)
        )
        steps.append(f"IF TG_OP = '{event.upper()}' THEN {updates}END IF; ")
    return (
        f"CREATE FUNCTION {table}_stamp() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN {''.join(steps)}RETURN NULL; END $$"
    )


def _postgresql_upgrade() -> None:
    op.execute(
        "CREATE FUNCTION billing_workspace_stamp_new() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN INSERT INTO billing_workspace_stamp (workspace_id, stamp) "
        "VALUES (NEW.id, txid_current()); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER billing_workspace_stamp_new AFTER INSERT ON billing_workspace "
        "FOR EACH ROW EXECUTE FUNCTION billing_workspace_stamp_new()"
    )
    for table in WATCHED:
        op.execute(_postgresql_function(table))
        op.execute(
            f"CREATE TRIGGER {table}_stamp AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_stamp()"
        )


def upgrade() -> None:
    op.create_table(
        "billing_workspace_stamp",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("stamp", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["billing_workspace.id"],
            name=op.f("fk_billing_workspace_stamp_workspace_id_billing_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_billing_workspace_stamp")),
    )
    op.execute(
        "INSERT INTO billing_workspace_stamp (workspace_id, stamp) "
        "SELECT id, 0 FROM billing_workspace"
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_upgrade()
    else:
        _sqlite_upgrade()


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in WATCHED:
        if postgresql:
            op.execute(f"DROP TRIGGER {table}_stamp ON {table}")
            op.execute(f"DROP FUNCTION {table}_stamp()")
        else:
            for event in EVENTS:
                op.execute(f"DROP TRIGGER {table}_stamp_{event}")
    if postgresql:
        op.execute("DROP TRIGGER billing_workspace_stamp_new ON billing_workspace")
        op.execute("DROP FUNCTION billing_workspace_stamp_new()")
    else:
        op.execute("DROP TRIGGER billing_workspace_stamp_new")
    op.drop_table("billing_workspace_stamp")
