"""What the ``flask billing`` commands share: the group, errors, argument types."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import click
from flask import current_app
from flask.cli import AppGroup

from ..processes import nicer_by
from ..rules import RulesUnavailable
from ..services.periods import Month
from ..validators import InvalidValue, niceness


class BillingGroup(AppGroup):
    """The ``flask billing`` group: a command that needs prices while the rules file is
    broken prints the file's located errors and exits with status 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RulesUnavailable as exc:
            fail(
                [f"{exc.path.name}: {error}" for error in exc.errors],
                f"{exc.path} has no valid pricing rules ({len(exc.errors)} error(s)); "
                "fix it first (`flask billing rules check` lists the errors).",
            )


billing_cli = BillingGroup("billing", help="Workspace billing: migrations, import, invoices.")


def fail(messages: list[str], summary: str) -> None:
    """Print every error to standard error, then the summary, and exit with status 1."""
    for message in messages:
        click.echo(message, err=True)
    raise click.ClickException(summary)


def background(command: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a long-running command (a month close, a purge, an import): before it starts,
    the process lowers its own CPU priority to ``BILLING_BATCH_NICE``, so that a
    back-office on the same machine keeps answering meanwhile.

    Put it below the ``click`` decorators.  The database server's own work for
    the command is not affected: only this process and the programs it starts.
    """

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        lower_priority(current_app.config["BILLING_BATCH_NICE"])
        return command(*args, **kwargs)

    return run


def lower_priority(nice: object) -> None:
    """Make this process (the calling thread and those it starts) at least ``nice`` nice.

    A process already nicer (``nice -n 15 flask billing …``, systemd's ``Nice=``)
    stays as it is; priority is never raised.
    """
    try:
        target = niceness(nice)
    except InvalidValue as exc:
        raise click.ClickException(f"BILLING_BATCH_NICE {exc}") from None
    increment = nicer_by(target)
    if increment:
        os.nice(increment)


def echo_listing(items: Iterable[Any], as_json: bool, line: Callable[[Any], str]) -> None:
    """A listing command's output: one JSON array of ``item.as_json()``, or a line per item."""
    if as_json:
        click.echo(json.dumps([item.as_json() for item in items], indent=2))
        return
    for item in items:
        click.echo(line(item))


# click 8.4 made ParamType generic over what convert() returns; the older click
# this package still supports cannot subscript it.
if TYPE_CHECKING:
    _MonthParam = click.ParamType[Month, object]
else:
    _MonthParam = click.ParamType


class MonthType(_MonthParam):
    """A ``YYYY-MM`` argument, refused by click (exit status 2) with a clear message."""

    name = "YYYY-MM"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> Month:
        if isinstance(value, Month):
            return value
        try:
            return Month.parse(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


MONTH = MonthType()
