"""Invoice mail through the outbox, against a real SMTP server (aiosmtpd on 127.0.0.1).

Every test starts its own server on a free port (aiosmtpd 1.4.6 cannot bind
port 0 itself) with a handler that accepts, defers with 451, refuses with 550
or drops the connection.  Time is moved on by passing a clock to
:func:`deliver_queued` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import re
import signal
import ssl
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, replace
from datetime import timedelta
from email.headerregistry import Address
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select, update

from plugin.mail.compose import compose
from plugin.mail.smtp import SmtpConfigError, SmtpSettings, SmtpTransport
from plugin.models import AuditEntry, Invoice, OutboxMail, Workspace
from plugin.rules import load_rules_file
from plugin.services.invoice_pdfs import render_pending, stored_pdf
from plugin.services.invoicing import close_month
from plugin.services.job_queue import RETRY_CAP, retry_delay
from plugin.services.mail_delivery import INTERRUPTED, MAX_ATTEMPTS, OutgoingMail, deliver_queued
from plugin.services.mail_status import deliveries, delivery_status
from plugin.services.mailbox import change_mailbox, workspace_id_for
from plugin.services.outbox import MailError, resend_invoice
from plugin.services.periods import Month
from plugin.types import utcnow
from tests.conftest import RULES_PATH, make_app
from tests.helpers import FakeRenderer, billing_process, snapshot
from tests.postgres import free_port

MAILED = {
    "acme": "rechnungen@mueller-soehne.example",
    "globex": "ap@globex.example",
}
#: What each customer's mail says in its language: acme's documents are German, globex's English.
WORDED = {
    "acme": (
        "Rechnung ", "Oktober 2026", "wenden Sie sich an die Buchhaltung",
        r"Brutto: \d{1,3}(\.\d{3})*,\d{2}\xa0€\r\n",
    ),
    "globex": (
        "Invoice ", "October 2026", "contact accounting", r"Total:  €\d{1,3}(,\d{3})*\.\d{2}\r\n"
    ),
}
DOMAIN = "wolkenwerk.example"
SENDER = "rechnungen@wolkenwerk.example"


# A real SMTP server --------------------------------------------------------


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)

    @property
    def message_id(self) -> str:
        return self.message["Message-ID"]

    def attachment(self) -> tuple[str, bytes]:
        (part,) = list(self.message.iter_attachments())
        return part.get_filename(), part.get_content()

    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()


class Accepting:
    """Takes every mail and remembers its envelope and bytes."""

    def __init__(self) -> None:
        self.received: list[Received] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        return self.accept(envelope)

    def accept(self, envelope) -> str:
        self.received.append(
            Received(envelope.mail_from, tuple(envelope.rcpt_tos), envelope.original_content)
        )
        return "250 2.0.0 Ok: queued"


class DeferringOnce(Accepting):
    """451 the first time each message is offered, then accepts it."""

    def __init__(self, always: bool = False) -> None:
        super().__init__()
        self.always = always
        self.seen: set[str] = set()

    async def handle_DATA(self, server, session, envelope) -> str:
        message_id = email.message_from_bytes(envelope.original_content)["Message-ID"]
        if self.always or message_id not in self.seen:
            self.seen.add(message_id)
            return "451 4.3.0 Temporary local problem, try again later"
        return self.accept(envelope)


class RefusingRecipients(Accepting):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"


class DroppingOnce(Accepting):
    """Drops the connection in the middle of the first DATA; accepts later attempts."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        if not self.dropped:
            self.dropped += 1
            server.transport.abort()
            return "250 2.0.0 Ok: never seen by the client"
        return self.accept(envelope)


class Slow(Accepting):
    async def handle_DATA(self, server, session, envelope) -> str:
        await asyncio.sleep(0.1)
        return self.accept(envelope)


def smtp_servers(app):
    """Start SMTP servers with a handler on a free port; the app is configured to use the last."""
    controllers = []

    def start(handler: Accepting | None = None) -> Accepting:
        handler = handler or Accepting()
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        app.config.update(BILLING_SMTP_HOST="127.0.0.1", BILLING_SMTP_PORT=port)
        return handler

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def smtp(app):
    yield from smtp_servers(app)


# Helpers ---------------------------------------------------------------------


