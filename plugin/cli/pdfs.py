"""Invoice PDFs and e-invoice XML: render the pending ones, write one out."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import click
from flask import current_app

from .. import jobs
from ..extension import billing
from ..services.einvoices import XmlNotAvailable, stored_xml
from ..services.invoice_pdfs import PdfNotAvailable, render_pending, stored_pdf
from ..services.workers import beat, cron_id
from ..types import utcnow
from .common import background, billing_cli, fail


@billing_cli.command("render-pending")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Parallel wkhtmltopdf processes (default: BILLING_PDF_WORKERS, else one per CPU).",
)
@background
def render_pending_command(workers: int | None) -> None:
    """Render the PDF of every invoice that has none yet (new, or failed before).

    Exit status 1 if any failed; they stay pending, with their error recorded,
    for the next run.  The cron alternative to `flask billing worker`: each
    run counts as a worker seen (its heartbeat).
    """
    render_pending_pdfs(workers, heartbeat=True)


def render_pending_pdfs(workers: int | None = None, *, heartbeat: bool = False) -> None:
    """Render the pending PDFs with a progress bar on a terminal; exit 1 if any failed.

    ``heartbeat``: record the run as a worker seen (``render-pending`` itself,
    not the month close that renders its new invoices at its end).
    """
    ext = billing()
    try:
        renderer = jobs.renderer(current_app.config, workers=workers)
    except jobs.JobConfigError as exc:
        raise click.ClickException(str(exc)) from None
    with renderer, click.progressbar(
        length=0, label="Rendering invoice PDFs", file=sys.stderr
    ) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        summary = render_pending(ext.session, renderer, tz=ext.rules().zoneinfo, progress=progress)
    if heartbeat:
        beat(ext.session, cron_id("render-pending"), now=utcnow(), kind="cron",
             jobs_done=summary.rendered + summary.failed)
    click.echo(f"Invoice PDFs rendered: {summary.rendered}, failed: {summary.failed}.")
    if summary.failures:
        fail(
            [f"{failure.number}: {failure.error}" for failure in summary.failures],
            f"{summary.failed} invoice PDF(s) failed; they stay pending for the next run.",
        )


@billing_cli.command("invoice-pdf")
@click.argument("number")
@click.option(
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write the PDF to.",
)
def invoice_pdf_command(number: str, output: Path) -> None:
    """Write the stored PDF of invoice NUMBER, byte for byte, to a file."""
    try:
        data = stored_pdf(billing().session, number)
    except PdfNotAvailable as exc:
        raise click.ClickException(str(exc)) from None
    _write_or_fail(output, data)


@billing_cli.command("invoice-xml")
@click.argument("number")
@click.option(
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write the XML to.",
)
def invoice_xml_command(number: str, output: Path) -> None:
    """Write the e-invoice XML (EN 16931 CII) of invoice NUMBER, byte for byte, to a file.

    Only an XML that passed validation is written; invoices issued before
    e-invoices have none.
    """
    try:
        data = stored_xml(billing().session, number)
    except XmlNotAvailable as exc:
        raise click.ClickException(str(exc)) from None
    _write_or_fail(output, data)


def _write_or_fail(output: Path, data: bytes) -> None:
    try:
        _write_atomically(output, data)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"Wrote {output} ({len(data)} bytes).")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write through a temporary file beside ``path``: never a partial file under its name.

    The file is readable by its owner only (``mkstemp``): invoices are confidential.
    """
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
