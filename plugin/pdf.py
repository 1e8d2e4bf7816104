"""Invoice PDFs: a Jinja template rendered to PDF by wkhtmltopdf, safely.

wkhtmltopdf is archived upstream and its authors say not to feed it untrusted
HTML, yet invoices print names that customers chose.  So every layer assumes
the HTML may be hostile:

- the template escapes every value (autoescape on for everything, no ``|safe``
  on data) and refers to nothing outside itself: CSS is inline, there is no
  image or font to fetch;
- pdfkit 1.0 turns ``<meta name="pdfkit-…">`` tags found in the HTML into
  wkhtmltopdf options (CVE-2025-26240, unfixed): the meta-tag prefix is an
  unguessable per-process secret, and every option is passed explicitly;
- wkhtmltopdf runs with JavaScript off, local file access off and every HTTP
  fetch sent to a proxy on a closed loopback port (``--disable-javascript``
  alone still lets it fetch images and stylesheets);
- pdfkit has no timeout, so it only builds the command and the process runs
  here, in its own process group, killed whole when the timeout passes.

Nothing here touches the database: :mod:`plugin.services.invoice_pdfs` feeds
documents in and stores the bytes.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pdfkit
from jinja2 import Environment, TemplateError

from . import wording
from .config import PDF_DEFAULTS
from .processes import DEFAULT_RENDER_NICE, ProcessTimeout, Running, stderr_text
from .resources import template_environment
from .validators import InvalidValue, niceness

TEMPLATE = "billing/invoice_pdf.html"

#: Every wkhtmltopdf option, explicitly (see the module docstring for why).
#: Values are strings: pdfkit drops falsy values, so ``0`` would vanish.
OPTIONS: dict[str, str] = {
    "--disable-javascript": "",
    "--javascript-delay": "0",
    "--disable-local-file-access": "",
    "--proxy": "http://127.0.0.1:9",
    "--load-error-handling": "abort",
    "--load-media-error-handling": "abort",
    "--encoding": "UTF-8",
    "--page-size": "A4",
    "--margin-top": "18mm",
    "--margin-bottom": "18mm",
    "--margin-left": "20mm",
    "--margin-right": "20mm",
    "--quiet": "",
}

_CREATION_DATE = re.compile(rb"/CreationDate \(D:\d{14}Z\)")

#: What makes two renders of one HTML byte-identical.  Qt seeds its hash
#: tables randomly per process, which shuffles the order of the embedded
#: fonts; and it writes the creation date with the local UTC offset, while
#: :func:`_pin_creation_date` needs the fixed-length UTC form.
_REPRODUCIBLE = {"QT_HASH_SEED": "0", "TZ": "UTC"}


class PdfRenderError(Exception):
    """One document could not be rendered; the message says why (with wkhtmltopdf's stderr)."""


class PdfConfigError(RuntimeError):
    """The renderer cannot work at all (no wkhtmltopdf, a bad timeout): fix the config."""


# Template -------------------------------------------------------------------


@functools.cache
def _environment(language: str) -> Environment:
    """HTML in ``language``: every value is escaped (no ``|safe`` on data anywhere in the template).

    The document's words come from the catalogue (context ``document``), its
    amounts, dates, rates and countries from :mod:`plugin.wording` (Babel):
    a document is in its customer's language, whatever renders it (the
    worker, the CLI, a request in another language).
    """
    return template_environment(
        autoescape=True,
        filters={
            "amount": wording.money,
            "day": wording.day,
            "rate": wording.percent,
            "country": wording.country,
            "iban": wording.iban,
        },
        language=language,
    )


def render_invoice_html(document: Mapping[str, Any]) -> str:
    """The invoice or credit note ``document`` as one self-contained HTML page."""
    template = _environment(document["language"]).get_template(TEMPLATE)
    return template.render(document=document)


# Renderer -------------------------------------------------------------------


@functools.cache
def _meta_tag_prefix() -> str:
    """pdfkit's meta-tag prefix: a secret of this process, so HTML cannot name it."""
    return f"pdfkit-{secrets.token_hex(16)}-"


def _pin_creation_date(pdf: bytes, issued_at: str) -> bytes:
    """Replace the render time in the PDF's info with the issue time.

    With it pinned (and :data:`_REPRODUCIBLE`), rendering is reproducible: a
    re-render or a parallel render gives the stored bytes.  The stamp has the
    same length, so the xref offsets stay valid; a PDF without the expected
    stamp is left as it is.
    """
    instant = datetime.fromisoformat(issued_at).astimezone(UTC)
    stamp = f"/CreationDate (D:{instant:%Y%m%d%H%M%S}Z)".encode("ascii")
    return _CREATION_DATE.sub(stamp, pdf, count=1)


@dataclass(frozen=True)
class PdfRenderer:
    """Runs wkhtmltopdf on invoice documents; plain values only."""

    wkhtmltopdf: str
    timeout: float = PDF_DEFAULTS["BILLING_PDF_TIMEOUT"]
    workers: int = 1
    nice: int = DEFAULT_RENDER_NICE

    def __post_init__(self) -> None:
        if not os.access(self.wkhtmltopdf, os.X_OK) or os.path.isdir(self.wkhtmltopdf):
            raise PdfConfigError(
                f"BILLING_WKHTMLTOPDF: {self.wkhtmltopdf!r} is not an executable file"
            )
        if not self.timeout > 0:
            raise PdfConfigError(f"BILLING_PDF_TIMEOUT must be positive, not {self.timeout!r}")
        if self.workers < 1:
            raise PdfConfigError(f"BILLING_PDF_WORKERS must be at least 1, not {self.workers!r}")
        try:
            niceness(self.nice)
        except InvalidValue as exc:
            raise PdfConfigError(f"BILLING_RENDER_NICE {exc}") from None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, workers: int | None = None) -> PdfRenderer:
        """The renderer the app's config asks for; ``workers`` overrides the config."""
        settings = {**PDF_DEFAULTS, **{k: config[k] for k in PDF_DEFAULTS if k in config}}
        path = settings["BILLING_WKHTMLTOPDF"] or shutil.which("wkhtmltopdf")
        if not path:
            raise PdfConfigError(
                "wkhtmltopdf is not installed (apt-get install wkhtmltopdf) "
                "or set BILLING_WKHTMLTOPDF to its path"
            )
        count = workers or settings["BILLING_PDF_WORKERS"] or os.cpu_count() or 1
        return cls(
            str(path),
            float(settings["BILLING_PDF_TIMEOUT"]),
            int(count),
            settings["BILLING_RENDER_NICE"],
        )

    def command(self, html: str) -> list[str]:
        """The wkhtmltopdf command line for ``html`` (read from stdin, PDF to stdout)."""
        configuration = pdfkit.configuration(
            wkhtmltopdf=self.wkhtmltopdf, meta_tag_prefix=_meta_tag_prefix()
        )
        kit = pdfkit.PDFKit(html, "string", options=OPTIONS, configuration=configuration)
        command: list[str] = kit.command()
        return command

    def render_html(self, html: str) -> bytes:
        """``html`` as PDF bytes; :class:`PdfRenderError` on any failure or the timeout."""
        return self.start_html(html).finish()

    def start_html(self, html: str) -> Rendering:
        """Start wkhtmltopdf on ``html`` and hand it the page; :meth:`Rendering.finish`
        collects the PDF.  Meanwhile the caller may do other work (the e-invoice
        pipeline validates its XML while the page renders)."""
        deadline = time.monotonic() + self.timeout
        try:
            running = Running(self.command(html), _REPRODUCIBLE, nice=self.nice)
        except OSError as exc:
            raise PdfRenderError(f"wkhtmltopdf could not be started: {exc}") from None
        try:
            running.send(html.encode("utf-8"), timeout=self.timeout)
        except ProcessTimeout as exc:
            raise self._timed_out(exc) from None
        return Rendering(self, running, deadline)

    def _timed_out(self, exc: ProcessTimeout) -> PdfRenderError:
        return PdfRenderError(
            f"wkhtmltopdf did not finish within {self.timeout:g} s and was killed; "
            f"stderr: {stderr_text(exc.stderr)}"
        )

    @staticmethod
    def _checked(status: int, stdout: bytes, stderr: bytes) -> bytes:
        """The PDF, only if wkhtmltopdf succeeded without a single load error."""
        if status != 0:
            raise PdfRenderError(
                f"wkhtmltopdf exited with status {status}; stderr: {stderr_text(stderr)}"
            )
        if not stdout.startswith(b"%PDF-"):
            raise PdfRenderError(
                f"wkhtmltopdf wrote no PDF ({len(stdout)} bytes); stderr: {stderr_text(stderr)}"
            )
        return stdout

    def render(self, document: Mapping[str, Any]) -> bytes:
        """One invoice document as PDF bytes, reproducibly."""
        return self.start(document).finish()

    def start(self, document: Mapping[str, Any]) -> Rendering:
        """Like :meth:`render`, but returns once wkhtmltopdf has the page
        (see :meth:`start_html`)."""
        try:
            html = render_invoice_html(document)
        except (TemplateError, KeyError, ValueError, TypeError, ArithmeticError) as exc:
            raise PdfRenderError(f"the invoice template failed: {exc}") from None
        rendering = self.start_html(html)
        return dataclasses.replace(rendering, issued_at=document["issued_at"])

    def render_or_error(self, document: Mapping[str, Any]) -> bytes | PdfRenderError:
        """Like :meth:`render`, but the error is returned, so one bad document stops nothing."""
        try:
            return self.render(document)
        except PdfRenderError as exc:
            return exc

    def render_many(self, documents: Iterable[Mapping[str, Any]]) -> list[bytes | PdfRenderError]:
        """Each document's PDF or error, in order, with up to ``workers`` wkhtmltopdf at once.

        Threads, not processes: each thread waits on its wkhtmltopdf process
        (the GIL is released meanwhile), and the template takes about a
        millisecond.  A pool of processes paid a fork server and an import per
        batch, which cost more than it saved on a 2-core machine.
        """
        documents = list(documents)
        workers = min(self.workers, len(documents))
        if workers <= 1:
            return [self.render_or_error(document) for document in documents]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="billing-pdf") as pool:
            futures = [pool.submit(self.render_or_error, document) for document in documents]
            return [_outcome(future) for future in futures]


