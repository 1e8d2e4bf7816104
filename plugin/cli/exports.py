"""Licence-holder exports: ``flask billing licences WORKSPACE_KEY [--month YYYY-MM]``."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from ..extension import billing
from ..services.exports import (
    FORMATS,
    LicenceExport,
    default_export_month,
    licence_holders,
    parse_separator,
    write_export,
)
from ..services.periods import Month
from ..types import utcnow
from .common import MONTH, background, billing_cli


@billing_cli.command("licences")
@click.argument("workspace_key")
@click.option("--month", type=MONTH, help="The billed month; by default the last closed month.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="csv",
    show_default=True,
    help="CSV (UTF-8 with BOM) or an XLSX workbook.",
)
@click.option(
    "--separator",
    default=",",
    show_default=True,
    callback=lambda ctx, param, value: _separator(value),
    help="CSV separator: , or ; (semicolon, for German spreadsheet programs).",
)
@click.option(
    "--members/--no-members",
    default=False,
    help="Team licences: list each team's members (their e-mails) in one more column.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output (replaced only once complete).",
)
@background
def licences_command(
    workspace_key: str,
    month: Month | None,
    fmt: str,
    separator: str,
    members: bool,
    output: Path | None,
) -> None:
    """Export the licence holders WORKSPACE_KEY is billed for in a month.

    User licences: one row per billed member (email, name, teams); team
    licences: one row per billed team (team, members, and with --members
    their e-mails).  Without --month, the last closed month; the current
    month is exported as far as it has gone.
    """
    ext = billing()
    now = utcnow()
    month = month or default_export_month(ext.session, ext.rules(), now)
    try:
        export = licence_holders(
            ext.session, ext.rules(), workspace_key, month, now, with_members=members
        )
    except (ValueError, LookupError) as exc:
        raise click.ClickException(str(exc)) from exc
    if output is None:
        count = _to_stdout(export, fmt, separator)
        where = "standard output"
    else:
        count = _to_file(export, fmt, output, separator)
        where = str(output)
    so_far = "" if export.window.complete else " (month so far)"
    noun = "team(s)" if export.variant == "team_licences" else "member(s)"
    click.echo(
        f"{count} billed {noun} of {export.workspace_key} for {month}{so_far} written to {where}.",
        err=True,
    )


def _separator(value: str) -> str:
    """``--separator`` checked by the same function as the admin's form field."""
    try:
        return parse_separator(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--separator") from exc


def _to_stdout(export: LicenceExport, fmt: str, separator: str) -> int:
    """Binary output straight to standard output; never a workbook onto a terminal."""
    stdout = sys.stdout.buffer
    if fmt == "xlsx" and stdout.isatty():
        raise click.ClickException(
            "an XLSX workbook is binary and standard output is a terminal: "
            "give --output FILE or redirect standard output"
        )
    count = write_export(export, fmt, stdout, separator=separator)
    stdout.flush()
    return count


def _to_file(export: LicenceExport, fmt: str, output: Path, separator: str) -> int:
    """Write beside ``output`` under a temporary name, then rename it into place.

    A failure (or Ctrl-C) halfway leaves neither a half-written export nor a
    damaged earlier file behind.
    """
    try:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - renamed or removed below
            dir=output.parent, prefix=f".{output.name}.", suffix=".part", delete=False
        )
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from exc
    temporary = Path(handle.name)
    try:
        with handle:
            count = write_export(export, fmt, handle, separator=separator)
        _usual_permissions(temporary)
        os.replace(temporary, output)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise click.ClickException(f"cannot write {output}: {exc}") from exc
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return count


def _usual_permissions(path: Path) -> None:
    """The mode a newly created file gets (the temporary file was private to us)."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)
