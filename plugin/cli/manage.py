"""User management from the command line: workspaces, owners, teams, members, people.

``flask billing create-workspace``, ``rename-workspace``, ``add-owner``,
``remove-owner``, ``create-team``, ``rename-team``, ``invite``,
``add-to-team``, ``remove-from-team``, ``remove-member``, ``rename-person``
and ``change-email``.  Each one calls the public API (:mod:`plugin.api`),
which calls the same service as the admin: one transaction, audited under
the configured actor.  A refusal is printed on standard error with exit
status 1, and nothing is changed.  Changes take effect now; ``--at`` gives an
earlier instant, back to the end of the workspace's last invoiced month.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
from marshmallow import ValidationError

from .. import api
from ..extension import billing
from ..services.errors import ManagementError
from ..services.import_schema import ImportContext, Instant
from .common import billing_cli

# Generic from click 8.4 on (see plugin.cli.common.MonthType).
if TYPE_CHECKING:
    _InstantParam = click.ParamType[datetime, object]
else:
    _InstantParam = click.ParamType


class InstantType(_InstantParam):
    """``--at``: a date (00:00 in the billing time zone) or an instant with its UTC offset.

    Read by the import file's own field, so both accept and refuse the same text.
    """

    name = "DATE|INSTANT"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        with ImportContext({"tz": billing().rules().zoneinfo}):
            try:
                instant: datetime = Instant().deserialize(str(value))
                return instant
            except ValidationError as exc:
                self.fail(" ".join(exc.messages), param, ctx)


AT = click.option(
    "--at",
    type=InstantType(),
    help="When the change took effect (default: now); not inside an invoiced month.",
)


def _run(call: Callable[..., Any], **arguments: Any) -> Any:
    """Call ``plugin.api`` with the session and actor; a refusal becomes exit status 1.

    The message starts with the argument or option at fault (``NAME``,
    ``--owner``), found by the refusal's ``field``: the API's argument names
    are the commands' parameter names.
    """
    ext = billing()
    try:
        result = call(session=ext.session, actor=ext.actor(), **arguments)
    except ManagementError as exc:
        raise click.ClickException(f"{_parameter(exc.field)}{exc}; nothing was changed.") from exc
    message = getattr(result, "message", None)
    if message is not None:
        click.echo(message if result.changed else f"{message}: nothing changed.")
    return result


def _parameter(field: str) -> str:
    """``NAME: `` or ``--owner: ``: the current command's parameter called ``field``, if any."""
    context = click.get_current_context(silent=True)
    for parameter in context.command.params if context is not None else ():
        if parameter.name == field:
            name = parameter.opts[0] if isinstance(parameter, click.Option) else field.upper()
            return f"{name}: "
    return ""


@billing_cli.command("create-workspace")
@click.argument("key")
@click.argument("name")
@click.option("--owner", "owner_email", help="E-mail of the first owner (invited if new).")
@click.option("--owner-name", default="", help="The first owner's name, if they are new.")
def create_workspace_command(key: str, name: str, owner_email: str | None, owner_name: str) -> None:
    """Create workspace KEY named NAME, created now (which decides its billing variant)."""
    row = _run(
        api.create_workspace, key=key, name=name, owner_email=owner_email, owner_name=owner_name
    )
    owner = f", owned by {owner_email}" if owner_email else ""
    click.echo(f"Created workspace {row.key} ({row.name}) at {row.created_at.isoformat()}{owner}")


@billing_cli.command("rename-workspace")
@click.argument("workspace")
@click.argument("name")
def rename_workspace_command(workspace: str, name: str) -> None:
    """Give WORKSPACE the display name NAME (issued invoices keep the old one)."""
    _run(api.rename_workspace, workspace=workspace, name=name)


@billing_cli.command("add-owner")
@click.argument("workspace")
@click.argument("email")
def add_owner_command(workspace: str, email: str) -> None:
    """Make EMAIL, a member of WORKSPACE, one of its owners."""
    _run(api.add_owner, workspace=workspace, email=email)


@billing_cli.command("remove-owner")
@click.argument("workspace")
@click.argument("email")
def remove_owner_command(workspace: str, email: str) -> None:
    """Take away EMAIL's ownership of WORKSPACE (never the last owner's)."""
    _run(api.remove_owner, workspace=workspace, email=email)


@billing_cli.command("create-team")
@click.argument("workspace")
@click.argument("key")
@click.argument("name")
@AT
def create_team_command(workspace: str, key: str, name: str, at: datetime | None) -> None:
    """Create team KEY named NAME in WORKSPACE, active from now on."""
    ref = _run(api.create_team, workspace=workspace, key=key, name=name, at=at)
    click.echo(f"Created team {ref.target}")


@billing_cli.command("rename-team")
@click.argument("workspace")
@click.argument("team")
@click.argument("name")
def rename_team_command(workspace: str, team: str, name: str) -> None:
    """Give team TEAM of WORKSPACE the display name NAME."""
    _run(api.rename_team, workspace=workspace, team=team, name=name)


@billing_cli.command("invite")
@click.argument("workspace")
@click.argument("email")
@click.option("--name", default="", help="The person's name, if they are new.")
@AT
def invite_command(workspace: str, email: str, name: str, at: datetime | None) -> None:
    """Give EMAIL access to WORKSPACE, creating the person if new (bills nothing yet)."""
    _run(api.invite, workspace=workspace, email=email, name=name, at=at)


@billing_cli.command("add-to-team")
@click.argument("workspace")
@click.argument("team")
@click.argument("email")
@AT
def add_to_team_command(workspace: str, team: str, email: str, at: datetime | None) -> None:
    """Put EMAIL, a member of WORKSPACE, into TEAM (billed for user licences from now)."""
    _run(api.add_to_team, workspace=workspace, team=team, email=email, at=at)


@billing_cli.command("remove-from-team")
@click.argument("workspace")
@click.argument("team")
@click.argument("email")
@AT
def remove_from_team_command(workspace: str, team: str, email: str, at: datetime | None) -> None:
    """Take EMAIL out of TEAM: still billed this month, no more from the next."""
    _run(api.remove_from_team, workspace=workspace, team=team, email=email, at=at)


@billing_cli.command("remove-member")
@click.argument("workspace")
@click.argument("email")
@AT
def remove_member_command(workspace: str, email: str, at: datetime | None) -> None:
    """End EMAIL's access to WORKSPACE and every team membership there (not an owner's)."""
    _run(api.remove_member, workspace=workspace, email=email, at=at)


@billing_cli.command("rename-person")
@click.argument("email")
@click.argument("name")
def rename_person_command(email: str, name: str) -> None:
    """Change the name of the person with EMAIL."""
    _run(api.rename_person, email=email, name=name)


@billing_cli.command("change-email")
@click.argument("email")
@click.argument("new_email")
def change_email_command(email: str, new_email: str) -> None:
    """Give the person with EMAIL the address NEW_EMAIL (unique in any case)."""
    _run(api.change_email, email=email, new_email=new_email)
