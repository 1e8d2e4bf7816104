"""Finding a workspace by its key: one lookup and one error for every adapter."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..i18n import _
from ..models import Workspace


class UnknownWorkspace(LookupError):
    """No workspace has the key given (the CLI, the pages and the exports say so alike)."""

    def __init__(self, key: str) -> None:
        super().__init__(_("no workspace with the key %(key)r", key=key))


def get_workspace(session: Session, key: str) -> Workspace:
    """The workspace with ``key``; :class:`UnknownWorkspace` if there is none."""
    workspace = session.scalar(select(Workspace).where(Workspace.key == key))
    if workspace is None:
        raise UnknownWorkspace(key)
    return workspace