def issue(session, app, *months: str, rules=None) -> list[str]:
    """Close ``months`` (service, committed) and give the invoices fake PDFs; their numbers."""
    rules = rules or app.extensions["billing"].rules()
    numbers = []
    for month in months:
        summary = close_month(session, rules, Month.parse(month), utcnow(), actor="test")
        session.commit()
        numbers += summary.issued
    render_pending(session, FakeRenderer())
    return numbers


def transport(app) -> SmtpTransport:
    seller = app.extensions["billing"].rules().seller
    return SmtpTransport(
        SmtpSettings.from_config(
            app.config, default_sender=Address(seller.name, addr_spec=seller.email)
        )
    )


def deliver(session, app, at=None):
    when = at or utcnow()
    with transport(app) as sender:
        return deliver_queued(session, sender, clock=lambda: when)


def mails(session) -> dict[str, OutboxMail]:
    session.expire_all()
    return {mail.message_key: mail for mail in session.scalars(select(OutboxMail))}


def number_of(session, workspace_key: str, period: str = "2026-10") -> str:
    return session.scalar(
        select(Invoice.number).where(
            Invoice.workspace_key == workspace_key, Invoice.period == period
        )
    )


# Queueing ----------------------------------------------------------------------


def test_the_close_queues_the_user_licence_invoices_to_their_mailboxes(demo_cli, session):
    result = demo_cli("close-month", "2026-10")
    assert result.exit_code == 0, result.output
    queued = deliveries(session)
    assert {(d.workspace_key, d.recipient, d.kind, d.status) for d in queued} == {
        (key, mailbox, "invoice", "queued") for key, mailbox in MAILED.items()
    }
    assert {d.message_key for d in queued} == {
        f"invoice-{number_of(session, key)}" for key in MAILED
    }
    assert all(d.attempts == 0 and d.last_error is None for d in queued)


def test_mails_are_queued_in_the_close_transaction(demo_cli, app, session):
    rules = app.extensions["billing"].rules()
    close_month(session, rules, Month.parse("2026-10"), utcnow(), actor="test")
    assert len(deliveries(session)) == 2
    session.rollback()
    assert session.scalars(select(OutboxMail)).all() == []
    assert session.scalars(select(Invoice)).all() == []


def test_a_team_licence_contract_can_ask_for_mail(demo_cli, app, session, tmp_path):
    text = RULES_PATH.read_text(encoding="utf-8")
    marker = "    variant: team_licences\n    note: Framework contract"
    assert marker in text
    rules_path = tmp_path / "pricing_rules.yaml"
    rules_path.write_text(
        text.replace(
            marker,
            "    variant: team_licences\n    email_invoices: true\n    note: Framework contract",
        ),
        encoding="utf-8",
    )
    rules = load_rules_file(rules_path)
    assert demo_cli("set-mailbox", "initech", "billing@initech.example").exit_code == 0
    issue(session, app, "2026-10", rules=rules)
    invoices = {d.workspace_key: d.recipient for d in deliveries(session) if d.kind == "invoice"}
    assert invoices == {**MAILED, "initech": "billing@initech.example"}


def test_a_user_licence_workspace_without_mailbox_is_recorded_as_failed(demo_cli, app, session):
    session.execute(update(Workspace).where(Workspace.key == "acme").values(invoice_mailbox=None))
    session.commit()
    issue(session, app, "2026-10")
    (acme,) = deliveries(session, workspace_key="acme")
    assert (acme.status, acme.recipient) == ("failed", None)
    assert "workspace acme has no invoice mailbox" in acme.last_error
    assert "set-mailbox acme" in acme.last_error


# Delivery ----------------------------------------------------------------------


