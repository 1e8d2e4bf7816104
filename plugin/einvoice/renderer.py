"""The invoice renderer that makes e-invoices: wkhtmltopdf, then the hybrid step.

A document with an ``"einvoice"`` (see :mod:`plugin.services.invoice_pdfs`)
comes back as a :class:`~plugin.einvoice.hybrid.HybridOutcome`; one without
(an invoice issued before e-invoices) as the plain PDF, exactly as before.
Both run in :class:`~plugin.pdf.PdfRenderer`'s worker threads, so Ghostscript
runs in parallel too; only the XML validation is serialised (see
:mod:`plugin.einvoice.validation`), and it runs while the worker's
wkhtmltopdf renders the page.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..pdf import PdfRenderer, PdfRenderError
from .embed import EmbedError
from .hybrid import HybridOutcome, make_hybrid
from .pdfa import Converts, GhostscriptPool, PdfaConverter, PdfaError, WarmStarts


@dataclass(frozen=True)
class HybridRenderer(PdfRenderer):
    """Use it as a context manager (or call :meth:`close`): it keeps Ghostscript
    processes waiting for work, one per worker: long-running ones
    (:class:`~plugin.einvoice.pdfa.GhostscriptPool`), or with
    ``converter.long_running`` false one started ahead for each document
    (:class:`~plugin.einvoice.pdfa.WarmStarts`)."""

    converter: PdfaConverter | None = None
    ghostscript: GhostscriptPool | WarmStarts | None = field(
        default=None, init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.converter is None:
            raise TypeError("HybridRenderer needs a PdfaConverter")
        ghostscript = (GhostscriptPool(self.converter) if self.converter.long_running
                       else WarmStarts(self.converter, spares=self.workers))
        object.__setattr__(self, "ghostscript", ghostscript)

    def close(self) -> None:
        """End the Ghostscript processes waiting for work."""
        if self.ghostscript is not None:
            self.ghostscript.close()

    def __enter__(self) -> HybridRenderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, workers: int | None = None
    ) -> HybridRenderer:
        """wkhtmltopdf and Ghostscript as the app's config asks (BILLING_PDF_*, BILLING_PDFA_*)."""
        base = PdfRenderer.from_config(config, workers=workers)
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(PdfRenderer)
                  if f.init}
        return cls(**fields, converter=PdfaConverter.from_config(config))

    # The base's render_many passes these outcomes through as they are; its callers
    # type them with plugin.services.invoice_pdfs.Outcome, which has the hybrid one.
    def render_or_error(  # type: ignore[override]
        self, document: Mapping[str, Any]
    ) -> bytes | HybridOutcome | Exception:
        """The plain PDF, the hybrid outcome, or the error; one bad document stops nothing."""
        ghostscript: Converts = self.ghostscript  # type: ignore[assignment]  # see __post_init__
        invoice = document.get("einvoice")
        try:
            if invoice is None:
                return self.render(document)
            return make_hybrid(ghostscript, lambda: self.start(document), invoice)
        except (PdfRenderError, PdfaError, EmbedError) as exc:
            return exc
