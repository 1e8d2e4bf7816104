"""Month close, invoice numbers, credit notes and the invoice list."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from plugin.models import AuditEntry, Invoice, RulesVersion, Workspace
from plugin.services.periods import Month
from plugin.types import utcnow
from tests.conftest import RULES_PATH
from tests.helpers import closes_at_once, snapshot


@pytest.fixture
def cli(demo_cli):
    return demo_cli


def invoices_json(cli, *args: str) -> list[dict]:
    result = cli("invoices", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# October 2026 on the demo data, by hand (19 % VAT):
# acme      user licences (created 2022): Anna, Chris, Dora, Emil = 4 × 9.00 = 36.00,
#           below the 59.00 minimum → 59.00 + 11.21 = 70.21
# globex    user licences by contract: Karl, Lena = 2 × 9.00 → minimum 59.00 → 70.21
# initech   team licences by contract, own volume prices: 1 team × 27.00 → 27.00 + 5.13
# nordwind  team licences (created 2023-06): dispatch, fleet = 2 × 32.00 = 64.00 + 12.16
EXPECTED_OCTOBER = [
    ("acme", "user_licences", 4, "59.00", "11.21", "70.21"),
    ("globex", "user_licences", 2, "59.00", "11.21", "70.21"),
    ("initech", "team_licences", 1, "27.00", "5.13", "32.13"),
    ("nordwind", "team_licences", 2, "64.00", "12.16", "76.16"),
]


def test_close_month_issues_the_hand_computed_invoices(cli, session):
    result = cli("close-month", "2026-10")
    assert result.exit_code == 0, result.output
    assert "Month 2026-10: 4 invoice(s) issued" in result.output
    assert "total gross issued: 248.71 EUR" in result.output
    listed = invoices_json(cli, "--month", "2026-10")
    assert [
        (i["workspace"], i["variant"], i["quantity"], i["net"], i["tax"], i["gross"])
        for i in listed
    ] == EXPECTED_OCTOBER
    year = listed[0]["number"][:4]
    assert [i["number"] for i in listed] == [f"{year}-0000{n}" for n in range(1, 5)]
    assert {i["kind"] for i in listed} == {"invoice"}
    assert {i["status"] for i in listed} == {"issued"}
    assert {i["period"] for i in listed} == {"2026-10"}
    invoice = session.scalar(select(Invoice).where(Invoice.workspace_key == "acme"))
    assert invoice.workspace_name == "Müller & Söhne GmbH"
    assert invoice.lines == [
        {
            "description": "Nutzerlizenzen, Oktober 2026: Personen 1 bis 4 von 4, "
            "Staffel 1 bis 10 Personen",
            "quantity": 4,
            "unit_price": "9.00",
            "amount": "36.00",
            "kind": "usage",
        },
        {
            "description": "Mindestbetrag pro Monat, Oktober 2026: Aufstockung auf 59,00\xa0€",
            "quantity": 1,
            "unit_price": "23.00",
            "amount": "23.00",
            "kind": "minimum",
        },
    ]
    assert invoice.tax_rate == Decimal("0.19")
    assert invoice.seller["name"] == "Wolkenwerk Software GmbH"
    stored = session.scalar(
        select(RulesVersion.content).where(RulesVersion.sha256 == invoice.rules_sha256)
    )
    assert stored == RULES_PATH.read_text(encoding="utf-8")
    assert session.scalar(select(AuditEntry.detail).where(AuditEntry.action == "close_month"))


def test_closing_twice_issues_nothing_more(cli, session):
    assert cli("close-month", "2026-10").exit_code == 0
    before = snapshot(session)
    result = cli("close-month", "2026-10")
    assert result.exit_code == 0, result.output
    assert "0 invoice(s) issued" in result.output
    assert "already invoiced before: 4" in result.output
    session.expire_all()
    assert snapshot(session) == before


def test_an_issued_invoice_never_changes(cli, session):
    assert cli("close-month", "2026-10").exit_code == 0
    session.execute(update(Workspace).where(Workspace.key == "acme").values(name="Renamed"))
    session.commit()
    listed = invoices_json(cli, "--workspace", "acme")
    assert listed[0]["gross"] == "70.21"
    assert (
        session.scalar(select(Invoice.workspace_name).where(Invoice.workspace_key == "acme"))
        == "Müller & Söhne GmbH"
    )


@pytest.mark.parametrize("months_ahead", [0, 2])
def test_the_current_or_a_future_month_cannot_be_closed(cli, session, months_ahead):
    month = Month.of(utcnow(), ZoneInfo("Europe/Berlin"))
    for _ in range(months_ahead):
        month = month.next()
    month = str(month)
    result = cli("close-month", month)
    assert result.exit_code == 1
    assert month in result.output
    assert "only past months can be closed" in result.output or "future" in result.output
    assert session.scalars(select(Invoice)).all() == []


def test_without_a_month_the_previous_one_is_closed(cli, session):
    expected = str(Month.of(utcnow(), ZoneInfo("Europe/Berlin")).previous())
    result = cli("close-month")
    assert result.exit_code == 0, result.output
    assert f"Month {expected}: " in result.output
    assert {i["period"] for i in invoices_json(cli)} == {expected}


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 00:30 on 1 December in Berlin is still 30 November in UTC.
        (datetime(2026, 11, 30, 23, 30, tzinfo=UTC), Month(2026, 11)),
        (datetime(2026, 11, 30, 22, 59, tzinfo=UTC), Month(2026, 10)),
        (datetime(2026, 12, 31, 23, 0, tzinfo=UTC), Month(2026, 12)),
    ],
)
def test_the_default_month_is_the_previous_one_in_the_billing_time_zone(now, expected):
    from plugin.rules import load_rules_file
    from plugin.services.invoicing import default_close_month

    assert default_close_month(load_rules_file(RULES_PATH), now) == expected


def test_a_bad_month_argument_is_refused(cli):
    result = cli("close-month", "October")
    assert result.exit_code == 2
    assert "'October' is not a month: write it as YYYY-MM" in result.output


def test_the_cutover_date_itself_bills_team_licences(app, session, tmp_path):
    runner = app.test_cli_runner()
    text = """\
