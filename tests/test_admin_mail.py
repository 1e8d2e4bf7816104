"""The back-office side of invoice mail: changing the mailbox, delivery status, resending."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from plugin.models import AuditEntry, OutboxMail, Workspace
from plugin.services.mailbox import change_mailboxes
from plugin.types import utcnow
from tests.helpers import count_statements, snapshot
from tests.test_admin_lists import csrf
from tests.test_outbox import MAILED, deliver, issue, number_of, smtp_servers

NEW = "buchhaltung@mueller-soehne.example"
LIST = "/admin/billing_workspaces/"


@pytest.fixture
def smtp(app):
    yield from smtp_servers(app)


@pytest.fixture
def client(app, demo_cli):
    client = app.test_client()
    client.get("/demo/role/accounting")
    return client


def ids_of(session, *keys: str) -> list[int]:
    found = dict(session.execute(select(Workspace.key, Workspace.id)).all())
    return [found[key] for key in keys]


def mailbox_of(session, key: str) -> str | None:
    session.expire_all()
    return session.scalar(select(Workspace.invoice_mailbox).where(Workspace.key == key))


def notices(session) -> list[tuple[str, str]]:
    session.expire_all()
    rows = session.execute(
        select(OutboxMail.recipient, OutboxMail.data).where(OutboxMail.kind == "mailbox_notice")
    )
    return sorted((recipient, data["workspace_key"]) for recipient, data in rows)


def test_accounting_changes_the_mailbox_from_the_workspace_page(client, session):
    page = client.get("/admin/billing_workspaces/w/acme/").get_data(as_text=True)
    assert 'id="change-mailbox-link"' in page
    (acme,) = ids_of(session, "acme")
    form_url = f"{LIST}mailbox?ids={acme}"
    form = client.get(form_url).get_data(as_text=True)
    assert MAILED["acme"] in form
    response = client.post(form_url, data={"csrf_token": csrf(form), "address": f" {NEW} "})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/billing_workspaces/w/acme/")
    assert mailbox_of(session, "acme") == NEW
    page = client.get("/admin/billing_workspaces/w/acme/").get_data(as_text=True)
    assert f"Invoice mailbox of acme: {MAILED['acme']} → {NEW}" in page
    assert notices(session) == [(NEW, "acme"), (MAILED["acme"], "acme")]
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "change_mailbox"))
    assert (entry.actor, entry.before, entry.after) == (
        "demo-accounting",
        {"invoice_mailbox": MAILED["acme"]},
        {"invoice_mailbox": NEW},
    )


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("a@b.example\r\nBcc: x@y.example", "contains a line break"),
        ('"Evil" <a@b.example>, c@d.example', "is a list"),
        ("Evil <a@b.example>", "has a display name or angle brackets"),
        ("rechnungen", "is not a valid e-mail address"),
    ],
)
def test_a_refused_address_is_shown_on_the_form_and_changes_nothing(
    client, session, address, message
):
    (acme,) = ids_of(session, "acme")
    form_url = f"{LIST}mailbox?ids={acme}"
    form = client.get(form_url).get_data(as_text=True)
    before = snapshot(session)
    response = client.post(form_url, data={"csrf_token": csrf(form), "address": address})
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Nothing was changed" in text
    assert message in text
    assert "<a@b.example>" not in text  # shown as text, escaped
    session.expire_all()
    assert snapshot(session) == before


def test_an_empty_address_asks_again(client, session):
    (acme,) = ids_of(session, "acme")
    form_url = f"{LIST}mailbox?ids={acme}"
    form = client.get(form_url).get_data(as_text=True)
    before = snapshot(session)
    response = client.post(form_url, data={"csrf_token": csrf(form), "address": ""})
    assert response.status_code == 200
    assert "This field is required." in response.get_data(as_text=True)
    session.expire_all()
    assert snapshot(session) == before


def test_the_bulk_action_changes_the_ticked_workspaces(client, session):
    list_page = client.get(LIST).get_data(as_text=True)
    acme, globex = ids_of(session, "acme", "globex")
    picked = client.post(
        f"{LIST}action/",
        data={"csrf_token": csrf(list_page), "action": "mailbox", "rowid": [acme, globex]},
    )
    assert picked.status_code == 302
    form_url = picked.headers["Location"]
    form = client.get(form_url).get_data(as_text=True)
    assert "Change the invoice mailbox of 2 workspaces" in form
    response = client.post(form_url, data={"csrf_token": csrf(form), "address": NEW})
    assert response.status_code == 302
    assert mailbox_of(session, "acme") == mailbox_of(session, "globex") == NEW
    assert notices(session) == sorted(
        [(NEW, "acme"), (MAILED["acme"], "acme"), (NEW, "globex"), ("ap@globex.example", "globex")]
    )


def test_all_matching_changes_every_workspace_the_search_finds(client, session):
    list_page = client.get(f"{LIST}?search=globex").get_data(as_text=True)
    assert 'id="mailbox-all-matching"' in list_page
    form_url = f"{LIST}mailbox?all=1&search=globex"
    form = client.get(form_url).get_data(as_text=True)
    assert "Change the invoice mailbox of 1 workspace" in form
    client.post(form_url, data={"csrf_token": csrf(form), "address": NEW})
    assert mailbox_of(session, "globex") == NEW
    assert mailbox_of(session, "acme") == MAILED["acme"]


@pytest.mark.parametrize("role", ["support", "admin"])
def test_only_accounting_changes_the_mailbox(client, session, role):
    (acme,) = ids_of(session, "acme")
    accounting_form = client.get(f"{LIST}mailbox?ids={acme}").get_data(as_text=True)
    client.get(f"/demo/role/{role}")
    assert 'id="change-mailbox-link"' not in client.get(
        "/admin/billing_workspaces/w/acme/"
    ).get_data(as_text=True)
    assert client.get(f"{LIST}mailbox?ids={acme}").status_code == 403
    before = snapshot(session)
    response = client.post(
        f"{LIST}mailbox?ids={acme}",
        data={"csrf_token": csrf(accounting_form), "address": NEW},
    )
    assert response.status_code == 403
    session.expire_all()
    assert snapshot(session) == before


def test_a_bulk_change_runs_the_same_statements_for_any_number_of_workspaces(
    app, demo_cli, session
):
    one = ids_of(session, "acme")
    assert demo_cli("generate", "--scale", "tiny").exit_code == 0
    many = list(session.scalars(select(Workspace.id)))
    assert len(many) >= 9

    def change(ids, address):
        return lambda: change_mailboxes(session, ids, address, actor="test", now=utcnow())

    assert count_statements(session, change(one, "a@x.example")) == count_statements(
        session, change(many, "b@x.example")
    )
    assert {mailbox_of(session, key) for key in ("acme", "globex")} == {"b@x.example"}


def test_the_invoice_list_shows_each_delivery_and_accounting_resends(
    app, client, session, smtp
):
    server = smtp()
    issue(session, app, "2026-10")
    number = number_of(session, "acme")
    listing = client.get("/admin/billing_invoices/").get_data(as_text=True)
    assert f"queued <small class='text-muted'>to {MAILED['acme']}, 0 attempts" in listing
    assert "not e-mailed" in listing  # the team-licence invoices are downloaded
    deliver(session, app)
    listing = client.get("/admin/billing_invoices/").get_data(as_text=True)
    assert f"sent <small class='text-muted'>to {MAILED['acme']}, 1 attempt<" in listing
    page = client.get(f"/admin/billing_invoices/mail/{number}").get_data(as_text=True)
    assert f"invoice-{number}" in page
    mail_page = f"/admin/billing_invoices/mail/{number}"
    response = client.post(mail_page, data={"csrf_token": csrf(page)})
    assert response.status_code == 302
    token = csrf(page)
    page = client.get(f"/admin/billing_invoices/mail/{number}").get_data(as_text=True)
    assert f"Invoice {number} queued for {MAILED['acme']}" in page
    assert f"invoice-{number}.resend-1" in page
    # While the copy is queued there is no resend button, and a second click
    # (a form sent twice) is refused, visibly.
    assert 'id="resend"' not in page
    assert "Delivery 2 is on its way (queued)" in page
    before = snapshot(session)
    client.post(f"/admin/billing_invoices/mail/{number}", data={"csrf_token": token})
    page = client.get(f"/admin/billing_invoices/mail/{number}").get_data(as_text=True)
    assert f"Not resent: invoice {number} is already on its way (queued)" in page
    session.expire_all()
    assert snapshot(session) == before
    deliver(session, app)
    assert [r.rcpt_tos for r in server.received if number in r.message["Subject"]] == [
        (MAILED["acme"],),
        (MAILED["acme"],),
    ]
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "resend_invoice"))
    assert (entry.actor, entry.target) == ("demo-accounting", number)


def test_a_failed_delivery_shows_its_error_on_the_workspace_page(app, client, session, smtp):
    smtp()
    session.execute(
        Workspace.__table__.update().where(Workspace.key == "acme").values(invoice_mailbox=None)
    )
    session.commit()
    issue(session, app, "2026-10")
    page = client.get("/admin/billing_workspaces/w/acme/").get_data(as_text=True)
    assert "workspace acme has no invoice mailbox" in page


def test_support_sees_the_history_but_cannot_resend(app, client, session, smtp):
    smtp()
    issue(session, app, "2026-10")
    number = number_of(session, "acme")
    token = csrf(client.get(LIST).get_data(as_text=True))  # a valid token of this session
    client.get("/demo/role/support")
    page = client.get(f"/admin/billing_invoices/mail/{number}")
    assert page.status_code == 200
    assert 'id="resend"' not in page.get_data(as_text=True)
    before = snapshot(session)
    response = client.post(
        f"/admin/billing_invoices/mail/{number}", data={"csrf_token": token}
    )
    assert response.status_code == 403
    session.expire_all()
    assert snapshot(session) == before