def test_send_invoices_delivers_each_mail_once_with_its_stored_pdf(demo_cli, session, smtp):
    server = smtp()
    assert demo_cli("close-month", "2026-10").exit_code == 0
    result = demo_cli("send-invoices")
    assert result.exit_code == 0, result.output
    assert "Mail sent: 2, to be retried: 0, failed: 0." in result.output
    assert len(server.received) == 2
    for key, mailbox in MAILED.items():
        number = number_of(session, key)
        (got,) = [r for r in server.received if r.message_id == f"<invoice-{number}@{DOMAIN}>"]
        assert got.rcpt_tos == (mailbox,)
        assert got.mail_from == SENDER
        assert got.message["To"] == mailbox
        assert got.message["From"] == f"Wolkenwerk Software GmbH <{SENDER}>"
        assert number in got.message["Subject"]
        kind, month, contact, total = WORDED[key]
        assert got.message["Subject"].startswith(kind + number)
        assert month in got.message["Subject"]
        assert got.attachment() == (f"{number}.pdf", stored_pdf(session, number))
        assert contact in got.text()
        assert re.search(total, got.text())
    again = demo_cli("send-invoices")
    assert "Mail sent: 0" in again.output
    assert len(server.received) == 2
    statuses = delivery_status(session, [number_of(session, key) for key in (*MAILED, "nordwind")])
    assert set(statuses) == {number_of(session, key) for key in MAILED}
    assert {(s.status, s.attempts, s.last_error, s.deliveries) for s in statuses.values()} == {
        ("sent", 1, None, 1)
    }


def test_an_invoice_mail_waits_for_its_pdf(demo_cli, app, session, smtp):
    server = smtp()
    rules = app.extensions["billing"].rules()
    close_month(session, rules, Month.parse("2026-10"), utcnow(), actor="test")
    session.commit()
    summary = deliver(session, app)
    assert summary.sent == []
    assert {d.state for d in deliveries(session)} == {"waiting for PDF"}
    render_pending(session, FakeRenderer())
    assert len(deliver(session, app).sent) == 2
    for got in server.received:
        number = got.message_id.removeprefix("<invoice-").split("@")[0]
        assert got.attachment()[1] == stored_pdf(session, number)
        assert got.attachment()[1].endswith(bytes(range(256)))


def test_a_451_is_retried_with_backoff_then_delivered_once(demo_cli, app, session, smtp):
    server = smtp(DeferringOnce())
    issue(session, app, "2026-10")
    start = utcnow()
    first = deliver(session, app, start)
    assert (len(first.sent), len(first.retrying)) == (0, 2)
    for mail in mails(session).values():
        assert (mail.status, mail.attempts) == ("queued", 1)
        assert "451 4.3.0 Temporary local problem" in mail.last_error
        assert "(at DATA)" in mail.last_error
        assert mail.next_attempt_at == start + timedelta(minutes=1)
    assert deliver(session, app, start + timedelta(seconds=59)).sent == []
    assert len(deliver(session, app, start + timedelta(seconds=61)).sent) == 2
    assert Counter(r.rcpt_tos for r in server.received) == Counter(
        (mailbox,) for mailbox in MAILED.values()
    )
    assert {(m.status, m.attempts) for m in mails(session).values()} == {("sent", 2)}


def test_a_550_fails_for_good_with_the_servers_reply(demo_cli, app, session, smtp):
    server = smtp(RefusingRecipients())
    issue(session, app, "2026-10")
    result = demo_cli("send-invoices")
    assert result.exit_code == 1
    assert "failed: 2" in result.output
    assert "550 5.1.1 <ap@globex.example>: Recipient address rejected" in result.output
    for mail in mails(session).values():
        assert (mail.status, mail.attempts) == ("failed", 1)
        assert mail.last_error.startswith(f"550 5.1.1 <{mail.recipient}>")
        assert "(at RCPT TO)" in mail.last_error
    assert deliver(session, app, utcnow() + timedelta(days=7)).sent == []
    assert server.received == []
    assert {m.attempts for m in mails(session).values()} == {1}


def test_a_connection_dropped_mid_transaction_is_retried(demo_cli, app, session, smtp):
    server = smtp(DroppingOnce())
    issue(session, app, "2026-10")
    start = utcnow()
    first = deliver(session, app, start)
    assert len(first.retrying) == 1
    assert "connection lost while sending" in first.retrying[0].error
    assert len(first.sent) == 1
    later = deliver(session, app, start + timedelta(minutes=2))
    assert len(later.sent) == 1
    assert sorted(r.rcpt_tos for r in server.received) == sorted(
        (mailbox,) for mailbox in MAILED.values()
    )
    assert {m.status for m in mails(session).values()} == {"sent"}


