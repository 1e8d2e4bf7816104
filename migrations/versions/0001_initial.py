"""initial schema: workspaces, teams, people and their history

Revision ID: 0001
Revises:
Create Date: 2026-11-25 10:12:21.611791
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "billing_person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_person")),
        sa.UniqueConstraint("email", name=op.f("uq_billing_person_email")),
    )
    op.create_table(
        "billing_workspace",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contract_variant", sa.String(length=20), nullable=True),
        sa.Column("invoice_mailbox", sa.String(length=254), nullable=True),
        sa.CheckConstraint(
            "contract_variant IS NULL OR contract_variant IN ('team_licences', 'user_licences')",
            name=op.f("ck_billing_workspace_contract_variant_valid"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_workspace")),
        sa.UniqueConstraint("key", name=op.f("uq_billing_workspace_key")),
    )
    op.create_table(
        "billing_audit_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("action", sa.String(length=63), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=True),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["billing_workspace.id"],
            name=op.f("fk_billing_audit_entry_workspace_id_billing_workspace"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_audit_entry")),
    )
    with op.batch_alter_table("billing_audit_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_audit_entry_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_audit_entry_actor"), ["actor"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_audit_entry_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_billing_audit_entry_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "billing_team",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["billing_workspace.id"],
            name=op.f("fk_billing_team_workspace_id_billing_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_team")),
        sa.UniqueConstraint("workspace_id", "key", name=op.f("uq_billing_team_workspace_id_key")),
    )
    op.create_table(
        "billing_workspace_access",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "revoked_at IS NULL OR revoked_at >= granted_at",
            name=op.f("ck_billing_workspace_access_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["billing_person.id"],
            name=op.f("fk_billing_workspace_access_person_id_billing_person"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["billing_workspace.id"],
            name=op.f("fk_billing_workspace_access_workspace_id_billing_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_workspace_access")),
        sa.UniqueConstraint(
            "workspace_id",
            "person_id",
            "granted_at",
            name=op.f("uq_billing_workspace_access_workspace_id_person_id_granted_at"),
        ),
    )
    with op.batch_alter_table("billing_workspace_access", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_billing_workspace_access_person_id"), ["person_id"], unique=False
        )
        batch_op.create_index(
            "uq_billing_workspace_access_open",
            ["workspace_id", "person_id"],
            unique=True,
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        )

    op.create_table(
        "billing_workspace_owner",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["billing_person.id"],
            name=op.f("fk_billing_workspace_owner_person_id_billing_person"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["billing_workspace.id"],
            name=op.f("fk_billing_workspace_owner_workspace_id_billing_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "person_id", name=op.f("pk_billing_workspace_owner")
        ),
    )
    with op.batch_alter_table("billing_workspace_owner", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_billing_workspace_owner_person_id"), ["person_id"], unique=False
        )

    op.create_table(
        "billing_team_archive_period",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("archived_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unarchived_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "unarchived_at IS NULL OR unarchived_at > archived_from",
            name=op.f("ck_billing_team_archive_period_positive_length"),
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["billing_team.id"],
            name=op.f("fk_billing_team_archive_period_team_id_billing_team"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_team_archive_period")),
        sa.UniqueConstraint(
            "team_id",
            "archived_from",
            name=op.f("uq_billing_team_archive_period_team_id_archived_from"),
        ),
    )
    with op.batch_alter_table("billing_team_archive_period", schema=None) as batch_op:
        batch_op.create_index(
            "uq_billing_team_archive_period_open",
            ["team_id"],
            unique=True,
            sqlite_where=sa.text("unarchived_at IS NULL"),
            postgresql_where=sa.text("unarchived_at IS NULL"),
        )

    op.create_table(
        "billing_team_membership",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "left_at IS NULL OR left_at >= joined_at",
            name=op.f("ck_billing_team_membership_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["billing_person.id"],
            name=op.f("fk_billing_team_membership_person_id_billing_person"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["billing_team.id"],
            name=op.f("fk_billing_team_membership_team_id_billing_team"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_team_membership")),
        sa.UniqueConstraint(
            "team_id",
            "person_id",
            "joined_at",
            name=op.f("uq_billing_team_membership_team_id_person_id_joined_at"),
        ),
    )
    with op.batch_alter_table("billing_team_membership", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_billing_team_membership_person_id"), ["person_id"], unique=False
        )
        batch_op.create_index(
            "uq_billing_team_membership_open",
            ["team_id", "person_id"],
            unique=True,
            sqlite_where=sa.text("left_at IS NULL"),
            postgresql_where=sa.text("left_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("billing_team_membership", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_billing_team_membership_open",
            sqlite_where=sa.text("left_at IS NULL"),
            postgresql_where=sa.text("left_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_billing_team_membership_person_id"))

    op.drop_table("billing_team_membership")
    with op.batch_alter_table("billing_team_archive_period", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_billing_team_archive_period_open",
            sqlite_where=sa.text("unarchived_at IS NULL"),
            postgresql_where=sa.text("unarchived_at IS NULL"),
        )

    op.drop_table("billing_team_archive_period")
    with op.batch_alter_table("billing_workspace_owner", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_workspace_owner_person_id"))

    op.drop_table("billing_workspace_owner")
    with op.batch_alter_table("billing_workspace_access", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_billing_workspace_access_open",
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_billing_workspace_access_person_id"))

    op.drop_table("billing_workspace_access")
    op.drop_table("billing_team")
    with op.batch_alter_table("billing_audit_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_audit_entry_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_billing_audit_entry_at"))
        batch_op.drop_index(batch_op.f("ix_billing_audit_entry_actor"))
        batch_op.drop_index(batch_op.f("ix_billing_audit_entry_action"))

    op.drop_table("billing_audit_entry")
    op.drop_table("billing_workspace")
    op.drop_table("billing_person")
