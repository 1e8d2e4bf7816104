"""Correcting an invoiced month: a credit note reopens the history, a new close reissues.

The data: hafen (created 2022, user licences) with Anna and Ben in its sales
team, and werft (created 2024, team licences) with one team.  October 2026
is closed: hafen is invoiced for 2 user licences (the 59.00 minimum), werft
for 1 team.
"""

from __future__ import annotations

import io
import json
import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from plugin import api
from plugin.models import AuditEntry, ClosedPeriod, Invoice, InvoiceHolder, Workspace
from plugin.services.exports import export_licence_holders, licence_holders
from plugin.services.periods import Month
from plugin.types import utcnow
from tests.conftest import RULES_PATH
from tests.helpers import closes_at_once, snapshot
from tests.test_admin_lists import csrf

OCTOBER = Month(2026, 10)
ACTOR = "support@backoffice.example"
DETAILS = (
    '{legal_name: "{name} GmbH", street: Kai 1, postcode: "20457", city: Hamburg, country: DE}'
)
DATA = f"""\
workspaces:
  - key: hafen
    name: Hafen
    created: 2022-01-10
    billing_details: {DETAILS.replace("{name}", "Hafen")}
    teams:
      - key: sales
        name: Vertrieb
        created: 2022-01-10
        members:
          - {{email: anna@hafen.example, name: Anna Kai, joined: 2022-01-10}}
          - {{email: ben@hafen.example, name: Ben Kai, joined: 2022-01-10}}
  - key: werft
    name: Werft
    created: 2024-01-10
    billing_details: {DETAILS.replace("{name}", "Werft")}
    teams:
      - key: dock
        name: Dock
        created: 2024-01-10
        members:
          - {{email: carl@werft.example, name: Carl Dock, joined: 2024-01-10}}
"""
BEN = "{email: ben@hafen.example, name: Ben Kai, joined: 2022-01-10}"
SEPTEMBER_LEAVE = DATA.replace(BEN, BEN[:-1] + ", left: 2026-09-15}")
BEN_LINE = DATA.splitlines().index("          - " + BEN) + 1
SEPT_15 = datetime(2026, 9, 15, tzinfo=ZoneInfo("Europe/Berlin"))
BEN_LEAVES_15_SEPTEMBER = {
    "workspace": "hafen",
    "team": "sales",
    "email": "ben@hafen.example",
    "actor": ACTOR,
    "at": SEPT_15,
}


@pytest.fixture
def rules(app):
    return app.extensions["billing"].rules()


def write(tmp_path: Path, content: str, name: str = "hafen.yaml") -> str:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return str(path)


@pytest.fixture
def invoiced(cli, tmp_path) -> dict[str, str]:
    """The data imported and October closed: the invoice number by workspace key."""
    assert cli("import", write(tmp_path, DATA)).exit_code == 0
    result = cli("close-month", "2026-10")
    assert result.exit_code == 0, result.output
    assert "Month 2026-10: 2 invoice(s) issued" in result.output
    return {row["workspace"]: row["number"] for row in invoices(cli)}


