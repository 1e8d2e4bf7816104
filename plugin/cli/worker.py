"""``flask billing worker``: render pending PDFs and deliver due mail as they are queued."""

from __future__ import annotations

import logging
import sys

import click

from ..jobs import JobConfigError
from ..worker import Worker, log
from .common import background, billing_cli


@billing_cli.command("worker")
@click.option(
    "--until-idle",
    is_flag=True,
    help="Exit 0 once nothing is due (for scripts and benchmarks) instead of waiting.",
)
@background
def worker_command(until_idle: bool) -> None:
    """Render pending PDFs and deliver due mail, one job at a time, until stopped.

    Run it next to the web app (a systemd unit, docs/operations.md); start
    several, on one machine or many, for more PDFs per second: no job is done
    twice.  SIGTERM or SIGINT: the job in hand is finished, then it exits 0;
    a second signal gives the job back at once.  One log line per job on
    standard error.
    """
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    try:
        worker = Worker(until_idle=until_idle)
    except JobConfigError as exc:
        raise click.ClickException(str(exc)) from None
    worker.run()
