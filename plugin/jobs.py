"""The queue's jobs with the adapters the app's config asks for: what the worker, the
cron commands and the admin actions share.

A job is a pending invoice PDF (:func:`plugin.services.invoice_pdfs.render_next`)
or a due mail (:func:`plugin.services.mail_delivery.deliver_queued`).  This
module builds the renderer, the SMTP settings and the leases from the config,
and runs an admin action's new jobs at once in the request when that is
quick (:func:`try_now`): one PDF, and the action's own mails only where the
host asks for it, since an SMTP server may take seconds to answer.  What is
not done there, or fails there, stays queued for the worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from email.headerregistry import Address
from typing import Any

from flask import current_app

from .einvoice import HybridRenderer, PdfaConfigError
from .extension import billing
from .mail.smtp import SmtpConfigError, SmtpSettings, SmtpTransport
from .pdf import PdfConfigError
from .rules import RulesUnavailable
from .services.invoice_pdfs import DEFAULT_LEASE as PDF_LEASE
from .services.invoice_pdfs import render_next
from .services.invoicing import newest_seller
from .services.mail_delivery import deliver_queued

#: The most PDFs and mails an admin action does itself; more are the worker's.
IN_REQUEST_PDFS = 1
IN_REQUEST_MAILS = 2
#: Seconds any one SMTP operation may take inside a request.
IN_REQUEST_SMTP_TIMEOUT = 5.0


class JobConfigError(RuntimeError):
    """The renderer or the SMTP settings cannot work: the message says which key."""


def renderer(config: Mapping[str, Any], *, workers: int | None = None) -> HybridRenderer:
    """wkhtmltopdf and Ghostscript as configured; use it as a context manager."""
    try:
        return HybridRenderer.from_config(config, workers=workers)
    except (PdfConfigError, PdfaConfigError) as exc:
        raise JobConfigError(str(exc)) from None


def smtp_settings() -> SmtpSettings:
    """The SMTP settings from the app config; the sender defaults to the rules' seller.

    Sending needs no prices: while the rules file is broken, the seller stored
    on the newest invoice is the default sender, so yesterday's invoices still go.
    """
    ext = billing()
    try:
        seller = ext.rules().seller
        default_sender: Address | None = Address(seller.name, addr_spec=seller.email)
    except RulesUnavailable:
        stored = newest_seller(ext.session)
        default_sender = Address(stored["name"], addr_spec=stored["email"]) if stored else None
    try:
        return SmtpSettings.from_config(current_app.config, default_sender=default_sender)
    except SmtpConfigError as exc:
        raise JobConfigError(str(exc)) from None


def pdf_lease(config: Mapping[str, Any]) -> timedelta:
    """How long a worker may hold one PDF: the configured lease, else four times the
    renderer's timeouts (wkhtmltopdf, then Ghostscript), at least five minutes."""
    if config.get("BILLING_WORKER_LEASE_SECONDS"):
        return timedelta(seconds=float(config["BILLING_WORKER_LEASE_SECONDS"]))
    timeouts = float(config.get("BILLING_PDF_TIMEOUT", 30)) + float(
        config.get("BILLING_PDFA_TIMEOUT", 30)
    )
    return max(PDF_LEASE, timedelta(seconds=4 * timeouts))


def mail_lease(config: Mapping[str, Any], settings: SmtpSettings) -> timedelta:
    """How long a worker may hold one mail: the configured lease, else the SMTP settings'."""
    if config.get("BILLING_WORKER_LEASE_SECONDS"):
        return timedelta(seconds=float(config["BILLING_WORKER_LEASE_SECONDS"]))
    return settings.lease


@dataclass(frozen=True)
class Tried:
    """What an admin action's request did itself: PDFs stored, mails sent."""

    rendered: tuple[str, ...] = ()
    sent: tuple[str, ...] = ()


def try_now(*, invoices: Sequence[str] = (), mails: Sequence[str] = ()) -> Tried:
    """Do an admin action's new jobs now, when that is quick; call it after the commit.

    ``invoices`` are the numbers whose PDF the action queued, ``mails`` the
    message keys of its mails.  Only up to :data:`IN_REQUEST_PDFS` PDFs (with
    ``BILLING_RENDER_IN_REQUEST``) and :data:`IN_REQUEST_MAILS` mails (with
    ``BILLING_SEND_IN_REQUEST``); a larger action leaves everything to the
    worker.  Each job is claimed like a worker claims it, so a worker that
    got there first keeps it.  A failure is recorded on the job as the
    worker would record it, and logged; the request goes on.
    """
    config = current_app.config
    rendered: list[str] = []
    sent: list[str] = []
    if invoices and len(invoices) <= IN_REQUEST_PDFS and config["BILLING_RENDER_IN_REQUEST"]:
        rendered = _render_now(invoices)
    if mails and len(mails) <= IN_REQUEST_MAILS and config["BILLING_SEND_IN_REQUEST"]:
        sent = _send_now(mails)
    return Tried(tuple(rendered), tuple(sent))


def _render_now(numbers: Sequence[str]) -> list[str]:
    ext = billing()
    config = current_app.config
    done = []
    try:
        tz = ext.rules().zoneinfo
        with renderer(config, workers=1) as pdfs:
            for _ in numbers:
                job = render_next(
                    ext.session, pdfs, tz=tz, lease=pdf_lease(config), numbers=numbers
                )
                if job is None:
                    break
                if job.error:
                    current_app.logger.warning("PDF of %s failed: %s", job.number, job.error)
                else:
                    done.append(job.number)
    except (JobConfigError, RulesUnavailable) as exc:
        current_app.logger.warning("PDFs left to the worker: %s", exc)
    return done


def _send_now(keys: Sequence[str]) -> list[str]:
    ext = billing()
    try:
        settings = smtp_settings()
    except JobConfigError as exc:
        current_app.logger.warning("Mail left to the worker: %s", exc)
        return []
    quick = replace(settings, timeout=min(settings.timeout, IN_REQUEST_SMTP_TIMEOUT))
    with SmtpTransport(quick) as transport:
        summary = deliver_queued(
            ext.session, transport, lease=mail_lease(current_app.config, settings), keys=keys
        )
    for problem in (*summary.retrying, *summary.failed):
        current_app.logger.warning(
            "Mail %s to %s: %s", problem.message_key, problem.recipient, problem.error
        )
    return list(summary.sent)
