"""The import's side of closed months: refuse a file that would rewrite an invoiced month.

A re-import is "the whole truth" for its workspaces, so it would happily
end a membership in September after October was invoiced.  Before the
import writes any interval, :class:`ClosedGuard` compares what it is about
to add, end, reopen or remove with each workspace's closed period
(:mod:`.closed`) and collects one error per offending row: the workspace,
the row (its place in the file, or the stored row the file leaves out) and
the invoice that holds the month.  With any error the import writes
nothing (the caller rolls back).  Workspaces without an invoice cost
nothing here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..documents import DocPath, Document, LocatedError, format_path
from ..models import Person
from .closed import Closed, ClosedMonth, closed_periods
from .common import among


class ClosedGuard:
    """Collects the import's changes inside closed months, then raises them all at once."""

    def __init__(self, session: Session, workspace_ids: Iterable[int]) -> None:
        """``workspace_ids``: the file's workspaces that exist already (new ones have no
        invoice)."""
        self.session = session
        self.closed: dict[int, Closed] = closed_periods(session, workspace_ids)
        self.errors: list[tuple[DocPath, str]] = []
        self._emails: dict[int, str] = {}

    def __bool__(self) -> bool:
        """Whether any workspace of the file is closed (otherwise nothing needs checking)."""
        return bool(self.closed)

    def _refuse(self, workspace_id: int, instant: datetime | None, row: str, path: DocPath) -> bool:
        closed = self.closed.get(workspace_id)
        try:
            if closed is not None:
                closed.refuse(instant, row)
        except ClosedMonth as exc:
            self.errors.append((path, str(exc)))
            return True
        return False

    def team(
        self, workspace_id: int, target: str, old: datetime | None, new: datetime, path: DocPath
    ) -> None:
        """A team created (``old`` None) or its creation moved from ``old`` to ``new``."""
        if old is None:
            self._refuse(workspace_id, new, f"creating team {target} at {new.isoformat()}", path)
        else:
            self.moved(workspace_id, f"team {target}", old, new, path)

    def moved(
        self, workspace_id: int, what: str, old: datetime, new: datetime, path: DocPath
    ) -> None:
        """The creation of ``what`` (a team, or the workspace: which months it is billed for,
        and in which variant) moved from ``old`` to ``new``: refused when either lies in
        a closed month."""
        row = f"moving the creation of {what} to {new.isoformat()}"
        if not self._refuse(workspace_id, old, row, path):
            self._refuse(workspace_id, new, row, path)

    def intervals(
        self,
        plan: IntervalPlan,
        workspace_of: Callable[[int], int],
        describe: Callable[[tuple[Any, ...], Callable[[int], str]], str],
        paths: dict[tuple[Any, ...], DocPath],
        workspace_paths: dict[int, DocPath],
    ) -> None:
        """Every interval the plan adds, ends, reopens or removes inside a closed month."""
        if not self:
            return
        email = self._email_of(plan)
        for key in plan.new:
            ws = workspace_of(key[0])
            self._refuse(ws, key[-1], f"adding the {describe(key, email)}", paths[key])
        for key, (old, new) in plan.changed.items():
            ws = workspace_of(key[0])
            if new is not None:
                what = f"ending the {describe(key, email)} at {new.isoformat()}"
            else:
                assert old is not None, "a changed interval had an end or gets one"
                what = f"reopening the {describe(key, email)}, which ended at {old.isoformat()}"
            if not self._refuse(ws, old, what, paths[key]):
                self._refuse(ws, new, what, paths[key])
        for key in plan.gone:
            ws = workspace_of(key[0])
            what = f"removing the {describe(key, email)}, which the file leaves out"
            self._refuse(ws, key[-1], what, workspace_paths[ws])

    def _email_of(self, plan: IntervalPlan) -> Callable[[int], str]:
        """E-mail of a person id, read once for the people the plan names."""
        if plan.person_index is not None:
            wanted = {key[plan.person_index] for key in (*plan.new, *plan.changed, *plan.gone)}
            missing = wanted - self._emails.keys()
            if missing:
                self._emails.update(
                    self.session.execute(
                        select(Person.id, Person.email).where(
                            among(self.session, Person.id, missing)
                        )
                    ).all()
                )
        return lambda person_id: self._emails.get(person_id, f"person {person_id}")

    def raise_errors(self, document: Document | None) -> None:
        """Raise every collected error as an :class:`~.importer.ImportFileError`, located."""
        if not self.errors:
            return
        from .importer import ImportFileError

        raise ImportFileError(
            [
                LocatedError(
                    format_path(path), message, document.line_of(path) if document else None
                )
                for path, message in self.errors
            ]
        )


class IntervalPlan:
    """What syncing one interval table would do: keys added, ends changed, keys removed."""

    def __init__(self, person_index: int | None) -> None:
        self.person_index = person_index
        self.new: dict[tuple[Any, ...], datetime | None] = {}
        self.changed: dict[tuple[Any, ...], tuple[datetime | None, datetime | None]] = {}
        self.gone: list[tuple[Any, ...]] = []
        #: The stored rows' ids by key (what the writes address).
        self.ids: dict[tuple[Any, ...], int] = {}
