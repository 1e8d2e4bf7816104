"""The invoice renderer that makes e-invoices: wkhtmltopdf, then the hybrid step.

A document with an ``"einvoice"`` (see :mod:`plugin.services.invoice_pdfs`)
comes back as a :class:`~plugin.einvoice.hybrid.HybridOutcome`; one without
(an invoice issued before e-invoices) as the plain PDF, exactly as before.
Both run in :class:`~plugin.pdf.PdfRenderer`'s worker threads, so Ghostscript
runs in parallel too; only the XML validation is serialised (see
:mod:`plugin.einvoice.validation`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..pdf import PdfRenderer, PdfRenderError
from .embed import EmbedError
from .hybrid import HybridOutcome, make_hybrid
from .pdfa import PdfaConverter, PdfaError


@dataclass(frozen=True)
class HybridRenderer(PdfRenderer):
    converter: PdfaConverter | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.converter is None:
            raise TypeError("HybridRenderer needs a PdfaConverter")

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, workers: int | None = None
    ) -> HybridRenderer:
        """wkhtmltopdf and Ghostscript as the app's config asks (BILLING_PDF_*, BILLING_PDFA_*)."""
        base = PdfRenderer.from_config(config, workers=workers)
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(PdfRenderer)}
        return cls(**fields, converter=PdfaConverter.from_config(config))

    def render_or_error(self, document: Mapping[str, Any]) -> bytes | HybridOutcome | Exception:
        """The plain PDF, the hybrid outcome, or the error; one bad document stops nothing."""
        converter: PdfaConverter = self.converter  # type: ignore[assignment]  # see __post_init__
        invoice = document.get("einvoice")
        try:
            if invoice is None:
                return self.render(document)
            return make_hybrid(converter, lambda: self.render(document), invoice)
        except (PdfRenderError, PdfaError, EmbedError) as exc:
            return exc
