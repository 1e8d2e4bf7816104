"""``flask billing worker``: one long-running process that renders pending PDFs and
delivers due mail as soon as they are queued.

One job at a time: the worker claims the next month close asked for on the
close page (:mod:`plugin.services.close_jobs`), else the next pending PDF,
else the next due mail, does it, records the outcome and logs one line.
PDFs come before mail, since an invoice mail waits for its PDF.  Several workers,
on one machine or many sharing the database, share the queue job by job
through the claims and leases of :mod:`plugin.services.job_queue`; run one
per core for more PDFs per second.

Waiting.  When nothing is due the worker waits ``BILLING_WORKER_POLL_SECONDS``
and looks again.  On PostgreSQL it also listens (``LISTEN billing_work``,
sent by triggers when invoices or mails are inserted): a notification ends
the wait at once.  Polling stays underneath, so a lost notification, a
restarted database or a pooler that cannot LISTEN only cost the poll interval.

Stopping.  The first SIGTERM or SIGINT lets the job in hand finish (its time
is bounded by the renderer's and the SMTP server's timeouts), then the worker
exits 0.  A second one stops the job at once: a PDF's claim is given back; a
mail whose SMTP dialogue was under way stays claimed until its lease runs out,
since whether the server took it is unknown.  The worker exits 0 then too.

Heartbeat.  The worker writes its heartbeat row when it starts, every few
seconds, and when it stops (:mod:`plugin.services.workers`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from types import FrameType
from typing import Any

from flask import current_app
from sqlalchemy.engine import Engine

from . import jobs
from .extension import billing
from .mail.smtp import SmtpTransport
from .rules import RulesUnavailable
from .services import job_queue, workers
from .services.close_jobs import ClosedJob, work_next_close
from .services.invoice_pdfs import RenderedJob, render_next
from .services.mail_delivery import DeliverySummary, deliver_queued
from .types import utcnow

log = logging.getLogger("plugin.worker")

CHANNEL = "billing_work"
#: Longest pause between two heartbeats.
HEARTBEAT_SECONDS = 10.0
#: How long the worker leaves mail alone after the SMTP server could not be used at all.
MAIL_PAUSE = job_queue.RETRY_BASE


class StopNow(BaseException):
    """A second stop signal: leave the job in hand (raised inside it)."""


class Listener:
    """``LISTEN billing_work`` on a connection of its own (psycopg 3 or psycopg2)."""

    def __init__(self, engine: Engine) -> None:
        self._raw = engine.raw_connection()
        connection = self._raw.driver_connection
        if connection is None:
            raise RuntimeError("the pool gave a connection without its driver connection")
        self._connection: Any = connection
        # Never handed back to the pool: it listens for as long as the worker runs.
        self._raw.detach()
        if hasattr(self._connection, "notifies") and callable(self._connection.notifies):
            self._connection.autocommit = True
            self._connection.execute(f"LISTEN {CHANNEL}")
            self._modern = True
        else:
            self._connection.set_session(autocommit=True)
            self._connection.cursor().execute(f"LISTEN {CHANNEL}")
            self._modern = False

    def fileno(self) -> int:
        return int(self._connection.fileno())

    def drain(self) -> int:
        """Read the notifications that arrived; how many."""
        if self._modern:
            return len(list(self._connection.notifies(timeout=0)))
        self._connection.poll()
        count = len(self._connection.notifies)
        self._connection.notifies.clear()
        return count

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._raw.close()


class Worker:
    """The loop of ``flask billing worker``; run it inside the app context."""

    def __init__(self, *, until_idle: bool = False) -> None:
        config = current_app.config
        self.until_idle = until_idle
        self.poll = float(config["BILLING_WORKER_POLL_SECONDS"])
        self.listen = bool(config["BILLING_WORKER_LISTEN"])
        stale = config["BILLING_WORKER_STALE_SECONDS"]
        self.heartbeat = min(HEARTBEAT_SECONDS, float(stale) / 3) if stale else HEARTBEAT_SECONDS
        self.pdf_lease = jobs.pdf_lease(config)
        # Both are checked now, so that a bad setting stops the worker before any job.
        self.renderer = jobs.renderer(config, workers=1)
        jobs.smtp_settings()
        self.ident = workers.worker_id(job_queue.new_token())
        self.jobs_done = 0
        self.stopping = False
        self._last_beat = 0.0
        self._mail_paused_until: datetime | None = None
        self._transport: SmtpTransport | None = None
        self._listener: Listener | None = None
        self._wake_read, self._wake_write = os.pipe()
        for fd in (self._wake_read, self._wake_write):
            os.set_blocking(fd, False)

    # The loop -------------------------------------------------------------

    def run(self) -> None:
        """Work until stopped (or, with ``until_idle``, until nothing is due)."""
        session = billing().session
        now = utcnow()
        workers.forget_old(session, now=now)
        self._beat()
        with self._signals():
            try:
                self._listener = self._listen()
                log.info(
                    "worker %s started: polls every %g s%s",
                    self.ident,
                    self.poll,
                    ", listens for new work" if self._listener else "",
                )
                with self.renderer:
                    self._loop()
            except StopNow:
                log.info("stopped at once: the job in hand, if any, was given back")
            finally:
                self._close_transport()
                if self._listener is not None:
                    self._listener.close()
                session.rollback()
                workers.stopped(session, self.ident, now=utcnow(), jobs_done=self.jobs_done)
                os.close(self._wake_read)
                os.close(self._wake_write)
        log.info("worker %s stopped after %d job(s)", self.ident, self.jobs_done)

    def _loop(self) -> None:
        while not self.stopping:
            if time.monotonic() - self._last_beat >= self.heartbeat:
                self._beat()
            if self._one_job():
                continue
            self._close_transport()
            if self.until_idle:
                break
            self._wait()

    def _one_job(self) -> bool:
        """Do the next due job, a month close first, then PDFs; whether there was one."""
        if self._close() is not None:
            self.jobs_done += 1
            return True
        job = self._render()
        if job is not None:
            self.jobs_done += 1
            return True
        summary = self._deliver()
        if summary is not None and summary.handled:
            self.jobs_done += summary.handled
            return True
        return False

    def _beat(self) -> None:
        workers.beat(billing().session, self.ident, now=utcnow(), jobs_done=self.jobs_done)
        self._last_beat = time.monotonic()

    # Jobs -----------------------------------------------------------------

    def _close(self) -> ClosedJob | None:
        """A month close asked for on the close page: its invoices then queue PDFs and mail."""
        ext = billing()
        try:
            rules = ext.rules()
        except RulesUnavailable:
            return None  # _render logs it
        started = time.monotonic()
        job = work_next_close(ext.session, rules, utcnow())
        if job is None:
            return None
        took = time.monotonic() - started
        if job.error is None:
            log.info("close %s: %d invoice(s) issued in %.2f s", job.month, job.issued, took)
        else:
            log.warning("close %s refused in %.2f s: %s", job.month, took, job.error)
        return job

    def _render(self) -> RenderedJob | None:
        ext = billing()
        try:
            tz = ext.rules().zoneinfo
        except RulesUnavailable as exc:
            log.error("PDFs wait: %s has no valid pricing rules", exc.path)
            return None
        started = time.monotonic()
        job = render_next(ext.session, self.renderer, tz=tz, lease=self.pdf_lease)
        if job is None:
            return None
        took = time.monotonic() - started
        if job.error is None:
            log.info("pdf %s rendered in %.2f s", job.number, took)
        else:
            retry = job.retry_at.isoformat(timespec="seconds") if job.retry_at else "-"
            log.warning("pdf %s failed in %.2f s, next try %s: %s", job.number, took, retry,
                        job.error)
        return job

    def _deliver(self) -> DeliverySummary | None:
        now = utcnow()
        if self._mail_paused_until is not None and now < self._mail_paused_until:
            return None
        try:
            settings = jobs.smtp_settings()
        except jobs.JobConfigError as exc:
            self._mail_paused_until = now + MAIL_PAUSE
            log.error("mail paused for %s: %s", MAIL_PAUSE, exc)
            return None
        if self._transport is None or self._transport.settings != settings:
            self._close_transport()
            self._transport = SmtpTransport(settings)
        started = time.monotonic()
        summary = deliver_queued(
            billing().session,
            self._transport,
            lease=jobs.mail_lease(current_app.config, settings),
            limit=1,
        )
        took = time.monotonic() - started
        for key in summary.sent:
            log.info("mail %s sent in %.2f s", key, took)
        for problem in summary.retrying:
            log.warning("mail %s to %s to be retried: %s", problem.message_key,
                        problem.recipient, problem.error)
        for problem in summary.failed:
            log.warning("mail %s to %s failed for good: %s", problem.message_key,
                        problem.recipient, problem.error)
        if summary.stopped:
            self._mail_paused_until = utcnow() + MAIL_PAUSE
            self._close_transport()
            log.warning("mail paused for %s: %s", MAIL_PAUSE, summary.stopped)
        return summary

    def _close_transport(self) -> None:
        """End the SMTP session: an idle one would be dropped by the server meanwhile."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    # Waiting and signals ----------------------------------------------------

    def _listen(self) -> Listener | None:
        engine = billing().database.engine
        if not self.listen or engine.dialect.name != "postgresql" or self.until_idle:
            return None
        try:
            return Listener(engine)
        except Exception as exc:
            log.warning("cannot LISTEN, polling only: %s", exc)
            return None

    def _wait(self) -> None:
        """Until the poll interval (or the next heartbeat) is over, a notification or a signal."""
        timeout = max(0.0, min(self.poll, self.heartbeat - (time.monotonic() - self._last_beat)))
        watched: list[Any] = [self._wake_read]
        if self._listener is not None:
            watched.append(self._listener)
        readable, _, _ = select.select(watched, [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_read, 512):
                pass
        if self._listener is not None and self._listener in readable:
            try:
                self._listener.drain()
            except Exception as exc:
                log.warning("lost the LISTEN connection, polling only: %s", exc)
                self._listener.close()
                self._listener = self._listen()

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGTERM and SIGINT: the first stops after the job in hand, the second at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        names = (signal.SIGTERM, signal.SIGINT)
        before = {number: signal.getsignal(number) for number in names}

        def stop(number: int, frame: FrameType | None) -> None:
            if self.stopping:
                for each in names:
                    signal.signal(each, signal.SIG_DFL)
                raise StopNow()
            self.stopping = True

        previous_fd = signal.set_wakeup_fd(self._wake_write)
        for number in names:
            signal.signal(number, stop)
        try:
            yield
        finally:
            for number, handler in before.items():
                signal.signal(number, handler)
            signal.set_wakeup_fd(previous_fd)

