"""``flask billing worker`` as a real process: PDFs (wkhtmltopdf, Ghostscript) and mail
(aiosmtpd on 127.0.0.1) taken from the queue as soon as they are queued, on SQLite and
PostgreSQL.

A worker is started with ``python -m flask … billing worker`` on the test's
database; its log (one line per job) goes to a file the tests read.  A stand-in
wkhtmltopdf (a shell script) holds a job for as long as a test needs, to kill
or stop the worker in the middle of it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from plugin.instants import format_instant
from plugin.models import Invoice, OutboxMail, WorkerHeartbeat, Workspace
from plugin.services import workers
from plugin.services.invoice_pdfs import render_next, render_pending
from plugin.services.invoicing import close_month, issue_credit_note
from plugin.services.mailbox import change_mailbox, workspace_id_for
from plugin.services.periods import Month
from plugin.types import utcnow
from tests.helpers import FakeRenderer, billing_process
from tests.test_admin_lists import csrf
from tests.test_outbox import DOMAIN, deliver, issue, number_of, smtp_servers
from tests.test_pdfs import pdftotext, script

WKHTMLTOPDF = "/usr/bin/wkhtmltopdf"
#: How long the tests wait for a worker to do something before they fail (a ceiling: the
#: machine may be shared, and 50 e-invoice PDFs take a while on two busy cores).
PATIENCE = 300


@pytest.fixture
def smtp(app):
    yield from smtp_servers(app)


class WorkerProcess:
    """A ``flask billing worker`` process on the test's database; its log in a file."""

    def __init__(self, database_url: str, log: Path, config: dict) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.process = billing_process(
                database_url, "worker", config=config, stdout=out, stderr=subprocess.STDOUT
            )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def rendered(self) -> list[str]:
        return re.findall(r" pdf (\S+) rendered in ", self.text())

    def sent(self) -> list[str]:
        return re.findall(r" mail (\S+) sent in ", self.text())

    def wait_for_log(self, pattern: str) -> None:
        wait_until(lambda: re.search(pattern, self.text()), f"{pattern!r} in the log", self)

    def wait_for_rendered(self, number: str) -> None:
        """The worker logs a job after committing it: the stored PDF can come first."""
        self.wait_for_log(rf" pdf {re.escape(number)} rendered in ")

    def stop(self, *signals: signal.Signals) -> int:
        # A second signal a moment after the first, as a person pressing Ctrl-C again
        # would: Python runs a handler once for the signals that arrive while the main
        # thread is inside a C call (a fork, a database driver), so two signals sent
        # 0.2 s apart to a busy worker were one stop signal (the flaky test's cause).
        for index, number in enumerate(signals or (signal.SIGTERM,)):
            if index:
                time.sleep(1.0)
            self.process.send_signal(number)
        return self.process.wait(timeout=PATIENCE)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def wait_until(condition: Callable[[], object], what: str, *running: WorkerProcess) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        for worker in running:
            assert worker.process.poll() is None, f"worker exited early:\n{worker.text()}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}:\n" + "\n".join(
            worker.text() for worker in running
        )
        time.sleep(0.1)


@pytest.fixture
def start_worker(app, database_url, tmp_path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(**config: object) -> WorkerProcess:
        settings = {
            "BILLING_WORKER_POLL_SECONDS": 0.3,
            **{key: app.config[key] for key in ("BILLING_SMTP_HOST", "BILLING_SMTP_PORT")
               if app.config.get(key) is not None},
            **config,
        }
        worker = WorkerProcess(database_url, tmp_path / f"worker-{len(started)}.log", settings)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


@pytest.fixture
def holding(tmp_path) -> Iterator[Callable[..., tuple[str, Path]]]:
    """A stand-in wkhtmltopdf that says it started, then waits ``seconds`` and renders
    (or, with ``seconds=None``, never does); its process groups are killed afterwards."""
    started = tmp_path / "started"

    def make(seconds: float | None) -> tuple[str, Path]:
        then = f"sleep {seconds}; exec {WKHTMLTOPDF} \"$@\"" if seconds else "exec sleep 600"
        return script(tmp_path, "holding-wkhtmltopdf", f"echo $$ >> {started}\n{then}"), started

    yield make
    if started.exists():
        for pid in started.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid), signal.SIGKILL)


def invoice(session, number: str) -> Invoice:
    session.expire_all()
    return session.scalar(select(Invoice).where(Invoice.number == number))


def credit_note(session, app, key: str = "acme") -> str:
    """A credit note of the workspace's October invoice, issued and committed; its number."""
    credit = issue_credit_note(
        session, app.extensions["billing"].rules(), number_of(session, key), "Wrong tier",
        utcnow(), actor="test",
    )
    session.commit()
    return credit.note.number


