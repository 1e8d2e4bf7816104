"""The ``flask billing`` command group: thin wrappers around the domain services."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from .extension import billing
from .rules import RulesError, load_rules_file
from .services.importer import ImportFileError, import_file
from .services.periods import Month
from .services.quotes import explain_month
from .types import utcnow

billing_cli = AppGroup("billing", help="Workspace billing: migrations, import, invoices.")


def fail(messages: list[str], summary: str) -> None:
    """Print every error to standard error, then the summary, and exit with status 1."""
    for message in messages:
        click.echo(message, err=True)
    raise click.ClickException(summary)


@billing_cli.command("migrate")
def migrate_command() -> None:
    """Bring the plugin's tables to the latest schema (its own Alembic history)."""
    billing().migrate()
    click.echo("Billing tables are at the latest schema.")


@billing_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(file: Path) -> None:
    """Load workspaces, teams, people and their history from a YAML or JSON FILE.

    The file is checked completely first; with any error nothing is imported.
    """
    ext = billing()
    session = ext.session
    try:
        result = import_file(
            session,
            file.read_bytes(),
            source=file.name,
            tz=ext.rules().zoneinfo,
            actor=ext.actor(),
            max_bytes=current_app.config["BILLING_IMPORT_MAX_BYTES"],
        )
    except ImportFileError as exc:
        session.rollback()
        fail(
            [f"{file.name}: {error}" for error in exc.errors],
            f"{len(exc.errors)} error(s) in {file.name}; nothing was imported.",
        )
    session.commit()
    click.echo(result.summary())


@billing_cli.command("generate")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same data.")
@click.option(
    "--scale",
    default="tiny",
    show_default=True,
    help="tiny, small, medium, large, or a number of workspaces.",
)
def generate_command(seed: int, scale: str) -> None:
    """Add a deterministic synthetic data set (for demos and benchmarks)."""
    from .services.generator import generate

    ext = billing()
    session = ext.session
    with click.progressbar(length=1, label="Writing rows", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        try:
            summary = generate(
                session,
                seed=seed,
                scale=scale,
                tz=ext.rules().zoneinfo,
                now=utcnow(),
                progress=progress,
            )
        except ValueError as exc:
            session.rollback()
            raise click.ClickException(str(exc)) from exc
    session.commit()
    click.echo(str(summary))


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
@click.option("--month", "month_text", required=True, metavar="YYYY-MM")
@click.option(
    "--quantity",
    type=click.IntRange(min=0),
    help="Price this many licences instead of counting them.",
)
def rules_explain_command(workspace_key: str, month_text: str, quantity: int | None) -> None:
    """Show, line by line, how WORKSPACE_KEY's month is priced."""
    ext = billing()
    try:
        month = Month.parse(month_text)
        lines = explain_month(ext.session, ext.rules(), workspace_key, month, utcnow(), quantity)
    except (ValueError, LookupError) as exc:
        raise click.ClickException(str(exc)) from exc
    for line in lines:
        click.echo(line)
