"""Customer billing details, VAT cases, held workspaces and the documents, on both databases.

The demo's customers (examples/backoffice/demo_customers.yaml) cover every
case: domestic (acme, nordwind, globex, initech), EU reverse charge
(acme-sarl, oceanic), outside the EU (maple), XRechnung (musterstadt) and
incomplete details (brightside).  PDFs are real wkhtmltopdf output read back
with pdftotext.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
from flask import current_app
from sqlalchemy import select

from plugin.models import AuditEntry, BillingDetails, Invoice, Workspace
from tests.helpers import snapshot

needs_pdf_tools = pytest.mark.skipif(
    not (shutil.which("wkhtmltopdf") and shutil.which("pdftotext")),
    reason="wkhtmltopdf and pdftotext (poppler-utils) are needed",
)


@pytest.fixture
def cli(customers_cli):
    return customers_cli


def invoice_of(session, key: str, kind: str = "invoice") -> Invoice:
    session.expire_all()
    return session.scalars(
        select(Invoice).where(Invoice.workspace_key == key, Invoice.kind == kind)
    ).one()


def numbers(session) -> list[str]:
    session.expire_all()
    return list(session.scalars(select(Invoice.number).order_by(Invoice.year, Invoice.seq)))


def pdf_text(cli, number: str, tmp_path: Path) -> str:
    output = tmp_path / f"{number}.pdf"
    result = cli("invoice-pdf", number, "--output", str(output))
    assert result.exit_code == 0, result.output
    text = subprocess.run(
        ["pdftotext", "-layout", "-enc", "UTF-8", str(output), "-"],
        capture_output=True, check=True, text=True,
    ).stdout
    return " ".join(text.replace("\xa0", " ").split())


# The month close -----------------------------------------------------------------


def test_close_records_every_vat_case_and_holds_the_incomplete_workspace(cli, session):
    result = cli("close-month", "2026-10")
    assert result.exit_code == 0, result.output
    assert "Month 2026-10: 8 invoice(s) issued" in result.output
    assert "VAT category AE: 2 invoice(s), net 96.00 tax 0.00 gross 96.00 EUR" in result.output
    assert "VAT category O: 1 invoice(s), net 32.00 tax 0.00 gross 32.00 EUR" in result.output
    assert "held, billing details incomplete: 1 workspace(s)" in result.output
    assert "brightside (Brightside Studio): missing street, postcode, city" in result.output

    cases = {
        key: (
            invoice.vat_category, invoice.vat_exemption_code,
            *(f"{v:.2f}" for v in (invoice.tax_rate, invoice.net, invoice.tax, invoice.gross)),
        )
        for key in ("acme", "acme-sarl", "oceanic", "maple", "musterstadt")
        for invoice in [invoice_of(session, key)]
    }
    assert cases == {
        "acme": ("S", None, "0.19", "59.00", "11.21", "70.21"),
        "acme-sarl": ("AE", "VATEX-EU-AE", "0.00", "32.00", "0.00", "32.00"),
        "oceanic": ("AE", "VATEX-EU-AE", "0.00", "64.00", "0.00", "64.00"),
        "maple": ("O", "VATEX-EU-O", "0.00", "32.00", "0.00", "32.00"),
        "musterstadt": ("S", None, "0.19", "32.00", "6.08", "38.08"),
    }
    sarl = invoice_of(session, "acme-sarl")
    assert sarl.vat_note == "Steuerschuldnerschaft des Leistungsempfängers / Reverse charge"
    assert invoice_of(session, "maple").vat_note.startswith("Nicht im Inland steuerbar")
    assert invoice_of(session, "acme").vat_note is None
    assert sarl.buyer == {
        "legal_name": "Acme SARL",
        "address_lines": ["12 rue de la République"],
        "postcode": "69002",
        "city": "Lyon",
        "country": "FR",
        "vat_id": "FR40303265045",
        "buyer_reference": None,
        "order_reference": None,
        "language": "en",
        "email": "factures@acme-sarl.example",
        "einvoice_syntax": "factur-x",
    }
    city = invoice_of(session, "musterstadt")
    assert city.buyer["einvoice_syntax"] == "xrechnung"
    assert city.buyer["buyer_reference"] == "04011000-1234512345-06"
    assert city.buyer["order_reference"] == "2026/IT-0815"
    assert city.buyer["email"] == "e-rechnung@musterstadt.example"
    assert (city.service_start, city.service_end) == (date(2026, 10, 1), date(2026, 10, 31))
    issued_on = city.issued_at.astimezone(city_tz(cli)).date()
    assert (city.due_date - issued_on).days == 14
    assert city.payment_terms == f"Zahlbar bis {city.due_date:%d.%m.%Y} ohne Abzug."
    assert city.seller["register_court"] == "Amtsgericht Stuttgart"
    assert city.seller["contact"]["email"] == "buchhaltung@wolkenwerk.example"
    assert city.seller["iban"] == "DE89370400440532013000"
    assert [line["description"] for line in invoice_of(session, "oceanic").lines] == [
        "Team licences, October 2026: 2 teams"
    ]
    assert not session.scalars(
        select(Invoice).where(Invoice.workspace_key == "brightside")
    ).all()
    held = session.scalars(select(AuditEntry).where(AuditEntry.action == "close_month_held")).one()
    assert "brightside" in held.detail


def city_tz(cli):
    return current_app.extensions["billing"].rules().zoneinfo


def test_a_held_workspace_is_issued_later_without_gaps(cli, session):
    assert cli("close-month", "2026-10").exit_code == 0
    issued = numbers(session)
    assert len(issued) == 8
    credit = cli("credit-note", issued[0], "--reason", "test")
    assert credit.exit_code == 0, credit.output
    year = issued[0][:4]
    # The credited invoice is issued anew (number 10, after the credit note's 9);
    # brightside is still held.
    again = cli("close-month", "2026-10")
    assert f"1 invoice(s) issued ({year}-00010 to {year}-00010)" in again.output
    assert f"replaces the credited {issued[0]}" in again.output
    assert "brightside (Brightside Studio): missing street, postcode, city" in again.output
    result = cli(
        "set-billing-details", "brightside",
        "--street", "Torstraße 5", "--postcode", "10119", "--city", "Berlin",
    )
    assert result.exit_code == 0, result.output
    later = cli("close-month", "2026-10")
    assert "Month 2026-10: 1 invoice(s) issued" in later.output
    assert "held" not in later.output
    assert numbers(session) == [f"{year}-{n:05d}" for n in range(1, 12)]
    bright = invoice_of(session, "brightside")
    assert bright.number == f"{year}-00011"
    assert bright.buyer["address_lines"] == ["Torstraße 5"]


def test_check_month_previews_the_close_and_writes_nothing(cli, session):
    before = snapshot(session)
    result = cli("check-month", "2026-10")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Month 2026-10: a close would issue 8 invoice(s)",
        "  already invoiced before: 0; nothing to bill: 0",
        "  VAT category AE: 2 invoice(s), net 96.00 tax 0.00 gross 96.00 EUR",
        "  VAT category O: 1 invoice(s), net 32.00 tax 0.00 gross 32.00 EUR",
        "  VAT category S: 5 invoice(s), net 241.00 tax 45.79 gross 286.79 EUR",
        "  held, billing details incomplete: 1 workspace(s) "
        "(complete their billing details to issue them):",
        "    brightside (Brightside Studio): missing street, postcode, city",
    ]
    assert snapshot(session) == before
    assert cli("close-month", "2026-10").exit_code == 0
    assert "a close would issue 0 invoice(s)" in cli("check-month", "2026-10").output
    assert cli("check-month", "2031-01").exit_code == 1


def test_credit_note_copies_the_invoice_and_names_it(cli, session):
    assert cli("close-month", "2026-10").exit_code == 0
    original = invoice_of(session, "oceanic")
    assert cli("credit-note", original.number, "--reason", "Ports team was a trial").exit_code == 0
    note = invoice_of(session, "oceanic", "credit_note")
    assert note.buyer == original.buyer
    assert note.seller == original.seller
    assert (note.vat_category, note.vat_exemption_code, note.vat_note, note.tax_rate) == (
        original.vat_category, original.vat_exemption_code, original.vat_note, original.tax_rate
    )
    assert (note.service_start, note.service_end) == (original.service_start, original.service_end)
    assert (note.net, note.gross) == (-original.net, -original.gross)
    assert note.due_date is not None
    assert note.payment_terms.startswith("The amount will be refunded by")


# Setting the details ---------------------------------------------------------------


def details_of(session, key: str) -> dict:
    session.expire_all()
    row = session.scalars(
        select(BillingDetails).join(Workspace).where(Workspace.key == key)
    ).one_or_none()
    return {} if row is None else {
        "legal_name": row.legal_name, "address_lines": row.address_lines,
        "postcode": row.postcode, "city": row.city, "country": row.country,
        "vat_id": row.vat_id, "language": row.language,
    }


def test_set_billing_details_changes_only_what_is_given_and_is_audited(cli, session):
    result = cli("set-billing-details", "maple", "--vat-id", " ", "--language", "DE")
    assert result.exit_code == 0, result.output
    result = cli("set-billing-details", "acme-sarl", "--vat-id", "fr 40 303 265 045",
                 "--legal-name", "Acme SARL (Lyon)")
    assert result.exit_code == 0, result.output
    assert details_of(session, "acme-sarl")["legal_name"] == "Acme SARL (Lyon)"
    assert details_of(session, "acme-sarl")["city"] == "Lyon"
    assert details_of(session, "maple")["language"] == "de"
    entry = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == "billing_details", AuditEntry.target == "acme-sarl")
        .order_by(AuditEntry.id.desc())
    ).first()
    assert entry.before["legal_name"] == "Acme SARL"
    assert entry.after["legal_name"] == "Acme SARL (Lyon)"
    assert entry.actor
    same = cli("set-billing-details", "acme-sarl", "--city", "Lyon")
    assert "already as given, nothing changed" in same.output


@pytest.mark.parametrize(
    ("args", "errors"),
    [
        (["acme-sarl", "--country", "DE"],
         ["--vat-id: 'FR40303265045' is not a VAT ID of DE: it must start with DE"]),
        (["acme-sarl", "--vat-id", "FR40303265046"],
         ["--vat-id: 'FR40303265046' is not a valid EU VAT ID"]),
        (["acme-sarl", "--country", "ZZ", "--language", "fr"],
         ["--country: 'ZZ' is not an ISO 3166-1 country code",
          "--language: 'fr' is not a document language: use de or en"]),
        (["acme-sarl", "--street", "a", "--street", "b", "--street", "c", "--street", "d"],
         ["--street: at most 3 street lines, not 4"]),
        (["acme-sarl", "--legal-name", "Acme\r\nBcc: x@y.example"],
         ["--legal-name: contains a line break (U+000D) at character 5"]),
        (["acme-sarl", "--buyer-reference", "04011000-1234512345-07"],
         ["--buyer-reference: '04011000-1234512345-07' looks like a Leitweg-ID"]),
        (["acme-sarl", "--email", "a@b.example, c@d.example"],
         ["--email: 'a@b.example, c@d.example' is a list"]),
        (["nobody", "--city", "X"], ["nobody: no workspace with the key 'nobody'"]),
    ],
)
def test_bad_details_are_refused_on_stderr_and_change_nothing(cli, session, args, errors):
    before = snapshot(session)
    result = cli("set-billing-details", *args)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[-1] == "Error: nothing was changed"
    for expected, line in zip(errors, lines, strict=False):
        assert line.startswith(expected), (expected, lines)
    assert len(lines) == len(errors) + 1
    assert snapshot(session) == before


def test_the_import_file_refuses_bad_details_with_their_line(cli, session, tmp_path):
    before = snapshot(session)
    path = tmp_path / "bad.yaml"
    path.write_text(
        "workspaces:\n"
        "  - key: newco\n"
        "    name: Newco\n"
        "    created: 2024-01-01\n"
        "    billing_details:\n"
        "      legal_name: Newco GmbH\n"
        "      street: [Weg 1]\n"
        "      country: FR\n"
        "      vat_id: DE136695976\n"
        "      colour: blue\n",
        encoding="utf-8",
    )
    result = cli("import", str(path))
    assert result.exit_code == 1
    assert "line 10: workspaces[0].billing_details.colour: unknown field" in result.output
    assert (
        "line 9: workspaces[0].billing_details.vat_id: 'DE136695976' is not a VAT ID of FR"
        in result.output
    )
    assert snapshot(session) == before


# The documents ---------------------------------------------------------------------


@needs_pdf_tools
def test_german_and_english_documents_name_everything_an_invoice_needs(cli, session, tmp_path):
    assert cli("close-month", "2026-10").exit_code == 0
    acme = invoice_of(session, "acme")
    german = pdf_text(cli, acme.number, tmp_path)
    due = f"{acme.due_date:%d.%m.%Y}"
    for expected in (
        "Rechnung", f"Rechnungsnummer {acme.number}",
        "Müller & Söhne GmbH", "Hafenstraße 7", "20457 Hamburg", "Deutschland",
        "USt-IdNr. des Kunden DE287123457", "USt-IdNr.: DE136695976",
        "Steuernummer: 99/015/12345", "Bestellnummer PO-2026-114",
        "Leistungszeitraum 01.10.2026 bis 31.10.2026", f"Fällig am {due}",
        f"Zahlbar bis {due} ohne Abzug.",
        "Nutzerlizenzen, Oktober 2026: Personen 1 bis 4 von 4, Staffel 1 bis 10 Personen",
        "Nettobetrag (Regelsteuersatz) 59,00 €", "Umsatzsteuer 19 % 11,21 €",
        "Gesamtbetrag 70,21 €", "Registergericht: Amtsgericht Stuttgart", "HRB 765432",
        "Geschäftsführung: Dr. Erika Mustermann, Jonas Weber",
        "IBAN: DE89 3704 0044 0532 0130 00",
    ):
        assert expected in german, (expected, german)
    assert "Priced with rules" not in german
    assert "Steuerschuldnerschaft" not in german

    sarl = invoice_of(session, "acme-sarl")
    english = pdf_text(cli, sarl.number, tmp_path)
    for expected in (
        "Invoice", f"Invoice number {sarl.number}", "Acme SARL", "12 rue de la République",
        "69002 Lyon", "France", "Customer's VAT ID FR40303265045", "VAT ID: DE136695976",
        "Service period 1 Oct 2026 to 31 Oct 2026", f"Due date {sarl.due_date:%-d %b %Y}",
        "Team licences, October 2026: 1 team", "Net amount (Reverse charge) €32.00",
        "VAT 0% €0.00", "Total €32.00",
        "Steuerschuldnerschaft des Leistungsempfängers / Reverse charge",
    ):
        assert expected in english, (expected, english)

    maple = pdf_text(cli, invoice_of(session, "maple").number, tmp_path)
    assert "Nicht im Inland steuerbare Leistung / Service not subject to German VAT" in maple
    assert "Canada" in maple


@needs_pdf_tools
def test_a_german_reverse_charge_invoice_is_worded_in_german_and_an_english_one_in_english(
    cli, session, tmp_path
):
    """The words come from the catalogue (context ``document``) in each customer's language."""
    result = cli("set-billing-details", "acme-sarl", "--language", "de")
    assert result.exit_code == 0, result.output
    assert cli("close-month", "2026-10").exit_code == 0
    sarl = invoice_of(session, "acme-sarl")
    assert sarl.lines[0]["description"] == "Teamlizenzen, Oktober 2026: 1 Team"
    assert sarl.payment_terms == f"Zahlbar bis {sarl.due_date:%d.%m.%Y} ohne Abzug."
    german = pdf_text(cli, sarl.number, tmp_path)
    for expected in (
        f"Rechnungsnummer {sarl.number}", "Leistungszeitraum 01.10.2026 bis 31.10.2026",
        "USt-IdNr. des Kunden FR40303265045", "Beschreibung Menge Einzelpreis Betrag",
        "Teamlizenzen, Oktober 2026: 1 Team", "Umsatzsteuer 0 % 0,00 €",
        "Gesamtbetrag 32,00 €", "Bankverbindung",
    ):
        assert expected in german, (expected, german)
    # The category's label wraps in the totals' column, the amount between its lines.
    category = r"Nettobetrag \(Steuerschuldnerschaft des (32,00 € )?Leistungsempfängers\)"
    assert re.search(category, german), german
    for english_label in ("Invoice number", "Service period", "Net amount", "Bank account"):
        assert english_label not in german

    oceanic = invoice_of(session, "oceanic")
    assert oceanic.lines[0]["description"].startswith("Team licences, October 2026: ")
    english = pdf_text(cli, oceanic.number, tmp_path)
    for expected in (
        f"Invoice number {oceanic.number}", "Service period 1 Oct 2026 to 31 Oct 2026",
        "Description Quantity Unit price Amount", "Net amount (Reverse charge) €64.00",
        "Bank account",
    ):
        assert expected in english, (expected, english)
    for german_label in ("Rechnungsnummer", "Leistungszeitraum", "Nettobetrag", "Bankverbindung"):
        assert german_label not in english