def close_without_pdfs(session, app, *months: str) -> None:
    rules = app.extensions["billing"].rules()
    for month in months:
        close_month(session, rules, Month.parse(month), utcnow(), actor="test")
        session.commit()


# A credit note gets its PDF without any command --------------------------------------


@pytest.fixture
def accounting(app, demo_cli):
    client = app.test_client()
    client.get("/demo/role/accounting")
    return client


def issue_in_the_admin(client, number: str):
    form = client.get(f"/admin/billing_invoices/credit/{number}").get_data(as_text=True)
    return client.post(
        f"/admin/billing_invoices/credit/{number}",
        data={"csrf_token": csrf(form), "reason": "Wrong volume tier"},
        follow_redirects=True,
    )


def test_a_credit_note_from_the_admin_has_its_pdf_at_once(app, accounting, session, tmp_path):
    issue(session, app, "2026-10")
    number = number_of(session, "initech")
    page = issue_in_the_admin(accounting, number).get_data(as_text=True)
    note = session.scalar(select(Invoice.number).where(Invoice.kind == "credit_note"))
    assert f"Credit note {note} issued for {number}" in page
    assert "Its PDF is ready." in page
    download = accounting.get(f"/admin/billing_invoices/pdf/{note}")
    assert download.status_code == 200
    assert download.mimetype == "application/pdf"
    text = pdftotext(download.data, tmp_path)
    assert note in text
    assert number in text


def test_a_credit_note_from_the_admin_is_rendered_by_the_worker(
    app, accounting, session, backend, start_worker, tmp_path
):
    """Nothing in the request; the worker takes it.  On PostgreSQL it polls only every
    minute, so the PDF can only be this quick because the insert woke it (NOTIFY)."""
    app.config["BILLING_RENDER_IN_REQUEST"] = False
    issue(session, app, "2026-10")
    number = number_of(session, "initech")
    poll = 60 if backend == "postgresql" else 0.3
    worker = start_worker(BILLING_WORKER_POLL_SECONDS=poll)
    worker.wait_for_log("listens for new work" if backend == "postgresql" else "polls every")
    time.sleep(1)  # idle: waiting for work
    page = issue_in_the_admin(accounting, number).get_data(as_text=True)
    note = session.scalar(select(Invoice.number).where(Invoice.kind == "credit_note"))
    assert "The worker renders its PDF." in page
    queued = time.monotonic()
    wait_until(lambda: invoice(session, note).pdf_sha256, "the credit note's PDF", worker)
    assert time.monotonic() - queued < 30
    worker.wait_for_rendered(note)
    assert worker.rendered() == [note]
    download = accounting.get(f"/admin/billing_invoices/pdf/{note}")
    assert note in pdftotext(download.data, tmp_path)
    assert worker.stop() == 0


# Crashes, stops and sharing -----------------------------------------------------------


def test_a_job_of_a_killed_worker_is_taken_over_after_its_lease(
    app, demo_cli, session, start_worker, holding
):
    issue(session, app, "2026-10")
    note = credit_note(session, app)
    hanging, started = holding(None)
    first = start_worker(BILLING_WKHTMLTOPDF=hanging, BILLING_WORKER_LEASE_SECONDS=6)
    wait_until(started.exists, "the first worker to start rendering", first)
    held = invoice(session, note)
    assert held.pdf_claim_token is not None
    lease_end = held.pdf_claimed_until
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=30)
    assert invoice(session, note).pdf_claimed_until == lease_end  # left as it was

    second = start_worker(BILLING_WKHTMLTOPDF=WKHTMLTOPDF, BILLING_WORKER_LEASE_SECONDS=6)
    second.wait_for_log("polls every")
    while utcnow() < lease_end - timedelta(seconds=1):
        assert invoice(session, note).pdf_sha256 is None, "taken over before the lease ended"
        time.sleep(0.2)
    wait_until(lambda: invoice(session, note).pdf_sha256, "the takeover", second)
    taken = invoice(session, note)
    assert utcnow() >= lease_end
    second.wait_for_rendered(note)
    assert second.rendered() == [note]
    assert (taken.pdf_attempts, taken.pdf_error, taken.pdf_claim_token) == (1, None, None)
    assert second.stop() == 0