def invoices(cli, *args: str) -> list[dict]:
    result = cli("invoices", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def export(session, rules, key: str = "hafen", month: Month = OCTOBER) -> list[str]:
    out = io.BytesIO()
    export_licence_holders(session, rules, key, month, utcnow(), "csv", out)
    return out.getvalue().decode("utf-8-sig").splitlines()


def holders_of(session, number: str) -> list[tuple]:
    return [
        tuple(row)
        for row in session.execute(
            select(InvoiceHolder.email, InvoiceHolder.name, InvoiceHolder.team_name)
            .join(Invoice, Invoice.id == InvoiceHolder.invoice_id)
            .where(Invoice.number == number)
            .order_by(InvoiceHolder.email)
        )
    ]


def invoice_columns(session, number: str) -> dict:
    invoice = session.scalar(select(Invoice).where(Invoice.number == number))
    session.refresh(invoice)
    columns = {column.key: getattr(invoice, column.key) for column in Invoice.__mapper__.columns}
    columns.pop("credited_by_id")
    return columns


def closed(session, key: str = "hafen") -> tuple | None:
    row = session.execute(
        select(ClosedPeriod.closed_until, Invoice.number)
        .join(Invoice, Invoice.id == ClosedPeriod.invoice_id)
        .join(Workspace, Workspace.id == ClosedPeriod.workspace_id)
        .where(Workspace.key == key)
    ).first()
    return None if row is None else (row.closed_until.isoformat(), row.number)


def refused_import(cli, session, path: str) -> str:
    """Import ``path``, which must be refused and change nothing; return its errors."""
    before = snapshot(session)
    result = cli("import", path)
    assert result.exit_code == 1
    session.expire_all()
    assert snapshot(session) == before
    return result.stderr


def pdf_text(cli, tmp_path: Path, number: str) -> str:
    output = tmp_path / f"{number.replace('/', '-')}.pdf"
    assert cli("invoice-pdf", number, "--output", str(output)).exit_code == 0
    words = subprocess.run(
        ["pdftotext", "-layout", str(output), "-"], capture_output=True, text=True, check=True
    ).stdout
    return " ".join(words.replace("\xa0", " ").split())


def test_the_september_leave_is_corrected_with_a_credit_note_and_a_new_invoice(
    invoiced, cli, session, rules, tmp_path
):
    """The issue's example, end to end, with the commands support runs."""
    old = invoiced["hafen"]
    year = old[:4]
    october = export(session, rules)
    assert october == [
        "email,name,teams",
        "anna@hafen.example,Anna Kai,Vertrieb",
        "ben@hafen.example,Ben Kai,Vertrieb",
    ]
    old_holders = holders_of(session, old)
    old_columns = invoice_columns(session, old)
    assert old_columns["quantity"] == 2
    assert old_columns["pdf_sha256"]

    # 1. The re-import with Ben leaving on 15 September is refused: October is invoiced.
    errors = refused_import(cli, session, write(tmp_path, SEPTEMBER_LEAVE))
    assert (
        f"hafen.yaml: line {BEN_LINE}: workspaces[0].teams[0].members[1]: workspace hafen: "
        "ending the membership of ben@hafen.example in team hafen/sales"
    ) in errors
    assert f"the end of 2026-10, which invoice {old} holds" in errors

    # 2. Credit October's invoice: the month is reopened for hafen, and the CLI says how on.
    result = cli("credit-note", old, "--reason", "Ben left on 15 September")
    assert result.exit_code == 0, result.output
    note = f"{year}-00003"
    assert f"Credit note {note} issued for {old}: -70.21 EUR" in result.output
    assert "The history of workspace hafen is open again: no invoice of it stands." in (
        result.output
    )
    assert "2026-10 is reopened for that workspace." in result.output
    assert "issue the new invoice with flask billing close-month 2026-10" in result.output
    assert closed(session) is None
    assert closed(session, "werft") == ("2026-10-31T23:00:00+00:00", invoiced["werft"])
    reopened = session.scalar(select(AuditEntry).where(AuditEntry.action == "reopen_history"))
    assert (reopened.target, reopened.before, reopened.after) == (
        "hafen",
        {"closed_until": "2026-10-31T23:00:00+00:00", "invoice": old},
        {"closed_until": None, "invoice": None},
    )
    # Until October is closed again, its export is the history's: unchanged so far.
    assert export(session, rules) == october
    assert licence_holders(session, rules, "hafen", OCTOBER, utcnow()).invoice_id is None

    # 3. The same re-import now succeeds.
    result = cli("import", write(tmp_path, SEPTEMBER_LEAVE))
    assert result.exit_code == 0, result.output
    assert export(session, rules) == ["email,name,teams", "anna@hafen.example,Anna Kai,Vertrieb"]

    # 4. Closing October again issues hafen's new invoice only, with the next number.
    result = cli("close-month", "2026-10")
    assert result.exit_code == 0, result.output
    new = f"{year}-00004"
    assert f"Month 2026-10: 1 invoice(s) issued ({new} to {new})" in result.output
    assert "already invoiced before: 1" in result.output
    assert f"{new} for hafen (replaces the credited {old})" in result.output
    # The new invoice's PDF, and the credit note's, which was waiting for a render run.
    assert "Invoice PDFs rendered: 2, failed: 0." in result.output
    listed = {row["number"]: row for row in invoices(cli)}
    assert sorted(listed) == [f"{year}-0000{n}" for n in range(1, 5)]
    assert (listed[old]["status"], listed[note]["credits"]) == ("credited", old)
    assert (listed[new]["workspace"], listed[new]["quantity"], listed[new]["status"]) == (
        "hafen",
        1,
        "issued",
    )
    assert listed[new]["einvoice_status"] == "valid"
    assert listed[new]["pdf_sha256"]

    # 5. October's export reads the new invoice's holders; the old invoice keeps its own.
    assert export(session, rules) == ["email,name,teams", "anna@hafen.example,Anna Kai,Vertrieb"]
    new_id = session.scalar(select(Invoice.id).where(Invoice.number == new))
    assert licence_holders(session, rules, "hafen", OCTOBER, utcnow()).invoice_id == new_id
    assert holders_of(session, new) == [("anna@hafen.example", "Anna Kai", "Vertrieb")]
    assert holders_of(session, old) == old_holders
    session.expire_all()
    assert invoice_columns(session, old) == old_columns
    assert closed(session) == ("2026-10-31T23:00:00+00:00", new)

    # 6. The documents: the new invoice bills one licence, the credit note names the old one.
    new_pdf = pdf_text(cli, tmp_path, new)
    assert new in new_pdf
    assert "Personen 1 bis 1 von 1" in new_pdf
    assert old in pdf_text(cli, tmp_path, note)

    # 7. October is closed again, now by the new invoice.
    assert f"which invoice {new} holds" in refused_import(cli, session, write(tmp_path, DATA))


def test_a_later_standing_month_keeps_the_history_closed_until_it_is_credited_too(
    invoiced, cli, session, rules, tmp_path
):
    september = cli("close-month", "2026-09")
    assert september.exit_code == 0, september.output
    numbers = {
        (row["workspace"], row["period"]): row["number"]
        for row in invoices(cli, "--workspace", "hafen")
    }
    sept, octo = numbers[("hafen", "2026-09")], numbers[("hafen", "2026-10")]

    # Crediting September while October stands: issued, but the history stays closed.
    result = cli("credit-note", sept, "--reason", "Ben left on 15 September")
    assert result.exit_code == 0, result.output
    assert (
        "The history of workspace hafen stays closed until the end of 2026-10: invoice(s) of "
        f"later months still stand: {octo} (2026-10). Credit them too to correct the history "
        "of 2026-09"
    ) in result.output
    assert "flask billing close-month 2026-09 issues a new invoice for 2026-09" in result.output
    assert closed(session) == ("2026-10-31T23:00:00+00:00", octo)
    assert session.scalar(select(AuditEntry).where(AuditEntry.action == "reopen_history")) is None
    errors = refused_import(cli, session, write(tmp_path, SEPTEMBER_LEAVE))
    assert f"the end of 2026-10, which invoice {octo} holds" in errors
    before = snapshot(session)
    # The API and the CLI read the same closed period.
    with pytest.raises(api.ClosedMonth, match=octo):
        api.remove_from_team(**BEN_LEAVES_15_SEPTEMBER)
    refused = cli("remove-from-team", "hafen", "sales", "ben@hafen.example", "--at", "2026-09-15")
    assert refused.exit_code == 1
    assert octo in refused.stderr
    session.expire_all()
    assert snapshot(session) == before

    # Crediting October too opens all of it (September's invoice no longer stands).
    result = cli("credit-note", octo, "--reason", "Ben left on 15 September")
    assert result.exit_code == 0, result.output
    assert "The history of workspace hafen is open again" in result.output
    assert closed(session) is None
    # Now the API may back-date Ben's leaving; both months are issued anew.
    api.remove_from_team(**BEN_LEAVES_15_SEPTEMBER)
    for month in ("2026-09", "2026-10"):
        result = cli("close-month", month)
        assert result.exit_code == 0, result.output
        assert f"Month {month}: 1 invoice(s) issued" in result.output
    current = {
        row["period"]: row["quantity"]
        for row in invoices(cli, "--workspace", "hafen")
        if row["kind"] == "invoice" and row["status"] == "issued"
    }
    assert current == {"2026-09": 2, "2026-10": 1}
    assert closed(session)[0] == "2026-10-31T23:00:00+00:00"
    seqs = sorted(int(row["number"][5:]) for row in invoices(cli))
    assert seqs == list(range(1, len(seqs) + 1))


def test_crediting_the_later_month_first_reopens_back_to_the_earlier_one(
    invoiced, cli, session, tmp_path
):
    assert cli("close-month", "2026-09").exit_code == 0
    numbers = {row["period"]: row["number"] for row in invoices(cli, "--workspace", "hafen")}
    result = cli("credit-note", numbers["2026-10"], "--reason", "wrong")
    assert result.exit_code == 0, result.output
    assert (
        "The history of workspace hafen is reopened after 2026-10-01 00:00 CEST, the end "
        f"of 2026-09 (invoice {numbers['2026-09']} still stands)."
    ) in result.output
    assert closed(session) == ("2026-09-30T22:00:00+00:00", numbers["2026-09"])
    # 15 September is still inside September's invoiced month; 15 October is open.
    errors = refused_import(cli, session, write(tmp_path, SEPTEMBER_LEAVE))
    assert f"the end of 2026-09, which invoice {numbers['2026-09']} holds" in errors
    october_leave = DATA.replace(BEN, BEN[:-1] + ", left: 2026-10-15}")
    assert cli("import", write(tmp_path, october_leave)).exit_code == 0


def test_refused_credit_notes_reopen_nothing(invoiced, cli, session):
    before = snapshot(session)
    for args, message in (
        ([invoiced["hafen"], "--reason", "  "], "a credit note needs a reason"),
        (["1999-00001", "--reason", "x"], "no invoice with the number '1999-00001'"),
    ):
        result = cli("credit-note", *args)
        assert result.exit_code == 1
        assert message in result.output
    session.expire_all()
    assert snapshot(session) == before
    assert cli("credit-note", invoiced["hafen"], "--reason", "once").exit_code == 0
    before = snapshot(session)
    again = cli("credit-note", invoiced["hafen"], "--reason", "twice")
    assert again.exit_code == 1
    assert "is already credited by" in again.output
    session.expire_all()
    assert snapshot(session) == before


def test_the_database_holds_one_current_invoice_per_workspace_and_month(invoiced, cli, session):
    old = invoiced["hafen"]
    assert cli("credit-note", old, "--reason", "again").exit_code == 0
    assert cli("close-month", "2026-10").exit_code == 0
    credited_by = session.scalar(select(Invoice.credited_by_id).where(Invoice.number == old))
    note = session.scalar(select(Invoice.id).where(Invoice.credits_invoice_id.is_not(None)))
    assert credited_by == note
    # Making the credited invoice current again would give hafen two October invoices.
    with pytest.raises(IntegrityError):
        session.execute(update(Invoice).where(Invoice.number == old).values(credited_by_id=None))
    session.rollback()


def test_two_re_closes_at_once_issue_one_new_invoice(invoiced, cli, database_url):
    assert cli("credit-note", invoiced["hafen"], "--reason", "Ben left").exit_code == 0
    assert closes_at_once(database_url, RULES_PATH, "2026-10", 2) == [0, 1]
    listed = invoices(cli)
    current = [row for row in listed if row["kind"] == "invoice" and row["status"] == "issued"]
    assert sorted(row["workspace"] for row in current) == ["hafen", "werft"]
    assert sorted(int(row["number"][5:]) for row in listed) == [1, 2, 3, 4]


def test_raw_sql_may_back_date_once_the_month_is_reopened(invoiced, cli, session):
    ben_in_sales = text(
        "UPDATE billing_team_membership SET left_at = :sept WHERE person_id = "
        "(SELECT id FROM billing_person WHERE email = 'ben@hafen.example')"
    )
    sept = SEPT_15
    if session.get_bind().dialect.name == "sqlite":
        sept = "2026-09-14 22:00:00.000000"
    with pytest.raises(DBAPIError, match="invoiced months are closed"):
        session.execute(ben_in_sales, {"sept": sept})
    session.rollback()
    assert cli("credit-note", invoiced["hafen"], "--reason", "Ben left").exit_code == 0
    session.execute(ben_in_sales, {"sept": sept})
    session.commit()


# The back-office -------------------------------------------------------------------------


def test_the_credit_note_page_says_what_reopens_and_how_to_reissue(app, invoiced, cli, session):
    client = app.test_client()
    client.get("/demo/role/accounting")
    assert cli("close-month", "2026-09").exit_code == 0
    numbers = {row["period"]: row["number"] for row in invoices(cli, "--workspace", "hafen")}
    page = client.get(f"/admin/billing_invoices/credit/{numbers['2026-09']}").get_data(as_text=True)
    assert 'id="credit-later-months"' in page
    assert f"{numbers['2026-10']} for 2026-10" in page
    page = client.get(f"/admin/billing_invoices/credit/{numbers['2026-10']}").get_data(as_text=True)
    assert 'id="credit-reopens"' in page
    assert "The credit note reopens 2026-10 for hafen" in page
    assert "<code>flask billing close-month 2026-10</code>" in page
    done = client.post(
        f"/admin/billing_invoices/credit/{numbers['2026-10']}",
        data={"csrf_token": csrf(page), "reason": "Ben left on 15 September"},
    )
    assert done.status_code == 302
    listing = client.get(done.headers["Location"]).get_data(as_text=True)
    assert (
        "The history of workspace hafen is reopened after 2026-10-01 00:00 CEST, the end of "
        f"2026-09 (invoice {numbers['2026-09']} still stands). 2026-10 is reopened for that "
        "workspace."
    ) in listing
    assert "issue the new invoice with flask billing close-month 2026-10" in listing
    assert closed(session) == ("2026-09-30T22:00:00+00:00", numbers["2026-09"])
    # The Month close check previews the new invoice.
    check = client.get("/admin/billing_details/?month=2026-10").get_data(as_text=True)
    assert "Invoices to issue: <strong>1</strong>" in check
    assert f"hafen (replaces the credited {numbers['2026-10']})" in check


# The migration -----------------------------------------------------------------------------


def test_upgrading_marks_the_invoices_credited_before_it(app, invoiced, cli, session):
    from plugin import migrate

    assert cli("credit-note", invoiced["werft"], "--reason", "wrong team").exit_code == 0
    engine = app.extensions["sqlalchemy"].engine
    session.close()
    migrate.downgrade(engine, "0010")
    columns = session.execute(text("SELECT * FROM billing_invoice")).keys()
    assert "credited_by_id" not in columns
    session.close()
    migrate.upgrade(engine)
    marked = dict(session.execute(select(Invoice.number, Invoice.credited_by_id)).all())
    note = session.scalar(select(Invoice.id).where(Invoice.kind == "credit_note"))
    assert marked == {
        invoiced["hafen"]: None,
        invoiced["werft"]: note,
        f"{invoiced['hafen'][:4]}-00003": None,
    }
    # The credited month is issued anew after the upgrade.
    result = cli("close-month", "2026-10")
    assert result.exit_code == 0, result.output
    assert f"for werft (replaces the credited {invoiced['werft']})" in result.output


def test_downgrading_is_refused_while_a_month_has_a_corrected_invoice(app, invoiced, cli, session):
    from plugin import migrate

    assert cli("credit-note", invoiced["hafen"], "--reason", "Ben left").exit_code == 0
    assert cli("close-month", "2026-10").exit_code == 0
    engine = app.extensions["sqlalchemy"].engine
    session.close()
    before = snapshot(session)
    session.close()
    with pytest.raises(RuntimeError, match="cannot downgrade below 0011: .*: hafen 2026-10$"):
        migrate.downgrade(engine, "0010")
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert snapshot(session) == before