def test_no_server_is_temporary_and_stops_the_run(demo_cli, app, session):
    issue(session, app, "2026-10")
    app.config.update(BILLING_SMTP_HOST="127.0.0.1", BILLING_SMTP_PORT=free_port())
    result = demo_cli("send-invoices")
    assert result.exit_code == 1
    assert "cannot reach the SMTP server 127.0.0.1" in result.output
    assert "Stopped early" in result.output
    attempts = sorted(m.attempts for m in mails(session).values())
    assert attempts == [0, 1]
    assert {m.status for m in mails(session).values()} == {"queued"}


def test_temporary_failures_back_off_exponentially_then_fail_visibly(demo_cli, app, session, smtp):
    smtp(DeferringOnce(always=True))
    issue(session, app, "2026-10")
    when = utcnow()
    delays = []
    for _ in range(MAX_ATTEMPTS):
        deliver(session, app, when)
        acme = next(m for m in mails(session).values() if m.recipient == MAILED["acme"])
        if acme.status == "failed":
            break
        delays.append(acme.next_attempt_at - when)
        when = acme.next_attempt_at
    assert delays == [retry_delay(n) for n in range(1, MAX_ATTEMPTS)]
    assert [d.total_seconds() / 60 for d in delays[:4]] == [1, 2, 4, 8]
    assert max(delays) == RETRY_CAP
    assert acme.status == "failed"
    assert acme.attempts == MAX_ATTEMPTS
    assert acme.last_error.startswith(f"gave up after {MAX_ATTEMPTS} attempts; last error: 451")


class CrashingAfterAccept(SmtpTransport):
    """The worker dies after the server accepted the mail, before recording it."""

    def send(self, mail):
        super().send(mail)
        raise SystemExit("worker killed")


def test_a_crash_after_acceptance_resends_with_the_same_message_id(demo_cli, app, session, smtp):
    server = smtp()
    (number, _, *_) = issue(session, app, "2026-10")
    start = utcnow()
    crashing = CrashingAfterAccept(transport(app).settings)
    with pytest.raises(SystemExit), crashing:
        deliver_queued(session, crashing, clock=lambda: start, lease=timedelta(minutes=5))
    session.rollback()
    statuses = Counter(m.status for m in mails(session).values())
    assert statuses == {"sending": 1, "queued": 1}
    assert len(server.received) == 1
    assert len(deliver(session, app, start + timedelta(minutes=1)).sent) == 1
    assert len(server.received) == 2
    crashed = next(m for m in mails(session).values() if m.status == "sending")
    lease_over = crashed.claimed_until + timedelta(seconds=1)
    assert deliver(session, app, lease_over).sent == [crashed.message_key]
    ids = Counter(r.message_id for r in server.received)
    assert ids[f"<{crashed.message_key}@{DOMAIN}>"] == 2
    redone = mails(session)[crashed.message_key]
    assert (redone.status, redone.attempts) == ("sent", 2)
    assert redone.last_error == INTERRUPTED


def test_mail_is_composed_safely(app):
    settings = transport(app).settings
    mail = OutgoingMail(
        id=1,
        kind="mailbox_notice",
        language="en",
        message_key="mailbox-0123456789abcdef.1",
        recipient="a@b.example",
        attempt=1,
        data={
            "workspace_key": "evil",
            "workspace_name": "Evil\r\nBcc: x@y.example",
            "old": None,
            "new": "a@b.example",
            "changed_at": utcnow().isoformat(),
        },
    )
    message = compose(mail, settings, now=utcnow())
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed["Bcc"] is None
    assert list(parsed.keys()) == [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "Auto-Submitted",
        "Content-Type",
        "Content-Transfer-Encoding",
        "MIME-Version",
    ]
    # The carriage return shows as an escape; the line feed folds into a space.
    assert (
        message["Subject"] == "The invoice mailbox of Evil<U+000D> Bcc: x@y.example was changed"
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"BILLING_SMTP_SECURITY": "ssl"}, "BILLING_SMTP_SECURITY is 'ssl'"),
        ({"BILLING_SMTP_PORT": "smtp"}, "BILLING_SMTP_PORT is 'smtp'"),
        ({"BILLING_SMTP_TIMEOUT": 0}, "BILLING_SMTP_TIMEOUT is 0"),
        ({"BILLING_MAIL_SENDER": "nobody"}, "BILLING_MAIL_SENDER is 'nobody'"),
        (
            {"BILLING_SMTP_HOST": "smtp.example.com", "BILLING_SMTP_USERNAME": "u"},
            "in clear text",
        ),
    ],
)
def test_bad_smtp_settings_are_refused(demo_cli, app, config, message):
    app.config.update(config)
    result = demo_cli("send-invoices")
    assert result.exit_code == 1
    assert message in result.output