@needs_pdf_tools
def test_credit_note_document_names_the_credited_invoice_and_its_date(cli, session, tmp_path):
    assert cli("close-month", "2026-10").exit_code == 0
    original = invoice_of(session, "initech")
    assert cli("credit-note", original.number, "--reason", "Doppelt berechnet").exit_code == 0
    note = invoice_of(session, "initech", "credit_note")
    assert cli("render-pending").exit_code == 0
    text = pdf_text(cli, note.number, tmp_path)
    issued = original.issued_at.astimezone(city_tz(cli)).date()
    for expected in (
        "Gutschrift", f"Gutschriftsnummer {note.number}",
        f"Diese Gutschrift storniert die Rechnung {original.number} vom {issued:%d.%m.%Y}.",
        "Grund: Doppelt berechnet", "Initech GmbH", "Leopoldstraße 180",
        f"Der Betrag wird bis {note.due_date:%d.%m.%Y} erstattet.", "-32,13 €",
    ):
        assert expected in text, (expected, text)


HOSTILE = '<iframe src="file:///etc/passwd"></iframe><b>Evil</b> & <script>x()</script>'


@needs_pdf_tools
def test_hostile_billing_details_stay_text_in_the_pdf(cli, session, tmp_path):
    result = cli(
        "set-billing-details", "maple", "--legal-name", HOSTILE,
        "--street", "=cmd|' /C calc'!A0", "--order-reference", "<img src=http://127.0.0.1:9/x>",
    )
    assert result.exit_code == 0, result.output
    assert cli("close-month", "2026-10").exit_code == 0
    text = pdf_text(cli, invoice_of(session, "maple").number, tmp_path)
    assert HOSTILE in text
    assert "=cmd|' /C calc'!A0" in text
    assert "<img src=http://127.0.0.1:9/x>" in text
    assert "root:" not in text


def test_invoice_list_json_is_unchanged_by_the_new_columns(cli):
    assert cli("close-month", "2026-10").exit_code == 0
    listed = json.loads(cli("invoices", "--json").output)
    assert {item["workspace"] for item in listed} == {
        "acme", "acme-sarl", "globex", "initech", "maple", "musterstadt", "nordwind", "oceanic"
    }


def test_issued_invoices_keep_the_details_they_were_issued_with(cli, session):
    assert cli("close-month", "2026-10").exit_code == 0
    before = invoice_of(session, "acme-sarl")
    buyer, sha = dict(before.buyer), before.pdf_sha256
    result = cli("set-billing-details", "acme-sarl", "--legal-name", "Acme Europe SAS",
                 "--city", "Paris", "--postcode", "75001")
    assert result.exit_code == 0, result.output
    after = invoice_of(session, "acme-sarl")
    assert after.buyer == buyer
    assert after.pdf_sha256 == sha