def test_two_workers_do_each_of_fifty_jobs_exactly_once(
    app, demo_cli, session, smtp, start_worker
):
    server = smtp()
    close_without_pdfs(session, app, *(f"2026-{month:02d}" for month in range(3, 11)))
    globex = workspace_id_for(session, "globex")
    change_mailbox(session, globex, "billing@globex.example", actor="test", now=utcnow())
    session.commit()
    pdfs = set(session.scalars(select(Invoice.number)))
    mails = set(session.scalars(select(OutboxMail.message_key)))
    assert len(pdfs) + len(mails) == 50
    pair = [start_worker(), start_worker()]

    def all_done() -> bool:
        session.expire_all()
        rendered = session.scalar(select(Invoice.id).where(Invoice.pdf_sha256.is_(None))) is None
        statuses = set(session.scalars(select(OutboxMail.status)))
        return rendered and statuses == {"sent"}

    wait_until(all_done, "all 50 jobs", *pair)
    assert [worker.stop() for worker in pair] == [0, 0]
    rendered = Counter(number for worker in pair for number in worker.rendered())
    sent = Counter(key for worker in pair for key in worker.sent())
    assert rendered == Counter(pdfs)
    assert sent == Counter(mails)
    assert Counter(r.message_id for r in server.received) == Counter(
        f"<{key}@{DOMAIN}>" for key in mails
    )
    assert all(len(w.rendered()) + len(w.sent()) > 0 for w in pair), "one worker did nothing"
    assert set(session.scalars(select(Invoice.pdf_attempts))) == {0}
    assert set(session.scalars(select(OutboxMail.attempts))) == {1}
    assert all(w.text().count(" stopped after ") == 1 for w in pair)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_lets_the_job_in_hand_finish_then_exits_0(
    app, demo_cli, session, start_worker, holding, stop
):
    issue(session, app, "2026-10")
    note = credit_note(session, app)
    slow, started = holding(2)
    worker = start_worker(BILLING_WKHTMLTOPDF=slow)
    wait_until(started.exists, "the render to start", worker)
    assert worker.stop(stop) == 0
    assert invoice(session, note).pdf_sha256 is not None
    assert worker.rendered() == [note]
    assert "stopped after 1 job(s)" in worker.text()
    beat = session.scalar(select(WorkerHeartbeat))
    assert (beat.stopped_at is not None, beat.jobs_done) == (True, 1)


def test_a_second_stop_signal_gives_the_job_back_and_exits_0(
    app, demo_cli, session, start_worker, holding
):
    issue(session, app, "2026-10")
    note = credit_note(session, app)
    hanging, started = holding(None)
    worker = start_worker(BILLING_WKHTMLTOPDF=hanging)
    wait_until(started.exists, "the render to start", worker)
    assert worker.stop(signal.SIGTERM, signal.SIGTERM) == 0
    given_back = invoice(session, note)
    assert (given_back.pdf_sha256, given_back.pdf_claim_token, given_back.pdf_attempts) == (
        None, None, 0,
    )
    assert "given back" in worker.text()
    pid = int(started.read_text().split()[0])
    # The stand-in renderer went with the job: killed by the worker, then reaped
    # by init once the worker is gone, which takes a moment.
    wait_until(lambda: not _process_group_alive(pid), "the renderer's process group to go")


def _process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_an_idle_worker_stops_at_once(app, demo_cli, start_worker):
    worker = start_worker(BILLING_WORKER_POLL_SECONDS=60, BILLING_WORKER_LISTEN=False)
    worker.wait_for_log("polls every 60 s")
    started = time.monotonic()
    assert worker.stop() == 0
    assert time.monotonic() - started < 10


# Retries ---------------------------------------------------------------------------


class Broken(FakeRenderer):
    def render_many(self, documents):
        return [RuntimeError("renderer broke") for _ in documents]


def test_a_failed_pdf_waits_before_a_worker_tries_it_again(app, demo_cli, session):
    issue(session, app, "2026-10")
    note = credit_note(session, app)
    now = utcnow()
    failed = render_next(session, Broken(), clock=lambda: now)
    assert (failed.number, failed.error, failed.retry_at) == (
        note, "renderer broke", now + timedelta(minutes=1),
    )
    assert render_next(session, FakeRenderer(), clock=lambda: now + timedelta(seconds=59)) is None
    later = now + timedelta(seconds=61)
    assert render_next(session, FakeRenderer(), clock=lambda: later).error is None
    stored = invoice(session, note)
    assert (stored.pdf_attempts, stored.pdf_error, stored.pdf_next_attempt_at) == (1, None, None)


def test_render_pending_retries_at_once_and_leaves_a_claimed_pdf_alone(app, demo_cli, session):
    issue(session, app, "2026-10")
    note = credit_note(session, app)
    render_next(session, Broken())
    assert render_pending(session, FakeRenderer()).rendered == 1  # no pause for a person
    other = credit_note(session, app, "globex")
    session.execute(
        Invoice.__table__.update()
        .where(Invoice.number == other)
        .values(pdf_claim_token="x" * 32, pdf_claimed_until=utcnow() + timedelta(minutes=5))
    )
    session.commit()
    assert render_pending(session, FakeRenderer()).rendered == 0
    assert invoice(session, note).pdf_sha256 is not None
    assert invoice(session, other).pdf_sha256 is None