def test_smtp_defaults(app):
    settings = transport(app).settings
    assert (settings.host, settings.port, settings.security) == ("localhost", 25, "none")
    assert (settings.username, settings.timeout) == (None, 30)
    assert str(settings.sender) == f"Wolkenwerk Software GmbH <{SENDER}>"
    assert settings.message_id("invoice-2026-00001") == f"<invoice-2026-00001@{DOMAIN}>"
    tls = SmtpSettings.from_config(
        {
            "BILLING_SMTP_SECURITY": "tls",
            "BILLING_MAIL_SENDER": "Billing <b@x.example>",
            "BILLING_MAIL_DOMAIN": "mail.x.example",
        }
    )
    assert (tls.port, tls.domain, tls.sender.addr_spec) == (465, "mail.x.example", "b@x.example")
    with pytest.raises(SmtpConfigError):
        SmtpSettings.from_config({})


# Resending -------------------------------------------------------------------


def test_accounting_resends_an_invoice_as_a_new_recorded_delivery(demo_cli, app, session, smtp):
    server = smtp()
    issue(session, app, "2026-10")
    number = number_of(session, "acme")
    deliver(session, app)
    result = demo_cli("resend-invoice", number)
    assert result.exit_code == 0, result.output
    assert f"invoice-{number}.resend-1" in result.output
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "resend_invoice"))
    assert entry.target == number
    assert entry.after == {"recipient": MAILED["acme"], "message_key": f"invoice-{number}.resend-1"}
    before = snapshot(session)
    twice = demo_cli("resend-invoice", number)
    assert twice.exit_code == 1
    assert f"invoice {number} is already on its way (queued)" in twice.output
    session.expire_all()
    assert snapshot(session) == before
    assert demo_cli("send-invoices").exit_code == 0
    copies = [r for r in server.received if r.rcpt_tos == (MAILED["acme"],)]
    assert [r.message_id for r in copies] == [
        f"<invoice-{number}@{DOMAIN}>",
        f"<invoice-{number}.resend-1@{DOMAIN}>",
    ]
    assert copies[1].message["References"] == f"<invoice-{number}@{DOMAIN}>"
    assert copies[1].attachment() == copies[0].attachment()
    status = delivery_status(session, [number])[number]
    assert (status.status, status.deliveries, status.latest.message_key) == (
        "sent",
        2,
        f"invoice-{number}.resend-1",
    )


def test_a_resend_goes_to_the_mailbox_in_force_now(demo_cli, app, session, smtp):
    server = smtp()
    session.execute(update(Workspace).where(Workspace.key == "acme").values(invoice_mailbox=None))
    session.commit()
    issue(session, app, "2026-10")
    number = number_of(session, "acme")
    refused = demo_cli("resend-invoice", number)
    assert refused.exit_code == 1
    assert "workspace acme has no invoice mailbox" in refused.output
    assert demo_cli("set-mailbox", "acme", "new@mueller-soehne.example").exit_code == 0
    assert demo_cli("resend-invoice", number).exit_code == 0
    assert demo_cli("send-invoices").exit_code == 0
    kinds = ("Invoice", "Rechnung")
    invoice_mails = [r for r in server.received if r.message["Subject"].startswith(kinds)]
    assert sorted(r.rcpt_tos for r in invoice_mails) == [
        ("ap@globex.example",),
        ("new@mueller-soehne.example",),
    ]


def test_resending_an_unknown_invoice_is_refused(demo_cli, session):
    with pytest.raises(MailError, match="no invoice with the number '1999-00001'"):
        resend_invoice(session, "1999-00001", actor="test")


# Two workers at once -----------------------------------------------------------


