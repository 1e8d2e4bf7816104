"""Schema and data import."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app

from ..extension import billing
from ..services.importer import ImportFileError, import_file, read_import_file
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
