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
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from marshmallow import ValidationError
from sqlalchemy import delete, insert, select, tuple_, update
from sqlalchemy.orm import Session

from ..models import (
    Person,
    Team,
    TeamArchivePeriod,
    TeamMembership,
    Workspace,
    WorkspaceAccess,
    WorkspaceOwner,
)
from ..yamldoc import (
    DocumentError,
    LocatedError,
    load_document,
    located_errors,
    read_limited,
    schema_load,
)
from . import audit
from .billing_details import DetailsChange, apply_details
from .common import chunked
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


def parse_import_file(text: str | bytes, *, source: str, tz: ZoneInfo, max_bytes: int) -> dict:
    """Validate an import file; raise :class:`ImportFileError` with every located error."""
    try:
        document = load_document(text, source=source, max_bytes=max_bytes)
    except DocumentError as exc:
        raise ImportFileError(exc.errors) from exc
    with ImportContext({"tz": tz}):
        try:
            return schema_load(ImportFileSchema(), document)
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
    """Validate and apply an import file in the session's transaction (not committed)."""
    data = parse_import_file(text, source=source, tz=tz, max_bytes=max_bytes)
    return apply_import(session, data["workspaces"], actor=actor)


def apply_import(session: Session, workspaces: list[dict], *, actor: str) -> ImportResult:
    result = ImportResult()
    people = _upsert_people(session, workspaces, result)
    workspace_ids = _upsert_workspaces(session, workspaces, result, actor)
    team_ids = _upsert_teams(session, workspaces, workspace_ids, result)
    _apply_billing_details(session, workspaces, result, actor)
    _sync_owners(session, workspaces, workspace_ids, people, result)
    _sync_intervals(
        session,
        TeamArchivePeriod,
        owner_column="team_id",
        start="archived_from",
        end="unarchived_at",
        owners=list(team_ids.values()),
        wanted={
            (team_ids[(ws["key"], team["key"])], period["archived_from"]): period["to"]
            for ws in workspaces
            for team in ws["teams"]
            for period in team["archived"]
        },
        extra_key=None,
        result=result,
        label="archived periods",
    )
    _sync_intervals(
        session,
        TeamMembership,
        owner_column="team_id",
        start="joined_at",
        end="left_at",
        owners=list(team_ids.values()),
        wanted={
            (team_ids[(ws["key"], team["key"])], people[m["email"]], m["joined"]): m["left"]
            for ws in workspaces
            for team in ws["teams"]
            for m in team["members"]
        },
        extra_key="person_id",
        result=result,
        label="team memberships",
    )
    access = _wanted_access(workspaces, workspace_ids, people)
    _sync_intervals(
        session,
        WorkspaceAccess,
        owner_column="workspace_id",
        start="granted_at",
        end="revoked_at",
        owners=list(workspace_ids.values()),
        wanted=access,
        extra_key="person_id",
        result=result,
        label="workspace access intervals",
        only_people={(ws_id, person) for ws_id, person, _ in access},
    )
    if result.changed:
        audit.record(session, actor, "import", detail=result.summary())
    session.flush()
    return result


