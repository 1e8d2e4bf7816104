"""Schema, data import and synthetic data."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app

from ..extension import billing
from ..services.importer import ImportFileError, import_file, read_import_file
from ..types import utcnow
from .common import background, billing_cli, fail


@billing_cli.command("migrate")
def migrate_command() -> None:
    """Bring the plugin's tables to the latest schema (its own Alembic history)."""
    billing().migrate()
    click.echo("Billing tables are at the latest schema.")


@billing_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@background
def import_command(file: Path) -> None:
    """Load workspaces, teams, people and their history from a YAML or JSON FILE.

    The file is checked completely first; with any error nothing is imported.
    """
    ext = billing()
    session = ext.session
    max_bytes = current_app.config["BILLING_IMPORT_MAX_BYTES"]
    try:
        result = import_file(
            session,
            read_import_file(file, max_bytes=max_bytes),
            source=file.name,
            tz=ext.rules().zoneinfo,
            actor=ext.actor(),
            max_bytes=max_bytes,
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
    from ..synthetic.generator import generate

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
