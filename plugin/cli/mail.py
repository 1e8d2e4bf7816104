"""Invoice mail and the invoice mailbox: ``flask billing set-mailbox``, ``send-invoices`` & co."""

from __future__ import annotations

import click

from .. import jobs
from ..extension import billing
from ..mail.smtp import SmtpSettings, SmtpTransport
from ..models import MAIL_STATUSES
from ..services.mail_delivery import deliver_queued
from ..services.mail_status import deliveries
from ..services.mailbox import MailboxError, change_mailbox, workspace_id_for
from ..services.outbox import MailError, resend_invoice
from ..services.workers import beat, cron_id
from ..types import utcnow
from .common import billing_cli, echo_listing, fail


@billing_cli.command("set-mailbox")
@click.argument("workspace_key")
@click.argument("address")
def set_mailbox_command(workspace_key: str, address: str) -> None:
    """Make ADDRESS the invoice mailbox of WORKSPACE_KEY (accounting only).

    Recorded in the audit log; a notice is queued to the old and the new
    address (delivered by `send-invoices`).  Invoices already queued keep
    their recipient.
    """
    ext = billing()
    session = ext.session
    try:
        workspace_id = workspace_id_for(session, workspace_key)
        change = change_mailbox(session, workspace_id, address, actor=ext.actor(), now=utcnow())
    except MailboxError as exc:
        session.rollback()
        raise click.ClickException(str(exc)) from None
    session.commit()
    if not change.changed:
        click.echo(f"The invoice mailbox of {workspace_key} is already {change.new}: unchanged.")
        return
    click.echo(f"Invoice mailbox of {workspace_key}: {change.old or '(none)'} -> {change.new}.")
    click.echo(
        f"Notice queued to {' and '.join(a for a in (change.old, change.new) if a)}; "
        "`flask billing send-invoices` delivers it."
    )


def smtp_settings() -> SmtpSettings:
    """:func:`plugin.jobs.smtp_settings`, a bad setting refused as a click error."""
    try:
        return jobs.smtp_settings()
    except jobs.JobConfigError as exc:
        raise click.ClickException(str(exc)) from None


@billing_cli.command("send-invoices")
def send_invoices_command() -> None:
    """Deliver the queued mail (invoices with their PDF, mailbox notices) over SMTP.

    Safe to run from cron in several processes at once: each mail is sent
    once.  The cron alternative to `flask billing worker`: each run counts as
    a worker seen (its heartbeat).  Temporary failures are retried by later
    runs with growing pauses.
    Exit status 1 if a mail failed for good or the SMTP server could not be
    used at all.
    """
    settings = smtp_settings()
    with SmtpTransport(settings) as transport:
        summary = deliver_queued(billing().session, transport, lease=settings.lease)
    beat(billing().session, cron_id("send-invoices"), now=utcnow(), kind="cron",
         jobs_done=summary.handled)
    first, *details = summary.lines()
    click.echo(first)
    for line in details:
        click.echo(line, err=True)
    if summary.failed or summary.stopped:
        fail([], "Some mail was not delivered; see `flask billing mail-status`.")


@billing_cli.command("resend-invoice")
@click.argument("number")
def resend_invoice_command(number: str) -> None:
    """Queue a new delivery of invoice NUMBER to the workspace's current mailbox."""
    ext = billing()
    session = ext.session
    try:
        resend = resend_invoice(session, number, actor=ext.actor())
    except MailError as exc:
        session.rollback()
        raise click.ClickException(str(exc)) from None
    session.commit()
    click.echo(
        f"Invoice {number} queued for {resend.recipient} ({resend.message_key}); "
        "`flask billing send-invoices` delivers it."
    )


@billing_cli.command("mail-status")
@click.option("--invoice", "number", help="Only the mail of this invoice number.")
@click.option("--workspace", "workspace_key", help="Only this workspace key.")
@click.option("--status", type=click.Choice(MAIL_STATUSES), help="Only mail in this state.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
def mail_status_command(
    number: str | None, workspace_key: str | None, status: str | None, as_json: bool
) -> None:
    """List queued, sent and failed mail with attempts and the last error."""
    found = deliveries(
        billing().session, invoice_number=number, workspace_key=workspace_key, status=status
    )
    echo_listing(
        found,
        as_json,
        lambda item: (
            f"{item.message_key:<40} {item.workspace_key:<20} {item.recipient or '-':<36} "
            f"{item.state:<16} {item.attempts:>3}  {item.problem or ''}"
        ),
    )
