"""Accounting's pricing rules: ``flask billing rules check|explain``."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from ..extension import billing
from ..rules import RulesError, load_rules_file
from ..services.periods import Month
from ..services.quotes import explain_month
from ..types import utcnow
from .common import MONTH, billing_cli, fail

rules_cli = AppGroup("rules", help="Accounting's pricing rules: check the file, explain a price.")
billing_cli.add_command(rules_cli)


@rules_cli.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
def rules_check_command(file: Path | None) -> None:
    """Validate FILE (default: the configured rules file) and summarise it."""
    path = file or Path(current_app.config["BILLING_RULES_PATH"])
    try:
        rules = load_rules_file(path)
    except RulesError as exc:
        fail(
            [f"{path.name}: {error}" for error in exc.errors],
            f"{len(exc.errors)} error(s) in {path}; these rules cannot be used.",
        )
    click.echo(f"{path}: valid (sha256 {rules.sha256[:12]})")
    for line in rules.summary():
        click.echo(f"  {line}")


@rules_cli.command("explain")
@click.argument("workspace_key")
@click.option("--month", type=MONTH, required=True)
@click.option(
    "--quantity",
    type=click.IntRange(min=0),
    help="Price this many licences instead of counting them.",
)
def rules_explain_command(workspace_key: str, month: Month, quantity: int | None) -> None:
    """Show, line by line, how WORKSPACE_KEY's month is priced."""
    ext = billing()
    try:
        lines = explain_month(ext.session, ext.rules(), workspace_key, month, utcnow(), quantity)
    except (ValueError, LookupError) as exc:
        raise click.ClickException(str(exc)) from exc
    for line in lines:
        click.echo(line)
