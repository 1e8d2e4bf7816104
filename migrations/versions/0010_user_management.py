"""user management: closed periods, stored licence holders, triggers that keep invoiced months

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 01:00:00

Once a workspace has an invoice for a month, nothing may start, end or move
an interval at or before the end of its last invoiced month
(``billing_closed_period.closed_until``).  The services refuse such a change
with a message naming the workspace, the row and the invoice; these triggers
refuse it for every other writer, raw SQL included.  They sit next to the
stamp triggers of 0007 and watch the same tables.

PostgreSQL checks once per statement, over the statement's transition
tables, so a bulk load costs one query and not one per row; with no closed
period at all it stops at the first lookup.  SQLite has no statement
triggers: a per-row ``BEFORE`` trigger with a ``WHEN`` clause.

Existing invoices close their workspaces' months here too.  The end of a
month depends on the billing time zone, which the rules version each
invoice was priced with records (``timezone``, default Europe/Berlin).
"""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import yaml
from alembic import op

revision = "0010"
down_revision = "0009"
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
SQLITE_MESSAGE = (
    "invoiced months are closed: this change starts, ends or moves an interval at or "
    "before the end of the last invoiced month of its workspace (billing_closed_period); "
    "correct an invoiced month with a credit note and a new invoice"
)


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


def _conditions(table: str, distinct: str, old: str, new: str) -> dict[str, str]:
    """The refusal condition per event, over the rows named ``old`` and ``new``."""
    _, start, end, keys = GUARDED[table]
    old_closed, new_closed = _closed(table, old), _closed(table, new)
    moved = " OR ".join(f"{new}.{column} {distinct} {old}.{column}" for column in (start, *keys))
    update = f"(({moved}) AND ({old}.{start} <= {old_closed} OR {new}.{start} <= {new_closed}))"
    if end:
        update += (
            f" OR ({new}.{end} {distinct} {old}.{end} AND "
            f"({old}.{end} <= {old_closed} OR {new}.{end} <= {new_closed}))"
        )
    return {
        "insert": f"{new}.{start} <= {new_closed}",
        "update": update,
        "delete": f"{old}.{start} <= {old_closed}",
    }


def _sqlite_upgrade() -> None:
    for table in GUARDED:
        for event, condition in _conditions(table, "IS NOT", "OLD", "NEW").items():
            op.execute(
                f"CREATE TRIGGER {table}_closed_{event} BEFORE {event.upper()} ON {table} "
                f"FOR EACH ROW WHEN {condition} "
                f"BEGIN SELECT RAISE(ABORT, '{SQLITE_MESSAGE}'); END"
            )


def _postgresql_function(table: str, event: str) -> str:
    """A statement trigger: the first offending row of the transition tables, if any."""
    condition = _conditions(table, "IS DISTINCT FROM", "o", "n")[event]
    rows = {
        "insert": "new_rows AS n",
        "delete": "old_rows AS o",
        "update": "old_rows AS o JOIN new_rows AS n ON n.id = o.id",
    }[event]
    row = "o" if event == "delete" else "n"
    return (
        f"CREATE FUNCTION {table}_closed_{event}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "DECLARE hit record; "
        "BEGIN "
        "IF NOT EXISTS (SELECT 1 FROM billing_closed_period) THEN RETURN NULL; END IF; "
        f"SELECT {row}.id AS id, w.key AS workspace, i.number AS invoice, "
        "c.closed_until AS closed_until INTO hit "
        f"FROM {rows} "
        f"JOIN billing_closed_period c ON c.workspace_id = {_workspace_of(table, row)} "
        "JOIN billing_workspace w ON w.id = c.workspace_id "
        "JOIN billing_invoice i ON i.id = c.invoice_id "
        f"WHERE {condition} LIMIT 1; "
        "IF FOUND THEN RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = format("
        f"'invoiced months are closed: {table} row %s of workspace %s starts, ends or moves "
        "at or before %s, the end of the month invoiced by %s; correct an invoiced month "
        "with a credit note and a new invoice', hit.id, hit.workspace, hit.closed_until, "
        "hit.invoice); END IF; "
        "RETURN NULL; END $$"
    )