def send_invoices_process(database_url: str, port: int) -> subprocess.Popen:
    config = {"BILLING_SMTP_HOST": "127.0.0.1", "BILLING_SMTP_PORT": port}
    return billing_process(
        database_url, "send-invoices", config=config,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.slow
def test_two_concurrent_workers_send_each_mail_once(demo_cli, app, session, smtp, database_url):
    """Two ``send-invoices`` processes share 40 mails: each is sent once, both did some."""
    server = smtp(Slow())
    months = [f"2026-{month:02d}" for month in range(1, 11)]
    issue(session, app, *months)
    nordwind = workspace_id_for(session, "nordwind")
    for change in range(10):
        address = f"billing-{change}@nordwind.example"
        change_mailbox(session, nordwind, address, actor="test", now=utcnow())
    session.commit()
    expected = {d.message_key: d.recipient for d in deliveries(session)}
    assert len(expected) == 2 * len(months) + 19
    session.close()
    port = app.config["BILLING_SMTP_PORT"]
    workers = [send_invoices_process(database_url, port) for _ in range(2)]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    sent = [int(out.split("Mail sent: ")[1].split(",")[0]) for out, _ in outputs]
    assert sum(sent) == len(expected)
    assert min(sent) > 0, "the workers did not run at the same time"
    assert Counter(r.message_id for r in server.received) == Counter(
        f"<{key}@{DOMAIN}>" for key in expected
    )
    for got in server.received:
        assert got.rcpt_tos == (expected[got.message_id[1:].split("@")[0]],)
    assert {m.status for m in mails(session).values()} == {"sent"}


# TLS and login -----------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def check_login(server, session, envelope, mechanism, auth_data) -> AuthResult:
    good = auth_data.login == b"billing" and auth_data.password == b"s3cret"
    # handled=False: aiosmtpd then answers a failure with 535 itself.
    return AuthResult(success=good, handled=False)


@pytest.mark.parametrize("security", ["starttls", "tls"])
@pytest.mark.parametrize(("password", "delivered"), [("s3cret", True), ("wrong", False)])
def test_tls_and_login(demo_cli, app, session, certificate, security, password, delivered):
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    handler = Accepting()
    port = free_port()
    # aiosmtpd only counts STARTTLS as TLS when it decides whether to offer AUTH;
    # its AUTH LOGIN does not take smtplib's initial response, so PLAIN only.
    options = {
        "authenticator": check_login,
        "auth_require_tls": security == "starttls",
        "auth_exclude_mechanism": ["LOGIN"],
    }
    if security == "starttls":
        options |= {"tls_context": server_context, "require_starttls": True}
    else:
        options |= {"ssl_context": server_context}
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        issue(session, app, "2026-10")
        app.config.update(
            BILLING_SMTP_HOST="127.0.0.1",
            BILLING_SMTP_PORT=port,
            BILLING_SMTP_SECURITY=security,
            BILLING_SMTP_USERNAME="billing",
            BILLING_SMTP_PASSWORD=password,
        )
        settings = replace(
            transport(app).settings, ssl_context=ssl.create_default_context(cafile=cert)
        )
        with SmtpTransport(settings) as sender:
            summary = deliver_queued(session, sender)
    finally:
        controller.stop()
    if delivered:
        assert len(summary.sent) == 2
        assert sorted(r.rcpt_tos for r in handler.received) == sorted(
            (mailbox,) for mailbox in MAILED.values()
        )
    else:
        assert summary.sent == []
        assert "refused the session: 535" in summary.stopped
        assert handler.received == []


def test_mail_status_lists_every_delivery_for_people_and_scripts(demo_cli, app, session, smtp):
    smtp()
    issue(session, app, "2026-10")
    number = number_of(session, "acme")
    result = demo_cli("mail-status", "--invoice", number, "--json")
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.output)
    assert (entry["invoice"], entry["recipient"], entry["status"], entry["attempts"]) == (
        number,
        MAILED["acme"],
        "queued",
        0,
    )
    deliver(session, app)
    lines = demo_cli("mail-status", "--status", "sent").output.splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted(
        f"invoice-{number_of(session, key)}" for key in MAILED
    )
    assert all(" sent " in line for line in lines)
    refused = demo_cli("mail-status", "--status", "lost")
    assert refused.exit_code == 2
    assert "'lost' is not one of 'queued', 'sending', 'sent', 'failed'" in refused.output


