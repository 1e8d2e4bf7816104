"""The whole e-invoice step for one document: CII XML, validation, PDF/A-3, embedding.

Ghostscript is started first: it spends some 150 ms starting up, while the XML
is validated and wkhtmltopdf renders the page, and only then reads the page.
(A thread for the validation would not help: SaxonC keeps the GIL while it
runs.)  An invoice whose XML fails gets no PDF at all (there is nothing to
send), and the outcome says which rules it broke.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .cii import build_cii
from .document import EInvoice
from .embed import embed_xml
from .pdfa import PdfaConverter, PdfaError, WarmStarts, missing_pdfa_markers
from .validation import ValidationResult, validate


@dataclass(frozen=True)
class HybridOutcome:
    xml: bytes
    validation: ValidationResult
    #: The Factur-X / ZUGFeRD PDF; ``None`` when the XML failed validation.
    pdf: bytes | None


def make_hybrid(
    converter: PdfaConverter | WarmStarts, pdf: bytes | Callable[[], bytes], invoice: EInvoice
) -> HybridOutcome:
    """``pdf`` (wkhtmltopdf's, or the function that renders it) as a hybrid PDF/A-3
    carrying ``invoice``'s validated XML.

    :class:`PdfaError` (or :class:`~plugin.einvoice.embed.EmbedError`, or the
    renderer's error) when the PDF side fails: a rendering failure, retried later.
    """
    conversion = converter.take() if isinstance(converter, WarmStarts) else converter.start()
    try:
        xml = build_cii(invoice)
        result = validate(xml)
        if not result.ok:
            return HybridOutcome(xml, result, None)
        pdfa = conversion.finish(pdf() if callable(pdf) else pdf)
    finally:
        conversion.abandon()  # a no-op once finished
    hybrid = embed_xml(
        pdfa,
        xml,
        number=invoice.number,
        seller=invoice.seller.name,
        issue_date=invoice.issue_date,
        language=invoice.language,
        credit_note=invoice.is_credit_note,
    )
    missing = missing_pdfa_markers(hybrid)
    if missing:
        raise PdfaError(f"the hybrid PDF is not a Factur-X PDF/A-3: {', '.join(missing)}")
    return HybridOutcome(xml, result, hybrid)