workspaces:
  - key: early
    name: Early
    created: 2023-02-28
    billing_details: {legal_name: Early GmbH, street: Weg 1, postcode: "10115", city: Berlin,
                      country: DE}
    teams:
      - key: t
        name: T
        created: 2023-02-28
        members: [{email: a@x.example, joined: 2023-02-28}]
  - key: exact
    name: Exact
    created: 2023-03-01
    billing_details: {legal_name: Exact GmbH, street: Weg 1, postcode: "10115", city: Berlin,
                      country: DE}
    teams:
      - key: t
        name: T
        created: 2023-03-01
        members: [{email: a@x.example, joined: 2023-03-01}]
"""
    path = tmp_path / "cutover.yaml"
    path.write_text(text, encoding="utf-8")
    assert runner.invoke(args=["billing", "import", str(path)]).exit_code == 0
    assert runner.invoke(args=["billing", "close-month", "2026-10"]).exit_code == 0
    variants = dict(session.execute(select(Invoice.workspace_key, Invoice.variant)).all())
    assert variants == {"early": "user_licences", "exact": "team_licences"}


def test_a_credit_note_reverses_an_invoice_once(cli, session):
    assert cli("close-month", "2026-10").exit_code == 0
    number = invoices_json(cli, "--workspace", "nordwind")[0]["number"]
    result = cli("credit-note", number, "--reason", "Team fleet was archived late by us")
    assert result.exit_code == 0, result.output
    listed = {i["number"]: i for i in invoices_json(cli, "--workspace", "nordwind")}
    assert listed[number]["status"] == "credited"
    (note,) = [i for i in listed.values() if i["kind"] == "credit_note"]
    year = number[:4]
    assert note["number"] == f"{year}-00005"
    assert (note["net"], note["tax"], note["gross"]) == ("-64.00", "-12.16", "-76.16")
    assert note["credits"] == number
    stored = session.scalar(select(Invoice).where(Invoice.number == note["number"]))
    assert stored.reason == "Team fleet was archived late by us"
    assert stored.lines[0]["amount"] == "-64.00"
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "credit_note"))
    assert entry.target == note["number"]
    assert entry.workspace.key == "nordwind"
    assert entry.before == {"invoice": number, "status": "issued"}
    assert entry.after == {"invoice": number, "status": "credited", "credit_note": note["number"]}
    assert entry.detail == f"credits {number}: Team fleet was archived late by us"
    again = cli("credit-note", number, "--reason", "twice")
    assert again.exit_code == 1
    assert f"{number} is already credited by {note['number']}" in again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["1999-00001", "--reason", "x"], "no invoice with the number '1999-00001'"),
        (["{n}", "--reason", "   "], "a credit note needs a reason"),
    ],
)
def test_bad_credit_notes_are_refused_and_change_nothing(cli, session, args, message):
    assert cli("close-month", "2026-10").exit_code == 0
    number = invoices_json(cli)[0]["number"]
    before = snapshot(session)
    result = cli("credit-note", *[a.format(n=number) for a in args])
    assert result.exit_code == 1
    assert message in result.output
    session.expire_all()
    assert snapshot(session) == before


def test_numbers_stay_gap_free_after_a_refused_credit_note(cli):
    assert cli("close-month", "2026-10").exit_code == 0
    numbers = [i["number"] for i in invoices_json(cli)]
    assert cli("credit-note", numbers[0], "--reason", " ").exit_code == 1
    assert cli("credit-note", numbers[0], "--reason", "ok").exit_code == 0
    assert cli("close-month", "2026-09").exit_code == 0
    seqs = [int(i["number"][5:]) for i in invoices_json(cli)]
    assert sorted(seqs) == list(range(1, len(seqs) + 1))


def test_concurrent_closes_issue_each_invoice_once(cli, database_url):
    """Three processes close the same month at once: four invoices, numbers 1-4."""
    assert closes_at_once(database_url, RULES_PATH, "2026-10", 3) == [0, 0, 4]
    listed = invoices_json(cli)
    assert len(listed) == 4
    assert sorted(int(i["number"][5:]) for i in listed) == [1, 2, 3, 4]


def test_close_month_renders_every_pdf(cli, tmp_path):
    result = cli("close-month", "2026-10")
    assert result.exit_code == 0, result.output
    assert "Invoice PDFs rendered: 4, failed: 0." in result.output
    listed = invoices_json(cli)
    assert all(invoice["pdf_sha256"] for invoice in listed)
    names = {
        "acme": "Müller & Söhne GmbH",
        "globex": "Globex Corporation, Zweigniederlassung Deutschland",
        "initech": "Initech GmbH",
        "nordwind": "Nordwind Logistik AG",
    }
    german = {"acme", "initech", "nordwind"}
    for invoice in listed:
        output = tmp_path / f"{invoice['workspace']}.pdf"
        assert cli("invoice-pdf", invoice["number"], "--output", str(output)).exit_code == 0
        text = subprocess.run(
            ["pdftotext", "-layout", str(output), "-"], capture_output=True, text=True, check=True
        ).stdout
        text = " ".join(text.replace("\xa0", " ").split())
        if invoice["workspace"] in german:
            period = "01.10.2026 bis 31.10.2026"
            net, gross = (f"{invoice[k].replace('.', ',')} €" for k in ("net", "gross"))
        else:
            period = "1 Oct 2026 to 31 Oct 2026"
            net, gross = (f"€{invoice[k]}" for k in ("net", "gross"))
        for expected in (
            invoice["number"],
            names[invoice["workspace"]],
            "Wolkenwerk Software GmbH",
            period,
            net,
            gross,
        ):
            assert expected in text, (invoice["workspace"], expected, text)