def test_an_unexpected_error_does_not_poison_the_next_mail(demo_cli, app, session, smtp):
    """An address smtplib cannot encode fails mid-transaction; the next mail still goes."""
    server = smtp()
    issue(session, app, "2026-10")
    first, second = session.scalars(select(OutboxMail).order_by(OutboxMail.id)).all()
    session.execute(
        update(OutboxMail)
        .where(OutboxMail.id == first.id)
        .values(recipient="invoices@bücher.example")
    )
    session.commit()
    summary = deliver(session, app)
    assert summary.sent == [second.message_key]
    assert [problem.message_key for problem in summary.retrying] == [first.message_key]
    assert [r.rcpt_tos for r in server.received] == [(second.recipient,)]
    by_key = mails(session)
    assert by_key[second.message_key].status == "sent"
    assert by_key[first.message_key].status == "queued"
    assert "UnicodeEncodeError" in by_key[first.message_key].last_error


class OutOfSequence(Accepting):
    """Answers the first MAIL FROM with 503, as a server does to a nested transaction."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        if not self.refused:
            self.refused += 1
            return "503 5.5.1 Error: nested MAIL command"
        envelope.mail_from = address
        return "250 OK"


def test_a_503_about_the_session_is_not_a_permanent_failure(demo_cli, app, session, smtp):
    smtp(OutOfSequence())
    issue(session, app, "2026-10")
    summary = deliver(session, app)
    assert summary.failed == []
    assert len(summary.retrying) == 1
    assert "503 5.5.1" in summary.retrying[0].error


def test_a_broken_rules_file_does_not_stop_the_mail_of_issued_invoices(
    demo_cli, app, session, smtp, database_url, tmp_path
):
    server = smtp()
    issue(session, app, "2026-10")
    broken = tmp_path / "pricing_rules.yaml"
    broken.write_text(
        RULES_PATH.read_text(encoding="utf-8").replace("tax_rate: 0.19", "tax_rate: 1.19"),
        encoding="utf-8",
    )
    config = {key: app.config[key] for key in ("BILLING_SMTP_HOST", "BILLING_SMTP_PORT")}
    other = make_app(database_url, BILLING_RULES_PATH=str(broken), **config)
    with other.app_context():
        result = other.test_cli_runner().invoke(args=["billing", "send-invoices"])
    assert result.exit_code == 0, result.output
    assert "Mail sent: 2" in result.output
    assert {r.mail_from for r in server.received} == {SENDER}
    assert {r.message["From"] for r in server.received} == {
        f"Wolkenwerk Software GmbH <{SENDER}>"
    }


class HangingOnce(Accepting):
    """Holds the first mail's DATA for a long time (the sender is killed meanwhile)."""

    def __init__(self) -> None:
        super().__init__()
        self.hanging = threading.Event()

    async def handle_DATA(self, server, session, envelope) -> str:
        if not self.hanging.is_set():
            self.hanging.set()
            await asyncio.sleep(30)
            return "451 4.3.0 too late"
        return self.accept(envelope)


@pytest.mark.slow
def test_a_sender_killed_mid_mail_delays_the_queue_by_one_lease(
    demo_cli, app, session, smtp, database_url
):
    server = smtp(HangingOnce())
    issue(session, app, "2026-10")
    session.close()
    worker = send_invoices_process(database_url, app.config["BILLING_SMTP_PORT"])
    try:
        assert server.hanging.wait(timeout=60), worker.stderr.read()
        killed_at = utcnow()
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.communicate(timeout=30)  # reaps it and closes its pipes
    by_status = Counter(m.status for m in mails(session).values())
    assert by_status == {"sending": 1, "queued": 1}
    (in_hand,) = [m for m in mails(session).values() if m.status == "sending"]
    lease = SmtpSettings.from_config(app.config, default_sender=Address(addr_spec=SENDER)).lease
    assert in_hand.claimed_until <= killed_at + lease
    summary = deliver(session, app, killed_at + lease + timedelta(seconds=1))
    assert sorted(summary.sent) == sorted(mails(session))
    assert mails(session)[in_hand.message_key].last_error == INTERRUPTED
