"""The whole e-invoice step for one document: CII XML, validation, PDF/A-3, embedding.

wkhtmltopdf is started first and handed the page; the XML is built and
validated while it renders (the XML does not depend on the PDF).  The
validation runs in the calling thread: SaxonC keeps the GIL while it runs, so
a thread would not help, but wkhtmltopdf is a process of its own and renders
meanwhile.  Then Ghostscript converts the page (a long-running one, or one
started ahead, see :mod:`.pdfa`) and factur-x embeds the XML.

An invoice whose XML fails gets no PDF at all (there is nothing to send; its
wkhtmltopdf is killed), and the outcome says which rules it broke.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .cii import build_cii
from .document import EInvoice
from .embed import embed_xml
from .pdfa import Converts, PdfaError, missing_pdfa_markers
from .validation import ValidationResult, validate


@dataclass(frozen=True)
class HybridOutcome:
    xml: bytes
    validation: ValidationResult
    #: The Factur-X / ZUGFeRD PDF; ``None`` when the XML failed validation.
    pdf: bytes | None


class Page(Protocol):
    """A page being rendered (:class:`plugin.pdf.Rendering`): its PDF, or killed."""

    def finish(self) -> bytes: ...

    def abandon(self) -> None: ...


def make_hybrid(
    converter: Converts, pdf: bytes | Callable[[], Page], invoice: EInvoice
) -> HybridOutcome:
    """``pdf`` (wkhtmltopdf's, or the function that starts rendering it) as a hybrid
    PDF/A-3 carrying ``invoice``'s validated XML.

    :class:`PdfaError` (or :class:`~plugin.einvoice.embed.EmbedError`, or the
    renderer's error) when the PDF side fails: a rendering failure, retried later.
    """
    conversion = converter.take()
    page: Page | None = None
    plain = b""
    try:
        if callable(pdf):
            page = pdf()
        else:
            plain = pdf
        xml = build_cii(invoice)
        result = validate(xml)
        if not result.ok:
            return HybridOutcome(xml, result, None)
        pdfa = conversion.finish(plain if page is None else page.finish())
    finally:
        if page is not None:
            page.abandon()  # a no-op once finished
        conversion.abandon()
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