def _postgresql_upgrade() -> None:
    for table in GUARDED:
        for event in ("insert", "update", "delete"):
            op.execute(_postgresql_function(table, event))
            tables = {
                "insert": "NEW TABLE AS new_rows",
                "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
                "delete": "OLD TABLE AS old_rows",
            }[event]
            op.execute(
                f"CREATE TRIGGER {table}_closed_{event} AFTER {event.upper()} ON {table} "
                f"REFERENCING {tables} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION {table}_closed_{event}()"
            )


def _month_end(period: str, content: str | None) -> datetime:
    rules = yaml.safe_load(content) if content else None
    zone = ZoneInfo(rules.get("timezone", "Europe/Berlin") if isinstance(rules, dict) else "UTC")
    year, month = map(int, period.split("-"))
    year, month = year + month // 12, month % 12 + 1
    return datetime(year, month, 1, tzinfo=zone).astimezone(UTC)


def _close_invoiced_months() -> None:
    """One row per invoiced workspace: the end of its latest invoiced month."""
    bind = op.get_bind()
    latest = bind.execute(
        sa.text(
            "SELECT i.workspace_id, i.id, i.period, r.content FROM billing_invoice i "
            "LEFT JOIN billing_rules_version r ON r.sha256 = i.rules_sha256 "
            "WHERE i.kind = 'invoice' AND i.period = (SELECT max(period) FROM billing_invoice j "
            "WHERE j.workspace_id = i.workspace_id AND j.kind = 'invoice')"
        )
    ).all()
    table = sa.table(
        "billing_closed_period",
        sa.column("workspace_id", sa.Integer()),
        sa.column("closed_until", sa.DateTime(timezone=True)),
        sa.column("invoice_id", sa.Integer()),
    )
    rows = []
    for workspace_id, invoice_id, period, content in latest:
        end = _month_end(period, content)
        if bind.dialect.name == "sqlite":
            end = end.replace(tzinfo=None)
        rows.append({"workspace_id": workspace_id, "closed_until": end, "invoice_id": invoice_id})
    if rows:
        op.bulk_insert(table, rows)


def upgrade() -> None:
    op.create_table(
        "billing_closed_period",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("closed_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["billing_invoice.id"],
            name=op.f("fk_billing_closed_period_invoice_id_billing_invoice"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["billing_workspace.id"],
            name=op.f("fk_billing_closed_period_workspace_id_billing_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_billing_closed_period")),
    )
    op.create_index(
        op.f("ix_billing_closed_period_invoice_id"),
        "billing_closed_period",
        ["invoice_id"],
        unique=False,
    )
    op.create_table(
        "billing_invoice_holder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("team_name", sa.String(length=200), nullable=False),
        sa.Column("members", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(email IS NULL) = (members IS NOT NULL)",
            name=op.f("ck_billing_invoice_holder_user_or_team"),
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["billing_invoice.id"],
            name=op.f("fk_billing_invoice_holder_invoice_id_billing_invoice"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_invoice_holder")),
    )
    op.create_index(
        op.f("ix_billing_invoice_holder_invoice_id"),
        "billing_invoice_holder",
        ["invoice_id"],
        unique=False,
    )
    _close_invoiced_months()
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_upgrade()
    else:
        _sqlite_upgrade()


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in GUARDED:
        for event in ("insert", "update", "delete"):
            if postgresql:
                op.execute(f"DROP TRIGGER {table}_closed_{event} ON {table}")
                op.execute(f"DROP FUNCTION {table}_closed_{event}()")
            else:
                op.execute(f"DROP TRIGGER {table}_closed_{event}")
    op.drop_index(op.f("ix_billing_invoice_holder_invoice_id"), table_name="billing_invoice_holder")
    op.drop_table("billing_invoice_holder")
    op.drop_index(op.f("ix_billing_closed_period_invoice_id"), table_name="billing_closed_period")
    op.drop_table("billing_closed_period")
