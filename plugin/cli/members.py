"""Teams and members: ``flask billing archive-team``, ``unarchive-team``, ``purge-inactive``.

Thin wrappers: they resolve keys, call one service of :mod:`..services.teams`
or :mod:`..services.purge` (the same the admin views call), commit, and say
what happened.  Any error rolls back, so a bad key changes nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from ..extension import billing
from ..services.purge import PurgePreview, PurgeResult, preview_purge, purge_inactive
from ..services.teams import (
    LaterHistory,
    TeamChange,
    UnknownTeams,
    archive_teams,
    resolve_teams,
    unarchive_teams,
)
from ..services.workspace_lookup import UnknownWorkspace, get_workspace
from ..types import utcnow
from .common import background, billing_cli


def stdin_is_terminal() -> bool:
    """Whether somebody can answer a question: standard input is an open terminal."""
    stream = sys.stdin
    try:
        return stream is not None and not stream.closed and stream.isatty()
    except ValueError:
        return False


def _change_team(workspace_key: str, team_key: str, service: Callable[..., TeamChange]) -> None:
    ext = billing()
    session = ext.session
    try:
        team_id = resolve_teams(session, [(workspace_key, team_key)])[(workspace_key, team_key)]
        change = service(session, [team_id], now=utcnow(), actor=ext.actor())
    except (UnknownTeams, LaterHistory) as exc:
        session.rollback()
        raise click.ClickException(f"{exc}; nothing was changed.") from exc
    session.commit()
    for line in change.lines(ext.zone()):
        click.echo(line)


@billing_cli.command("archive-team")
@click.argument("workspace_key")
@click.argument("team_key")
def archive_team_command(workspace_key: str, team_key: str) -> None:
    """Archive team TEAM_KEY of WORKSPACE_KEY from now on.

    It is still billed for the current month and no more from the next one.
    Archiving an archived team changes nothing.
    """
    _change_team(workspace_key, team_key, archive_teams)


@billing_cli.command("unarchive-team")
@click.argument("workspace_key")
@click.argument("team_key")
def unarchive_team_command(workspace_key: str, team_key: str) -> None:
    """Make team TEAM_KEY of WORKSPACE_KEY active again from now on (billed again)."""
    _change_team(workspace_key, team_key, unarchive_teams)


def _member_line(email: str, note: str) -> str:
    return f"  {email}" + (f"  ({note})" if note else "")


def _show_preview(preview: PurgePreview) -> None:
    if preview.removed:
        count = len(preview.removed)
        click.echo(f"Would remove {count} inactive member(s) of {preview.workspace_key}:")
    else:
        click.echo(f"Nothing to remove: {preview.workspace_key} has no inactive members.")
    for member in preview.removed:
        teams = ", ".join(member.archived_teams)
        click.echo(_member_line(member.email, f"leaves archived team(s) {teams}" if teams else ""))
    if preview.kept:
        click.echo(f"Kept {len(preview.kept)}:")
    for kept in preview.kept:
        click.echo(_member_line(kept.email, kept.reason))


def _show_result(result: PurgeResult) -> None:
    click.echo(f"Removed {len(result.removed)} inactive member(s) of {result.workspace_key}:")
    for member in result.removed:
        click.echo(_member_line(member.email, ""))
    if result.kept_since_preview:
        click.echo("Kept, because no longer inactive since the list above:")
    for member in result.kept_since_preview:
        click.echo(_member_line(member.email, ""))
    click.echo(f"{result.workspace_key} now has {result.members_left} member(s).")


def _confirmed(preview: PurgePreview, yes: bool) -> None:
    """Ask on a terminal; without one, refuse rather than wait for an answer that never comes."""
    if yes:
        return
    if not stdin_is_terminal():
        raise click.ClickException(
            "not removing anybody without confirmation, and there is no terminal to ask on: "
            "pass --yes to remove these members, or --dry-run to only list them."
        )
    click.confirm(
        f"Remove these {len(preview.removed)} member(s) from {preview.workspace_key}?",
        abort=True,
    )


@billing_cli.command("purge-inactive")
@click.argument("workspace_key")
@click.option("--dry-run", is_flag=True, help="Only list who would be removed; change nothing.")
@click.option("--yes", is_flag=True, help="Remove without asking (for scripts and cron).")
@background
def purge_inactive_command(workspace_key: str, dry_run: bool, yes: bool) -> None:
    """Remove the inactive members of WORKSPACE_KEY: members in no active team.

    Owners are never removed.  Access and memberships end now; past months
    still bill and export the same people.  A member who joins an active
    team before the confirmation is kept.
    """
    ext = billing()
    session = ext.session
    try:
        workspace = get_workspace(session, workspace_key)
    except UnknownWorkspace as exc:
        raise click.ClickException(f"{exc}; nothing was changed.") from exc
    preview = preview_purge(session, workspace.id, utcnow())
    _show_preview(preview)
    session.rollback()
    if dry_run and preview.removed:
        click.echo("Dry run: nothing was changed.")
    if dry_run or not preview.removed:
        return
    _confirmed(preview, yes)
    result = purge_inactive(
        session, workspace.id, now=utcnow(), actor=ext.actor(), expected=preview.expected
    )
    session.commit()
    _show_result(result)
