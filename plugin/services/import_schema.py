"""What `flask billing import` accepts: the marshmallow schema of the import file.

Dates and instants are turned into aware UTC instants while loading, so the
cross-field checks (a membership inside the team's lifetime, archived periods
in order) compare real instants.  The billing time zone that gives a bare date
its meaning comes from :data:`ImportContext`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from marshmallow.experimental.context import Context

from .. import validators
from ..documents import CheckedText, format_path
from ..models import VARIANTS
from .billing_details import FIELDS, BillingDetailsError, from_input, validate_details
from .common import start_of_day
from .mailbox import MailboxError, validate_mailbox

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ImportContextValue(TypedDict):
    tz: ZoneInfo


ImportContext = Context[ImportContextValue]


class Instant(fields.Field[Any]):
    """A date (00:00 in the billing time zone) or an ISO 8601 instant with its offset."""

    default_error_messages = {
        "invalid": (
            "Not a valid date or instant: write a date such as 2024-01-31 or an instant "
            "with its UTC offset such as 2024-01-31T09:00:00+01:00."
        ),
        "naive": "An instant needs its UTC offset, such as Z or +01:00.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        text = value.strip()
        try:
            if _DATE.match(text):
                return start_of_day(date.fromisoformat(text), ImportContext.get()["tz"])
            instant = datetime.fromisoformat(text)
        except ValueError as exc:
            raise self.make_error("invalid") from exc
        if instant.tzinfo is None:
            raise self.make_error("naive")
        return instant.astimezone(UTC)


class Email(CheckedText):
    """One e-mail address, normalised and lower-cased (the unique key of a person)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validators.email_address, **kwargs)


