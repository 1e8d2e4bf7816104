"""EN 16931 e-invoices: CII XML (Factur-X / ZUGFeRD EN 16931, XRechnung 3.0), its
validation, and the hybrid PDF/A-3 that carries it.

No database and no Flask here: :mod:`plugin.services.einvoices` maps stored
invoices onto :class:`EInvoice`, and :mod:`plugin.services.invoice_pdfs`
runs the pipeline when it renders.  Modules:

- :mod:`.document`: the frozen input values of one document;
- :mod:`.cii`: the XML builder;
- :mod:`.validation`: CII XSD + EN 16931 Schematron (+ :mod:`.xrechnung_rules`);
- :mod:`.pdfa`: Ghostscript's PDF/A-3b conversion and the marker check;
- :mod:`.embed`: factur-x's attachment and XMP;
- :mod:`.hybrid`: all of it for one document.
"""

from .cii import build_cii
from .document import (
    COMMERCIAL_INVOICE,
    CREDIT_NOTE,
    Address,
    Buyer,
    Contact,
    EInvoice,
    Line,
    Payment,
    Reference,
    Seller,
    Vat,
)
from .embed import EmbedError, embed_xml, extract_xml
from .hybrid import HybridOutcome, make_hybrid
from .pdfa import (
    GhostscriptPool,
    GhostscriptServer,
    PdfaConfigError,
    PdfaConverter,
    PdfaError,
    WarmStarts,
    missing_pdfa_markers,
    pdfa_markers,
)
from .renderer import HybridRenderer
from .validation import RuleFailure, ValidationResult, validate, warm_up

__all__ = [
    "COMMERCIAL_INVOICE",
    "CREDIT_NOTE",
    "Address",
    "Buyer",
    "Contact",
    "EInvoice",
    "EmbedError",
    "GhostscriptPool",
    "GhostscriptServer",
    "HybridOutcome",
    "HybridRenderer",
    "Line",
    "Payment",
    "PdfaConfigError",
    "PdfaConverter",
    "PdfaError",
    "Reference",
    "RuleFailure",
    "Seller",
    "ValidationResult",
    "Vat",
    "WarmStarts",
    "build_cii",
    "embed_xml",
    "extract_xml",
    "make_hybrid",
    "missing_pdfa_markers",
    "pdfa_markers",
    "validate",
    "warm_up",
]
