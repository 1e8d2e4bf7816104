"""Loading workspaces, teams, people and their history from an import file.

The file is the whole truth for every workspace it lists: the workspace's
fields, its owners (when given), the complete history of each team it lists
(archived periods and memberships) and the workspace access of each person it
mentions.  Teams and people of the workspace that the file does not mention
are left as they are.  Everything is matched by key (workspace key, team key,
e-mail, interval start), so importing the same file twice changes nothing and
a changed file updates rows instead of duplicating them.

The work is set-based: one SELECT per table for everything the file touches,
then bulk INSERT / UPDATE / DELETE statements; never a query per row.

It stays one module (about 600 lines): it is one transaction whose steps
share the file's matched keys; the schema of the file (:mod:`.import_schema`)
and the closed-month guard (:mod:`.import_closed`) are apart.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from marshmallow import ValidationError
from sqlalchemy import delete, insert, select, tuple_, update
from sqlalchemy.orm import Session

from ..documents import (
    DocPath,
    Document,
    DocumentError,
    LocatedError,
    load_document,
    located_errors,
    read_limited,
    schema_load,
)
from ..models import (
    Person,
    Team,
    TeamArchivePeriod,
    TeamMembership,
    Workspace,
    WorkspaceAccess,
    WorkspaceOwner,
)
from . import audit
from .billing_details import DetailsChange, apply_details
from .common import chunked
from .import_closed import ClosedGuard, IntervalPlan
from .import_schema import ImportContext, ImportFileSchema


class ImportFileError(Exception):
    """The file is not importable; ``errors`` says every reason and where."""

    def __init__(self, errors: list[LocatedError]) -> None:
        super().__init__("\n".join(str(error) for error in errors))
        self.errors = errors


@dataclass
class ImportResult:
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return (
            any(self.created.values()) or any(self.updated.values()) or any(self.deleted.values())
        )

    def summary(self) -> str:
        if not self.changed:
            return "Nothing to change: the database already matches the file."
        parts = []
        for verb, counts in (
            ("created", self.created),
            ("updated", self.updated),
            ("removed", self.deleted),
        ):
            done = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
            if done:
                parts.append(f"{verb} {done}")
        return "Imported: " + "; ".join(parts) + "."


def read_import_file(path: str | os.PathLike[str], *, max_bytes: int) -> bytes:
    """The bytes of an import file; one over ``max_bytes`` is refused before it is read."""
    try:
        return read_limited(path, max_bytes=max_bytes)
    except DocumentError as exc:
        raise ImportFileError(exc.errors) from exc


def parse_import_file(
    text: str | bytes, *, source: str, tz: ZoneInfo, max_bytes: int
) -> dict[str, Any]:
    """Validate an import file; raise :class:`ImportFileError` with every located error."""
    return _parse(text, source=source, tz=tz, max_bytes=max_bytes)[1]


def _parse(
    text: str | bytes, *, source: str, tz: ZoneInfo, max_bytes: int
) -> tuple[Document, dict[str, Any]]:
    try:
        document = load_document(text, source=source, max_bytes=max_bytes)
    except DocumentError as exc:
        raise ImportFileError(exc.errors) from exc
    with ImportContext({"tz": tz}):
        try:
            return document, schema_load(ImportFileSchema(), document)
        except ValidationError as exc:
            raise ImportFileError(located_errors(exc.messages, document)) from exc


def import_file(
    session: Session,
    text: str | bytes,
    *,
    source: str,
    tz: ZoneInfo,
    actor: str,
    max_bytes: int = 50 * 1024 * 1024,
) -> ImportResult:
    """Validate and apply an import file in the session's transaction (not committed).

    A file that would change an invoiced month is refused (:mod:`.import_closed`):
    the caller rolls back, and nothing is imported.
    """
    document, data = _parse(text, source=source, tz=tz, max_bytes=max_bytes)
    return apply_import(session, data["workspaces"], actor=actor, document=document)


def apply_import(
    session: Session,
    workspaces: list[dict[str, Any]],
    *,
    actor: str,
    document: Document | None = None,
) -> ImportResult:
    result = ImportResult()
    people = _upsert_people(session, workspaces, result)
    workspace_ids, guard = _upsert_workspaces(session, workspaces, result, actor)
    team_ids = _upsert_teams(session, workspaces, workspace_ids, result, guard, document)
    _apply_billing_details(session, workspaces, result, actor)
    _sync_owners(session, workspaces, workspace_ids, people, result)
    workspace_of_team = {team_ids[pair]: workspace_ids[pair[0]] for pair in team_ids}
    team_label = {team_id: f"{ws}/{team}" for (ws, team), team_id in team_ids.items()}
    wanted_periods, period_paths = _wanted_periods(workspaces, team_ids)
    wanted_memberships, membership_paths = _wanted_memberships(workspaces, team_ids, people)
    access, access_paths = _wanted_access(workspaces, workspace_ids, people)
    specs = [
        _IntervalSpec(
            TeamArchivePeriod,
            "team_id",
            "archived_from",
            "unarchived_at",
            None,
            "archived periods",
            list(team_ids.values()),
            wanted_periods,
            period_paths,
            workspace_of_team.__getitem__,
            lambda key, email: (
                f"archived period of team {team_label[key[0]]} from {key[1].isoformat()}"
            ),
        ),
        _IntervalSpec(
            TeamMembership,
            "team_id",
            "joined_at",
            "left_at",
            "person_id",
            "team memberships",
            list(team_ids.values()),
            wanted_memberships,
            membership_paths,
            workspace_of_team.__getitem__,
            lambda key, email: (
                f"membership of {email(key[1])} in team {team_label[key[0]]} "
                f"(joined {key[2].isoformat()})"
            ),
        ),
        _IntervalSpec(
            WorkspaceAccess,
            "workspace_id",
            "granted_at",
            "revoked_at",
            "person_id",
            "workspace access intervals",
            list(workspace_ids.values()),
            access,
            access_paths,
            lambda workspace_id: workspace_id,
            lambda key, email: (
                f"workspace access of {email(key[1])} (granted {key[2].isoformat()})"
            ),
            only_people={(ws_id, person) for ws_id, person, _ in access},
        ),
    ]
    workspace_paths: dict[int, DocPath] = {
        workspace_ids[ws["key"]]: ("workspaces", index) for index, ws in enumerate(workspaces)
    }
    plans = [_plan_intervals(session, spec) for spec in specs]
    for spec, plan in zip(specs, plans, strict=True):
        guard.intervals(plan, spec.workspace_of, spec.describe, spec.paths, workspace_paths)
    guard.raise_errors(document)
    for spec, plan in zip(specs, plans, strict=True):
        _write_intervals(session, spec, plan, result)
    if result.changed:
        audit.record(session, actor, "import", detail=result.summary())
    session.flush()
    return result


def _apply_billing_details(
    session: Session, workspaces: list[dict[str, Any]], result: ImportResult, actor: str
) -> None:
    """The billing details the file gives, each audited (validated by the schema already)."""
    changes = [
        DetailsChange(ws["key"], ws["billing_details"])
        for ws in workspaces
        if ws["billing_details"] is not None
    ]
    if changes:
        session.flush()
        done = apply_details(session, changes, actor=actor)
        result.updated["billing details"] = len(done.changed)


def _all_members(workspace: dict[str, Any]) -> Iterable[dict[str, Any]]:
    yield from workspace["members"]
    for team in workspace["teams"]:
        yield from team["members"]


def _upsert_people(
    session: Session, workspaces: list[dict[str, Any]], result: ImportResult
) -> dict[str, Any]:
    names: dict[str, str] = {}
    for workspace in workspaces:
        for email in workspace["owners"] or ():
            names.setdefault(email, "")
        for member in _all_members(workspace):
            if member["name"] or member["email"] not in names:
                names[member["email"]] = member["name"]
    existing = {}
    for chunk in chunked(names):
        existing.update(
            {
                row.email: row
                for row in session.execute(
                    select(Person.id, Person.email, Person.name).where(Person.email.in_(chunk))
                )
            }
        )
    new = [{"email": email, "name": name} for email, name in names.items() if email not in existing]
    renamed = [
        {"id": row.id, "name": names[email]}
        for email, row in existing.items()
        if names[email] and names[email] != row.name
    ]
    ids = {email: row.id for email, row in existing.items()}
    for batch in chunked(new):
        ids.update(
            {
                row.email: row.id
                for row in session.execute(
                    insert(Person).returning(Person.id, Person.email), list(batch)
                )
            }
        )
    if renamed:
        session.execute(update(Person), renamed)
    result.created["people"] = len(new)
    result.updated["people"] = len(renamed)
    return ids


_WORKSPACE_FIELDS = ("name", "created_at", "contract_variant", "invoice_mailbox")


def _workspace_values(workspace: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": workspace["name"],
        "created_at": workspace["created"],
        "contract_variant": workspace["contract_variant"],
        "invoice_mailbox": workspace["invoice_mailbox"],
    }


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


def _upsert_workspaces(
    session: Session, workspaces: list[dict[str, Any]], result: ImportResult, actor: str
) -> tuple[dict[str, int], ClosedGuard]:
    """The workspaces' ids by key, and the guard of their closed months.

    A workspace's creation decides the months it is billed for and, by the
    cut-over date, its variant: moving it is refused like moving a team's
    creation when either instant lies in a closed month (the errors are
    raised with the teams').
    """
    keys = [ws["key"] for ws in workspaces]
    existing = {
        row.key: row
        for chunk in chunked(keys)
        for row in session.execute(
            select(
                Workspace.id, Workspace.key, *(getattr(Workspace, f) for f in _WORKSPACE_FIELDS)
            ).where(Workspace.key.in_(chunk))
        )
    }
    ids = {key: row.id for key, row in existing.items()}
    guard = ClosedGuard(session, ids.values())
    new, changed, audits = [], [], []
    for index, workspace in enumerate(workspaces):
        values = _workspace_values(workspace)
        row = existing.get(workspace["key"])
        if row is None:
            new.append({"key": workspace["key"], **values})
            continue
        if guard and row.created_at != values["created_at"]:
            guard.moved(
                row.id,
                f"workspace {row.key}",
                row.created_at,
                values["created_at"],
                ("workspaces", index, "created"),
            )
        before = {f: getattr(row, f) for f in _WORKSPACE_FIELDS if getattr(row, f) != values[f]}
        if before:
            changed.append({"id": row.id, **values})
            audits.append(
                {
                    "workspace_id": row.id,
                    "target": workspace["key"],
                    "before": _jsonable(before),
                    "after": _jsonable({f: values[f] for f in before}),
                }
            )
    for chunk in chunked(new):
        ids.update(
            {
                row.key: row.id
                for row in session.execute(
                    insert(Workspace).returning(Workspace.id, Workspace.key), list(chunk)
                )
            }
        )
    if changed:
        session.execute(update(Workspace), changed)
    audit.record_many(session, actor, "import.update_workspace", audits)
    audit.record_many(
        session,
        actor,
        "import.create_workspace",
        [{"workspace_id": ids[ws["key"]], "target": ws["key"]} for ws in new],
    )
    result.created["workspaces"] = len(new)
    result.updated["workspaces"] = len(changed)
    return ids, guard


def _upsert_teams(
    session: Session,
    workspaces: list[dict[str, Any]],
    workspace_ids: dict[str, int],
    result: ImportResult,
    guard: ClosedGuard,
    document: Document | None,
) -> dict[tuple[str, str], int]:
    key_of_id = {ws_id: key for key, ws_id in workspace_ids.items()}
    existing = {
        (key_of_id[row.workspace_id], row.key): row
        for chunk in chunked(workspace_ids.values())
        for row in session.execute(
            select(Team.id, Team.workspace_id, Team.key, Team.name, Team.created_at).where(
                Team.workspace_id.in_(chunk)
            )
        )
    }
    ids = {key: row.id for key, row in existing.items()}
    new, changed = [], []
    for ws_index, workspace in enumerate(workspaces):
        for team_index, team in enumerate(workspace["teams"]):
            row = existing.get((workspace["key"], team["key"]))
            values = {"name": team["name"], "created_at": team["created"]}
            if guard and (row is None or row.created_at != team["created"]):
                guard.team(
                    workspace_ids[workspace["key"]],
                    f"{workspace['key']}/{team['key']}",
                    None if row is None else row.created_at,
                    team["created"],
                    ("workspaces", ws_index, "teams", team_index, "created"),
                )
            if row is None:
                new.append(
                    {
                        "workspace_id": workspace_ids[workspace["key"]],
                        "key": team["key"],
                        **values,
                    }
                )
            elif (row.name, row.created_at) != (values["name"], values["created_at"]):
                changed.append({"id": row.id, **values})
    guard.raise_errors(document)
    for chunk in chunked(new):
        ids.update(
            {
                (key_of_id[row.workspace_id], row.key): row.id
                for row in session.execute(
                    insert(Team).returning(Team.id, Team.workspace_id, Team.key), list(chunk)
                )
            }
        )
    if changed:
        session.execute(update(Team), changed)
    result.created["teams"] = len(new)
    result.updated["teams"] = len(changed)
    return {
        (ws["key"], team["key"]): ids[(ws["key"], team["key"])]
        for ws in workspaces
        for team in ws["teams"]
    }


def _sync_owners(
    session: Session,
    workspaces: list[dict[str, Any]],
    workspace_ids: dict[str, int],
    people: dict[str, int],
    result: ImportResult,
) -> None:
    listed = {
        workspace_ids[ws["key"]]: ws["owners"] for ws in workspaces if ws["owners"] is not None
    }
    wanted = {(ws_id, people[email]) for ws_id, owners in listed.items() for email in owners}
    stored = {
        (row.workspace_id, row.person_id)
        for chunk in chunked(listed)
        for row in session.execute(
            select(WorkspaceOwner.workspace_id, WorkspaceOwner.person_id).where(
                WorkspaceOwner.workspace_id.in_(chunk)
            )
        )
    }
    gone = stored - wanted
    for chunk in chunked(sorted(gone)):
        session.execute(
            delete(WorkspaceOwner).where(
                tuple_(WorkspaceOwner.workspace_id, WorkspaceOwner.person_id).in_(chunk)
            )
        )
    added = [{"workspace_id": w, "person_id": p} for w, p in sorted(wanted - stored)]
    if added:
        session.execute(insert(WorkspaceOwner), added)
    result.created["owners"] = len(added)
    result.deleted["owners"] = len(gone)


Paths = dict[tuple[Any, ...], DocPath]


def _wanted_periods(
    workspaces: list[dict[str, Any]], team_ids: dict[Any, Any]
) -> tuple[dict[Any, Any], Paths]:
    """Archived periods ``(team id, from) -> to``, and where each is in the file."""
    wanted: dict[Any, Any] = {}
    paths: Paths = {}
    for ws_index, ws in enumerate(workspaces):
        for team_index, team in enumerate(ws["teams"]):
            for index, period in enumerate(team["archived"]):
                key = (team_ids[(ws["key"], team["key"])], period["archived_from"])
                wanted[key] = period["to"]
                paths[key] = ("workspaces", ws_index, "teams", team_index, "archived", index)
    return wanted, paths


def _wanted_memberships(
    workspaces: list[dict[str, Any]], team_ids: dict[Any, Any], people: dict[str, Any]
) -> tuple[dict[Any, Any], Paths]:
    """Memberships ``(team id, person id, joined) -> left``, and where each is in the file."""
    wanted: dict[Any, Any] = {}
    paths: Paths = {}
    for ws_index, ws in enumerate(workspaces):
        for team_index, team in enumerate(ws["teams"]):
            for index, member in enumerate(team["members"]):
                key = (
                    team_ids[(ws["key"], team["key"])],
                    people[member["email"]],
                    member["joined"],
                )
                wanted[key] = member["left"]
                paths[key] = ("workspaces", ws_index, "teams", team_index, "members", index)
    return wanted, paths


def _wanted_access(
    workspaces: list[dict[str, Any]], workspace_ids: dict[str, int], people: dict[str, int]
) -> tuple[dict[tuple[Any, ...], datetime | None], Paths]:
    """Access intervals: the listed ones, or from the first team membership on, open-ended.

    A person listed under the workspace's ``members`` has exactly the access
    listed there.  Anybody else in one of its teams has had access since the
    first day they joined a team, and keeps it after leaving the team: leaving
    a team does not remove a workspace member (only the purge does).  The
    paths say where in the file each interval comes from (for a derived one,
    the earliest membership).
    """
    wanted: dict[tuple[Any, ...], datetime | None] = {}
    paths: Paths = {}
    for ws_index, workspace in enumerate(workspaces):
        ws_id = workspace_ids[workspace["key"]]
        listed = {member["email"] for member in workspace["members"]}
        for index, member in enumerate(workspace["members"]):
            key = (ws_id, people[member["email"]], member["joined"])
            wanted[key] = member["left"]
            paths[key] = ("workspaces", ws_index, "members", index)
        first_joined: dict[str, tuple[datetime, DocPath]] = {}
        for team_index, team in enumerate(workspace["teams"]):
            for index, member in enumerate(team["members"]):
                if member["email"] not in listed:
                    known = first_joined.get(member["email"])
                    if known is None or member["joined"] < known[0]:
                        path: DocPath = (
                            "workspaces",
                            ws_index,
                            "teams",
                            team_index,
                            "members",
                            index,
                        )
                        first_joined[member["email"]] = (member["joined"], path)
        for email, (joined, path) in first_joined.items():
            key = (ws_id, people[email], joined)
            wanted[key] = None
            paths[key] = path
    return wanted, paths


@dataclass
class _IntervalSpec:
    """One interval table to sync: its columns, the owners, what the file wants."""

    model: type[Any]
    owner_column: str
    start: str
    end: str
    extra_key: str | None
    label: str
    owners: list[int]
    wanted: dict[tuple[Any, ...], datetime | None]
    paths: Paths
    workspace_of: Callable[[int], int]
    describe: Callable[[tuple[Any, ...], Callable[[int], str]], str]
    only_people: set[tuple[int, int]] | None = None

    def key_columns(self) -> list[Any]:
        names = [self.owner_column, *([self.extra_key] if self.extra_key else []), self.start]
        return [getattr(self.model, name) for name in names]


def _plan_intervals(session: Session, spec: _IntervalSpec) -> IntervalPlan:
    """What makes the stored intervals of ``spec.owners`` equal to ``spec.wanted``.

    ``wanted`` maps the natural key of an interval (owner id, [person id,]
    start) to its end.  With ``only_people``, stored intervals of other
    (owner, person) pairs are left alone.  Reads only; the plan keeps the
    stored rows' ids for :func:`_write_intervals`.
    """
    model, key_columns = spec.model, spec.key_columns()
    plan = IntervalPlan(1 if spec.extra_key else None)
    stored: dict[tuple[Any, ...], tuple[int, datetime | None]] = {}
    for chunk in chunked(spec.owners):
        rows = session.execute(
            select(model.id, getattr(model, spec.end), *key_columns).where(
                key_columns[0].in_(chunk)
            )
        )
        for row in rows:
            key = tuple(row[2:])
            if spec.only_people is None or key[:2] in spec.only_people:
                stored[key] = (row[0], row[1])
    plan.ids = {key: row_id for key, (row_id, _) in stored.items()}
    plan.gone = [key for key in stored if key not in spec.wanted]
    for key, value in spec.wanted.items():
        if key not in stored:
            plan.new[key] = value
        elif stored[key][1] != value:
            plan.changed[key] = (stored[key][1], value)
    return plan


def _write_intervals(
    session: Session, spec: _IntervalSpec, plan: IntervalPlan, result: ImportResult
) -> None:
    """Carry out a plan: bulk DELETE, UPDATE and INSERT, never a statement per row."""
    model, names = spec.model, [column.key for column in spec.key_columns()]
    gone = [plan.ids[key] for key in plan.gone]
    changed = [{"id": plan.ids[key], spec.end: new} for key, (_, new) in plan.changed.items()]
    new = [
        {**dict(zip(names, key, strict=True)), spec.end: value} for key, value in plan.new.items()
    ]
    for chunk in chunked(gone):
        session.execute(delete(model).where(model.id.in_(chunk)))
    if changed:
        session.execute(update(model), changed)
    for batch in chunked(new):
        session.execute(insert(model), list(batch))
    result.created[spec.label] = len(new)
    result.updated[spec.label] = len(changed)
    result.deleted[spec.label] = len(gone)
