"""User management on the workspace page: invite, teams, removal, team create and rename.

Each form posts to its own endpoint; the view checks the action's
permission and the CSRF token, and this module hands the fields to
:mod:`plugin.api` (the same functions the host and the CLI use).  A refusal
(:class:`plugin.api.ManagementError`) is shown next to the field it names
and the page is shown again with what was typed; nothing is changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import InputRequired

from .. import api
from ..extension import billing
from ..i18n import _, _l
from .responses import TEXT, attempt


class InviteForm(FlaskForm):
    email = StringField(_l("E-mail address"), [InputRequired(), *TEXT])
    name = StringField(_l("Name (optional)"), TEXT)


class MemberTeamForm(FlaskForm):
    email = StringField(_l("Member's e-mail address"), [InputRequired(), *TEXT])
    team = StringField(_l("Team key"), [InputRequired(), *TEXT])


class MemberForm(FlaskForm):
    email = HiddenField(_l("E-mail address"), [InputRequired(), *TEXT])


class NewTeamForm(FlaskForm):
    key = StringField(_l("Key"), [InputRequired(), *TEXT])
    name = StringField(_l("Name"), [InputRequired(), *TEXT])


class RenameForm(FlaskForm):
    name = StringField(_l("New name"), [InputRequired(), *TEXT])


class RenameTeamForm(FlaskForm):
    team = HiddenField(_l("Team key"), [InputRequired(), *TEXT])
    name = StringField(_l("New name"), [InputRequired(), *TEXT])


class NewWorkspaceForm(FlaskForm):
    key = StringField(_l("Key"), [InputRequired(), *TEXT])
    name = StringField(_l("Name"), [InputRequired(), *TEXT])


#: action -> (form class, the API call with the workspace key, the form and the actor).
Operation = tuple[type[FlaskForm], Callable[[str, Any, str], Any]]

OPERATIONS: dict[str, Operation] = {
    "invite": (
        InviteForm,
        lambda key, form, actor: api.invite(
            workspace=key, email=form.email.data, name=form.name.data or "", actor=actor
        ),
    ),
    "add_to_team": (
        MemberTeamForm,
        lambda key, form, actor: api.add_to_team(
            workspace=key, team=form.team.data, email=form.email.data, actor=actor
        ),
    ),
    "remove_from_team": (
        MemberTeamForm,
        lambda key, form, actor: api.remove_from_team(
            workspace=key, team=form.team.data, email=form.email.data, actor=actor
        ),
    ),
    "remove_member": (
        MemberForm,
        lambda key, form, actor: api.remove_member(
            workspace=key, email=form.email.data, actor=actor
        ),
    ),
    "add_owner": (
        MemberForm,
        lambda key, form, actor: api.add_owner(workspace=key, email=form.email.data, actor=actor),
    ),
    "remove_owner": (
        MemberForm,
        lambda key, form, actor: api.remove_owner(
            workspace=key, email=form.email.data, actor=actor
        ),
    ),
    "create_team": (
        NewTeamForm,
        lambda key, form, actor: api.create_team(
            workspace=key, key=form.key.data, name=form.name.data, actor=actor
        ),
    ),
    "rename_team": (
        RenameTeamForm,
        lambda key, form, actor: api.rename_team(
            workspace=key, team=form.team.data, name=form.name.data, actor=actor
        ),
    ),
    "rename_workspace": (
        RenameForm,
        lambda key, form, actor: api.rename_workspace(
            workspace=key, name=form.name.data, actor=actor
        ),
    ),
}


OPS = tuple(OPERATIONS.items())


def form_for(action: str, formdata: Any = None) -> FlaskForm:
    """The action's form, read from ``formdata`` (the page gives each input an id of its own)."""
    form_class = OPERATIONS[action][0]
    return form_class() if formdata is None else form_class(formdata=formdata)


def empty_forms() -> dict[str, FlaskForm]:
    return {action: form_class(formdata=None) for action, (form_class, _) in OPS}


def run(action: str, key: str, form: FlaskForm) -> Any:
    """Call the API; a refusal is put on the form next to its field and ``None`` returned."""
    return attempt(form, lambda: OPERATIONS[action][1](key, form, billing().actor()))


def message(action: str, result: Any, form: FlaskForm) -> str:
    """What the flash says after a change."""
    text = getattr(result, "message", None)
    if text:
        return str(text)
    if action == "create_team":
        return _("Created the team %(name)s (%(key)s).", name=form.name.data, key=result.team_key)
    return _("Done.")
