"""The whole e-invoice step for one document: CII XML, validation, PDF/A-3, embedding.

The XML is validated first: an invoice whose XML fails is not converted at
all (there is nothing to send), and the outcome says which rules it broke.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cii import build_cii
from .document import EInvoice
from .embed import embed_xml
from .pdfa import PdfaConverter, PdfaError, missing_pdfa_markers
from .validation import ValidationResult, validate


@dataclass(frozen=True)
class HybridOutcome:
    xml: bytes
    validation: ValidationResult
    #: The Factur-X / ZUGFeRD PDF; ``None`` when the XML failed validation.
    pdf: bytes | None


def make_hybrid(converter: PdfaConverter, pdf: bytes, invoice: EInvoice) -> HybridOutcome:
    """``pdf`` (wkhtmltopdf's) as a hybrid PDF/A-3 carrying ``invoice``'s validated XML.

    :class:`PdfaError` (or :class:`~plugin.einvoice.embed.EmbedError`) when the
    PDF side fails: that is a rendering failure, retried later.
    """
    xml = build_cii(invoice)
    result = validate(xml)
    if not result.ok:
        return HybridOutcome(xml, result, None)
    hybrid = embed_xml(
        converter.convert(pdf),
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
