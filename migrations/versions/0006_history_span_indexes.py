"""covering indexes for the history tables, and the list orders: list pages and counts at scale

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 08:00:00

Measured with ``make bench`` (docs/benchmarks.md) at 1M memberships: the workspace list's
counts made PostgreSQL read the whole membership table (a parallel seq scan,
250 ms), because the rows of a team are scattered over the heap and the only
index by team did not hold the interval.  With the interval and the person in
the index, a page of workspaces is an index-only scan on both databases.
The member list sorts by access start (newest first) and the team list by
key: without an index each page sorted every row of the table.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_billing_team_membership_span": (
        "billing_team_membership",
        ["team_id", "joined_at", "left_at", "person_id"],
    ),
    "ix_billing_workspace_access_span": (
        "billing_workspace_access",
        ["workspace_id", "granted_at", "revoked_at", "person_id"],
    ),
    "ix_billing_workspace_access_granted_at": ("billing_workspace_access", ["granted_at"]),
    "ix_billing_team_key": ("billing_team", ["key"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
