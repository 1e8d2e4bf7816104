"""The invoice mailbox: one validated address, changed only by accounting with notice to both."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from plugin.models import AuditEntry, OutboxMail, Workspace
from plugin.services.mail_status import deliveries
from plugin.services.mailbox import (
    MailboxError,
    change_mailbox,
    validate_mailbox,
    workspace_id_for,
)
from plugin.types import utcnow
from tests.helpers import HOSTILE_CHARACTERS, hostile, refusal, snapshot
from tests.test_outbox import DOMAIN, MAILED, issue, number_of, smtp_servers

OLD = MAILED["acme"]
NEW = "buchhaltung@mueller-soehne.example"


@pytest.fixture
def smtp(app):
    yield from smtp_servers(app)


HOSTILE = [
    ("a@b.c\r\nBcc: x@y.z", "contains a line break (U+000D) at character 6"),
    ("a@b.example\n", "contains a line break (U+000A) at character 12"),
    *((hostile("rechnungen@example.com", character), refusal(description))
      for character, description in HOSTILE_CHARACTERS),
    ('"Evil" <a@b.c>, c@d.e', "is a list: the invoice mailbox is one address"),
    ("a@b.example; c@d.example", "is a list: the invoice mailbox is one address"),
    ("Evil <a@b.example>", "has a display name or angle brackets"),
    ("<a@b.example>", "has a display name or angle brackets"),
    ("x" * 250 + "@b.example", "is 260 characters long; an address has at most 254"),
    ("x" * 65 + "@b.example", "The email address is too long before the @-sign"),
    ("jürgen@mueller-soehne.example", "Internationalized characters before the @-sign"),
    ("", "must not be empty"),
    ("   ", "must not be empty"),
    ("rechnungen", "is not a valid e-mail address: An email address must have an @-sign"),
    ('"a b"@c.example', "is not a valid e-mail address: Quoting the part before the @-sign"),
    ("a@localhost", "is not a valid e-mail address"),
]


def test_an_address_is_stored_normalised():
    assert validate_mailbox(" Rechnungen@Mueller-Soehne.EXAMPLE ") == OLD
    # An internationalised domain is kept in its ASCII form: a look-alike shows.
    assert validate_mailbox("rechnung@bücher.example") == "rechnung@xn--bcher-kva.example"


@pytest.mark.parametrize(("address", "message"), HOSTILE)
def test_hostile_and_bad_addresses_are_refused_clearly(address, message):
    with pytest.raises(MailboxError) as refused:
        validate_mailbox(address)
    assert message in str(refused.value)
    assert not {character for character, _ in HOSTILE_CHARACTERS} & set(str(refused.value))


@pytest.mark.parametrize(("address", "message"), HOSTILE)
def test_set_mailbox_refuses_hostile_addresses_and_changes_nothing(
    demo_cli, session, address, message
):
    before = snapshot(session)
    result = demo_cli("set-mailbox", "acme", address)
    assert result.exit_code == 1
    assert message in result.output
    session.expire_all()
    assert snapshot(session) == before


def test_set_mailbox_changes_audits_and_queues_a_notice_to_both(demo_cli, session):
    result = demo_cli("set-mailbox", "acme", NEW.upper())
    assert result.exit_code == 0, result.output
    assert f"Invoice mailbox of acme: {OLD} -> {NEW}." in result.output
    assert session.scalar(select(Workspace.invoice_mailbox).where(Workspace.key == "acme")) == NEW
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "change_mailbox"))
    assert (entry.target, entry.before, entry.after) == (
        "acme",
        {"invoice_mailbox": OLD},
        {"invoice_mailbox": NEW},
    )
    assert entry.actor.startswith("cli:")
    notices = deliveries(session, workspace_key="acme")
    assert [(n.kind, n.recipient, n.status) for n in notices] == [
        ("mailbox_notice", OLD, "queued"),
        ("mailbox_notice", NEW, "queued"),
    ]


def test_both_addresses_receive_the_notice_each_only_their_own(demo_cli, session, smtp):
    server = smtp()
    assert demo_cli("set-mailbox", "acme", NEW).exit_code == 0
    result = demo_cli("send-invoices")
    assert result.exit_code == 0, result.output
    assert sorted(r.rcpt_tos for r in server.received) == sorted([(OLD,), (NEW,)])
    for got in server.received:
        assert got.message["To"] == got.rcpt_tos[0]
        # acme's documents are German: so is the notice to its customer.
        subject = "Das Rechnungspostfach von Müller & Söhne GmbH wurde geändert"
        assert got.message["Subject"] == subject
        text = got.text()
        assert f"Vorher: {OLD}" in text
        assert f"Jetzt:  {NEW}" in text
        assert "Falls Sie diese Änderung nicht veranlasst haben" in text


def test_a_first_mailbox_notifies_the_new_address_only(demo_cli, session):
    assert demo_cli("set-mailbox", "nordwind", "ap@nordwind.example").exit_code == 0
    notices = deliveries(session, workspace_key="nordwind")
    assert [n.recipient for n in notices] == ["ap@nordwind.example"]
    assert notices[0].kind == "mailbox_notice"


def test_the_same_address_again_changes_nothing(demo_cli, session):
    before = snapshot(session)
    result = demo_cli("set-mailbox", "acme", OLD.upper())
    assert result.exit_code == 0
    assert "unchanged" in result.output
    session.expire_all()
    assert snapshot(session) == before


def test_an_unknown_workspace_is_refused(demo_cli, session):
    before = snapshot(session)
    result = demo_cli("set-mailbox", "nope", NEW)
    assert result.exit_code == 1
    assert "no workspace with the key 'nope'" in result.output
    with pytest.raises(MailboxError, match="no workspace with the id 999999"):
        change_mailbox(session, 999999, NEW, actor="test", now=utcnow())
    session.rollback()
    assert snapshot(session) == before


def test_a_concurrent_change_is_refused_not_merged(demo_cli, session, monkeypatch):
    """If the mailbox changed between reading it and writing, the change is refused."""
    acme = workspace_id_for(session, "acme")
    real_execute = session.execute

    def execute_after_a_rival(statement, *args, **kwargs):
        if getattr(statement, "is_update", False) and statement.table.name == "billing_workspace":
            real_execute(
                Workspace.__table__.update()
                .where(Workspace.id == acme)
                .values(invoice_mailbox="rival@mueller-soehne.example")
            )
        return real_execute(statement, *args, **kwargs)

    monkeypatch.setattr(session, "execute", execute_after_a_rival)
    with pytest.raises(MailboxError, match="was changed by somebody else meanwhile"):
        change_mailbox(session, acme, NEW, actor="test", now=utcnow())


def test_a_change_before_the_close_redirects_the_next_invoice_not_earlier_ones(
    demo_cli,
    app,
    session,
    smtp,
):
    server = smtp()
    issue(session, app, "2026-09")
    assert demo_cli("set-mailbox", "acme", NEW).exit_code == 0
    issue(session, app, "2026-10")
    september, october = number_of(session, "acme", "2026-09"), number_of(session, "acme")
    recipients = {
        m.message_key: m.recipient
        for m in session.scalars(select(OutboxMail).where(OutboxMail.kind == "invoice"))
    }
    assert recipients[f"invoice-{september}"] == OLD
    assert recipients[f"invoice-{october}"] == NEW
    assert demo_cli("send-invoices").exit_code == 0
    by_id = {r.message_id: r.rcpt_tos for r in server.received}
    assert by_id[f"<invoice-{september}@{DOMAIN}>"] == (OLD,)
    assert by_id[f"<invoice-{october}@{DOMAIN}>"] == (NEW,)
    assert len(server.received) == 4 + 2  # two invoices per month, two notices


@pytest.mark.parametrize(("address", "message"), HOSTILE)
def test_the_import_refuses_the_same_addresses_with_the_same_message(
    cli, session, tmp_path, address, message
):
    before = snapshot(session)
    document = {
        "workspaces": [
            {"key": "acme", "name": "Acme", "created": "2022-05-10", "invoice_mailbox": address}
        ]
    }
    path = tmp_path / "import.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    result = cli("import", str(path))
    assert result.exit_code == 1
    assert "workspaces[0].invoice_mailbox:" in result.output
    assert message in result.output
    session.expire_all()
    assert snapshot(session) == before


def test_the_import_stores_a_mailbox_as_set_mailbox_does(cli, session, tmp_path):
    path = tmp_path / "import.yaml"
    path.write_text(
        "workspaces:\n"
        "  - {key: books, name: Books, created: 2022-05-10,"
        " invoice_mailbox: invoices@BÜCHER.example}\n",
        encoding="utf-8",
    )
    result = cli("import", str(path))
    assert result.exit_code == 0, result.output
    stored = session.scalar(select(Workspace.invoice_mailbox).where(Workspace.key == "books"))
    assert stored == validate_mailbox("invoices@BÜCHER.example") == "invoices@xn--bcher-kva.example"