def _apply_billing_details(
    session: Session, workspaces: list[dict], result: ImportResult, actor: str
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


def _all_members(workspace: dict) -> Iterable[dict]:
    yield from workspace["members"]
    for team in workspace["teams"]:
        yield from team["members"]


def _upsert_people(session: Session, workspaces: list[dict], result: ImportResult) -> dict:
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
    for chunk in chunked(new):
        ids.update(
            {
                row.email: row.id
                for row in session.execute(
                    insert(Person).returning(Person.id, Person.email), list(chunk)
                )
            }
        )
    if renamed:
        session.execute(update(Person), renamed)
    result.created["people"] = len(new)
    result.updated["people"] = len(renamed)
    return ids


_WORKSPACE_FIELDS = ("name", "created_at", "contract_variant", "invoice_mailbox")


def _workspace_values(workspace: dict) -> dict[str, Any]:
    return {
        "name": workspace["name"],
        "created_at": workspace["created"],
        "contract_variant": workspace["contract_variant"],
        "invoice_mailbox": workspace["invoice_mailbox"],
    }


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


def _upsert_workspaces(
    session: Session, workspaces: list[dict], result: ImportResult, actor: str
) -> dict[str, int]:
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
    new, changed, audits = [], [], []
    for workspace in workspaces:
        values = _workspace_values(workspace)
        row = existing.get(workspace["key"])
        if row is None:
            new.append({"key": workspace["key"], **values})
            continue
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
    return ids


def _upsert_teams(
    session: Session, workspaces: list[dict], workspace_ids: dict[str, int], result: ImportResult
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
    for workspace in workspaces:
        for team in workspace["teams"]:
            row = existing.get((workspace["key"], team["key"]))
            values = {"name": team["name"], "created_at": team["created"]}
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
    workspaces: list[dict],
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


def _wanted_access(
    workspaces: list[dict], workspace_ids: dict[str, int], people: dict[str, int]
) -> dict[tuple, datetime | None]:
    """Access intervals: the listed ones, or from the first team membership on, open-ended.

    A person listed under the workspace's ``members`` has exactly the access
    listed there.  Anybody else in one of its teams has had access since the
    first day they joined a team, and keeps it after leaving the team: leaving
    a team does not remove a workspace member (only the purge does).
    """
    wanted: dict[tuple, datetime | None] = {}
    for workspace in workspaces:
        ws_id = workspace_ids[workspace["key"]]
        listed = {member["email"] for member in workspace["members"]}
        for member in workspace["members"]:
            wanted[(ws_id, people[member["email"]], member["joined"])] = member["left"]
        first_joined: dict[str, datetime] = {}
        for team in workspace["teams"]:
            for member in team["members"]:
                if member["email"] not in listed:
                    known = first_joined.get(member["email"])
                    if known is None or member["joined"] < known:
                        first_joined[member["email"]] = member["joined"]
        for email, joined in first_joined.items():
            wanted[(ws_id, people[email], joined)] = None
    return wanted


def _sync_intervals(
    session: Session,
    model: type,
    *,
    owner_column: str,
    start: str,
    end: str,
    owners: list[int],
    wanted: dict[tuple, datetime | None],
    extra_key: str | None,
    result: ImportResult,
    label: str,
    only_people: set[tuple[int, int]] | None = None,
) -> None:
    """Make the stored intervals of ``owners`` equal to ``wanted``.

    ``wanted`` maps the natural key of an interval (owner id, [person id,]
    start) to its end.  With ``only_people``, stored intervals of other
    (owner, person) pairs are left alone.
    """
    key_columns = [getattr(model, owner_column)]
    if extra_key:
        key_columns.append(getattr(model, extra_key))
    key_columns.append(getattr(model, start))
    stored: dict[tuple, tuple[int, datetime | None]] = {}
    for chunk in chunked(owners):
        rows = session.execute(
            select(model.id, getattr(model, end), *key_columns).where(key_columns[0].in_(chunk))
        )
        for row in rows:
            key = tuple(row[2:])
            if only_people is None or key[:2] in only_people:
                stored[key] = (row[0], row[1])
    gone = [row_id for key, (row_id, _) in stored.items() if key not in wanted]
    changed = [
        {"id": stored[key][0], end: value}
        for key, value in wanted.items()
        if key in stored and stored[key][1] != value
    ]
    names = [column.key for column in key_columns]
    new = [
        {**dict(zip(names, key, strict=True)), end: value}
        for key, value in wanted.items()
        if key not in stored
    ]
    for chunk in chunked(gone):
        session.execute(delete(model).where(model.id.in_(chunk)))
    if changed:
        session.execute(update(model), changed)
    for chunk in chunked(new):
        session.execute(insert(model), list(chunk))
    result.created[label] = len(new)
    result.updated[label] = len(changed)
    result.deleted[label] = len(gone)
