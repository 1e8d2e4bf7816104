"""Put the validated CII XML into a PDF/A-3 file, and get it out again, with factur-x.

Akretion's ``factur-x`` writes the attachment (``factur-x.xml`` with its
``/AF`` entry and ``/AFRelationship``) and the Factur-X XMP extension schema;
no PDF structure is written by hand here.  Its own checks are switched off:
the XML was validated before (:mod:`plugin.einvoice.validation`), and its
Schematron check silently does nothing without an HTTP Saxon server.
"""

from __future__ import annotations

import logging
from datetime import date

import facturx
from pypdf.errors import PdfReadError

FILENAME = "factur-x.xml"

# factur-x logs every step at INFO through the root logger's handlers.
logging.getLogger("factur-x").setLevel(logging.WARNING)


class EmbedError(Exception):
    """factur-x could not attach the XML or read it back."""


def embed_xml(
    pdfa: bytes, xml: bytes, *, number: str, seller: str, issue_date: date, language: str,
    credit_note: bool = False,
) -> bytes:
    """``pdfa`` (already PDF/A-3) with ``xml`` attached as ``factur-x.xml`` and the XMP."""
    kind = "Credit note" if credit_note else "Invoice"
    metadata = {
        "author": seller,
        "keywords": "Factur-X, ZUGFeRD, EN 16931",
        "title": f"{seller}: {kind} {number}",
        "subject": f"{kind} {number} dated {issue_date.isoformat()} issued by {seller}",
    }
    try:
        hybrid: bytes = facturx.generate_from_binary(
            pdfa,
            xml,
            flavor="factur-x",
            level="en16931",
            check_xsd=False,
            check_schematron=False,
            pdf_metadata=metadata,
            lang=language,
            afrelationship="alternative",
        )
    except (ValueError, TypeError, PdfReadError) as exc:
        raise EmbedError(f"factur-x could not embed the XML: {exc}") from None
    return hybrid


def extract_xml(pdf: bytes) -> bytes:
    """The ``factur-x.xml`` attached to ``pdf``; :class:`EmbedError` if there is none."""
    try:
        name, xml = facturx.get_facturx_xml_from_pdf(pdf, check_xsd=False)
    except (ValueError, TypeError, PdfReadError) as exc:
        raise EmbedError(f"no e-invoice XML could be read from the PDF: {exc}") from None
    if not xml:
        raise EmbedError("the PDF has no factur-x.xml attachment")
    return bytes(xml)
