"""``flask billing generate``: registered only in a host that sets ``BILLING_SYNTHETIC_COMMANDS``.

On a real back-office the generated workspaces (with invoice mailboxes) would
be invoiced by the next close and use up numbers of the gap-free sequence, so
the command is not part of the shared ``flask billing`` group
(:func:`plugin.cli.billing_group`).
"""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from ..extension import billing
from ..types import utcnow
from .generator import generate


@click.command("generate")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same data.")
@click.option(
    "--scale",
    default="tiny",
    show_default=True,
    help="tiny, small, medium, large, or a number of workspaces.",
)
@with_appcontext
def generate_command(seed: int, scale: str) -> None:
    """Add a deterministic synthetic data set (for demos and benchmarks).

    Workspaces are created on both sides of the pricing rules' cut-over date.
    Only in hosts that set ``BILLING_SYNTHETIC_COMMANDS``.
    """
    ext = billing()
    session = ext.session
    rules = ext.rules()
    with click.progressbar(length=1, label="Writing rows", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        try:
            summary = generate(
                session,
                seed=seed,
                scale=scale,
                tz=rules.zoneinfo,
                now=utcnow(),
                cutover=rules.cutover_date,
                progress=progress,
            )
        except ValueError as exc:
            session.rollback()
            raise click.ClickException(str(exc)) from exc
    session.commit()
    click.echo(str(summary))
