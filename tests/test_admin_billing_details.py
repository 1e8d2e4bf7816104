"""The back-office side of billing details: the workspace page, the form, the CSV upload and
the month close check, with their permissions; on both databases."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from plugin.models import AuditEntry, BillingDetails, Workspace
from tests.conftest import CUSTOMERS
from tests.helpers import snapshot
from tests.test_admin_lists import csrf

FORM = "/admin/billing_details/w/{key}"
UPLOAD = "/admin/billing_details/upload"
CHECK = "/admin/billing_details/"


@pytest.fixture
def client(app, demo_cli):
    assert demo_cli("import", str(CUSTOMERS)).exit_code == 0
    client = app.test_client()
    client.get("/demo/role/accounting")
    return client


def stored(session, key: str) -> BillingDetails:
    session.expire_all()
    return session.scalars(
        select(BillingDetails).join(Workspace).where(Workspace.key == key)
    ).one()


def form_data(page: str, **values: str) -> dict[str, str]:
    fields = {
        "legal_name": "Maple Leaf Software Inc.", "street": "100 King Street West",
        "street2": "", "street3": "", "postcode": "M5X 1A9", "city": "Toronto",
        "country": "CA", "vat_id": "", "buyer_reference": "", "order_reference": "",
        "language": "en", "email": "",
    }
    return {"csrf_token": csrf(page), **fields, **values}


def test_workspace_page_shows_the_details_and_what_is_missing(client):
    page = client.get("/admin/billing_workspaces/w/brightside/").get_data(as_text=True)
    assert 'id="billing-details"' in page
    assert "Brightside Studio UG (haftungsbeschränkt)" in page
    assert "the month close holds this workspace" in page
    assert "street, postcode, city" in page
    assert 'id="edit-billing-details"' in page
    complete = client.get("/admin/billing_workspaces/w/acme-sarl/").get_data(as_text=True)
    assert "FR40303265045" in complete
    assert 'id="billing-details-missing"' not in complete


def test_accounting_edits_the_details_on_the_form(client, session):
    page = client.get(FORM.format(key="maple")).get_data(as_text=True)
    assert 'value="Maple Leaf Software Inc."' in page
    response = client.post(
        FORM.format(key="maple"),
        data=form_data(page, street2="Suite 4400", order_reference="PO 77", language="de"),
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/w/maple/#billing-details")
    details = stored(session, "maple")
    assert details.address_lines == ["100 King Street West", "Suite 4400"]
    assert (details.order_reference, details.language) == ("PO 77", "de")
    entry = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == "billing_details", AuditEntry.target == "maple")
        .order_by(AuditEntry.id.desc())
    ).first()
    assert entry.before["address_lines"] == ["100 King Street West"]
    assert entry.after["address_lines"] == ["100 King Street West", "Suite 4400"]


def test_a_refused_form_shows_each_error_and_changes_nothing(client, session):
    page = client.get(FORM.format(key="maple")).get_data(as_text=True)
    before = snapshot(session)
    response = client.post(
        FORM.format(key="maple"),
        data=form_data(page, country="FR", vat_id="FR40303265046", legal_name="A\nB"),
    )
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Nothing was changed" in text
    assert 'id="error-vat_id"' in text
    assert "is not a valid EU VAT ID" in text
    assert 'id="error-legal_name"' in text
    assert "contains a line break (U+000A) at character 2" in text
    assert snapshot(session) == before


def test_a_stale_form_is_refused(client, session):
    before = snapshot(session)
    response = client.post(FORM.format(key="maple"), data={"legal_name": "X", "csrf_token": "x"})
    assert response.status_code == 400
    assert snapshot(session) == before


@pytest.mark.parametrize("role", ["support", "admin"])
def test_only_accounting_edits_and_uploads(app, client, session, role):
    client.get(f"/demo/role/{role}")
    assert client.get(FORM.format(key="maple")).status_code == 403
    assert client.get(UPLOAD).status_code == 403
    page = client.get("/admin/billing_workspaces/w/maple/").get_data(as_text=True)
    assert 'id="edit-billing-details"' not in page
    assert client.get(CHECK).status_code == (200 if role == "admin" else 403)


def upload(client, text: str | bytes):
    page = client.get(UPLOAD).get_data(as_text=True)
    data = text.encode("utf-8") if isinstance(text, str) else text
    return client.post(
        UPLOAD,
        data={"csrf_token": csrf(page), "file": (io.BytesIO(data), "details.csv")},
        content_type="multipart/form-data",
    )


def test_csv_upload_sets_many_workspaces_at_once(client, session):
    response = upload(
        client,
        "key,street,postcode,city,vat_id\n"
        "brightside,Torstraße 5,10119,Berlin,DE 136 695 976\n"
        "maple,200 Bay Street,M5J 2J2,Toronto,\n",
    )
    assert response.status_code == 302
    assert stored(session, "brightside").address_lines == ["Torstraße 5"]
    assert stored(session, "brightside").vat_id == "DE136695976"
    assert stored(session, "brightside").legal_name == "Brightside Studio UG (haftungsbeschränkt)"
    assert stored(session, "maple").city == "Toronto"
    entries = session.scalars(
        select(AuditEntry.target).where(AuditEntry.action == "billing_details")
        .order_by(AuditEntry.target)
    ).all()
    assert set(entries) >= {"brightside", "maple"}
    check = client.get(CHECK + "?month=2026-10").get_data(as_text=True)
    assert 'id="check-held-none"' in check


@pytest.mark.parametrize(
    ("text", "errors"),
    [
        ("key,city\nbrightside,Berlin\nmaple,Toronto\nmaple,Ottawa\n",
         ["row 4: workspace maple is already changed at row 3"]),
        ("key,country\nbrightside,DE\nacme-sarl,IT\n",
         ["row 3: vat_id: 'FR40303265045' is not a VAT ID of IT: it must start with IT"]),
        ("key,city,colour\nbrightside,Berlin,blue\n",
         ["header: the first row names the columns: key and any of"]),
        ("key,city\nghost,Berlin\n", ["row 2: no workspace with the key 'ghost'"]),
        ("key,city\nbrightside,Berlin,extra\n", ["row 2: has more or fewer cells than the header"]),
        ("key,city\n", ["file: has no rows below the header"]),
        (b"key,city\nbrightside,M\xfcnchen\n", ["file: is not UTF-8 text"]),
    ],
)
def test_a_bad_csv_changes_nothing_and_names_each_problem(client, session, text, errors):
    before = snapshot(session)
    response = upload(client, text)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Nothing was changed." in page
    for error in errors:
        assert error.replace("'", "&#39;") in page, (error, page)
    assert snapshot(session) == before


def test_the_check_page_lists_totals_and_held_workspaces_and_writes_nothing(client, session):
    before = snapshot(session)
    page = client.get(CHECK + "?month=2026-10").get_data(as_text=True)
    assert "Invoices to issue: <strong>8</strong>" in page
    assert "held: <strong>1</strong>" in page
    assert "<td>AE</td><td class=\"text-right\">2</td>" in page
    assert "Brightside Studio</a>" in page
    assert "street, postcode, city" in page
    assert snapshot(session) == before
    assert client.get(CHECK + "?month=soon").status_code == 400
    future = client.get(CHECK + "?month=2031-01").get_data(as_text=True)
    assert 'id="check-error"' in future
