"""Small helpers the tests share."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models import Base


def snapshot(session: Session) -> dict[str, list[tuple]]:
    """Every row of every plugin table, to prove that something changed nothing."""
    rows = {}
    for name, table in Base.metadata.tables.items():
        order = list(table.primary_key.columns)
        rows[name] = [tuple(row) for row in session.execute(select(table).order_by(*order))]
    return rows
