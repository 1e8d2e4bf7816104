"""Readable back-office pages: the audit log, the invoice page, exports, the team archive step.

Each test reads what a person sees on the page (table cells, the time zone's
abbreviation, the diff's lines, the links), on both databases.
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from plugin import api
from plugin.instants import format_instant
from plugin.models import AuditEntry, Invoice, Team, TeamArchivePeriod
from plugin.services import audit
from plugin.services.periods import Month
from plugin.services.rules_editor import EDIT_ACTION, audit_detail, rules_diff
from plugin.types import utcnow
from tests.helpers import snapshot

BERLIN = ZoneInfo("Europe/Berlin")
AUDIT = "/admin/billing_audit/"
INVOICES = "/admin/billing_invoices/"


@pytest.fixture
def client(app, demo_cli):
    client = app.test_client()
    client.get("/demo/role/admin")
    return client


def as_role(client, role: str):
    assert client.get(f"/demo/role/{role}").status_code == 302
    return client


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]


def text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def by_class(page: str, name: str) -> list[str]:
    """The texts of the elements whose class list holds ``name`` (cells, mostly)."""
    pattern = rf'<(td|th|span|dd|p)[^>]*class="[^"]*\b{re.escape(name)}\b[^"]*"[^>]*>(.*?)</\1>'
    return [text_of(match[1]) for match in re.findall(pattern, page, re.S)]


def changed_fields(page: str) -> list[tuple[str, str, str]]:
    """(field, before, after) of every row of the changed-fields tables on the page."""
    rows = re.findall(
        r'<th scope="row" class="change-field">(.*?)</th><td class="change-before">(.*?)</td>'
        r'<td class="change-after">(.*?)</td>',
        page,
        re.S,
    )
    return [tuple(text_of(cell) for cell in row) for row in rows]


# One way to write an instant ------------------------------------------------------------


def test_an_instant_is_written_to_the_minute_in_the_billing_zone_with_its_abbreviation():
    assert format_instant(datetime(2026, 11, 30, 13, 5, 59, 123456, tzinfo=UTC), BERLIN) == (
        "2026-11-30 14:05 CET"
    )
    assert (
        format_instant(datetime(2026, 7, 1, 12, 0, tzinfo=UTC), BERLIN) == "2026-07-01 14:00 CEST"
    )
    assert format_instant(datetime(2026, 7, 1, 12, 0)) == "2026-07-01 12:00 UTC"


def test_the_flash_of_an_invitation_gives_the_time_in_the_billing_zone(client):
    page = client.get("/admin/billing_workspaces/w/acme/").get_data(as_text=True)
    done = client.post(
        "/admin/billing_workspaces/w/acme/manage/invite",
        data={"csrf_token": csrf(page), "email": "neu@mueller-soehne.example", "name": ""},
        follow_redirects=True,
    )
    flashed = text_of(re.search(r'<div class="alert[^"]*"[^>]*>(.*?)</div>', done.text, re.S)[1])
    today = utcnow().astimezone(BERLIN).date()
    assert re.search(
        rf"Invited neu@mueller-soehne\.example to acme at {today} \d\d:\d\d (CET|CEST)", flashed
    ), flashed
    assert "+00:00" not in flashed


# The audit log --------------------------------------------------------------------------


def test_the_audit_list_shows_the_changed_fields_with_times_in_the_billing_zone(client):
    at = datetime(2026, 11, 30, 13, 5, 7, 250000, tzinfo=UTC)
    api.invite(workspace="acme", email="neu@mueller-soehne.example", actor="test", at=at)
    page = client.get(AUDIT + "?search=neu@mueller-soehne.example").get_data(as_text=True)
    assert changed_fields(page) == [
        ("member", "no", "yes"),
        ("since", "—", "2026-11-30 14:05 CET"),
    ]
    # The entry's own time: one zone, with its abbreviation; no ISO time with an offset.
    (when,) = [text_of(cell) for cell in re.findall(r'<td class="col-at">(.*?)</td>', page, re.S)]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d (CET|CEST)", when), when
    assert "+00:00" not in page
    # No separate before and after columns that a wide value would push off the page.
    assert 'class="col-before"' not in page
    assert 'class="col-after"' not in page
    assert 'id="audit-list"' in page


def test_the_audit_entry_page_shows_every_changed_field(client, demo_cli, session):
    assert demo_cli("archive-team", "acme", "sales").exit_code == 0
    entry = session.scalar(select(AuditEntry.id).where(AuditEntry.action == "archive_team"))
    page = client.get(f"{AUDIT}details/?id={entry}").get_data(as_text=True)
    assert changed_fields(page)
    assert "+00:00" not in page
    assert re.search(r"archived from \d{4}-\d\d-\d\d \d\d:\d\d (CET|CEST)", text_of(page))


def test_a_rules_edit_reads_as_a_diff_in_the_audit_log(app, client, session):
    old = app.extensions["billing"].rules().content
    new = old.replace("unit_price: 32.00", "unit_price: 35.00", 1)
    audit.record(
        session,
        "accounting@example.com",
        EDIT_ACTION,
        target="pricing_rules.yaml",
        before={"sha256": "a" * 64},
        after={"sha256": "b" * 64},
        detail=audit_detail(rules_diff(old, new)),
    )
    session.commit()
    listing = client.get(AUDIT + "?search=pricing_rules.yaml").get_data(as_text=True)
    assert '<span class="diff-line diff-removed">-        unit_price: 32.00</span>' in listing
    assert '<span class="diff-line diff-added">+        unit_price: 35.00</span>' in listing
    assert '<span class="diff-line diff-file">--- rules in force</span>' in listing
    assert changed_fields(listing) == [("sha256", "a" * 64, "b" * 64)]


# The invoice page -----------------------------------------------------------------------


def invoice_of(session, key: str, kind: str = "invoice") -> Invoice:
    return session.scalar(select(Invoice).where(Invoice.workspace_key == key, Invoice.kind == kind))


def test_the_invoice_page_shows_its_lines_as_a_table_and_its_mail(client, demo_cli, session):
    assert demo_cli("close-month", "2026-10").exit_code == 0
    invoice = invoice_of(session, "acme")
    page = client.get(f"{INVOICES}details/?id={invoice.id}").get_data(as_text=True)
    assert f"Invoice {invoice.number}" in text_of(page)
    lines = invoice.lines
    assert by_class(page, "line-description") == [line["description"] for line in lines]
    assert by_class(page, "line-quantity") == [str(line["quantity"]) for line in lines]
    assert by_class(page, "line-unit-price") == [f"{line['unit_price']} EUR" for line in lines]
    assert by_class(page, "line-net") == [f"{line['amount']} EUR" for line in lines]
    assert set(by_class(page, "line-vat")) == {"S 19 %"}
    assert text_of(re.search(r'id="invoice-gross">(.*?)</td>', page, re.S)[1]) == (
        f"{invoice.gross} EUR"
    )
    # No stored JSON or Python dict anywhere on the invoice's part of the page.
    shown = html.unescape(page.split('id="invoice-detail"')[1].split('id="invoice-deliveries"')[0])
    assert "{'" not in shown
    assert '{"' not in shown
    assert "Hafenstraße 7" in page
    # The delivery history from the outbox: to the invoice mailbox, waiting for the PDF.
    assert by_class(page, "delivery-to") == ["rechnungen@mueller-soehne.example"]
    assert by_class(page, "delivery-status") in (["queued"], ["waiting for PDF"])
    assert re.search(r'id="invoice-issued">\d{4}-\d\d-\d\d \d\d:\d\d (CET|CEST)<', page)
    # The list's number leads to the page.
    listing = client.get(INVOICES).get_data(as_text=True)
    assert f'href="/admin/billing_invoices/details/?id={invoice.id}">{invoice.number}</a>' in (
        listing
    )


def test_an_invoice_and_its_credit_note_link_to_each_other(app, demo_cli, session):
    assert demo_cli("close-month", "2026-10").exit_code == 0
    invoice = invoice_of(session, "nordwind")
    accounting = as_role(app.test_client(), "accounting")
    form = accounting.get(f"{INVOICES}credit/{invoice.number}").get_data(as_text=True)
    done = accounting.post(
        f"{INVOICES}credit/{invoice.number}",
        data={"csrf_token": csrf(form), "reason": "Wrong team count"},
    )
    assert done.status_code == 302
    note = invoice_of(session, "nordwind", "credit_note")
    assert done.headers["Location"].endswith(f"/admin/billing_invoices/details/?id={note.id}")
    note_page = accounting.get(done.headers["Location"]).get_data(as_text=True)
    assert f"Credit note {note.number}" in text_of(note_page)
    assert (
        f'<a id="invoice-related-link" href="/admin/billing_invoices/details/?id={invoice.id}">'
        f"{invoice.number}</a>"
    ) in note_page
    assert 'id="invoice-reason">Wrong team count<' in note_page
    # The PDF was rendered in the request: the page offers it.
    assert f'href="/admin/billing_invoices/pdf/{note.number}"' in note_page
    invoice_page = accounting.get(f"{INVOICES}details/?id={invoice.id}").get_data(as_text=True)
    assert (
        f'<a id="invoice-related-link" href="/admin/billing_invoices/details/?id={note.id}">'
        f"{note.number}</a>"
    ) in invoice_page
    # A credited invoice offers no second credit note.
    assert 'id="invoice-credit"' not in invoice_page


@pytest.mark.parametrize("id_", ["999999", "abc", ""])
def test_an_unknown_invoice_page_is_a_404(client, id_):
    assert client.get(f"{INVOICES}details/?id={id_}").status_code == 404


# Exports --------------------------------------------------------------------------------


def selected_month(page: str) -> str:
    select_html = re.search(r'<select[^>]*id="export-month"[^>]*>(.*?)</select>', page, re.S)[1]
    return re.search(r'<option value="([^"]+)" selected>', select_html)[1]


def test_exports_offer_the_last_closed_month_first(app, client, demo_cli):
    rules = app.extensions["billing"].rules()
    last_complete = Month.of(utcnow(), rules.zoneinfo).previous()
    page = client.get("/admin/billing_workspaces/w/acme/").get_data(as_text=True)
    assert selected_month(page) == str(last_complete)
    assert demo_cli("close-month", "2026-10").exit_code == 0
    for url in (
        "/admin/billing_workspaces/w/acme/",
        "/admin/billing_workspaces/export-selected?ids=1",
    ):
        assert selected_month(client.get(url).get_data(as_text=True)) == "2026-10"


def export(client, key: str, **args: str):
    query = "&".join(f"{name}={value}" for name, value in {"format": "csv", **args}.items())
    return client.get(f"/admin/billing_workspaces/w/{key}/export?{query}")


def test_a_csv_export_with_semicolons_for_german_spreadsheets(client):
    response = export(client, "acme", month="2026-10", separator="%3B")
    assert response.status_code == 200
    rows = response.get_data().decode("utf-8-sig").splitlines()
    assert rows[0] == "email;name;teams"
    assert rows[1].startswith("anna@mueller-soehne.example;Anna Schäfer;")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"month": "2026-10", "separator": "|"}, "'|' is not a CSV separator"),
        ({"month": "2026-13"}, "2026-13 is not a month"),
        ({"month": "later"}, "'later' is not a month"),
    ],
)
def test_a_bad_export_request_says_what_is_wrong_and_changes_nothing(
    client, session, args, message
):
    before = snapshot(session)
    response = export(client, "acme", **args)
    assert response.status_code == 400
    assert message in html.unescape(response.get_data(as_text=True))
    session.expire_all()
    assert snapshot(session) == before


NORDWIND_TEAMS = [
    ["team", "members", "member_emails"],
    ["Disposition", "2", "chris@consulting.example; hanna@nordwind.example"],
    ["Fuhrpark", "1", "ivan@nordwind.example"],
]


def test_a_team_export_can_list_each_teams_members(client, demo_cli):
    def rows(response) -> list[list[str]]:
        assert response.status_code == 200
        return [row.split(",") for row in response.get_data().decode("utf-8-sig").splitlines()]

    plain = rows(export(client, "nordwind", month="2026-10"))
    assert plain[0] == ["team", "members"]
    assert rows(export(client, "nordwind", month="2026-10", members="1")) == NORDWIND_TEAMS
    # An invoiced month reads its stored licence holders, the member lists still shown.
    assert demo_cli("close-month", "2026-10").exit_code == 0
    assert rows(export(client, "nordwind", month="2026-10", members="1")) == NORDWIND_TEAMS


def test_the_cli_exports_with_semicolons_and_member_lists(demo_cli):
    result = demo_cli("licences", "nordwind", "--month", "2026-10", "--separator", ";", "--members")
    assert result.exit_code == 0, result.output
    text = result.stdout_bytes.decode("utf-8-sig")
    # A cell holding the separator is quoted, as spreadsheet programs expect.
    assert '"chris@consulting.example; hanna@nordwind.example"' in text
    assert list(csv.reader(io.StringIO(text), delimiter=";")) == NORDWIND_TEAMS


def test_the_cli_exports_the_last_closed_month_by_default(demo_cli):
    assert demo_cli("close-month", "2026-10").exit_code == 0
    result = demo_cli("licences", "acme")
    assert result.exit_code == 0, result.output
    assert "of acme for 2026-10 written" in result.stderr


def test_the_cli_refuses_an_unknown_separator_and_writes_nothing(demo_cli, tmp_path):
    output = tmp_path / "acme.csv"
    result = demo_cli("licences", "acme", "--separator", "tab", "--output", str(output))
    assert result.exit_code == 2
    assert "'tab' is not a CSV separator: use , (comma) or ; (semicolon" in result.output
    assert not output.exists()


# Archiving a team from the workspace page -----------------------------------------------


def archived(session, key: str) -> bool:
    team_id = session.scalar(select(Team.id).where(Team.key == key))
    return bool(
        session.scalar(
            select(TeamArchivePeriod.id).where(
                TeamArchivePeriod.team_id == team_id, TeamArchivePeriod.unarchived_at.is_(None)
            )
        )
    )


def test_archiving_a_team_asks_first_naming_team_and_workspace(client, session):
    as_role(client, "support")
    url = "/admin/billing_workspaces/w/nordwind/teams/dispatch"
    question = client.get(url + "?archived=yes")
    assert question.status_code == 200
    text = text_of(re.search(r'id="team-question">(.*?)</p>', question.text, re.S)[1])
    assert text == (
        "Archive the team Disposition (dispatch) of the workspace Nordwind Logistik AG "
        "(nordwind)? It is still billed this month, no more from the next."
    )
    assert not archived(session, "dispatch")
    # Without the form's token nothing happens.
    assert client.post(url, data={"archived": "yes"}).status_code == 400
    session.expire_all()
    assert not archived(session, "dispatch")
    confirmed = client.post(url, data={"archived": "yes", "csrf_token": csrf(question.text)})
    assert confirmed.status_code == 302
    session.expire_all()
    assert archived(session, "dispatch")


def test_the_archive_step_of_an_unknown_team_is_a_404(client):
    as_role(client, "support")
    assert (
        client.get("/admin/billing_workspaces/w/nordwind/teams/nope?archived=yes").status_code
        == 404
    )