class Mailbox(fields.Field[Any]):
    """An invoice mailbox, checked and normalised exactly as ``set-mailbox`` and the admin do."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        try:
            return validate_mailbox(value)
        except MailboxError as exc:
            raise ValidationError(str(exc)) from exc


class BillingDetailsField(fields.Field[Any]):
    """A workspace's ``billing_details``: the complete record, checked like every other path.

    The file gives the whole record: a field it leaves out is empty.  Errors
    are keyed by the file's own keys (``street``, ``vat_id`` …), so each one
    points at its line.
    """

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValidationError("must be a group of 'key: value' lines")
        try:
            changes = from_input(value)
            return validate_details(None, {name: changes.get(name) for name in FIELDS} | changes)
        except BillingDetailsError as exc:
            raise ValidationError({key: [message] for key, message in exc.errors.items()}) from exc


def _text(max_length: int, **kwargs: Any) -> CheckedText:
    """One line of text, as :func:`plugin.validators.text_line` (and so the API) reads it."""
    return CheckedText(partial(validators.text_line, max_length=max_length), **kwargs)


def _key() -> CheckedText:
    return CheckedText(validators.key, required=True)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class MemberSchema(StrictSchema):
    email = Email(required=True)
    name = CheckedText(validators.person_name, load_default="")
    joined = Instant(required=True)
    left = Instant(load_default=None, allow_none=True)

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["left"] is not None and data["left"] < data["joined"]:
            raise ValidationError("must not be before 'joined'", "left")


class ArchivedPeriodSchema(StrictSchema):
    archived_from = Instant(required=True, data_key="from")
    to = Instant(load_default=None, allow_none=True)

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["to"] is not None and data["to"] <= data["archived_from"]:
            raise ValidationError("must be after 'from'", "to")


def _overlapping(intervals: list[tuple[int, datetime, datetime | None]]) -> list[tuple[int, int]]:
    """Pairs (later, earlier) of indexes whose intervals overlap, given (index, start, end)."""
    clashes = []
    ordered = sorted(intervals, key=lambda item: item[1])
    for (prev_index, _, prev_end), (index, start, _) in zip(ordered, ordered[1:], strict=False):
        if prev_end is None or start < prev_end:
            clashes.append((index, prev_index))
    return clashes


class TeamSchema(StrictSchema):
    key = _key()
    name = _text(200, required=True)
    created = Instant(required=True)
    archived = fields.List(fields.Nested(ArchivedPeriodSchema), load_default=list)
    members = fields.List(fields.Nested(MemberSchema), load_default=list)

    @validates_schema
    def _history(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, dict[int, Any]] = defaultdict(dict)
        created = data["created"]
        periods = data["archived"]
        for index, period in enumerate(periods):
            if period["archived_from"] < created:
                errors["archived"][index] = {"from": ["must not be before the team's 'created'"]}
            elif index and (
                periods[index - 1]["to"] is None
                or period["archived_from"] <= periods[index - 1]["to"]
            ):
                errors["archived"][index] = {
                    "from": [
                        f"must be after the end of archived[{index - 1}]"
                        " (periods in order, not overlapping or touching)"
                    ]
                }
        by_person: dict[str, list[Any]] = defaultdict(list)
        for index, member in enumerate(data["members"]):
            if member["joined"] < created:
                errors["members"][index] = {"joined": ["must not be before the team's 'created'"]}
            by_person[member["email"]].append((index, member["joined"], member["left"]))
        for intervals in by_person.values():
            for index, other in _overlapping(intervals):
                errors["members"][index] = {
                    "joined": [f"overlaps the same person's membership in members[{other}]"]
                }
        if errors:
            raise ValidationError(dict(errors))


class WorkspaceSchema(StrictSchema):
    key = _key()
    name = _text(200, required=True)
    created = Instant(required=True)
    contract_variant = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(VARIANTS)
    )
    invoice_mailbox = Mailbox(load_default=None, allow_none=True)
    billing_details = BillingDetailsField(load_default=None)
    owners = fields.List(Email(), load_default=None)
    members = fields.List(fields.Nested(MemberSchema), load_default=list)
    teams = fields.List(fields.Nested(TeamSchema), load_default=list)

    @validates_schema
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, Any] = defaultdict(dict)
        created = data["created"]
        first_team: dict[str, int] = {}
        for index, team in enumerate(data["teams"]):
            if team["key"] in first_team:
                errors["teams"][index] = {
                    "key": [f"duplicate of teams[{first_team[team['key']]}].key"]
                }
            first_team.setdefault(team["key"], index)
            if team["created"] < created:
                errors["teams"].setdefault(index, {})["created"] = [
                    "must not be before the workspace's 'created'"
                ]
        access: dict[str, list[Any]] = defaultdict(list)
        for index, member in enumerate(data["members"]):
            if member["joined"] < created:
                errors["members"][index] = {
                    "joined": ["must not be before the workspace's 'created'"]
                }
            access[member["email"]].append((index, member["joined"], member["left"]))
        for intervals in access.values():
            for index, other in _overlapping(intervals):
                errors["members"][index] = {
                    "joined": [f"overlaps the same person's access in members[{other}]"]
                }
        for team_index, team in enumerate(data["teams"]):
            for index, member in enumerate(team["members"]):
                granted = access.get(member["email"])
                if granted and not _covered(member["joined"], member["left"], granted):
                    errors["teams"].setdefault(team_index, {}).setdefault("members", {})[index] = {
                        "joined": [
                            f"{member['email']} has no workspace access over this whole "
                            "membership (see the workspace's members)"
                        ]
                    }
        in_workspace = set(access) | {m["email"] for t in data["teams"] for m in t["members"]}
        for index, owner in enumerate(data["owners"] or ()):
            if owner not in in_workspace:
                errors["owners"][index] = [f"{owner} is not a member of this workspace"]
        if errors:
            raise ValidationError(dict(errors))


def _covered(start: datetime, end: datetime | None, intervals: list[Any]) -> bool:
    return any(
        s <= start and (e is None or (end is not None and end <= e)) for _, s, e in intervals
    )


class ImportFileSchema(StrictSchema):
    workspaces = fields.List(fields.Nested(WorkspaceSchema), required=True)

    @validates_schema
    def _unique(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, Any] = defaultdict(dict)
        first_workspace: dict[str, int] = {}
        first_name: dict[str, tuple[str, tuple[str | int, ...]]] = {}
        for index, workspace in enumerate(data["workspaces"]):
            if workspace["key"] in first_workspace:
                errors["workspaces"][index] = {
                    "key": [f"duplicate of workspaces[{first_workspace[workspace['key']]}].key"]
                }
            first_workspace.setdefault(workspace["key"], index)
            for path, member in _named_members(workspace, index):
                if not member["name"]:
                    continue
                seen = first_name.setdefault(member["email"], (member["name"], path))
                if seen[0] != member["name"]:
                    errors["workspaces"].setdefault(index, {})
                    _nest(errors["workspaces"][index], path[2:], "name").append(
                        f"{member['email']} is called {seen[0]!r} at {format_path(seen[1])}"
                    )
        if errors:
            raise ValidationError(dict(errors))


def _named_members(
    workspace: dict[str, Any], index: int
) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any]]]:
    for member_index, member in enumerate(workspace["members"]):
        yield ("workspaces", index, "members", member_index), member
    for team_index, team in enumerate(workspace["teams"]):
        for member_index, member in enumerate(team["members"]):
            yield ("workspaces", index, "teams", team_index, "members", member_index), member


def _nest(tree: dict[Any, Any], path: tuple[str | int, ...], leaf: str) -> list[Any]:
    for part in path:
        tree = tree.setdefault(part, {})
    leaves: list[Any] = tree.setdefault(leaf, [])
    return leaves
