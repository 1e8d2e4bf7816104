"""The audit log: every state change made through the plugin, who and when."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ..models import AuditEntry
from ..types import utcnow


def record(
    session: Session,
    actor: str,
    action: str,
    *,
    workspace_id: int | None = None,
    target: str = "",
    before: Any = None,
    after: Any = None,
    detail: str = "",
) -> None:
    """Add one audit entry to the session's transaction."""
    record_many(
        session,
        actor,
        action,
        [
            {
                "workspace_id": workspace_id,
                "target": target,
                "before": before,
                "after": after,
                "detail": detail,
            }
        ],
    )


def record_many(
    session: Session, actor: str, action: str, entries: Iterable[dict[str, Any]]
) -> None:
    """Add many audit entries of one action in a single statement."""
    now = utcnow()
    rows = [
        {
            "at": now,
            "actor": actor,
            "action": action,
            "workspace_id": entry.get("workspace_id"),
            "target": entry.get("target", ""),
            "before": entry.get("before"),
            "after": entry.get("after"),
            "detail": entry.get("detail", ""),
        }
        for entry in entries
    ]
    if rows:
        session.execute(insert(AuditEntry), rows)