@dataclass(frozen=True)
class Rendering:
    """A wkhtmltopdf run that has its page: :meth:`finish` once, or :meth:`abandon`."""

    renderer: PdfRenderer
    running: Running
    #: ``time.monotonic()`` by which the whole render must be done (the renderer's timeout).
    deadline: float
    #: The document's issue time, pinned as the PDF's creation date (none for bare HTML).
    issued_at: str | None = None

    def finish(self) -> bytes:
        """The PDF; :class:`PdfRenderError` on failure or when the deadline passes."""
        try:
            done = self.running.finish(timeout=max(self.deadline - time.monotonic(), 0.001))
        except ProcessTimeout as exc:
            raise self.renderer._timed_out(exc) from None
        pdf = self.renderer._checked(done.returncode, done.stdout, done.stderr)
        return _pin_creation_date(pdf, self.issued_at) if self.issued_at else pdf

    def abandon(self) -> None:
        """Kill wkhtmltopdf if it still runs (a no-op once finished)."""
        self.running.abandon()


def _outcome(future: Any) -> bytes | PdfRenderError:
    """A worker's result; any unexpected exception in it is that document's error."""
    try:
        outcome: bytes | PdfRenderError = future.result()
    except Exception as exc:
        return PdfRenderError(f"the PDF worker failed: {exc!r}")
    return outcome