# The warning on every plugin page ------------------------------------------------------

WARNING = 'id="billing-worker-warning"'
PAGES = ("/admin/billing_invoices/", "/admin/billing_workspaces/w/acme/", "/admin/billing_rules/")


def warned(client) -> list[bool]:
    return [WARNING in client.get(page).get_data(as_text=True) for page in PAGES]


def test_pages_warn_while_work_waits_and_no_worker_is_seen(app, accounting, session, demo_cli):
    accounting.get("/demo/role/admin")
    close_without_pdfs(session, app, "2026-10")
    page = accounting.get("/admin/billing_invoices/").get_data(as_text=True)
    assert "Waiting for a worker: invoice PDFs.</strong>" in page
    assert "No worker has been seen yet." in page
    assert warned(accounting) == [True, True, True]

    long_ago = utcnow() - timedelta(minutes=10)
    workers.beat(session, "old-worker", now=long_ago)
    page = accounting.get("/admin/billing_invoices/").get_data(as_text=True)
    since = format_instant(long_ago, ZoneInfo("Europe/Berlin"))
    assert f"No worker has been seen since {since}." in page

    workers.beat(session, "old-worker", now=utcnow())
    assert warned(accounting) == [False, False, False]

    workers.beat(session, "old-worker", now=long_ago)
    assert warned(accounting) == [True, True, True]
    assert demo_cli("render-pending").exit_code == 0  # a cron run counts as a worker seen
    assert warned(accounting) == [False, False, False]


def test_a_stale_heartbeat_alone_is_no_warning(app, accounting, session):
    accounting.get("/demo/role/admin")
    issue(session, app, "2026-10")  # PDFs rendered; the mail has no server: it backs off
    workers.beat(session, "old-worker", now=utcnow() - timedelta(hours=1))
    assert session.scalar(select(OutboxMail.id).where(OutboxMail.status == "queued"))
    page = accounting.get("/admin/billing_invoices/").get_data(as_text=True)
    assert "Waiting for a worker: mail.</strong>" in page
    session.execute(
        OutboxMail.__table__.update().values(next_attempt_at=utcnow() + timedelta(minutes=5))
    )
    session.commit()
    assert warned(accounting) == [False, False, False]


def test_the_warning_can_be_switched_off(app, accounting, session):
    accounting.get("/demo/role/admin")
    close_without_pdfs(session, app, "2026-10")
    app.config["BILLING_WORKER_STALE_SECONDS"] = None
    assert warned(accounting) == [False, False, False]


# Mail in the request, where the host asks for it ------------------------------------


def test_with_send_in_request_a_resend_and_one_mailbox_change_go_out_at_once(
    app, accounting, session, smtp
):
    server = smtp()
    app.config["BILLING_SEND_IN_REQUEST"] = True
    issue(session, app, "2026-10")
    deliver(session, app)
    number = number_of(session, "acme")
    first = len(server.received)
    mail_page = f"/admin/billing_invoices/mail/{number}"
    token = csrf(accounting.get(mail_page).get_data(as_text=True))
    page = accounting.post(mail_page, data={"csrf_token": token}, follow_redirects=True)
    assert f"Invoice {number} sent to rechnungen@mueller-soehne.example." in page.get_data(
        as_text=True
    )
    assert [r.message_id for r in server.received[first:]] == [
        f"<invoice-{number}.resend-1@{DOMAIN}>"
    ]

    (acme,) = session.scalars(select(Workspace.id).where(Workspace.key == "acme"))
    form_url = f"/admin/billing_workspaces/mailbox?ids={acme}"
    form = accounting.get(form_url).get_data(as_text=True)
    accounting.post(form_url, data={"csrf_token": csrf(form), "address": "neu@acme.example"})
    notices = [r for r in server.received if r.message_id.startswith("<mailbox-")]
    assert sorted(r.rcpt_tos for r in notices) == [
        ("neu@acme.example",), ("rechnungen@mueller-soehne.example",),
    ]

    # Two workspaces at once are four notices: more than a request sends.
    both = ",".join(str(i) for i in session.scalars(select(Workspace.id).where(
        Workspace.key.in_(["acme", "globex"]))))
    form = accounting.get(f"/admin/billing_workspaces/mailbox?ids={both}").get_data(as_text=True)
    accounting.post(
        f"/admin/billing_workspaces/mailbox?ids={both}",
        data={"csrf_token": csrf(form), "address": "zentral@example.com"},
    )
    assert len([r for r in server.received if r.message_id.startswith("<mailbox-")]) == 2
    session.expire_all()
    waiting = session.scalars(select(OutboxMail.status).where(OutboxMail.status == "queued"))
    assert len(list(waiting)) == 4

