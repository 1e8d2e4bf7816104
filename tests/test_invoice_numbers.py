"""Invoice numbers as accounting writes them: slashes, spaces and umlauts in every link."""

from __future__ import annotations

import re
from html import escape, unescape

import pytest
from sqlalchemy import select

from plugin.models import Invoice
from plugin.services.invoice_pdfs import stored_pdf
from tests.conftest import DEMO, RULES_PATH, make_app
from tests.test_admin_lists import csrf

FORMATS = ["RE/{year}/{seq:05d}", "Rechnung {year} Nr. {seq}", "Gebühr-{year}-{seq:04d}"]


@pytest.fixture(params=FORMATS)
def numbered_app(request, database_url, tmp_path):
    rules = tmp_path / "pricing_rules.yaml"
    text = RULES_PATH.read_text(encoding="utf-8")
    old = 'invoice_number_format: "{year}-{seq:05d}"'
    assert old in text
    rules.write_text(
        text.replace(old, f'invoice_number_format: "{request.param}"'), encoding="utf-8"
    )
    app = make_app(database_url, BILLING_RULES_PATH=str(rules))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["billing", "import", str(DEMO)]).exit_code == 0
    assert runner.invoke(args=["billing", "close-month", "2026-10"]).exit_code == 0
    with app.app_context():
        yield app, request.param
        app.extensions["sqlalchemy"].session.remove()
        app.extensions["sqlalchemy"].engine.dispose()


def link(page: str, text: str, number: str) -> str:
    """The href of the link called ``text`` in the invoice list row of ``number``."""
    (row,) = [
        row
        for row in page.split("<tr")
        if re.search(rf'col-number">\s*(?:<a [^>]*>)?\s*{re.escape(escape(number))}\s*<', row)
    ]
    return unescape(re.search(rf'<a href="([^"]+)">{re.escape(text)}', row)[1])


def test_every_invoice_link_works_whatever_the_number_format(numbered_app):
    app, number_format = numbered_app
    session = app.extensions["sqlalchemy"].session
    first = session.scalar(select(Invoice).order_by(Invoice.id).limit(1))
    number = first.number
    assert number == number_format.format(year=first.year, seq=1)
    client = app.test_client()
    client.get("/demo/role/accounting")
    page = client.get("/admin/billing_invoices/").get_data(as_text=True)
    pdf = client.get(link(page, "PDF", number))
    assert pdf.status_code == 200
    assert pdf.data == stored_pdf(session, number)
    mail = client.get(link(page, "History, resend…", number))
    assert mail.status_code == 200
    assert escape(number) in mail.get_data(as_text=True)
    credit_url = link(page, "Credit…", number)
    form = client.get(credit_url)
    assert form.status_code == 200
    done = client.post(
        credit_url, data={"csrf_token": csrf(form.get_data(as_text=True)), "reason": "wrong"}
    )
    assert done.status_code == 302
    session.expire_all()
    credit = session.scalar(select(Invoice).where(Invoice.credits_invoice_id == first.id))
    assert credit.number == number_format.format(year=credit.year, seq=credit.seq)
